"""Brokers carry published events between server processes.

``STREAMING["BROKER"]`` picks one by URL: ``redis://…`` (or ``rediss://``,
``unix://``) for :class:`~streaming_app.brokers.redis.RedisBroker`,
``memory://`` for the one-process :class:`~streaming_app.brokers.memory.MemoryBroker`.
Left as None, it follows the channel layer: the Redis of a channels_redis
layer, or memory with the in-memory layer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from ..conf import streaming_settings
from .base import Broker

REDIS_SCHEMES = ("redis", "rediss", "unix")

_broker: Broker | None = None


def broker_url() -> str:
    """The broker's URL: the setting, or the channel layer's Redis, or memory."""
    configured = streaming_settings.BROKER
    if configured:
        return str(configured)
    layer = getattr(settings, "CHANNEL_LAYERS", {}).get("default", {})
    if str(layer.get("BACKEND", "")).startswith("channels_redis."):
        hosts = layer.get("CONFIG", {}).get("hosts") or [("localhost", 6379)]
        return _redis_url(hosts[0])
    return "memory://"


def _redis_url(host: Any) -> str:
    """channels_redis accepts a URL, a (host, port) pair or a dict of connection options."""
    if isinstance(host, str):
        return host
    if isinstance(host, (tuple, list)):
        return f"redis://{host[0]}:{host[1]}/0"
    if isinstance(host, dict):
        if "address" in host:
            return str(host["address"])
        auth = f":{quote(str(host['password']))}@" if host.get("password") else ""
        scheme = "rediss" if host.get("ssl") else "redis"
        return f"{scheme}://{auth}{host.get('host', 'localhost')}:{host.get('port', 6379)}/{host.get('db', 0)}"
    raise ImproperlyConfigured(f"Cannot derive a Redis URL from the channel layer host {host!r}.")


def create_broker(url: str) -> Broker:
    scheme = url.partition("://")[0]
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker()
    if scheme in REDIS_SCHEMES:
        from .redis import RedisBroker

        return RedisBroker(url, streaming_settings.TOPIC_PREFIX)
    raise ImproperlyConfigured(f"STREAMING['BROKER'] {url!r}: use a redis://, rediss://, unix:// or memory:// URL.")


def get_broker() -> Broker:
    """This process's broker, made on first use."""
    global _broker
    if _broker is None:
        _broker = create_broker(broker_url())
    return _broker


def _reset(*, setting: str, **kwargs: Any) -> None:
    global _broker
    if setting in ("STREAMING", "CHANNEL_LAYERS"):
        _broker = None  # the hubs drop theirs on the same signal (streaming_app.hub)


setting_changed.connect(_reset)
