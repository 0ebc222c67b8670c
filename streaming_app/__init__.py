"""Streaming endpoints declared in Python, served by Django Channels.

The public API is importable from here; names load lazily so that importing
the package (as Django does for every installed app) has no side effects and
needs no configured settings.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "StreamView": "streaming_app.views",
    "unary": "streaming_app.decorators",
    "server_stream": "streaming_app.decorators",
    "client_stream": "streaming_app.decorators",
    "bidi_stream": "streaming_app.decorators",
    "register": "streaming_app.registry",
    "registry": "streaming_app.registry",
    "CallContext": "streaming_app.context",
    "StreamError": "streaming_app.exceptions",
    "Event": "streaming_app.events",
    "publish": "streaming_app.topics",
    "apublish": "streaming_app.topics",
    "subscribe": "streaming_app.topics",
    "ModelStreamView": "streaming_app.generics",
    "publish_changes": "streaming_app.changes",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streaming_app' has no attribute {name!r}")
    return getattr(import_module(module), name)
