"""Settings of the DCRF peer project (bench/dcrf_peer): the example project's database and Redis, no streaming_app."""

from __future__ import annotations

import os

from project.settings import BASE_DIR, SECRET_KEY, database_from_url  # noqa: F401  the same DATABASE_URL convention

DEBUG = os.environ.get("DJANGO_DEBUG", "1") != "0"
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "project.demo",  # the Note model (its tables already exist: migrate with project.settings)
]
ROOT_URLCONF = "bench.dcrf_peer.urls"
ASGI_APPLICATION = "bench.dcrf_peer.asgi.application"

DATABASES = {
    "default": database_from_url(os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
}
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
