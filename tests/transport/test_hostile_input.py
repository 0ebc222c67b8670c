"""Hostile input over a real daphne: each test is an attack that used to work (issue 17, row 10).

A lone surrogate used to close the connection with 4500 and log a traceback
per frame; an unknown method's error repeated a 900 KB name several times
over; a NUL in a ``str`` argument reached PostgreSQL (``internal``); an
error whose details cannot be encoded must still end the WebSocket call.
"""

from __future__ import annotations

import json

import pytest
from httpclient import assert_error
from wsclient import connected

pytestmark = pytest.mark.django_db(transaction=True)

LONE_SURROGATE_PING = '{"t":"ping","d":"\\ud800"}'  # valid JSON, but no UTF-8 can carry it back


def tracebacks(server) -> int:
    return server.log.read_text(errors="replace").count("Traceback")


async def test_a_lone_surrogate_is_a_bad_frame_and_the_connection_serves_on(daphne_server):
    before = tracebacks(daphne_server)
    async with connected(daphne_server.ws_url) as conn:
        for _ in range(3):
            await conn.send(LONE_SURROGATE_PING)
            error = await conn.recv()
            assert (error["t"], error["id"], error["code"]) == ("error", None, "invalid_argument")
            assert "surrogate" in error["message"]
        assert await conn.sync() == []  # still open, and nothing else was sent
    assert tracebacks(daphne_server) == before


async def test_a_lone_surrogate_in_an_object_key_of_call_arguments_is_a_bad_frame(daphne_server):
    async with connected(daphne_server.ws_url) as conn:
        await conn.send('{"t":"call","id":1,"m":"interop.echo","a":{"\\udc00":1}}')
        error = await conn.recv()
        assert (error["t"], error["id"], error["code"]) == ("error", None, "invalid_argument")
        assert (await conn.result(2, "interop.empty"))["t"] == "end"


async def test_a_surrogate_pair_written_as_escapes_is_one_character(daphne_server):
    async with connected(daphne_server.ws_url) as conn:
        await conn.send('{"t":"ping","d":"\\ud83d\\ude00"}')
        assert await conn.recv() == {"t": "pong", "d": "\U0001F600"}


def test_a_lone_surrogate_in_an_http_body_is_invalid_argument(http):
    response = http.post(
        "interop.unary",
        content=b'{"payload": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_argument")


async def test_a_number_too_large_for_a_float_is_a_bad_frame_not_an_internal_error(daphne_server):
    async with connected(daphne_server.ws_url) as conn:
        await conn.send('{"t":"ping","d":1e999}')
        error = await conn.recv()
        assert (error["t"], error["id"], error["code"]) == ("error", None, "invalid_argument")
        await conn.send('{"t":"call","id":1,"m":"interop.empty","timeout":' + "9" * 400 + "}")
        error = await conn.recv()
        assert (error["code"], error["details"]) == ("invalid_argument", {"id": 1})
        assert await conn.sync() == []


async def test_an_unknown_method_error_repeats_at_most_a_hundred_characters_of_its_name(daphne_server):
    # 900 KB of C1 control characters (two bytes of UTF-8 each): repr() writes
    # each as \x85, and the error used to be twice the frame limit.
    name = "\x85" * 450_000
    async with connected(daphne_server.ws_url) as conn:
        await conn.send(json.dumps({"t": "call", "id": 1, "m": name}, ensure_ascii=False))
        raw = await conn.recv_raw()
        error = json.loads(raw)
        assert (error["id"], error["code"]) == (1, "unimplemented")
        assert len(raw) < 1000
        assert await conn.sync() == []


def test_an_unknown_method_over_http_names_at_most_a_hundred_characters_of_it(http):
    response = http.post("a" * 5000, json={})
    body = assert_error(response, 404, "not_found")
    assert len(response.content) < 1000 and body["details"]["method"].endswith("...")


async def test_a_nul_in_a_string_argument_is_invalid_argument_before_the_database(
    daphne_server, close_worker_connections
):
    from project.demo.models import Note

    async with connected(daphne_server.ws_url) as conn:
        error = await conn.result(1, "notes.add", {"text": "a\x00b"})
    assert error["code"] == "invalid_argument"
    assert error["details"] == {"errors": {"text": ["Null characters are not allowed."]}}
    assert not await Note.objects.filter(text__startswith="a").aexists()


def test_a_nul_in_a_string_argument_over_http_is_400(http):
    response = http.post("notes.add", json={"text": "x\x00"})
    body = assert_error(response, 400, "invalid_argument")
    assert body["details"] == {"errors": {"text": ["Null characters are not allowed."]}}


async def test_an_error_whose_details_cannot_be_encoded_still_ends_the_websocket_call(probe_server):
    async with connected(probe_server.ws_url) as conn:
        error = await conn.result(1, "httpprobe.unencodable_details")
        await conn.call(2, "httpprobe.stream_unencodable_details")
        frames = await conn.until_terminal(2)
    assert (error["t"], error["code"], error["details"]) == ("error", "failed_precondition", {})
    assert [f["t"] for f in frames] == ["next", "error"] and frames[-1]["details"] == {}
