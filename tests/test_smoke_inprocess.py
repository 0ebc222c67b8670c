from streaming_app.testing import StreamTestClient


async def test_unary_call_returns_its_result_in_process():
    async with StreamTestClient() as client:
        assert await client.call("interop.unary", {"payload": "hi"}) == {"payload": "hi"}
