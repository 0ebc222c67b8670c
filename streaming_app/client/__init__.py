"""A Python client for streaming_app servers; needs no Django.

    async with StreamClient("ws://127.0.0.1:8000/ws/", token=...) as client:
        await client.call("interop.unary", payload="hi")
        async for item in client.stream("interop.count", n=3): ...
"""

from typing import TYPE_CHECKING

from ..exceptions import ERROR_CLASSES, StreamError
from .calls import ClientCall, StateLost, Stream
from .client import ConnectionState, StreamClient
from .presence import PresenceEvent, PresenceMember, PresenceStats, Roster, is_presence_event
from .pushback import RetryThrottled
from .sync import SyncCall, SyncStreamClient

if TYPE_CHECKING:
    # The per-code classes as a type checker sees them; __getattr__ serves them at run time.
    from ..exceptions import (
        Aborted as Aborted,
        AlreadyExists as AlreadyExists,
        Cancelled as Cancelled,
        DataLoss as DataLoss,
        DeadlineExceeded as DeadlineExceeded,
        FailedPrecondition as FailedPrecondition,
        Internal as Internal,
        InvalidArgument as InvalidArgument,
        NotFound as NotFound,
        OutOfRange as OutOfRange,
        PermissionDenied as PermissionDenied,
        ResourceExhausted as ResourceExhausted,
        Unauthenticated as Unauthenticated,
        Unavailable as Unavailable,
        Unimplemented as Unimplemented,
        Unknown as Unknown,
    )

__all__ = ["ClientCall", "ConnectionState", "PresenceEvent", "PresenceMember", "PresenceStats", "RetryThrottled", "Roster", "StateLost", "Stream", "StreamClient", "StreamError", "SyncCall", "SyncStreamClient", "is_presence_event", *sorted(c.__name__ for c in ERROR_CLASSES.values())]


def __getattr__(name: str) -> type[StreamError]:
    """The per-code error classes (InvalidArgument, NotFound, ...), defined once in streaming_app.exceptions."""
    for cls in ERROR_CLASSES.values():
        if cls.__name__ == name:
            return cls
    raise AttributeError(name)
