"""How fast a connection may start calls: a token bucket, free of I/O.

A connection may start ``rate`` calls per second on average, in bursts of at
most ``rate``; a call over that is refused (``resource_exhausted``) and told
when one would be allowed. Refusing is cheap, so a flood of calls costs the
server little more than reading the frames.
"""

from __future__ import annotations


class CallRate:
    """A token bucket of ``rate`` tokens a second holding at most ``rate``; one call takes one token."""

    __slots__ = ("rate", "_tokens", "_last")

    def __init__(self, rate: float, now: float) -> None:
        self.rate = float(rate)
        self._tokens = self.rate
        self._last = now

    def take(self, now: float) -> float:
        """0 if a call may start now (it is counted), else the seconds until one may."""
        tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self.rate
