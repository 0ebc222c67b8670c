"""The state of one connection's calls, as the server sees it, with no I/O.

A transport feeds parsed frames in and acts on what comes back; the rules of
ids, half-closes and credit live here so that every transport (and the tests)
apply them the same way.
"""

from __future__ import annotations

import bisect
import enum

from .frames import FrameError

# Ranges of call ids a client skipped are remembered so that a frame naming one
# is "never opened"; past this many ranges the oldest are forgotten (frames for
# them are then ignored as for ended calls) so memory stays bounded.
MAX_SKIPPED_RANGES = 1024


class CallKind(str, enum.Enum):
    UNARY = "unary"
    SERVER_STREAM = "server_stream"
    CLIENT_STREAM = "client_stream"
    BIDI_STREAM = "bidi_stream"

    def __str__(self) -> str:
        return self.value

    @property
    def client_streams(self) -> bool:
        """The client sends items after the arguments."""
        return self in (CallKind.CLIENT_STREAM, CallKind.BIDI_STREAM)

    @property
    def server_streams(self) -> bool:
        """The server sends items before its terminal frame."""
        return self in (CallKind.SERVER_STREAM, CallKind.BIDI_STREAM)


class CallState(enum.Enum):
    OPEN = "open"  # the client may still send items
    HALF_CLOSED = "half_closed"  # the client has ended its half (or never had one)
    CLOSED = "closed"  # a terminal frame was sent, or the client cancelled


class WindowExceeded(Exception):
    """The client sent more items than the server had let it."""


class Credit:
    """How many items one side may still send; None means unbounded.

    The counting rule of both directions, shared by the server's calls and
    the client's.
    """

    __slots__ = ("credit",)

    def __init__(self, credit: int | None) -> None:
        self.credit = credit

    def take_credit(self) -> bool:
        """Use one unit of credit for an item about to be sent; False when there is none."""
        if self.credit is None:
            return True
        if self.credit > 0:
            self.credit -= 1
            return True
        return False

    def add_credit(self, n: int) -> None:
        if self.credit is not None:
            self.credit += n


class Call(Credit):
    """Credit in both directions and the half-close state of one call."""

    __slots__ = ("id", "method", "kind", "state", "inbound_allowed", "_window", "_consumed")

    def __init__(
        self, id: int, method: str, kind: CallKind, credit: int | None, client_window: int
    ) -> None:
        self.id = id
        self.method = method
        self.kind = kind
        self.state = CallState.OPEN if kind.client_streams else CallState.HALF_CLOSED
        super().__init__(credit)  # items the server may still send; None = unbounded
        self.inbound_allowed = client_window if kind.client_streams else 0
        self._window = max(client_window, 1)
        self._consumed = 0

    # inbound: client -> server items

    def receive_item(self) -> None:
        """Account for one item the client sent; raise if its half does not allow it."""
        if not self.kind.client_streams:
            raise FrameError(f"call {self.id} ({self.kind}) takes no items from the client", self.id)
        if self.state is not CallState.OPEN:
            raise FrameError(f"call {self.id} received an item after the client ended its half", self.id)
        if self.inbound_allowed <= 0:
            raise WindowExceeded(f"call {self.id}: the client sent more items than its credit allowed")
        self.inbound_allowed -= 1

    def item_consumed(self) -> int:
        """Record that the handler took one item; return the credit to grant now (0 for none).

        Credit goes back in batches of half the window, so a fast consumer
        costs one ``credit`` frame per half window, not one per item.
        """
        if self.state is not CallState.OPEN:
            return 0
        self._consumed += 1
        if self._consumed * 2 < self._window:
            return 0
        grant, self._consumed = self._consumed, 0
        self.inbound_allowed += grant
        return grant

    def end_client_half(self) -> None:
        if not self.kind.client_streams:
            raise FrameError(f"call {self.id} ({self.kind}) has no client half to end", self.id)
        if self.state is not CallState.OPEN:
            raise FrameError(f"call {self.id}: the client half was already ended", self.id)
        self.state = CallState.HALF_CLOSED

    def close(self) -> None:
        self.state = CallState.CLOSED

    @property
    def closed(self) -> bool:
        return self.state is CallState.CLOSED


class ServerSession:
    """Call ids, open calls and limits of one connection."""

    def __init__(self, max_calls: int, client_window: int) -> None:
        self.max_calls = max_calls
        self.client_window = client_window
        self.last_id = 0
        self.calls: dict[int, Call] = {}
        self._skipped: list[tuple[int, int]] = []  # (first, last) id ranges never used

    def claim_id(self, id: int) -> None:
        """Use a call id; raise if it is not greater than every id used before."""
        if id <= self.last_id:
            raise FrameError(
                f"call id {id} is not greater than the last id used on this connection ({self.last_id})",
                id,
            )
        if id > self.last_id + 1:
            self._skipped.append((self.last_id + 1, id - 1))
            if len(self._skipped) > MAX_SKIPPED_RANGES:
                del self._skipped[: MAX_SKIPPED_RANGES // 2]
        self.last_id = id

    def was_used(self, id: int) -> bool:
        """Whether a call frame has carried this id (ended and rejected calls included)."""
        if id > self.last_id:
            return False
        index = bisect.bisect_right(self._skipped, id, key=lambda r: r[0]) - 1
        return index < 0 or self._skipped[index][1] < id

    @property
    def full(self) -> bool:
        return len(self.calls) >= self.max_calls

    def open(self, id: int, method: str, kind: CallKind, credit: int | None) -> Call:
        call = Call(id, method, kind, credit, self.client_window)
        self.calls[id] = call
        return call

    def lookup(self, id: int, frame_type: str) -> Call | None:
        """The open call a frame refers to; None when the call has ended (the frame is ignored)."""
        call = self.calls.get(id)
        if call is not None:
            return call
        if self.was_used(id):
            return None
        raise FrameError(f"'{frame_type}' frame for call {id}, which was never opened", id)

    def close(self, id: int) -> None:
        call = self.calls.pop(id, None)
        if call is not None:
            call.close()
