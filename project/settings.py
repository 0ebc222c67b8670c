"""Settings of the example project.

Environment (the interop conventions, see shared/interop.md):
- ``DATABASE_URL``: ``sqlite:////abs/path.sqlite3`` or
  ``postgres://user@host:port/name``; unset: ``db.sqlite3`` in the project.
- ``REDIS_URL``: use channels_redis on that Redis; unset: the in-memory layer.
- ``DJANGO_ALLOWED_HOSTS``: comma-separated hosts added to ALLOWED_HOSTS.
- ``DJANGO_DEBUG``: "0" turns DEBUG off (it is on for the demo).
- ``DJANGO_SECRET_KEY``: the secret key (a fixed development key otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-streaming-app-demo-key-change-me")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"

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
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"streaming_app": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
