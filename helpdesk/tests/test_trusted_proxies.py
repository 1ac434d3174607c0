"""Forwarded headers are believed from TRUSTED_PROXIES only: one setting for gunicorn and for Django."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import RequestFactory

from helpdesk.signin import client_address

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        ("203.0.113.7", "", "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # anyone may write the header
        (
            "203.0.113.7",
            "198.51.100.1, 10.0.0.2",
            "203.0.113.7",
        ),  # naming a trusted proxy in it changes nothing
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        (
            "10.0.0.2",
            "192.0.2.55, 198.51.100.1",
            "198.51.100.1",
        ),  # left of the proxy's hop: the client's word
        ("10.0.0.2", "198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two proxies of ours in a row
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),  # nothing beyond our own proxies
        ("10.0.0.2", "", "10.0.0.2"),
        ("10.0.0.2", "unknown", "10.0.0.2"),
        ("10.0.0.2", "2001:db8::7", "2001:db8::7"),
        ("::ffff:203.0.113.7", "198.51.100.1", "203.0.113.7"),
        ("::1", "198.51.100.1", "198.51.100.1"),
        ("not an address", "198.51.100.1", None),
    ],
)
def test_the_client_is_the_first_hop_that_is_not_a_trusted_proxy(settings, peer, forwarded_for, client):
    settings.TRUSTED_PROXIES = ["127.0.0.1", "::1", "10.0.0.2", "10.0.0.3/32"]
    headers = {"REMOTE_ADDR": peer}
    if forwarded_for:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for

    assert client_address(RequestFactory().post("/api/v1/auth/token/", **headers)) == client


def test_trusted_proxies_may_be_networks(settings):
    settings.TRUSTED_PROXIES = ["172.18.0.0/16"]
    request = RequestFactory().post(
        "/admin/login/", REMOTE_ADDR="172.18.0.1", HTTP_X_FORWARDED_FOR="198.51.100.1"
    )

    assert client_address(request) == "198.51.100.1"


def _run_without_trusted_proxies(command: list[str], **env: str) -> subprocess.CompletedProcess:
    """Run a command of the project with only the TRUSTED_PROXIES given here (none: the default)."""
    environment = {key: value for key, value in os.environ.items() if key != "TRUSTED_PROXIES"}
    return subprocess.run(
        command,
        cwd=REPO,
        env={**environment, "DJANGO_SETTINGS_MODULE": "helpdesk.settings_test", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def gunicorn_forwarded_allow_ips(**env: str) -> str:
    """gunicorn's own resolved configuration for the production web command."""
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    result = _run_without_trusted_proxies(
        [gunicorn, "helpdesk.wsgi:application", "--config", "helpdesk/gunicorn.conf.py", "--print-config"],
        **env,
    )
    assert result.returncode == 0, result.stderr
    return next(line for line in result.stdout.splitlines() if line.startswith("forwarded_allow_ips"))


def django_trusted_proxies(**env: str) -> subprocess.CompletedProcess:
    return _run_without_trusted_proxies(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(settings.TRUSTED_PROXIES)",
        ],
        **env,
    )


def test_gunicorn_believes_forwarded_headers_from_loopback_only_by_default():
    assert gunicorn_forwarded_allow_ips().endswith("= ['127.0.0.1', '::1']")
    # gunicorn's own variable no longer opens it to everyone: TRUSTED_PROXIES is the one setting.
    assert gunicorn_forwarded_allow_ips(FORWARDED_ALLOW_IPS="*").endswith("= ['127.0.0.1', '::1']")


def test_gunicorn_and_django_read_the_same_trusted_proxies():
    proxies = "10.0.0.2,172.18.0.0/16"

    assert gunicorn_forwarded_allow_ips(TRUSTED_PROXIES=proxies).endswith("= ['10.0.0.2', '172.18.0.0/16']")
    django = django_trusted_proxies(TRUSTED_PROXIES=proxies)
    assert django.returncode == 0, django.stderr
    assert django.stdout.strip().splitlines()[-1] == "['10.0.0.2', '172.18.0.0/16']"


def test_a_malformed_trusted_proxy_is_refused_at_start():
    result = django_trusted_proxies(TRUSTED_PROXIES="10.0.0.2,proxy.internal")

    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr
