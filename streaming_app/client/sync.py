"""``SyncStreamClient``: the client for scripts and notebooks, with plain ``for`` loops.

The async client runs on an event loop in a background thread; every method
here waits for the matching coroutine there.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Coroutine, Iterator, TypeVar

from .calls import ClientCall
from .client import StreamClient

T = TypeVar("T")

_END = object()


async def _next_or_end(call: ClientCall) -> Any:
    try:
        return await call._next()
    except StopAsyncIteration:
        return _END


class SyncStreamClient:
    """The same calls as :class:`StreamClient`, blocking instead of awaiting."""

    def __init__(self, url: str, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="streaming_app client", daemon=True)
        self._thread.start()
        self._client = StreamClient(url, **options)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> SyncStreamClient:
        self.connect()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def connect(self) -> Any:
        return self._run(self._client.connect())

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()

    def call(self, method: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> Any:
        return self._run(self._client.call(method, args, **kwargs))

    def stream(self, method: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> SyncCall:
        pending = self._client.stream(method, args, **kwargs)
        return SyncCall(self, self._run(pending._started()))

    def open(self, method: str, args: dict[str, Any] | None = None, /, **kwargs: Any) -> SyncCall:
        return SyncCall(self, self._run(self._client.open(method, args, **kwargs)))


class SyncCall:
    """A call of the sync client: iterate it; ``send``/``end`` for a client half."""

    def __init__(self, owner: SyncStreamClient, call: ClientCall) -> None:
        self._owner = owner
        self._call = call

    def __iter__(self) -> Iterator[Any]:
        try:
            while True:
                item = self._owner._run(_next_or_end(self._call))
                if item is _END:
                    return
                yield item
        finally:
            if not self._call.done:  # left early: cancel on the server
                self._owner._run(self._call.cancel())

    @property
    def result(self) -> Any:
        """The stream's return value, once iteration has finished."""
        if not self._call.done:
            raise RuntimeError("the result is known once iteration has finished")
        return self._call._result

    def wait(self) -> Any:
        """Wait for the end of the call and return its result (unread items are dropped)."""
        return self._owner._run(ClientCall.result(self._call))

    def send(self, item: Any) -> None:
        self._owner._run(self._call.send(item))

    def end(self) -> None:
        self._owner._run(self._call.end())

    def cancel(self) -> None:
        self._owner._run(self._call.cancel())
