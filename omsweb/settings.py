"""Django settings. The environment is read here and only here.

Every variable the OMS reads is listed in ``ENV_VARS`` (and in the README). With
``DATABASE_URL`` / ``REDIS_URL`` unset, embedded PostgreSQL and Redis are started under
``OMS_HOME`` (see ``omsweb/embedded.py``).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from omsweb import embedded, logredact, procmgr

BASE_DIR = Path(__file__).resolve().parent.parent

ENV_VARS = {
    "OMS_HOME": "data directory (embedded database, redis, credentials, logs); default ./.oms",
    "DATABASE_URL": "PostgreSQL URL; unset = embedded PostgreSQL under OMS_HOME",
    "REDIS_URL": "Redis URL (broker, channel layer, rate limits); unset = embedded Redis",
    "OMS_SECRET_KEY": "Django secret key; default: generated once into OMS_HOME",
    "OMS_TASK_KEY": "key of the task messages' HMAC (omsweb/task_auth.py), the same in every "
    "OMS process; default: generated once into OMS_HOME",
    "OMS_DEBUG": "1 for Django debug pages (never in production)",
    "OMS_ALLOWED_HOSTS": "comma-separated host names; default localhost,127.0.0.1",
    "OMS_WEB_HOST": "web bind address; default 127.0.0.1",
    "OMS_WEB_PORT": "web port; default 8000",
    "OMS_WEB_WORKERS": "web server processes (uvicorn --workers); default 1 (omsweb/cli.py)",
    "OMS_LOG_LEVEL": "log level; default INFO",
    "OMS_FIX_HOST": "FIX gateway (oms fixgw) bind address; default 127.0.0.1",
    "OMS_FIX_PORT": "FIX gateway port; default 9878",
    "OMS_FIX_COMP_ID": "the FIX gateway's own CompID (clients' TargetCompID); default OMS",
    "OMS_DEMO_FIX_VENUE": "1: oms up adds the demo FIX venue sim-fix (a third simulator with "
    "a FIX port, its FIX session process and its worker); default off",
    "OMS_METRICS_TOKEN": "bearer token that opens /metrics to other hosts; default: 127.0.0.1 only",
    "OMS_RECON_MASS_MISSING": "reconciliation: more working orders than this missing at one "
    "venue at once are not closed; the venue goes to REDUCING for an operator; default 5",
    "OMS_DEMO_REPLAY": "1: `oms up` starts the demo venues replaying market recordings the "
    "project generates once under OMS_HOME/replay (omsweb/cli.py, docs/BACKTEST.md); default 0",
    "OMS_TEST_ENV_READY": "set by the test plugin (omsweb/testing.py): fast password hashing",
}


def _env(name: str, default: str | None = None) -> str | None:
    if name not in ENV_VARS:  # a misspelled setting fails loudly
        raise KeyError(f"unknown OMS setting {name}; known: {sorted(ENV_VARS)}")
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _env_bool(name: str, default: bool = False) -> bool:
    value = _env(name)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


OMS_HOME = Path(_env("OMS_HOME", str(BASE_DIR / ".oms"))).resolve()
embedded.ensure_environment(OMS_HOME)

# Prometheus multi-process mode (omsweb/metrics.py): every process of this OMS_HOME
# writes its samples to one directory. Set here, before anything imports
# prometheus_client; always derived from OMS_HOME (an inherited value would mix two OMSs).
METRICS_DIR = procmgr.metrics_dir(OMS_HOME)
METRICS_DIR.mkdir(parents=True, exist_ok=True)
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(METRICS_DIR)
METRICS_TOKEN = _env("OMS_METRICS_TOKEN")


SECRET_KEY = _env("OMS_SECRET_KEY") or embedded.secret_file(OMS_HOME / "secret_key")
# Task messages that change orders, fills or positions carry an HMAC with this key.
OMS_TASK_KEY = _env("OMS_TASK_KEY") or embedded.secret_file(OMS_HOME / "task_key")
DEBUG = _env_bool("OMS_DEBUG")
ALLOWED_HOSTS = (_env("OMS_ALLOWED_HOSTS") or "localhost,127.0.0.1,testserver").split(",")
WEB_HOST = _env("OMS_WEB_HOST", "127.0.0.1")
WEB_PORT = int(_env("OMS_WEB_PORT", "8000") or 8000)
FIX_HOST = _env("OMS_FIX_HOST", "127.0.0.1") or "127.0.0.1"
FIX_PORT = int(_env("OMS_FIX_PORT", "9878") or 9878)
FIX_COMP_ID = _env("OMS_FIX_COMP_ID", "OMS") or "OMS"
DEMO_FIX_VENUE = _env_bool("OMS_DEMO_FIX_VENUE")
CSRF_TRUSTED_ORIGINS = [f"http://{h}:{WEB_PORT}" for h in ("localhost", "127.0.0.1")]

# Who hears the execution engine's and the venues' events (omsweb/events.py), in order:
# post-trade risk (in the fill's transaction), the live push to the blotters, then
# transaction-cost analysis and venue scores (routing/tca.py: fills in the fill's
# transaction, routed children after commit).
# Reconciliation (orders/reconcile.py): more working orders than this vanished from one
# venue at once raise an alert and wait for an operator instead of being closed.
RECON_MASS_MISSING_THRESHOLD = int(_env("OMS_RECON_MASS_MISSING", "5") or 5)

OMS_EVENT_LISTENERS = [
    "risk.post_trade.on_event",
    "blotter.push.on_event",
    "fixgw.listener.on_event",
    "routing.tca.on_event",
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served by us: /api/docs/ needs no CDN
    "channels",
    "omsweb",
    "audit",
    "venues",
    "orders",
    "risk",
    "routing",
    "blotter",
    "fixgw",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "omsweb.middleware.RejectNulInQuery",
    "omsweb.middleware.ChunkedBody",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

# Login lock-out (omsweb/lockout.py): AXES_FAILURE_LIMIT wrong passwords in a row from
# one address, for one user or for any, lock that out for AXES_COOLOFF_TIME after the
# last attempt. The address is the connection's (REMOTE_ADDR): no forwarding header is
# trusted (omsweb/cli.py starts uvicorn with --no-proxy-headers).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address"]
AXES_LOCKOUT_CALLABLE = "omsweb.lockout.response"
AXES_HTTP_RESPONSE_CODE = 429

ROOT_URLCONF = "omsweb.urls"
ASGI_APPLICATION = "omsweb.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ["DATABASE_URL"], conn_max_age=0, conn_health_checks=False
    )
}
# A psycopg connection pool per process instead of persistent connections: under ASGI
# each request may run on another thread, and CONN_MAX_AGE would leave one connection
# open per thread (Django's docs advise against it); the pool keeps a few warm ones.
DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
    "min_size": 1,
    "max_size": 8,
    "timeout": 10,
}
# Prepared statements: Django turns psycopg's off (for transaction-mode poolers) and its
# client-binding cursors never prepare; the one writer's few statements (orders/writer.py,
# server-binding cursors) are prepared on a connection after 5 runs there. Behind a
# transaction-mode pooler, use PgBouncer >= 1.21 with max_prepared_statements set.
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = 5
DATABASES["default"]["TEST"] = {"NAME": "test_oms"}
# Celery workers are different: a prefork child runs one task at a time on one thread,
# and psycopg's pool does not survive the fork (its threads do not), so Django would
# open it again for every task. Workers keep one persistent connection per process
# instead (omsweb/celery.py applies this at worker start).
WORKER_CONN_MAX_AGE = 600
# Celery's Django fix-up closes every connection before and after each task unless this
# is set; with it (practically never reached) the connection is kept and Django's own
# rules decide per task, as per request (max age, health check, errors: omsweb/celery.py).
CELERY_DB_REUSE_MAX = 10**9
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ["REDIS_URL"]

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "oms",
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, which cuts the layer's
            # own 5 s BZPOPMIN wait short and kills every idle WebSocket consumer.
            "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
            "prefix": "oms:ch",
            "capacity": 5000,
            "expiry": 30,
        },
    }
}

if _env_bool("OMS_TEST_ENV_READY"):
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = OMS_HOME / "static"
# Serve app static files (blotter CSS/JS, admin) straight from the apps when collectstatic
# has not run (`oms web` from a checkout, the test stack); `oms up` still collects them.
WHITENOISE_USE_FINDERS = True
LOGIN_URL = "/login/"

# Oversized bodies are refused before they are parsed.
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "omsweb.token_auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "omsweb.strict_input.LimitOffsetPagination",
    "DEFAULT_PARSER_CLASSES": ["omsweb.strict_input.JSONParser"],
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "omsweb.openapi.OmsAutoSchema",
    "EXCEPTION_HANDLER": "omsweb.errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

# API tokens (omsweb/api_tokens.py): stored as hashes; they do not expire, users rotate or
# revoke theirs; the prefix makes a leaked one easy to spot (and to redact from logs).
REST_KNOX = {"TOKEN_TTL": None, "TOKEN_PREFIX": "oms_", "AUTH_HEADER_PREFIX": "Token"}

SPECTACULAR_SETTINGS = {
    "TITLE": "OMS API",
    "DESCRIPTION": "Order Management System for algorithmic trading",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # request bodies get components of their own: required strings say minLength 1
    "COMPONENT_SPLIT_REQUEST": True,
    # the schema and its docs page list every endpoint: only for logged-in users (token or
    # session), unless OMS_DEBUG is on
    "SERVE_PERMISSIONS": (
        ["rest_framework.permissions.AllowAny"]
        if DEBUG
        else ["rest_framework.permissions.IsAuthenticated"]
    ),
}

# --- Celery (omsweb/celery.py reads these with namespace CELERY) -----------------------
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_RESULT_EXPIRES = 300
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Every task is routed (omsweb/celery.py); one that is not still runs, on the recon worker.
CELERY_TASK_DEFAULT_QUEUE = "oms.recon"
CELERY_TASK_TIME_LIMIT = 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task not acked within this many seconds is redelivered. No ETA/countdown may exceed it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 300,
    "queue_order_strategy": "priority",
    "socket_keepalive": True,
    "retry_on_timeout": True,
}
# Publishing fails fast when Redis is down: the order is already committed as
# PENDING_NEW and the outbox sweep sends it when Redis is back; a request must not hang.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": _env("OMS_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
logredact.install()  # no API token in any log line, whichever handler writes it
