"""Errors as data: one exception class per protocol error code.

A handler raises one of these (or validation raises it for the handler) and the
transport turns it into an ``error`` frame. Anything else a handler raises
becomes ``internal`` with none of its text sent. This module imports no Django,
so clients can raise and catch the same classes.
"""

from __future__ import annotations

import math
from typing import Any

from .protocol.codes import ErrorCode


class StreamError(Exception):
    """Base of every error a call can end with; ``code`` is the wire code."""

    code: ErrorCode = ErrorCode.UNKNOWN
    default_message: str = "Unknown error."

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None) -> None:
        self.message = self.default_message if message is None else str(message)
        self.details: dict[str, Any] = dict(details or {})
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, details={self.details!r})"

    @property
    def retry_after(self) -> float | None:
        """Seconds the server asks the caller to wait before trying again, or None if it gave no hint.

        Read from ``details["retry_after"]``, which a throttled call carries
        (``resource_exhausted``, over the WebSocket and in HTTP error bodies);
        anything but a finite number of seconds, zero or more, is no hint.
        """
        value = self.details.get("retry_after")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not math.isfinite(value) or value < 0:
            return None
        return float(value)

    @staticmethod
    def for_code(code: str | ErrorCode, message: str | None = None, details: dict[str, Any] | None = None) -> StreamError:
        """The exception of a wire code; an unknown code gives :class:`Unknown` keeping the code."""
        cls = ERROR_CLASSES.get(str(code))
        if cls is None:
            error = Unknown(message, {**(details or {}), "code": str(code)})
            return error
        return cls(message, details)


class Cancelled(StreamError):
    code = ErrorCode.CANCELLED
    default_message = "The call was cancelled."


class Unknown(StreamError):
    code = ErrorCode.UNKNOWN
    default_message = "Unknown error."


class InvalidArgument(StreamError):
    code = ErrorCode.INVALID_ARGUMENT
    default_message = "Invalid argument."


class DeadlineExceeded(StreamError):
    code = ErrorCode.DEADLINE_EXCEEDED
    default_message = "The deadline was exceeded."


class NotFound(StreamError):
    code = ErrorCode.NOT_FOUND
    default_message = "Not found."


class AlreadyExists(StreamError):
    code = ErrorCode.ALREADY_EXISTS
    default_message = "Already exists."


class PermissionDenied(StreamError):
    code = ErrorCode.PERMISSION_DENIED
    default_message = "You do not have permission to perform this action."


class ResourceExhausted(StreamError):
    code = ErrorCode.RESOURCE_EXHAUSTED
    default_message = "A resource limit was reached."


class FailedPrecondition(StreamError):
    code = ErrorCode.FAILED_PRECONDITION
    default_message = "The system is not in a state required for this call."


class Aborted(StreamError):
    code = ErrorCode.ABORTED
    default_message = "The call was aborted."


class OutOfRange(StreamError):
    code = ErrorCode.OUT_OF_RANGE
    default_message = "Out of range."


class Unimplemented(StreamError):
    code = ErrorCode.UNIMPLEMENTED
    default_message = "This method is not implemented."


class Internal(StreamError):
    code = ErrorCode.INTERNAL
    default_message = "Internal error."


class Unavailable(StreamError):
    code = ErrorCode.UNAVAILABLE
    default_message = "The service is unavailable."


class DataLoss(StreamError):
    code = ErrorCode.DATA_LOSS
    default_message = "Data was lost."


class Unauthenticated(StreamError):
    code = ErrorCode.UNAUTHENTICATED
    default_message = "Authentication credentials were not provided."


ERROR_CLASSES: dict[str, type[StreamError]] = {
    cls.code.value: cls
    for cls in (
        Cancelled, Unknown, InvalidArgument, DeadlineExceeded, NotFound, AlreadyExists,
        PermissionDenied, ResourceExhausted, FailedPrecondition, Aborted, OutOfRange,
        Unimplemented, Internal, Unavailable, DataLoss, Unauthenticated,
    )
}
