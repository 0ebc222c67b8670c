"""Who flushes the monitor: the first call on a server's event loop starts the flusher; a loop's owner may flush itself.

The flusher (and the control listener it runs) is observed as the tasks it
is: ``streaming_app monitor`` and ``streaming_app control``. No scope key or
other test hook is involved: ``StreamTestClient`` says, through the monitor's
public ``flush_manually()``, that its event loop (the test's) is flushed by
its owner.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from streaming_app.transports.websocket import StreamConsumer
from streaming_app.monitor import monitor
from streaming_app.protocol.codes import SUBPROTOCOL
from streaming_app.testing import StreamTestClient

FLUSHER_TASKS = {"streaming_app monitor", "streaming_app control"}


def monitor_tasks() -> set[str]:
    return {task.get_name() for task in asyncio.all_tasks() if not task.done()} & FLUSHER_TASKS


@pytest.fixture(autouse=True)
def memory_broker():
    with override_settings(STREAMING={"BROKER": "memory://"}):
        yield
    monitor.calls.clear()
    monitor.finished.clear()


async def test_the_first_call_on_a_servers_event_loop_starts_the_flusher_and_its_listener():
    communicator = WebsocketCommunicator(StreamConsumer.as_asgi(), "/ws/", subprotocols=[SUBPROTOCOL])
    connected, _ = await communicator.connect()
    assert connected
    try:
        assert json.loads(await communicator.receive_from())["t"] == "hello"
        assert monitor_tasks() == set()
        await communicator.send_to(text_data=json.dumps({"t": "call", "id": 1, "m": "interop.empty"}))
        assert json.loads(await communicator.receive_from())["t"] == "end"
        assert monitor_tasks() == FLUSHER_TASKS
    finally:
        await communicator.disconnect()
        flusher = [task for task in asyncio.all_tasks() if task.get_name() == "streaming_app monitor"]
        for task in flusher:
            task.cancel()
        await asyncio.gather(*flusher, return_exceptions=True)
    assert monitor_tasks() == set()  # the flusher took its listener with it


async def test_a_test_clients_calls_are_tracked_and_flushed_by_the_test():
    async with StreamTestClient() as client:
        assert await client.call("interop.empty") == {}
        assert monitor_tasks() == set()
    assert [c["method"] for c in monitor.finished] == ["interop.empty"]
