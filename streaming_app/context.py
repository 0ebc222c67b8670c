"""What a handler knows about the call it serves."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Mapping

from django.http import QueryDict

from .protocol.session import CallKind

if TYPE_CHECKING:
    from rest_framework.request import Request


class CallContext:
    """One call: who makes it, over what, until when, and whether it was cancelled.

    ``headers`` and ``query`` are the request metadata: those of the WebSocket
    handshake for a WebSocket call, those of the request for an HTTP call.
    ``deadline`` is a ``time.monotonic()`` value (None: no deadline).
    A server stream sets ``result`` to return a value with its ``end``
    (an async generator cannot ``return`` one).
    """

    def __init__(
        self,
        *,
        call_id: int,
        method: str,
        kind: CallKind,
        request: Request,
        scope: Mapping[str, Any],
        connection_id: str,
        transport: str = "websocket",
        deadline: float | None = None,
        resume: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.method = method
        self.kind = kind
        self.request = request
        self.scope = scope
        self.connection_id = connection_id
        self.transport = transport
        self.deadline = deadline
        self.resume = resume
        self.result: Any = None
        self._cancelled = False

    @property
    def user(self) -> Any:
        return self.request.user

    @property
    def auth(self) -> Any:
        return self.request.auth

    @property
    def headers(self) -> dict[str, str]:
        if not hasattr(self, "_headers"):
            self._headers = {
                name.decode("latin1").lower(): value.decode("latin1")
                for name, value in self.scope.get("headers", ())
            }
        return self._headers

    @property
    def query(self) -> QueryDict:
        if not hasattr(self, "_query"):
            raw = self.scope.get("query_string", b"")
            self._query = QueryDict(raw.decode("latin1") if isinstance(raw, bytes) else raw)
        return self._query

    @property
    def time_remaining(self) -> float | None:
        """Seconds until the deadline (never negative), or None without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())

    @property
    def cancelled(self) -> bool:
        """True once the call was cancelled, ran out of time or lost its connection.

        Async handlers are interrupted at their next ``await`` anyway; sync
        handlers, which run in a thread, should poll this in long loops.
        """
        return self._cancelled

    def mark_cancelled(self) -> None:
        self._cancelled = True

    def __repr__(self) -> str:
        return f"<CallContext {self.method} id={self.call_id} conn={self.connection_id}>"
