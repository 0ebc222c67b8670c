"""The Python client resumes topic streams by itself across server kills.

A small TCP balancer (this file) stands in front of two daphne processes of
the example project, as a load balancer would: each new connection goes to a
live server, the other one first. The test kills the server the client is on,
again and again, while a third process publishes; the sequence the caller's
``async for`` sees must have no gap and no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid

import pytest

from conftest import publish_sequence, start_server
from streaming_app.brokers.redis import RedisBroker
from streaming_app.client import StateLost, StreamClient

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


class Balancer:
    """Forwards each TCP connection to a live backend, alternating; remembers who serves whom."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.turn = 0
        self.active: list[int] = []  # backend port of each connection, newest last
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for attempt in range(len(self.ports)):
            port = self.ports[(self.turn + attempt) % len(self.ports)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            self.turn = (self.turn + attempt + 1) % len(self.ports)
            self.active.append(port)
            await asyncio.gather(self._pipe(reader, upstream_writer), self._pipe(upstream_reader, writer))
            return
        writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            writer.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def test_client_resumes_across_kills_of_its_server_with_no_gap_and_no_duplicate(tmp_path, two_servers, redis_url):
    publisher_server = start_server(tmp_path, env={"REDIS_URL": redis_url})
    balancer = Balancer([server.port for server in two_servers])
    port = await balancer.start()
    topic = f"c{uuid.uuid4().hex[:12]}"
    total, kills = 3000, 4
    got: list[int] = []

    async def kill_and_restart(server_index: int) -> None:
        server = two_servers[server_index]
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        two_servers[server_index] = start_server(tmp_path, env={"REDIS_URL": redis_url}, port=server.port)

    publishing: asyncio.Future | None = None
    killed_while_publishing = 0
    try:
        async with StreamClient(f"ws://127.0.0.1:{port}/ws/", reconnect_initial=0.05, reconnect_max=0.5) as client:
            stream = client.stream("interop.subscribe", topic=topic)
            items = stream.__aiter__()
            started = await asyncio.wait_for(stream._started(), 10)
            # The server sends ``ready`` once the subscription is live: publishing
            # before it arrives could publish the first events to no one.
            for _ in range(200):
                if not started.frames.empty():
                    break
                await asyncio.sleep(0.05)
            publishing = asyncio.ensure_future(publish_sequence(publisher_server.ws_url, topic, total, pause=0.03))
            deadline = time.monotonic() + 120
            while len(got) < total and time.monotonic() < deadline:
                got.append(await asyncio.wait_for(items.__anext__(), 20))
                if len(got) % (total // (kills + 1)) == 0 and len(got) < total:
                    on = balancer.active[-1]  # the server the client is connected to
                    killed_while_publishing += not publishing.done()
                    await kill_and_restart(next(i for i, s in enumerate(two_servers) if s.port == on))
            await items.aclose()
        await asyncio.wait_for(publishing, 30)
    finally:
        if publishing is not None:
            publishing.cancel()
        publisher_server.stop()
        await balancer.stop()
    assert killed_while_publishing >= 3
    assert stream.resumes >= kills
    assert got == list(range(total))


async def test_client_raises_state_lost_when_the_history_does_not_reach_back(daphne_server):
    """The server has no Redis here: a resume the memory history cannot serve is refused, never partial."""
    topic = f"c{uuid.uuid4().hex[:12]}"
    async with StreamClient(daphne_server.ws_url) as client:
        stream = client.stream("interop.subscribe", topic=topic, resume="someotherepoch:5")
        with pytest.raises(StateLost) as raised:
            async for _ in stream:
                pass
    assert raised.value.code == "data_loss"
    assert raised.value.details["resume"] == "someotherepoch:5"


async def test_client_resumes_from_a_kept_event_id(two_servers, redis_url):
    broker = RedisBroker(redis_url, "streaming_app")
    topic = f"c{uuid.uuid4().hex[:12]}"
    try:
        kept = broker.publish(f"interop.{topic}", json.dumps(0))
        for n in range(1, 4):
            broker.publish(f"interop.{topic}", json.dumps(n))
        async with StreamClient(two_servers[1].ws_url) as client:
            stream = client.stream("interop.subscribe", topic=topic, resume=kept)
            got = []
            async for item in stream:
                got.append(item)
                if len(got) == 3:
                    break
    finally:
        await broker.close()
    assert got == [1, 2, 3]
