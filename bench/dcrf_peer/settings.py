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
# channels_redis 4.3's core layer, as the example project's, with two redis-py 8 defaults undone:
# - socket_timeout None: redis-py 8 reads with a 5 s timeout, which ends the layer's blocking BZPOPMIN
#   (5 s) of an idle consumer with TimeoutError, so daphne closes that WebSocket with 1011
#   (django/channels_redis#422, redis/redis-py#4091);
# - max_connections 2000: redis-py 8's pool holds at most 100 connections and raises
#   MaxConnectionsError beyond them, which 500 consumers subscribing at once (a group_add each) exceed.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": None, "max_connections": 2000}]},
    }
}

USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
