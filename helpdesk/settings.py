"""Settings come from the environment (django-environ); see README for the variables.

One code path everywhere: PostgreSQL and Redis, never SQLite or an in-memory broker.
`make run` and `make test` export DATABASE_URL/REDIS_URL, pointing at the embedded
servers (helpdesk/embedded.py) when the machine has none.
"""

import ipaddress
import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from helpdesk.embedded import celery_broker_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
if DEBUG:
    SECRET_KEY = env("SECRET_KEY", default="dev-only-secret-key-never-use-in-production-0123456789")
else:
    SECRET_KEY = env("SECRET_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "django_htmx",
    "tickets",
    "channels_in",
    "channels_in.api",
    "sla",
    "knowledge_base",
    "realtime",
]

MIDDLEWARE = [
    # First: health probes come over plain HTTP with any Host header, before redirects and host checks.
    "helpdesk.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication: a signed-in user's own language and time zone win over the browser's.
    "tickets.views.preferences.UserPreferencesMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "helpdesk.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: turns a sign-in refused for a lockout into its answer (helpdesk.signin).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "helpdesk.urls"
WSGI_APPLICATION = "helpdesk.wsgi.application"
ASGI_APPLICATION = "helpdesk.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/helpdesk")}
# Persistent connections, one per thread, checked before each request: a request never opens one (web).
# CONN_MAX_AGE in seconds, unset for no limit; the realtime service sets 0, so an idle socket holds none.
CONN_MAX_AGE = env.str("CONN_MAX_AGE", default="")
DATABASES["default"]["CONN_MAX_AGE"] = int(CONN_MAX_AGE) if CONN_MAX_AGE else None
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# Names each process kind in pg_stat_activity: helpdesk-web and helpdesk-realtime set their own.
DATABASES["default"]["OPTIONS"]["application_name"] = env("DATABASE_APPLICATION_NAME", default="helpdesk")
# Server-side limit on one statement (PostgreSQL units: 30s, 500ms); the web tier sets one.
STATEMENT_TIMEOUT = env("DATABASE_STATEMENT_TIMEOUT", default="")
if STATEMENT_TIMEOUT:
    if not re.fullmatch(r"\d+(ms|s|min)?", STATEMENT_TIMEOUT):
        raise ImproperlyConfigured("DATABASE_STATEMENT_TIMEOUT: a number with ms, s or min, e.g. 30s")
    DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT}"
# What sits between us and PostgreSQL: "session" for a direct connection or a session pooler,
# "transaction" for a transaction pooler (PgBouncer pool_mode = transaction), where no session state may
# outlive a transaction: the ingest sends its statements unprepared (tickets.rows) and Django opens no
# named cursors. Statement pooling breaks every multi-statement transaction, so it is refused.
DATABASE_POOL_MODE = env("DATABASE_POOL_MODE", default="session")
if DATABASE_POOL_MODE not in ("session", "transaction"):
    raise ImproperlyConfigured("DATABASE_POOL_MODE: session (also for a direct connection) or transaction")
DATABASES["default"]["POOL_MODE"] = DATABASE_POOL_MODE
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_POOL_MODE == "transaction"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "tickets.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The workspace's own sign-in (tickets/views/account.py); the admin keeps its login page for staff.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "inbox"
LOGOUT_REDIRECT_URL = "login"
# "Remember me" keeps a session this long; without it the session ends with the browser.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=14 * 24 * 3600)
# Password reset mails: the console in development, SMTP when EMAIL_URL is set.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="helpdesk@localhost")

# Password guessing: django-axes counts failed sign-ins through Django's authenticate() (its backend refuses
# a locked sign-in; its user_login_failed receiver counts the failure), so the API token endpoint, the admin
# login and any Django auth view share one lockout. Its database handler keeps the counts in PostgreSQL:
# signing in needs no Redis. LOGIN_FAILURE_LIMIT failures from one client address, or against one account
# from any address, lock that address or account until LOGIN_LOCKOUT_MINUTES have passed since its last
# failure (README, "Signing in behind a proxy").
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_PARAMETERS = ["ip_address", "username"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_CLIENT_IP_CALLABLE = "helpdesk.signin.client_address"
AXES_LOCKOUT_CALLABLE = "helpdesk.signin.lockout_response"
# Reverse proxies whose X-Forwarded-For (and X-Forwarded-Proto, for gunicorn) is believed: addresses or
# networks, comma-separated. gunicorn.conf.py reads the same variable. From anyone else the header is the
# client's own word, and the peer address is the client.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
try:
    for _proxy in TRUSTED_PROXIES:
        ipaddress.ip_network(_proxy, strict=False)
except ValueError as error:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {error}") from error

LANGUAGE_CODE = env("DEFAULT_LANGUAGE", default="en")
LANGUAGES = [("en", "English"), ("ru", "Русский")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Largest attachment accepted from any channel or the API.
MAX_ATTACHMENT_BYTES = env.int("MAX_ATTACHMENT_BYTES", default=25 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=5 * 1024 * 1024)

# Production hardening: on unless DEBUG, so `manage.py check --deploy` passes.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
# Scripts never read either cookie: pages put the CSRF token in their forms and htmx's headers.
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tickets.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tickets.api.permissions.IsStaffAgent"],
    # JSON is what the schema documents; a form body is a 415. An endpoint that takes a file upload adds
    # MultiPartParser on its own view (the token sign-in keeps DRF's form parsers, documented as such).
    "DEFAULT_PARSER_CLASSES": ["tickets.api.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "tickets.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "tickets.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Helpdesk API",
    "DESCRIPTION": "Tickets, customers and replies across every channel.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "TicketStatusEnum": "tickets.models.choices.Status",
        "EnvelopeStatusEnum": "tickets.models.choices.EnvelopeStatus",
        "DeliveryStatusEnum": "tickets.models.choices.DeliveryStatus",
    },
}

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Shared by every web process (later: live presence). Signing in does not depend on it (AXES_HANDLER).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
# Celery spells a unix-socket Redis differently from redis-py (the embedded Redis listens on one).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=celery_broker_url(REDIS_URL))
CELERY_RESULT_BACKEND = None
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", default="helpdesk")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# A task is acknowledged only after it ran, so a killed worker loses nothing (tasks are idempotent).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task that lost its broker connection cannot be acknowledged and comes back anyway: stop it, not run twice.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# The longest any task runs: it gets SoftTimeLimitExceeded at the soft limit and its process is killed at the
# hard one. Sweeps stop well before (budgets under a minute) and continue at their next run.
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
# Redis hands an unacknowledged task to another worker after this long: the message of a worker killed
# mid-task (kill -9, OOM, a lost machine) comes back within minutes, not hours. Twice the hard limit: a task
# may wait for its worker's previous one before it runs.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * CELERY_TASK_TIME_LIMIT)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # Workers look for such messages at start and then at least twice per visibility timeout (kombu's
    # default looks every 100 s, which would double a short timeout).
    "unacked_restore_interval": max(1, min(10, CELERY_VISIBILITY_TIMEOUT // 2)),
    "unacked_restore_throttle": 1,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "republish-unpublished-events": {
        "task": "tickets.tasks.republish_unpublished_events",
        "schedule": 60.0,
    },
    "resend-stranded-subscriber-batches": {
        "task": "tickets.tasks.resend_stranded_subscriber_batches",
        "schedule": 60.0,
    },
    "retry-due-deliveries": {
        "task": "tickets.tasks.retry_due_deliveries",
        "schedule": 60.0,
    },
    "retry-due-envelopes": {
        "task": "tickets.tasks.retry_due_envelopes",
        "schedule": 60.0,
    },
}

# The realtime service (realtime/): WebSockets fan out through Redis, so any number of processes serve any
# client. CHANNEL_LAYER_PREFIX separates deployments sharing one Redis.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # Longer than the layer's 5-second blocking read (BZPOPMIN): redis-py's own 5-second default made
            # that read time out now and then, and the socket waiting on it was dropped (bench/RESULTS.md).
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15, "socket_connect_timeout": 5}],
            "prefix": env("CHANNEL_LAYER_PREFIX", default="helpdesk"),
            # Sockets leave their groups on reconnect anyway (REALTIME_SOCKET_MAX_AGE is shorter).
            "group_expiry": 6 * 3600,
        },
    }
}
# Where browsers open sockets: empty for the page's own origin (a proxy routes /ws/ to realtime), or
# e.g. ws://127.0.0.1:8001 when realtime listens on its own port (make run).
REALTIME_URL = env("REALTIME_URL", default="")
# A socket token from POST /api/v1/realtime/token/ opens a socket within this many seconds.
REALTIME_TOKEN_MAX_AGE = env.int("REALTIME_TOKEN_MAX_AGE", default=60)
# A socket is closed (code 4000) after about this long; the client reconnects, its access checked again.
REALTIME_SOCKET_MAX_AGE = env.int("REALTIME_SOCKET_MAX_AGE", default=3600)

# GET /healthz fails (503) past this many events unpublished for over a minute, and warns (still 200) past
# this many failed inbound envelopes.
HEALTH_MAX_OUTBOX_BACKLOG = env.int("HEALTH_MAX_OUTBOX_BACKLOG", default=100)
HEALTH_MAX_FAILED_ENVELOPES = env.int("HEALTH_MAX_FAILED_ENVELOPES", default=0)
HEALTH_MAX_STRANDED_BATCHES = env.int("HEALTH_MAX_STRANDED_BATCHES", default=0)

# Committed domain events are gathered this long (seconds) and published as one batch; 0 publishes each
# transaction's events at once.
EVENTS_PUBLISH_DELAY = env.float("EVENTS_PUBLISH_DELAY", default=0.05)
# A subscriber's batch of events whose task has not run this long (seconds) after it was sent is sent again
# (the broker lost it, or the task failed for good), then after twice as long, and so on. Longer than the
# visibility timeout, after which the broker itself hands a dead worker's batch to another worker.
EVENTS_RESEND_AFTER = env.int("EVENTS_RESEND_AFTER", default=CELERY_VISIBILITY_TIMEOUT + 300)

# Outbound adapters by channel name, on top of the built-in registry in tickets/channels.py.
CHANNEL_ADAPTERS = env.dict("CHANNEL_ADAPTERS", default={})
# Development/demo: deliver every channel's replies to the log instead of the real service.
DELIVER_TO_LOG = env.bool("DELIVER_TO_LOG", default=False)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
