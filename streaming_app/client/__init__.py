"""A Python client for streaming_app servers; needs no Django.

    async with StreamClient("ws://127.0.0.1:8000/ws/", token=...) as client:
        await client.call("interop.unary", payload="hi")
        async for item in client.stream("interop.count", n=3): ...
"""

from ..exceptions import ERROR_CLASSES, StreamError
from .calls import ClientCall, StateLost, Stream
from .client import ConnectionState, StreamClient
from .sync import SyncCall, SyncStreamClient

__all__ = ["ClientCall", "ConnectionState", "StateLost", "Stream", "StreamClient", "StreamError", "SyncCall", "SyncStreamClient", *sorted(c.__name__ for c in ERROR_CLASSES.values())]


def __getattr__(name: str) -> type[StreamError]:
    """The per-code error classes (InvalidArgument, NotFound, ...), defined once in streaming_app.exceptions."""
    for cls in ERROR_CLASSES.values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(name)
