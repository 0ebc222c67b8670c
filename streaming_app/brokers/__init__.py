"""Brokers carry published events between server processes.

``STREAMING["BROKER"]`` picks one by URL: ``redis://…`` (or ``rediss://``,
``unix://``) for :class:`~streaming_app.brokers.redis.RedisBroker`,
``memory://`` for the one-process :class:`~streaming_app.brokers.memory.MemoryBroker`;
or by the dotted path of a :class:`~streaming_app.brokers.base.Broker`
subclass of your own, made with no arguments (``"myproject.brokers.NatsBroker"``).
Left as None, it follows the channel layer: the Redis of a channels_redis
layer, or memory with the in-memory layer.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import quote

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from ..conf import streaming_settings
from .base import Broker

REDIS_SCHEMES = ("redis", "rediss", "unix")

# URL scheme -> the broker class that serves it (imported when used: a
# process on the memory broker needs no Redis client).
SCHEMES = {
    "memory": "streaming_app.brokers.memory.MemoryBroker",
    **{scheme: "streaming_app.brokers.redis.RedisBroker" for scheme in REDIS_SCHEMES},
}

_broker: Broker | None = None


def is_import_path(value: str) -> bool:
    """Whether a BROKER setting names a class (``"pkg.module.Class"``) rather than a URL."""
    return "://" not in value


def broker_url() -> str:
    """The broker's URL (or class path): the setting, or the channel layer's Redis, or memory."""
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


def broker_class(value: str) -> type[Broker]:
    """The Broker subclass a BROKER setting names (by URL scheme or dotted path); ImproperlyConfigured if none."""
    if is_import_path(value):
        try:
            cls = import_string(value)
        except ImportError as exc:
            raise ImproperlyConfigured(f"STREAMING['BROKER'] {value!r} cannot be imported: {exc}") from exc
        if not (isinstance(cls, type) and issubclass(cls, Broker)):
            raise ImproperlyConfigured(
                f"STREAMING['BROKER'] {value!r} is not a subclass of streaming_app.brokers.base.Broker."
            )
        return cls
    path = SCHEMES.get(value.partition("://")[0])
    if path is None:
        raise ImproperlyConfigured(
            f"STREAMING['BROKER'] {value!r}: use a redis://, rediss://, unix:// or memory:// URL, "
            "or the dotted path of a Broker subclass."
        )
    builtin: type[Broker] = import_string(path)
    return builtin


def create_broker(value: str) -> Broker:
    """A broker for a BROKER setting: a class path is made with no arguments, a URL scheme's class with the URL."""
    factory: Callable[..., Broker] = broker_class(value)
    if is_import_path(value) or value.partition("://")[0] == "memory":
        return factory()
    return factory(value, streaming_settings.TOPIC_PREFIX)  # RedisBroker(url, prefix)


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
