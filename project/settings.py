"""Settings of the example project.

Environment (the interop conventions, see shared/interop.md):
- ``DATABASE_URL``: ``sqlite:////abs/path.sqlite3`` or
  ``postgres://user@host:port/name``; unset: ``db.sqlite3`` in the project.
- ``REDIS_URL``: use channels_redis on that Redis; unset: the in-memory layer.
- ``DJANGO_ALLOWED_HOSTS``: comma-separated hosts added to ALLOWED_HOSTS.
- ``DJANGO_DEBUG``: "0" turns DEBUG off (it is on for the demo; docker-compose
  turns it off).
- ``DJANGO_SECRET_KEY``: the secret key. Without it the project uses a public
  demo key, and refuses to start with DEBUG off (anyone could forge sessions,
  tickets and signed control commands with it).
- ``DJANGO_HTTPS``: "1" when a TLS-terminating proxy is in front
  (docs/deployment.md): the proxy's ``X-Forwarded-Proto`` is trusted and cookies
  are sent over HTTPS only.
- ``DJANGO_CSRF_TRUSTED_ORIGINS`` (comma-separated): origins of the pages
  served from another host, e.g. ``https://app.example.com``.
- ``DJANGO_STATIC_ROOT``: where ``collectstatic`` puts static files for the
  proxy to serve.
- ``DJANGO_STREAMING_METRICS``: "0" turns the Prometheus metrics off.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

DEMO_SECRET_KEY = "django-insecure-streaming-app-demo-key-change-me"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or DEMO_SECRET_KEY
DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"
if not DEBUG and SECRET_KEY == DEMO_SECRET_KEY:
    raise ImproperlyConfigured(
        "DEBUG is off but DJANGO_SECRET_KEY is not set: the demo key is public, and sessions, "
        "tickets and control commands signed with it can be forged. Set DJANGO_SECRET_KEY to a "
        "long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

# DEBUG pages and error reports hide every setting and environment value whose
# name says it may hold a secret; here also URLs (DATABASE_URL, REDIS_URL carry
# passwords) and the channel layer's hosts.
DEFAULT_EXCEPTION_REPORTER_FILTER = "project.reporting.SafeReporterFilter"

if os.environ.get("DJANGO_HTTPS") == "1":
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
CSRF_TRUSTED_ORIGINS = [
    origin.strip() for origin in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if origin.strip()
]

ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"] + [
    host.strip() for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "").split(",") if host.strip()
]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "streaming_app",
    "project.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"

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
            ],
        },
    },
]

ASGI_APPLICATION = "project.asgi.application"  # dotted path; the daphne CLI form is project.asgi:application


def database_from_url(url: str) -> dict[str, Any]:
    """The DATABASES entry for a ``DATABASE_URL`` (sqlite and PostgreSQL)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        name = unquote(parts.path[1:] if parts.path.startswith("//") else parts.path)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "OPTIONS": {"timeout": 30},
            "TEST": {"NAME": str(Path(name).with_name("test_" + Path(name).name))},
        }
    if parts.scheme in ("postgres", "postgresql", "pgsql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(parts.port or ""),
        }
    raise ValueError(f"DATABASE_URL scheme {parts.scheme!r} is not supported (sqlite, postgres)")


DATABASES = {
    "default": database_from_url(os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
# DJANGO_CONN_MAX_AGE (seconds): persistent connections for a deployment or a
# benchmark. Unset (0), each request, handshake or sync handler opens its own
# connection, as Django does by default; the test suite relies on that to drop
# its database at the end.
DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ.get("DJANGO_CONN_MAX_AGE", "0"))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

REDIS_URL = os.environ.get("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache DRF's throttles count in: Redis when REDIS_URL is set, so that
# interop.limited counts across processes (shared/interop.md); else per process.
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# interop.publish spends at most this many bytes of events per (user or client IP)
# an hour (project.demo.streams.PublishBudget): with the per-topic caps below, what
# one client can leave in Redis is bounded, not only what one topic holds.
INTEROP_PUBLISH_BYTES_PER_HOUR = 64 * 1024 * 1024

REST_FRAMEWORK = {
    # Throttles key anonymous clients on REMOTE_ADDR only. DRF's default (None)
    # keys on the whole X-Forwarded-For header when present, which a client
    # writes itself; behind the shipped proxy, daphne --proxy-headers already
    # makes REMOTE_ADDR the address nginx saw (deploy/nginx.conf).
    "NUM_PROXIES": 0,
    # Rates of DRF throttle scopes; stream views' throttle_classes use them as APIViews do.
    "DEFAULT_THROTTLE_RATES": {"interop.limited": "3/min"},
}

STREAMING = {
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    # interop.subscribe is resumable (../shared/interop.md): its topics keep
    # their newest 10,000 events (at most 1 MiB of them) for an hour, in Redis
    # when REDIS_URL is set. Anyone may call interop.publish, so events are
    # at most 64 KiB and a topic's keys expire with its history (an hour):
    # a publisher cannot fill Redis (docs/limits.md).
    "TOPIC_HISTORY": {
        "interop.*": {"size": 10_000, "ttl": 3600, "bytes": 1024 * 1024},
        "chat.*": {"size": 500, "ttl": 3600, "bytes": 1024 * 1024},
    },
    "MAX_EVENT_BYTES": 64 * 1024,
    # Opt-in GC tuning for a process serving many subscribers (streaming_app.gc_tuning):
    # a 500-subscriber fan-out's p99 went from 147 to 57 ms with it (README, performance notes).
    "GC_GEN0_THRESHOLD": 10_000,
    # GET /streams/_schema (docs/schema.md): staff only, as interop.md says.
    "SCHEMA_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    # Hardening (docs/security.md): 50 sockets per user across processes
    # (4429 beyond), 1000 calls a second per socket, credentials re-checked
    # every minute besides the signals that close a revoked connection at once.
    "MAX_CONNECTIONS_PER_USER": 50,
    "MAX_CALLS_PER_SECOND": 1000,
    "REVALIDATE_INTERVAL": 60.0,
    # On SIGTERM, close every connection with 4503 within 10 s (docs/operations.md);
    # docker-compose's stop_grace_period leaves the process a little longer.
    "DRAIN_TIMEOUT": 10.0,
    # Prometheus metrics at /metrics (DJANGO_STREAMING_METRICS=0 turns them off, e.g. to measure their cost).
    "METRICS": os.environ.get("DJANGO_STREAMING_METRICS", "1") != "0",
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or str(BASE_DIR / "staticfiles")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"streaming_app": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
