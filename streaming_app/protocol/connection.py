"""The rules of one server connection that need no I/O: limits, bad frames, heartbeats.

A transport feeds it what arrives (:meth:`ServerConnection.receive`) and the
time, and acts on what comes back: a parsed frame, an exception that says to
close with a code, the ``error`` frame a malformed frame gets, whether a ping
is due. Like the rest of :mod:`streaming_app.protocol` it imports neither
Django nor Channels, so these rules are tested without a socket or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .codes import CloseCode, ErrorCode
from .frames import ClientFrame, FrameError, encode_error, encode_hello, exceeds, parse_client_frame
from .session import ServerSession


class FrameTooLarge(Exception):
    """A frame over ``max_frame``: the connection closes with 4413."""

    close_code = CloseCode.FRAME_TOO_LARGE


@dataclass(frozen=True)
class Limits:
    """What one connection allows; announced to the client in ``hello``."""

    max_frame: int
    max_calls: int
    client_window: int
    max_bad_frames: int
    heartbeat_interval: float
    heartbeat_timeout: float


class ServerConnection:
    """One connection's limits, malformed-frame count and heartbeat, plus its calls (``session``).

    Times are whatever clock the transport passes (``time.monotonic()``), so
    tests pass plain numbers.
    """

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self.session = ServerSession(limits.max_calls, limits.client_window)
        self.bad_frames = 0
        self.last_seen = now
        self.last_frame_size = 0  # characters of the last frame received, for the monitor

    def hello(self, connection_id: str) -> str:
        """The first frame the server sends, announcing the heartbeat and the limits."""
        limits = self.limits
        return encode_hello(
            connection_id,
            limits.heartbeat_interval,
            {"max_frame": limits.max_frame, "max_calls": limits.max_calls, "client_window": limits.client_window},
        )

    # -- receiving ---------------------------------------------------------------------

    def receive(self, data: str | bytes, now: float) -> ClientFrame:
        """Parse one frame the client sent; any frame proves the peer alive.

        Raises :class:`FrameTooLarge` (close the connection) or
        :class:`~.frames.FrameError` (answer with :meth:`bad_frame`).
        """
        if exceeds(data, self.limits.max_frame):
            raise FrameTooLarge(f"a frame of more than {self.limits.max_frame} bytes")
        self.last_seen = now
        self.last_frame_size = len(data)
        return parse_client_frame(data)

    def bad_frame(self, exc: FrameError) -> tuple[str, CloseCode | None]:
        """Account for a malformed frame: the ``error`` frame (id null) to send, and a close code once there were too many.

        A malformed ``call`` frame whose id is valid uses that id all the same,
        so a later call may not reuse it.
        """
        if exc.call_id is not None and exc.call_id > self.session.last_id:
            self.session.claim_id(exc.call_id)
        self.bad_frames += 1
        frame = encode_error(None, ErrorCode.INVALID_ARGUMENT, exc.message, exc.details())
        return frame, CloseCode.BAD_FRAMES if self.bad_frames >= self.limits.max_bad_frames else None

    # -- sending ---------------------------------------------------------------------------

    def fits(self, text: str) -> bool:
        """Whether a frame the server would send is within ``max_frame`` (clients may drop larger ones)."""
        return not exceeds(text, self.limits.max_frame)

    # -- heartbeat ---------------------------------------------------------------------------

    def timed_out(self, now: float) -> bool:
        """Whether the peer has been silent for ``heartbeat_timeout``: close with 4408."""
        return now - self.last_seen >= self.limits.heartbeat_timeout

    def until_next_check(self, now: float) -> float:
        """Seconds to sleep before the next heartbeat check: an interval, or less when the timeout comes first."""
        limits = self.limits
        return min(limits.heartbeat_interval, limits.heartbeat_timeout - (now - self.last_seen))

    def ping_due(self, now: float) -> bool:
        """Whether the peer has been silent for a whole interval, so a ping should go out."""
        return now - self.last_seen >= self.limits.heartbeat_interval
