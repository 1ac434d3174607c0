"""Test settings: production settings plus what a test run needs. Real PostgreSQL and Redis still."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdefghijklmnop")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from helpdesk.settings import *  # noqa: F403

# Hashing passwords slowly is the point in production and pure cost in tests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MEDIA_ROOT = tempfile.mkdtemp(prefix="helpdesk-test-media-")
# An empty, existing STATIC_ROOT: tests never run collectstatic, and whitenoise warns about a missing one.
STATIC_ROOT = tempfile.mkdtemp(prefix="helpdesk-test-static-")
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# The servers a test starts (the browser tests) serve /static/ from the apps and static/ directly.
WHITENOISE_USE_FINDERS = True
# Publish each transaction's events at commit, so tests see them without waiting for a batch.
EVENTS_PUBLISH_DELAY = 0
# Per-process cache: parallel test workers must not share cached values through Redis.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Channel-layer groups of each test process's own on the shared Redis, so parallel test workers never hear
# each other's events; the servers a test starts are handed its prefix (conftest.server_environment).
CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] = (  # noqa: F405
    os.environ.get("TEST_CHANNEL_LAYER_PREFIX") or f"test-{os.getpid()}"
)
