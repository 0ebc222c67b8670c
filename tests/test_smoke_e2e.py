import json

import pytest
import websockets

pytestmark = pytest.mark.django_db(transaction=True)


async def test_daphne_serves_interop_count(daphne_server):
    async with websockets.connect(daphne_server.ws_url, subprotocols=["streaming.v1.json"]) as ws:
        hello = json.loads(await ws.recv())
        assert hello["t"] == "hello"
        await ws.send(json.dumps({"t": "call", "id": 1, "m": "interop.count", "a": {"n": 2}}))
        frames = [json.loads(await ws.recv()) for _ in range(3)]
    assert frames[-1] == {"t": "end", "id": 1, "d": {"total": 2}}
