"""Streaming endpoints declared in Python, served by Django Channels.

The public API is importable from here; names load lazily so that importing
the package (as Django does for every installed app) has no side effects and
needs no configured settings.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # What a type checker sees ("as" re-exports each name); at run time
    # __getattr__ below imports each on first use.
    from .changes import publish_changes as publish_changes
    from .context import CallContext as CallContext
    from .decorators import (
        bidi_stream as bidi_stream,
        client_stream as client_stream,
        server_stream as server_stream,
        unary as unary,
    )
    from .events import Event as Event
    from .exceptions import StreamError as StreamError
    from .generics import ModelStreamView as ModelStreamView
    from .registry import register as register, registry as registry
    from .topics import apublish as apublish, publish as publish, subscribe as subscribe
    from .views import StreamView as StreamView

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
