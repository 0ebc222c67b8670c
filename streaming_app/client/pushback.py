"""The server's throttling hints, on the client side (what gRPC calls server pushback).

A throttled call fails with ``ResourceExhausted`` whose ``retry_after`` (from
``details["retry_after"]``) says how many seconds to wait; an HTTP answer
says it with a ``Retry-After`` header, which :func:`parse_retry_after` reads.

The client never retries by itself unless asked: a retry runs the call again
later, and only the caller knows whether it would rather have that or the
error now. :class:`RetryThrottled` is the opt-in, for unary calls, bounded
in attempts and in the total time spent waiting.

Reconnection is the exception: it is automatic already, so a handshake
refused with ``Retry-After`` while reconnecting pushes the next attempt back
by the hint (:func:`reconnect_delay`), which the client caps, since the
header comes from whatever answers the URL, proxies included.
"""

from __future__ import annotations

import datetime
import email.utils
import re
from dataclasses import dataclass

from ..exceptions import ResourceExhausted, StreamError

_DELTA_SECONDS = re.compile(r"\s*([0-9]+)\s*")


def parse_retry_after(value: str | None, *, now: datetime.datetime | None = None) -> float | None:
    """The seconds of an HTTP ``Retry-After`` header, or None when absent or malformed.

    RFC 9110 allows whole seconds or an HTTP-date; a date in the past is 0.
    """
    if value is None:
        return None
    match = _DELTA_SECONDS.fullmatch(value)
    if match is not None:
        return float(match.group(1))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, by RFC 5322
        when = when.replace(tzinfo=datetime.timezone.utc)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def reconnect_delay(backoff: float, retry_after: float | None, retry_after_max: float) -> float:
    """The wait before the next reconnection attempt: the hint, capped, then ``backoff`` on top.

    ``backoff`` is the jittered exponential delay the client waits anyway;
    adding it after the hint, rather than waiting the larger of the two, keeps
    clients refused together (a proxy restarting, say) from all coming back
    in the same instant the hint ends. ``retry_after_max`` bounds what a
    broken or hostile proxy can ask: 0 ignores hints.
    """
    if retry_after is None:
        return backoff
    return min(retry_after, retry_after_max) + backoff


@dataclass(frozen=True)
class RetryThrottled:
    """Retry a throttled unary call after the wait the server asked for.

    ``StreamClient(url, retry_throttled=RetryThrottled(retries=3, max_wait=30))``:
    a unary call that fails with ``ResourceExhausted`` carrying ``retry_after``
    is sent again after that many seconds, at most ``retries`` times, and only
    while the waits add up to no more than ``max_wait`` seconds (and, for a
    call with a ``timeout``, end before it). A hint that does not fit is not
    waited for: the error is raised at once, ``retry_after`` and all. Only a
    refusal is retried: the throttles run before the handler, so the call had
    not run.
    """

    retries: int = 3
    max_wait: float = 30.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError(f"retries must be 0 or more, got {self.retries!r}")
        if self.max_wait < 0:
            raise ValueError(f"max_wait must be 0 or more seconds, got {self.max_wait!r}")

    def delay(self, error: StreamError, *, retried: int, waited: float, time_left: float | None) -> float | None:
        """Seconds to wait before the next attempt after ``error``, or None to raise it.

        ``retried``: attempts made after the first; ``waited``: seconds already
        spent waiting; ``time_left``: until the call's deadline, if it has one.
        """
        if not isinstance(error, ResourceExhausted) or retried >= self.retries:
            return None
        wait = error.retry_after
        if wait is None or waited + wait > self.max_wait:
            return None
        if time_left is not None and wait >= time_left:
            return None
        return wait
