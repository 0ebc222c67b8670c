"""Merging async iterators: one stream of what several sources yield, as each yields it.

A room relays its topic's items and its presence events, a chat room also
its member's own messages: each is an async iterator, and the call yields
whichever comes first. Every source has at most one pending ``__anext__``, so
a stream's flow control still parks the sources while the client has no
credit; a source that fails ends the merge with its error, and the others
are cancelled and closed (their ``finally`` blocks run).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator


async def merge(*sources: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Yield the items of every source as they come; end when all have ended."""
    pending: dict[asyncio.Future[Any], AsyncIterator[Any]] = {
        asyncio.ensure_future(source.__anext__()): source for source in sources
    }
    try:
        while pending:
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for future in [f for f in pending if f in done]:  # in the sources' order
                source = pending.pop(future)
                try:
                    item = future.result()
                except StopAsyncIteration:
                    continue
                pending[asyncio.ensure_future(source.__anext__())] = source
                yield item
    finally:
        for future in pending:
            future.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # A source whose next step was cancelled before it began is still suspended: close it,
        # so its finally blocks run now, not whenever it is collected.
        for source in sources:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()
