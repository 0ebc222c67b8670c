"""Client-side liveness: ping a quiet server, and give up on a silent one.

A TCP connection can die without a close (a server frozen, a NAT entry
dropped, a cable pulled): nothing arrives and nothing fails, so the client
would wait forever. The server announces its heartbeat interval in ``hello``;
the client pings when the server has been quiet that long, and treats a
server silent for longer than the timeout (twice the interval by default) as
dead, so the connection is dropped and the client reconnects.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


class Heartbeat:
    """Watches one connection: ``seen()`` on every frame received, ``run()`` as a task."""

    def __init__(
        self,
        interval: float,
        timeout: float,
        ping: Callable[[], Awaitable[None]],
        dead: Callable[[], None],
    ) -> None:
        if not interval > 0 or not timeout > 0:
            raise ValueError(f"heartbeat interval and timeout must be positive, got {interval} and {timeout}")
        self.interval = interval
        self.timeout = timeout
        self._ping = ping
        self._dead = dead
        self.last_seen = time.monotonic()

    def seen(self) -> None:
        """Something arrived from the server: it is alive."""
        self.last_seen = time.monotonic()

    @property
    def silent_for(self) -> float:
        return time.monotonic() - self.last_seen

    async def run(self) -> None:
        """Ping after ``interval`` of silence; call ``dead()`` after ``timeout`` of it, then stop."""
        pinged_at = 0.0
        while True:
            silent = self.silent_for
            if silent >= self.timeout:
                self._dead()
                return
            if silent >= self.interval and pinged_at < self.last_seen:
                pinged_at = time.monotonic()  # one ping per quiet spell: the pong (or anything) resets it
                await self._ping()
            next_check = self.interval - silent if silent < self.interval else self.timeout - silent
            await asyncio.sleep(max(min(next_check, self.interval), 0.01))
