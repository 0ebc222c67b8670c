"""Call bookkeeping in one process: counters, history end reasons, commands and switches.

Calls run in-process (StreamTestClient) on the memory broker; the test writes
what the monitor tracked with ``await monitor.flush()``, as the flusher does
once an interval in a server.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core import signing
from django.core.checks import Error
from django.test import override_settings

from streaming_app import checks, control, switches
from streaming_app.models import EndpointSwitch, FinishedCall
from streaming_app.monitor import live_calls, monitor, process_id
from streaming_app.testing import StreamTestClient

pytestmark = pytest.mark.django_db(transaction=True)

MEMORY = {"BROKER": "memory://"}


@pytest.fixture(autouse=True)
async def clean_monitor():
    monitor.calls.clear()
    monitor.finished.clear()
    monitor._aggregates_logged_at = None  # each test sees its own first flood
    switches.invalidate()
    with override_settings(STREAMING=MEMORY):
        yield
    switches.invalidate()
    from django.db import connections

    await sync_to_async(connections.close_all, thread_sensitive=True)()


async def history() -> list[FinishedCall]:
    """This process's finished calls.

    The daphne servers the end-to-end tests started share the test database
    and write their own history into it whenever their calls end.
    """
    await monitor.flush()
    rows = FinishedCall.objects.filter(process=process_id()).order_by("call_id")
    return await sync_to_async(list)(rows)


async def test_an_open_stream_is_in_the_live_list_with_its_counts_after_a_flush():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.forever", {"interval_ms": 1})
        for _ in range(5):
            assert (await client.receive())["t"] == "next"
        await monitor.flush()
        live = await live_calls()
        await client.send({"t": "cancel", "id": call_id})
    [call] = [c for c in live["calls"] if c["method"] == "interop.forever"]
    assert call["process"] == process_id() and call["transport"] == "websocket" and call["kind"] == "server_stream"
    assert call["items_out"] >= 5 and call["bytes_out"] >= 5 * len('{"t":"next","id":1,"d":{"i":0}}')
    assert call["lost"] is False and call["user"] == ""


async def test_items_a_client_sends_are_counted_in():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.echo")
        for v in range(3):
            await client.send({"t": "next", "id": call_id, "d": {"v": v}})
            await client.receive()
        await monitor.flush()
        [call] = [c for c in (await live_calls())["calls"] if c["method"] == "interop.echo"]
        await client.send({"t": "end", "id": call_id})
        await client.receive()
    assert (call["items_in"], call["items_out"]) == (3, 3)
    assert call["bytes_in"] == 3 * len('{"t": "next", "id": 1, "d": {"v": 0}}')


async def test_finished_calls_are_written_with_their_end_reasons():
    async with StreamTestClient() as client:
        await client.collect("interop.count", {"n": 2})  # 1: completed
        await client.start("interop.fail_after", {"n": 1, "code": "not_found"})  # 2: error
        await client.receive(), await client.receive()
        cancelled = await client.start("interop.forever", {"interval_ms": 5})  # 3: cancelled
        await client.receive()
        await client.send({"t": "cancel", "id": cancelled})
        await client.start("interop.forever", {"interval_ms": 5}, timeout=0.05)  # 4: deadline
        for _ in range(100):
            if (await client.receive())["t"] == "error":
                break
        await client.start("interop.forever", {"interval_ms": 5})  # 5: disconnected
        await client.receive()
    rows = await history()
    assert [(r.call_id, r.end_reason, r.error_code) for r in rows] == [
        (1, "completed", ""),
        (2, "error", "not_found"),
        (3, "cancelled", ""),
        (4, "deadline", "deadline_exceeded"),
        (5, "disconnected", ""),
    ]
    assert rows[0].items_out == 2 and rows[0].method == "interop.count" and rows[0].duration >= 0


async def test_a_terminate_command_ends_the_call_with_cancelled_and_runs_its_finally():
    from project.demo.models import Cleanup

    async with StreamTestClient() as client:
        call_id = await client.start("interop.forever", {"interval_ms": 5, "tag": "monitor-terminate"})
        await client.receive()
        conn = next(iter(monitor.calls))[0]
        control.handle(monitor, control.terminate_command(process_id(), conn, call_id))
        for _ in range(1000):
            frame = await client.receive()
            if frame["t"] != "next":
                break
    assert frame == {
        "t": "error", "id": call_id, "code": "cancelled",
        "message": "Terminated by an administrator.", "details": {"reason": "terminated"},
    }
    assert (await sync_to_async(Cleanup.objects.get)(tag="monitor-terminate")).count == 1
    [row] = await history()
    assert (row.end_reason, row.error_code) == ("terminated", "cancelled")


async def test_a_connection_terminate_command_closes_the_socket_with_4000():
    async with StreamTestClient() as client:
        await client.start("interop.forever", {"interval_ms": 5})
        await client.receive()
        conn = next(iter(monitor.calls))[0]
        control.handle(monitor, control.terminate_command(process_id(), conn, None))
        assert await client.receive_close() == 4000
    await asyncio.sleep(0.05)
    [row] = await history()
    assert row.end_reason == "terminated"


async def test_a_command_for_another_process_is_ignored():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.forever", {"interval_ms": 5})
        await client.receive()
        conn = next(iter(monitor.calls))[0]
        control.handle(monitor, control.terminate_command("elsewhere:1", conn, call_id))
        await asyncio.sleep(0.05)
        assert (conn, call_id) in monitor.calls
        await client.send({"t": "cancel", "id": call_id})


async def test_a_forged_command_is_ignored():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.forever", {"interval_ms": 5})
        await client.receive()
        conn = next(iter(monitor.calls))[0]
        forged = signing.dumps({"op": "terminate", "process": process_id(), "conn": conn, "call": call_id},
                               key="not-the-secret-key", salt=control.SALT)
        control.handle(monitor, forged)
        control.handle(monitor, {"op": "terminate", "process": process_id(), "conn": conn, "call": call_id})
        await asyncio.sleep(0.05)
        assert (conn, call_id) in monitor.calls
        await client.send({"t": "cancel", "id": call_id})


async def test_with_bookkeeping_off_nothing_is_tracked():
    with override_settings(STREAMING={**MEMORY, "MONITOR_CALLS": False}):
        async with StreamTestClient() as client:
            items, _ = await client.collect("interop.count", {"n": 3})
            call_id = await client.start("interop.forever", {"interval_ms": 5})
            await client.receive()
            assert monitor.calls == {}
            await client.send({"t": "cancel", "id": call_id})
    assert len(items) == 3 and not monitor.finished


@pytest.mark.parametrize("name", ["interop.unary", "interop"])
async def test_a_disabled_method_or_namespace_answers_unavailable(name):
    await sync_to_async(EndpointSwitch.objects.create)(name=name, disabled=True)
    switches.invalidate()
    async with StreamTestClient() as client:
        call_id = await client.start("interop.unary", {"payload": "x"})
        frame = await client.receive()
    assert frame == {
        "t": "error", "id": call_id, "code": "unavailable",
        "message": "interop.unary is disabled by an administrator.",
        "details": {"reason": "disabled", "method": "interop.unary"},
    }


async def test_a_switches_command_drops_the_cache_so_enabling_takes_effect_at_once():
    switch = await sync_to_async(EndpointSwitch.objects.create)(name="interop.empty", disabled=True)
    switches.invalidate()
    async with StreamTestClient() as client:
        await client.start("interop.empty")
        assert (await client.receive())["code"] == "unavailable"
        switch.disabled = False
        await sync_to_async(switch.save)()
        control.handle(monitor, control.switches_command())
        assert await client.call("interop.empty") == {}


async def test_disabling_with_end_open_ends_the_open_calls_with_unavailable():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.forever", {"interval_ms": 5})
        await client.receive()
        control.handle(monitor, control.switches_command(["interop.forever"]))
        for _ in range(1000):
            frame = await client.receive()
            if frame["t"] != "next":
                break
    assert (frame["code"], frame["details"]) == ("unavailable", {"reason": "disabled", "method": "interop.forever"})


def test_checks_report_bad_bookkeeping_settings():
    bad = {"MONITOR_CALLS": "yes", "MONITOR_TTL_INTERVALS": 1, "HISTORY_RETENTION_DAYS": 0, "ADMIN_WEBSOCKET_URL": "ws"}
    with override_settings(STREAMING=bad):
        ids = sorted(m.id for m in checks.check_settings() if isinstance(m, Error))
    assert ids == ["streaming_app.E009", "streaming_app.E010", "streaming_app.E011", "streaming_app.E012"]


async def test_a_process_whose_snapshot_is_late_is_shown_as_lost():
    import json
    import time

    from streaming_app.monitor import get_store

    call = {"key": "gone:1/c/1", "method": "interop.forever", "started": time.time() - 9}
    stale = {"process": "gone:1", "at": time.time() - 2.5, "interval": 1.0, "calls": [call]}
    await get_store().write("gone:1", json.dumps(stale), ttl=5)
    try:
        live = await live_calls()
    finally:
        await get_store().delete("gone:1")
    assert [p["lost"] for p in live["processes"] if p["process"] == "gone:1"] == [True]
    assert [c["lost"] for c in live["calls"] if c["key"] == "gone:1/c/1"] == [True]


async def test_a_snapshot_that_is_not_rewritten_expires():
    import json
    import time

    from streaming_app.monitor import get_store

    snapshot = {"process": "brief:1", "at": time.time(), "interval": 0.05, "calls": []}
    await get_store().write("brief:1", json.dumps(snapshot), ttl=0.15)
    def listed(live):
        return [p["lost"] for p in live["processes"] if p["process"] == "brief:1"]

    assert listed(await live_calls()) == [False]
    await asyncio.sleep(0.2)
    assert listed(await live_calls()) == []


async def test_a_snapshot_store_that_keeps_failing_is_logged_once_and_its_recovery_once(caplog):
    from conftest import free_port

    unreachable = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    caplog.set_level("WARNING", logger="streaming_app")
    with override_settings(STREAMING={"BROKER": unreachable}):
        for _ in range(5):
            await monitor.write_snapshot()
    await monitor.write_snapshot()  # back on the memory broker: the write succeeds
    lines = [r.getMessage() for r in caplog.records if r.name == "streaming_app"]
    assert len(lines) == 2, lines
    assert lines[0].startswith("streaming_app: could not write the live call snapshot: ")
    assert lines[1] == "streaming_app: could write the live call snapshot again after 5 failures"


async def test_calls_ending_faster_than_the_history_buffer_holds_keep_the_newest_and_aggregate_the_rest(caplog):
    caplog.set_level("WARNING", logger="streaming_app")
    with override_settings(STREAMING={**MEMORY, "HISTORY_BUFFER": 2}):
        async with StreamTestClient() as client:
            for _ in range(5):
                await client.collect("interop.count", {"n": 1})
        rows = await history()
    assert sorted((r.call_id, r.calls) for r in rows) == [(0, 3), (4, 1), (5, 1)]
    lines = [r.getMessage() for r in caplog.records if r.name == "streaming_app"]
    assert lines == [
        "streaming_app: 3 finished calls were written as aggregates (HISTORY_BUFFER, HISTORY_ROWS_PER_INTERVAL)"
    ]


async def test_a_lasting_flood_logs_its_aggregates_once_a_minute_not_every_interval(caplog):
    caplog.set_level("WARNING", logger="streaming_app")
    with override_settings(STREAMING={**MEMORY, "HISTORY_BUFFER": 1}):
        async with StreamTestClient() as client:
            for _ in range(3):
                for _ in range(3):
                    await client.collect("interop.count", {"n": 1})
                await monitor.flush()
    lines = [r.getMessage() for r in caplog.records if r.name == "streaming_app"]
    assert lines == [
        "streaming_app: 2 finished calls were written as aggregates (HISTORY_BUFFER, HISTORY_ROWS_PER_INTERVAL)"
    ]
