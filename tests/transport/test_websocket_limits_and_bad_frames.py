"""Limits of the WebSocket consumer (connections, calls, frame size) and what it does with frames it cannot accept.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from streaming_app.testing import ConnectionClosed, StreamTestClient
from streaming_app.transports.websocket import StreamConsumer

from consumer_views import call_error, frames_for
from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


# -- limits --------------------------------------------------------------------------------------------------


async def test_connection_over_the_process_limit_is_closed_with_4429():
    limit = StreamConsumer.open_connections + 1  # room for exactly one more
    with override_settings(STREAMING={"MAX_CONNECTIONS_PER_PROCESS": limit}):
        async with StreamTestClient():
            refused = StreamTestClient()
            try:
                with pytest.raises(ConnectionClosed) as info:
                    await refused.connect()
            finally:
                await refused.disconnect()
    assert info.value.code == 4429


async def test_closed_connection_frees_its_place_under_the_process_limit():
    before = StreamConsumer.open_connections
    with override_settings(STREAMING={"MAX_CONNECTIONS_PER_PROCESS": before + 1}):
        async with StreamTestClient():
            assert StreamConsumer.open_connections == before + 1
        async with StreamTestClient() as client:
            assert client.hello["t"] == "hello"
    assert StreamConsumer.open_connections == before


async def test_hello_announces_the_limits():
    settings = {"MAX_FRAME_BYTES": 5000, "MAX_CALLS_PER_CONNECTION": 7, "CLIENT_WINDOW": 9}
    with override_settings(STREAMING=settings):
        async with StreamTestClient() as client:
            hello = client.hello
    assert hello["t"] == "hello" and hello["v"] == 1 and isinstance(hello["conn"], str)
    assert hello["limits"] == {"max_frame": 5000, "max_calls": 7, "client_window": 9}


async def test_call_over_the_per_connection_limit_is_resource_exhausted():
    with override_settings(STREAMING={"MAX_CALLS_PER_CONNECTION": 2}):
        async with StreamTestClient() as client:
            await client.start("t_flow.numbers", {"tag": "a"}, credit=0)
            await client.start("t_flow.numbers", {"tag": "b"}, credit=0)
            error = await call_error(client, "t_flow.fast")
    assert error.code == "resource_exhausted"
    assert error.details == {"max_calls": 2}


async def test_ended_call_frees_its_place_under_the_per_connection_limit():
    with override_settings(STREAMING={"MAX_CALLS_PER_CONNECTION": 1}):
        async with StreamTestClient() as client:
            first = await client.start("t_flow.numbers", {"tag": "a"}, credit=0)
            await client.send({"t": "cancel", "id": first})
            assert await client.call("t_flow.fast") == "fast"
            assert await client.call("t_flow.fast") == "fast"


async def test_repeated_bad_frames_close_the_connection_with_4400():
    with override_settings(STREAMING={"MAX_BAD_FRAMES": 3}):
        async with StreamTestClient() as client:
            for _ in range(3):
                await client.send("not json")
            errors = [await client.receive() for _ in range(3)]
            assert all(e["t"] == "error" and e["id"] is None for e in errors)
            assert await client.receive_close() == 4400


async def test_bad_frames_below_the_limit_keep_the_connection_open():
    with override_settings(STREAMING={"MAX_BAD_FRAMES": 3}):
        async with StreamTestClient() as client:
            for _ in range(2):
                await client.send("not json")
                assert (await client.receive())["code"] == "invalid_argument"
            assert await client.call("t_flow.fast") == "fast"


async def test_frame_over_the_size_limit_closes_with_4413():
    with override_settings(STREAMING={"MAX_FRAME_BYTES": 200}):
        async with StreamTestClient() as client:
            await client.send({"t": "ping", "d": "x" * 300})
            assert await client.receive_close() == 4413


# -- bad input ---------------------------------------------------------------------------------------------


async def test_malformed_frame_gets_an_error_with_null_id_and_the_offending_id():
    async with StreamTestClient() as client:
        await client.send({"t": "credit", "id": 3, "n": 0})
        error = await client.receive()
    assert error["t"] == "error" and error["id"] is None
    assert error["code"] == "invalid_argument"
    assert error["details"] == {"id": 3}


async def test_binary_frame_is_a_malformed_frame():
    async with StreamTestClient() as client:
        await client.communicator.send_to(bytes_data=b'{"t":"ping"}')
        error = await client.receive()
    assert (error["id"], error["code"]) == (None, "invalid_argument")


async def test_call_id_not_above_the_last_is_refused_with_that_id():
    async with StreamTestClient() as client:
        await client.send({"t": "call", "id": 5, "m": "t_flow.fast"})
        await frames_for(client, 5, 1)
        await client.send({"t": "call", "id": 5, "m": "t_flow.fast"})
        error = await client.receive()
    assert (error["t"], error["id"], error["details"]) == ("error", None, {"id": 5})


async def test_frame_for_a_never_opened_call_is_refused_with_that_id():
    async with StreamTestClient() as client:
        await client.send({"t": "credit", "id": 9, "n": 1})
        error = await client.receive()
    assert (error["id"], error["code"], error["details"]) == (None, "invalid_argument", {"id": 9})


async def test_frame_for_an_ended_call_is_ignored():
    async with StreamTestClient() as client:
        assert await client.call("t_flow.fast") == "fast"
        await client.send({"t": "credit", "id": 1, "n": 1})
        await client.send({"t": "cancel", "id": 1})
        assert await client.nothing_received(0.2)


async def test_rejected_call_frame_still_uses_its_id():
    async with StreamTestClient() as client:
        await client.send({"t": "call", "id": 5, "m": ""})
        assert (await client.receive())["details"] == {"id": 5}
        await client.send({"t": "credit", "id": 5, "n": 1})  # an ended call: ignored
        assert await client.nothing_received(0.1)
        await client.send({"t": "call", "id": 5, "m": "t_flow.fast"})
        error = await client.receive()
    assert (error["id"], error["code"], error["details"]) == (None, "invalid_argument", {"id": 5})


async def test_frame_for_an_id_the_client_skipped_is_refused():
    async with StreamTestClient() as client:
        await client.send({"t": "call", "id": 3, "m": "t_flow.fast"})
        await frames_for(client, 3, 1)
        await client.send({"t": "cancel", "id": 2})
        error = await client.receive()
    assert (error["id"], error["details"]) == (None, {"id": 2})


async def test_item_beyond_the_client_window_fails_the_call_with_resource_exhausted():
    with override_settings(STREAMING={"CLIENT_WINDOW": 2}):
        async with StreamTestClient() as client:
            assert client.hello["limits"]["client_window"] == 2
            call_id = await client.start("t_flow.hold")
            for i in range(3):
                await client.send({"t": "next", "id": call_id, "d": i})
            error = await client.receive()
            assert (error["t"], error["id"], error["code"]) == ("error", call_id, "resource_exhausted")
            # The call is over: frames that crossed its error are ignored.
            await client.send({"t": "next", "id": call_id, "d": 9})
            await client.send({"t": "end", "id": call_id})
            assert await client.nothing_received(0.2)


async def test_unknown_method_is_unimplemented():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_flow.nope")
    assert error.code == "unimplemented"
