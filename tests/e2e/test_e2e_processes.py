"""Two daphne processes of the example project sharing one database (and Redis in CI)."""

import asyncio
import json
import uuid

import pytest
import websockets



pytestmark = pytest.mark.django_db(transaction=True)



async def read_hello(ws):
    hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert hello["t"] == "hello"


async def call(ws, call_id, method, args):
    await ws.send(json.dumps({"t": "call", "id": call_id, "m": method, "a": args}))
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame.get("id") == call_id and frame["t"] in ("end", "error"):
            return frame


async def test_cleanup_on_one_process_is_counted_on_the_other(two_servers):
    a, b = two_servers
    tag = f"procs-{uuid.uuid4().hex}"
    async with websockets.connect(a.ws_url, subprotocols=["streaming.v1.json"]) as ws_a:
        await read_hello(ws_a)
        await ws_a.send(json.dumps({"t": "call", "id": 1, "m": "interop.forever", "a": {"tag": tag}, "credit": 1}))
        assert json.loads(await asyncio.wait_for(ws_a.recv(), 5))["t"] == "next"
        await ws_a.send(json.dumps({"t": "cancel", "id": 1}))

        async with websockets.connect(b.ws_url, subprotocols=["streaming.v1.json"]) as ws_b:
            await read_hello(ws_b)
            count = None
            for attempt in range(50):
                frame = await call(ws_b, attempt + 1, "interop.cleanups", {"tag": tag})
                count = frame["d"]["count"]
                if count == 1:
                    break
                await asyncio.sleep(0.05)
            assert count == 1


async def test_killed_process_leaves_the_other_serving(two_servers):
    a, b = two_servers
    a.process.kill()
    a.process.wait(5)
    async with websockets.connect(b.ws_url, subprotocols=["streaming.v1.json"]) as ws:
        await read_hello(ws)
        assert (await call(ws, 1, "interop.unary", {"payload": "still here"}))["d"] == {"payload": "still here"}


async def test_disconnect_is_prompt_with_the_redis_channel_layer(redis_url):
    """The consumer joins no channel-layer channel, so leaving never waits on Redis."""
    import time

    from streaming_app.testing import StreamTestClient
    from django.test import override_settings

    layer = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [redis_url]}}}
    with override_settings(CHANNEL_LAYERS=layer):
        client = StreamTestClient()
        await client.connect()
        started = time.monotonic()
        await client.disconnect()
        assert time.monotonic() - started < 2
