"""The Python client (streaming_app.client) against a real daphne server."""

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from conftest import ROOT

from streaming_app.client import (
    Internal,
    InvalidArgument,
    PermissionDenied,
    StreamClient,
    StreamError,
    Unauthenticated,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def cleanups(client, tag):
    for _ in range(50):
        count = (await client.call("interop.cleanups", tag=tag))["count"]
        if count:
            return count
        await asyncio.sleep(0.05)
    return 0


async def test_unary_call_returns_the_result(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        assert await client.call("interop.unary", payload="hi") == {"payload": "hi"}


async def test_arguments_may_be_given_as_one_dict(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        assert await client.call("interop.unary", {"payload": "as dict"}) == {"payload": "as dict"}


async def test_stream_yields_items_and_exposes_its_return_value(daphne_server):
    async with StreamClient(daphne_server.ws_url, window=4) as client:
        stream = client.stream("interop.count", n=10)
        assert [item["i"] async for item in stream] == list(range(10))
        assert stream.result == {"total": 10}


async def test_breaking_out_of_a_stream_cancels_it_on_the_server(daphne_server):
    tag = f"client-break-{uuid.uuid4().hex}"
    async with StreamClient(daphne_server.ws_url) as client:
        async for item in client.stream("interop.forever", tag=tag):
            if item["i"] == 2:
                break
        assert await cleanups(client, tag) == 1


async def test_client_stream_sends_items_and_gets_the_result(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        call = await client.open("interop.sum")
        for v in range(200):  # more than the server's client window: credit must flow back
            await call.send({"v": v})
        await call.end()
        assert await call.result() == {"sum": sum(range(200)), "count": 200}


async def test_bidirectional_call_echoes_in_order(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        call = await client.open("interop.echo")
        for word in ("a", "b", "c"):
            await call.send(word)
        await call.end()
        assert [item async for item in call] == ["a", "b", "c"]


async def test_errors_are_typed_exceptions_with_code_message_and_details(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        with pytest.raises(InvalidArgument) as invalid:
            await client.call("interop.count", n="x")
        assert invalid.value.details == {"errors": {"n": ["Must be an integer."]}}
        with pytest.raises(PermissionDenied, match="nope"):
            await client.call("interop.fail", code="permission_denied", message="nope")
        with pytest.raises(Internal) as internal:
            await client.call("interop.crash")
        assert "secret" not in internal.value.message
        assert isinstance(internal.value, StreamError) and internal.value.code == "internal"


async def test_deadline_raises_deadline_exceeded(daphne_server):
    from streaming_app.client import DeadlineExceeded

    async with StreamClient(daphne_server.ws_url) as client:
        with pytest.raises(DeadlineExceeded):
            async for _ in client.stream("interop.forever", interval_ms=20, timeout=0.2):
                pass


@pytest.fixture
def carol_token(make_token):
    return make_token("carol")


async def test_bearer_token_authenticates(daphne_server, carol_token):
    async with StreamClient(daphne_server.ws_url, token=carol_token) as client:
        assert (await client.call("interop.whoami"))["username"] == "carol"


async def test_invalid_token_raises_unauthenticated_on_connect(daphne_server):
    with pytest.raises(Unauthenticated):
        async with StreamClient(daphne_server.ws_url, token="not-a-token"):
            pass


def test_the_client_imports_without_django():
    code = "import sys; sys.modules['django'] = None; import streaming_app.client as c; print(c.StreamClient.__name__)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={"PATH": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "StreamClient"


def test_sync_client_iterates_a_stream_with_a_plain_for(daphne_server):
    from streaming_app.client import SyncStreamClient

    with SyncStreamClient(daphne_server.ws_url) as client:
        stream = client.stream("interop.count", n=4)
        assert [item["i"] for item in stream] == [0, 1, 2, 3]
        assert stream.result == {"total": 4}
        assert client.call("interop.unary", payload="sync") == {"payload": "sync"}


def test_sync_client_break_cancels_on_the_server(daphne_server):
    import time

    from streaming_app.client import SyncStreamClient

    tag = f"sync-break-{uuid.uuid4().hex}"
    with SyncStreamClient(daphne_server.ws_url) as client:
        for item in client.stream("interop.forever", tag=tag):
            if item["i"] == 1:
                break
        for _ in range(50):
            if client.call("interop.cleanups", tag=tag)["count"] == 1:
                break
            time.sleep(0.05)
        assert client.call("interop.cleanups", tag=tag) == {"count": 1}


def run_cli(*args, stdin=""):
    return subprocess.run(
        [sys.executable, "-m", "streaming_app.client", *args],
        input=stdin, capture_output=True, text=True, timeout=60,
    )


def test_cli_prints_items_as_json_lines_then_the_end(daphne_server):
    result = run_cli(daphne_server.ws_url, "interop.count", "n=2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"i": 0}', '{"i": 1}', '{"end": {"total": 2}}']


def test_cli_sends_stdin_lines_as_items(daphne_server):
    result = run_cli(daphne_server.ws_url, "interop.sum", "--stdin", stdin='{"v": 2}\n{"v": 3}\n')
    assert result.stdout.splitlines() == ['{"end": {"sum": 5, "count": 2}}']


def test_cli_reports_an_error_on_stderr_with_status_1(daphne_server):
    result = run_cli(daphne_server.ws_url, "interop.fail", "code=not_found", "message=gone")
    assert result.returncode == 1
    assert '"code": "not_found"' in result.stderr and '"message": "gone"' in result.stderr


@pytest.fixture
def own_server(tmp_path):
    from conftest import start_server

    server = start_server(tmp_path)
    yield server
    server.stop()


async def test_reconnects_after_the_server_restarts_and_open_calls_fail_unavailable(own_server, tmp_path):
    from conftest import start_server
    from streaming_app.client import ConnectionState, Unavailable

    states = []
    client = StreamClient(own_server.ws_url, reconnect_initial=0.05, reconnect_max=0.5)
    client.on_state_change(states.append)
    await client.connect()
    try:
        stream = client.stream("interop.forever", interval_ms=20)
        iterator = stream.__aiter__()
        assert (await iterator.__anext__())["i"] == 0
        own_server.process.kill()
        own_server.process.wait(5)
        with pytest.raises(Unavailable):
            for _ in range(1000):
                await asyncio.wait_for(iterator.__anext__(), 5)
        assert client.state is ConnectionState.RECONNECTING
        restarted = start_server(tmp_path, port=own_server.port)
        try:
            result = await asyncio.wait_for(client.call("interop.unary", payload="back"), 20)
            assert result == {"payload": "back"}
            assert client.state is ConnectionState.OPEN
        finally:
            restarted.stop()
    finally:
        await client.close()
    assert states == [
        ConnectionState.CONNECTING, ConnectionState.OPEN, ConnectionState.RECONNECTING,
        ConnectionState.OPEN, ConnectionState.CLOSED,
    ]


async def test_a_closed_client_refuses_new_calls(daphne_server):
    from streaming_app.client import Unavailable

    client = StreamClient(daphne_server.ws_url)
    await client.connect()
    await client.close()
    with pytest.raises(Unavailable):
        await client.call("interop.empty")


@pytest.fixture
def probe_server(tmp_path):
    from conftest import start_server

    server = start_server(tmp_path, app="probes.flowprobe_asgi:application")
    yield server
    server.stop()


async def test_a_slow_consumer_never_has_more_than_its_window_in_flight(probe_server):
    """Measured on the server: items its generator produced minus items the caller consumed."""
    async with StreamClient(probe_server.ws_url, window=8) as client:
        consumed = 0
        in_flight = []
        async for _ in client.stream("flowprobe.items", key="slow", n=60):
            consumed += 1
            await asyncio.sleep(0.01)  # a slow consumer: the server could run far ahead
            produced = (await client.call("flowprobe.produced", key="slow"))["produced"]
            in_flight.append(produced - consumed)
        assert consumed == 60
        assert max(in_flight) <= 8
        assert max(in_flight) >= 4  # the window is used, not just respected


ALL_CODES = [
    "cancelled", "unknown", "invalid_argument", "deadline_exceeded", "not_found", "already_exists",
    "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
    "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated",
]


@pytest.mark.parametrize("code", ALL_CODES)
async def test_each_error_code_raises_its_own_exception_class(daphne_server, code):
    from streaming_app.exceptions import ERROR_CLASSES

    async with StreamClient(daphne_server.ws_url) as client:
        with pytest.raises(ERROR_CLASSES[code]) as raised:
            await client.call("interop.fail", code=code, message=f"m-{code}")
    assert raised.value.code == code and raised.value.message == f"m-{code}"


async def test_every_remaining_interop_method_through_the_client(daphne_server):
    from streaming_app.client import NotFound, Unauthenticated as NotLoggedIn

    async with StreamClient(daphne_server.ws_url) as client:
        assert await client.call("interop.empty") == {}
        with pytest.raises(NotLoggedIn):
            await client.call("interop.whoami")
        with pytest.raises(NotLoggedIn):
            await client.call("interop.staff_only")
        assert await client.call("interop.big", size=1000) == {"data": "x" * 1000}
        stream = client.stream("interop.fail_after", n=2, code="not_found")
        received = []
        with pytest.raises(NotFound):
            async for item in stream:
                received.append(item)
        assert received == [{"i": 0}, {"i": 1}]
        assert [i["i"] async for i in client.stream("interop.count", n=3, start=5)] == [5, 6, 7]


@pytest.fixture
def staff_token(make_token):
    return make_token("boss", is_staff=True)


async def test_staff_token_passes_staff_only(daphne_server, staff_token):
    async with StreamClient(daphne_server.ws_url, token=staff_token) as client:
        assert await client.call("interop.staff_only") == {"ok": True}
        assert await client.call("interop.whoami") == {"username": "boss", "is_staff": True}


def test_cli_with_a_line_of_stdin_that_is_not_json_exits_2_with_a_clear_error(daphne_server):
    result = run_cli(daphne_server.ws_url, "interop.sum", "--stdin", stdin='{"v": 2}\nnot json\n')
    assert result.returncode == 2
    assert "stdin line 2 is not JSON" in result.stderr and "Traceback" not in result.stderr


def test_cli_sends_header_options_as_connection_metadata_and_uses_a_token(daphne_server, carol_token):
    result = run_cli(daphne_server.ws_url, "interop.whoami", "--token", carol_token, "--header", "X-Debug: 1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['{"end": {"username": "carol", "is_staff": false}}']


def test_cli_prints_the_five_items_of_the_issue_example(daphne_server):
    result = run_cli(daphne_server.ws_url, "interop.count", "n=5")
    assert [line for line in result.stdout.splitlines()] == [
        *(f'{{"i": {i}}}' for i in range(5)), '{"end": {"total": 5}}'
    ]


async def test_subscribe_yields_what_publish_sent_and_remembers_the_last_eid(daphne_server):
    topic = uuid.uuid4().hex
    async with StreamClient(daphne_server.ws_url) as client:
        stream = client.stream("interop.subscribe", topic=topic)
        async with stream:
            items = stream.__aiter__()
            waiting = asyncio.ensure_future(items.__anext__())
            await asyncio.sleep(0.3)  # subscribed: only items published after the subscription arrive
            published = await client.call("interop.publish", topic=topic, data={"hello": 1})
            assert await asyncio.wait_for(waiting, 10) == {"hello": 1}
            assert stream.last_eid == published["eid"]
            await items.aclose()


def test_every_public_name_imports_without_django_or_settings():
    code = (
        "import sys; sys.modules['django'] = None\n"
        "import streaming_app.client as c\n"
        "missing = [n for n in c.__all__ if not hasattr(c, n)]\n"
        "assert not missing, missing\n"
        "assert all(issubclass(getattr(c, n), c.StreamError) for n in ('InvalidArgument', 'Unavailable', 'DataLoss'))\n"
        "assert not [m for m in sys.modules if m.startswith(('django', 'channels', 'rest_framework')) and sys.modules[m]]\n"
        "print(len(c.__all__))"
    )
    environment = {"PATH": os.environ.get("PATH", "")}  # no DJANGO_SETTINGS_MODULE, no PYTHONPATH
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=environment, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 23


def test_sync_client_runs_a_bidirectional_call(daphne_server):
    from streaming_app.client import SyncStreamClient

    with SyncStreamClient(daphne_server.ws_url) as client:
        echo = client.open("interop.echo")
        echo.send("one")
        echo.send("two")
        echo.end()
        assert list(echo) == ["one", "two"]


def test_sync_client_raises_typed_errors(daphne_server):
    from streaming_app.client import NotFound, SyncStreamClient

    with SyncStreamClient(daphne_server.ws_url) as client:
        with pytest.raises(NotFound, match="gone"):
            client.call("interop.fail", code="not_found", message="gone")
