"""The Python client's connection: close codes, reconnection, heartbeats, metadata, auth.

Against real daphne processes: the example project, and ``probes.closeprobe_asgi``
(the same project whose server closes a connection with a code a test picks,
and counts handshakes and pings per ``X-Probe`` header; see that module).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid

import pytest
from conftest import start_server

from streaming_app.client import ConnectionState, ResourceExhausted, StreamClient, Unauthenticated, Unavailable

pytestmark = pytest.mark.django_db(transaction=True)

RECONNECTABLE = [4408, 4429, 4500, 4503]
FINAL = [1000, 4000, 4400, 4401, 4403, 4413]


@pytest.fixture
def close_server(tmp_path):
    server = start_server(tmp_path, app="probes.closeprobe_asgi:application", env={"DJANGO_SETTINGS_MODULE": "probes.closeprobe_settings"})
    yield server
    server.stop()


@pytest.fixture
def own_server(tmp_path):
    server = start_server(tmp_path)
    yield server
    server.stop()


def probed(server, **options) -> tuple[StreamClient, str]:
    """A client whose handshakes and pings the close server counts under a fresh tag."""
    tag = uuid.uuid4().hex
    options.setdefault("reconnect_initial", 0.05)
    options.setdefault("reconnect_max", 0.2)
    return StreamClient(server.ws_url, metadata={"X-Probe": tag}, **options), tag


async def counts(server, tag: str) -> dict:
    async with StreamClient(server.ws_url) as observer:
        return await observer.call("closeprobe.counts", tag=tag)


async def until(predicate, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def close_with(client: StreamClient, code: int) -> None:
    """Ask the server to close this client's connection with ``code``; the call fails Unavailable."""
    with pytest.raises(Unavailable) as raised:
        await asyncio.wait_for(client.call("closeprobe.close", code=code), 10)
    assert raised.value.details["close_code"] == code


# -- close codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("code", RECONNECTABLE)
async def test_client_reconnects_after_a_reconnectable_close_code(close_server, code):
    client, tag = probed(close_server)
    async with client:
        first = client.hello.conn
        await close_with(client, code)
        await until(lambda: client.state is ConnectionState.OPEN and client.hello.conn != first)
        assert await client.call("interop.unary", payload="again") == {"payload": "again"}
    assert (await counts(close_server, tag))["connects"] == 2


@pytest.mark.parametrize("code", FINAL)
async def test_client_does_not_reconnect_after_a_final_close_code(close_server, code):
    client, tag = probed(close_server)
    async with client:
        await close_with(client, code)
        await until(lambda: client.state is ConnectionState.CLOSED)
        await asyncio.sleep(0.5)  # many backoff periods: a reconnect would have happened by now
        assert client.state is ConnectionState.CLOSED
        with pytest.raises(Unavailable):
            await client.call("interop.empty")
    assert (await counts(close_server, tag))["connects"] == 1


async def test_reconnect_delays_grow_exponentially_with_jitter(own_server, tmp_path):
    """With the server gone, attempts get sparser (doubling) and are not evenly spaced (jitter)."""
    client = StreamClient(own_server.ws_url, reconnect_initial=0.02, reconnect_max=0.32)
    attempts: list[float] = []
    original = client._open

    async def counted_open():
        attempts.append(time.monotonic())
        return await original()

    client._open = counted_open  # observe attempts; the connecting itself is real
    await client.connect()
    try:
        own_server.process.kill()
        own_server.process.wait(5)
        await until(lambda: len(attempts) >= 12, 30)
    finally:
        await client.close()
    # gaps[k]: a refused connect, then a random delay of at most 0.02 * 2**(k+1), capped at 0.32
    gaps = [b - a for a, b in zip(attempts[1:], attempts[2:])]
    slack = 0.1  # the refused connect's own time, on a busy machine
    for k in range(3):
        assert gaps[k] <= 0.02 * 2 ** (k + 1) + slack  # starts small: not at the cap
    assert max(gaps) <= 0.32 + slack  # never beyond reconnect_max
    assert sum(gaps[-5:]) / 5 > sum(gaps[:3]) / 3  # later attempts are further apart on average
    assert len({round(gap, 3) for gap in gaps}) > 1  # jittered, not a fixed schedule


# -- lost connections -------------------------------------------------------------------------


async def test_a_call_made_while_reconnecting_waits_for_the_new_connection(own_server, tmp_path):
    client = StreamClient(own_server.ws_url, reconnect_initial=0.05, reconnect_max=0.3)
    await client.connect()
    try:
        own_server.process.kill()
        own_server.process.wait(5)
        await until(lambda: client.state is ConnectionState.RECONNECTING)
        pending = asyncio.ensure_future(client.call("interop.unary", payload="waited"))
        await asyncio.sleep(0.5)
        assert not pending.done()  # held, not failed, while there is no connection
        restarted = start_server(tmp_path, port=own_server.port)
        try:
            assert await asyncio.wait_for(pending, 20) == {"payload": "waited"}
        finally:
            restarted.stop()
    finally:
        await client.close()


async def test_send_on_a_call_whose_connection_was_lost_raises_unavailable(close_server):
    client, _ = probed(close_server)
    async with client:
        echo = await client.open("interop.echo")
        await close_with(client, 4503)
        await until(lambda: client.state is ConnectionState.OPEN)
        with pytest.raises(Unavailable):
            await echo.send("late")
        await echo.cancel()  # nothing to cancel any more: no error, and nothing sent on the new connection
        assert await client.call("interop.empty") == {}


async def test_a_sender_waiting_for_credit_fails_when_the_connection_is_lost(close_server):
    """Echo with a window of 1 and no reader: the handler stops reading, so the server grants no credit."""
    client, _ = probed(close_server)
    async with client:
        echo = await client.open("interop.echo", window=1)
        sent = 0

        async def flood():
            nonlocal sent
            for i in range(10_000):
                await echo.send(i)
                sent += 1

        sender = asyncio.ensure_future(flood())
        before = -1
        while before != sent:  # until the sender stops making progress: held for credit
            before = sent
            await asyncio.sleep(0.3)
        assert not sender.done() and sent < 10_000
        await close_with(client, 4503)
        with pytest.raises(Unavailable):
            await asyncio.wait_for(sender, 5)


# -- heartbeats --------------------------------------------------------------------------------


async def test_client_pings_a_quiet_server(close_server):
    client, tag = probed(close_server, heartbeat_interval=0.1)
    async with client:
        await asyncio.sleep(1.0)
    assert (await counts(close_server, tag))["pings"] >= 3


async def test_client_without_heartbeat_sends_no_pings(close_server):
    client, tag = probed(close_server, heartbeat=False)
    async with client:
        await asyncio.sleep(1.0)
    assert (await counts(close_server, tag))["pings"] == 0


async def test_a_silent_server_is_dropped_after_the_announced_heartbeat_and_reconnected(close_server):
    """The server announces 0.5 s; frozen with SIGSTOP it answers nothing, though TCP stays up."""
    client, _ = probed(close_server)
    async with client:
        assert client.hello.heartbeat == 0.5
        stream = client.stream("interop.forever", interval_ms=1000)
        items = stream.__aiter__()
        await items.__anext__()
        os.kill(close_server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable):
                await asyncio.wait_for(items.__anext__(), 10)
            assert time.monotonic() - started < 5  # the default timeout is twice the heartbeat: 1 s
            assert client.state is ConnectionState.RECONNECTING
        finally:
            os.kill(close_server.process.pid, signal.SIGCONT)
        await until(lambda: client.state is ConnectionState.OPEN, 20)
        assert await client.call("interop.empty") == {}


# -- state -------------------------------------------------------------------------------------


async def test_state_changes_iterates_every_state_until_closed(close_server):
    client, _ = probed(close_server)
    seen: list[ConnectionState] = []

    async def watch():
        async for state in client.state_changes():
            seen.append(state)

    watcher = asyncio.ensure_future(watch())
    await asyncio.sleep(0)
    await client.connect()
    await close_with(client, 4503)
    await until(lambda: client.state is ConnectionState.OPEN)
    await client.close()
    await asyncio.wait_for(watcher, 5)
    assert seen == [
        ConnectionState.CONNECTING, ConnectionState.OPEN, ConnectionState.RECONNECTING,
        ConnectionState.OPEN, ConnectionState.CLOSED,
    ]


# -- metadata and frame size -------------------------------------------------------------------


async def test_client_metadata_reaches_handlers_as_handshake_headers(close_server):
    async with StreamClient(close_server.ws_url, metadata={"X-Request-Source": "nightly-job"}) as client:
        headers = await client.call("closeprobe.headers")
    assert headers["x-request-source"] == "nightly-job"


async def test_per_call_metadata_is_refused_with_a_clear_error(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        with pytest.raises(ValueError, match="no per-call metadata"):
            await client.call("interop.empty", metadata={"x-a": "1"})
        assert await client.call("interop.empty") == {}


async def test_a_frame_over_max_frame_fails_alone_and_the_connection_stays_open(daphne_server):
    async with StreamClient(daphne_server.ws_url) as client:
        with pytest.raises(ResourceExhausted) as raised:
            await client.call("interop.unary", payload="x" * client.max_frame)
        assert raised.value.details["max_frame"] == client.max_frame
        assert client.state is ConnectionState.OPEN
        assert await client.call("interop.unary", payload="small") == {"payload": "small"}


# -- authentication ----------------------------------------------------------------------------


@pytest.fixture
def session_key(make_user) -> str:
    from django.conf import settings
    from django.test import Client

    make_user("erin", password="pw-erin-123")
    browser = Client()
    assert browser.login(username="erin", password="pw-erin-123")
    return browser.cookies[settings.SESSION_COOKIE_NAME].value


async def test_session_cookie_authenticates(daphne_server, session_key):
    async with StreamClient(daphne_server.ws_url, session=session_key) as client:
        assert (await client.call("interop.whoami"))["username"] == "erin"


async def test_ticket_callable_is_asked_for_a_fresh_ticket_on_every_connection(close_server, session_key):
    from httpclient import post_ticket

    issued: list[str] = []

    async def fresh_ticket() -> str:
        issued.append((await post_ticket(close_server, session=session_key)).json()["ticket"])
        return issued[-1]

    async with StreamClient(close_server.ws_url, ticket=fresh_ticket, reconnect_initial=0.05) as client:
        assert (await client.call("interop.whoami"))["username"] == "erin"
        await close_with(client, 4503)
        await until(lambda: client.state is ConnectionState.OPEN)
        assert (await client.call("interop.whoami"))["username"] == "erin"  # a reused ticket would get 4401
    assert len(issued) == 2 and issued[0] != issued[1]


async def test_invalid_ticket_raises_unauthenticated(daphne_server):
    with pytest.raises(Unauthenticated):
        await StreamClient(daphne_server.ws_url, ticket="forged").connect()
