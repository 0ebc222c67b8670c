"""Model change streams (the demo's ``notes.watch``) against a real daphne on Redis.

Snapshot first, in chunks; then live changes, each filtered by the viewer's
queryset: public notes for everyone, private ones for their owner only.
"""

from __future__ import annotations

import asyncio
import os

import pytest
from asgiref.sync import sync_to_async

from project.demo.models import Note
from streaming_app import publish_changes
from wsclient import Connection, connected

pytestmark = [
    pytest.mark.redis, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def snapshot(conn: Connection, call_id: int, args: dict | None = None) -> list[dict]:
    """Start ``notes.watch``, read its ``ready`` and its snapshot chunks up to the last one."""
    return (await watch(conn, call_id, args))[1]


async def change(conn: Connection, call_id: int) -> dict:
    frame = await conn.recv_for(call_id)
    assert frame["t"] == "next", frame
    return frame["d"]


async def test_snapshot_comes_in_chunks_then_live_changes(daphne_on_redis):
    await sync_to_async(Note.objects.bulk_create)([Note(text=f"n{k}") for k in range(250)])
    async with connected(daphne_on_redis.ws_url) as watcher, connected(daphne_on_redis.ws_url) as writer:
        chunks = []
        await watcher.call(1, "notes.watch")
        assert (await watcher.recv_for(1))["t"] == "ready"
        while not chunks or not chunks[-1]["last"]:
            chunks.append((await watcher.recv_for(1))["d"])
        assert [len(chunk["data"]) for chunk in chunks] == [100, 100, 50]
        assert [row["text"] for chunk in chunks for row in chunk["data"]] == [f"n{k}" for k in range(250)]

        added = (await writer.result(1, "notes.add", {"text": "fresh"}))["d"]
        assert await change(watcher, 1) == {"op": "created", "pk": added["id"], "data": added}
        edited = (await writer.result(2, "notes.edit", {"id": added["id"], "text": "edited"}))["d"]
        assert await change(watcher, 1) == {"op": "updated", "pk": added["id"], "data": edited}
        await writer.result(3, "notes.remove", {"id": added["id"]})
        assert await change(watcher, 1) == {"op": "deleted", "pk": added["id"]}


async def test_viewer_sees_only_rows_of_their_queryset(daphne_on_redis, make_token):
    alice, bob = await sync_to_async(make_token)("alice"), await sync_to_async(make_token)("bob")
    async with connected(daphne_on_redis.ws_url, headers=bearer(bob)) as bob_ws:
        mine = (await bob_ws.result(1, "notes.add", {"text": "bob's secret", "public": False}))["d"]
        async with connected(daphne_on_redis.ws_url, headers=bearer(alice)) as alice_ws:
            assert await snapshot(alice_ws, 1) == []
            await alice_ws.result(2, "notes.add", {"text": "alice's own", "public": False})
            own = await change(alice_ws, 1)
            assert own["op"] == "created" and own["data"]["owner"] == "alice"

            await bob_ws.result(2, "notes.edit", {"id": mine["id"], "text": "still secret"})
            await bob_ws.result(3, "notes.edit", {"id": mine["id"], "public": True})
            shown = await change(alice_ws, 1)  # the private edit never reached her
            assert shown["op"] == "created" and shown["data"]["text"] == "still secret"
            await bob_ws.result(4, "notes.edit", {"id": mine["id"], "public": False})
            # Each change is re-read when its event arrives, so the second edit's
            # event may re-send the row she was just shown (documented): at most
            # once, unchanged, before it leaves her queryset.
            after = await change(alice_ws, 1)
            if after["op"] == "updated":
                assert after["data"] == shown["data"]
                after = await change(alice_ws, 1)
            assert after == {"op": "deleted", "pk": mine["id"]}


async def test_bulk_update_is_announced_by_publish_changes(daphne_on_redis):
    notes = await sync_to_async(Note.objects.bulk_create)([Note(text="old") for _ in range(3)])
    async with connected(daphne_on_redis.ws_url) as watcher:
        assert len(await snapshot(watcher, 1)) == 3

        def bulk_update():
            queryset = Note.objects.filter(pk__in=[note.pk for note in notes])
            queryset.update(text="new")  # no signal: update() bypasses save()
            publish_changes(queryset)

        await sync_to_async(bulk_update)()
        changes = [await change(watcher, 1) for _ in range(3)]
    assert sorted(c["pk"] for c in changes) == sorted(note.pk for note in notes)
    assert {(c["op"], c["data"]["text"]) for c in changes} == {("updated", "new")}


async def test_changes_inside_a_rolled_back_transaction_are_never_sent(daphne_on_redis):
    from django.db import transaction

    async with connected(daphne_on_redis.ws_url) as watcher:
        assert await snapshot(watcher, 1) == []

        def rolled_back_then_committed():
            try:
                with transaction.atomic():
                    Note.objects.create(text="never")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            Note.objects.create(text="committed")

        await sync_to_async(rolled_back_then_committed)()
        first = await change(watcher, 1)
    assert first["data"]["text"] == "committed"


# -- the shape of a watch ------------------------------------------------------------------


async def watch(conn: Connection, call_id: int, args: dict | None = None, **fields) -> tuple[dict, list[dict]]:
    """Start ``notes.watch``; its ``ready`` frame and the rows of its snapshot (none when recovered)."""
    await conn.call(call_id, "notes.watch", args, **fields)
    ready = await conn.recv_for(call_id)
    assert ready["t"] == "ready", ready
    if ready.get("recovered"):
        return ready, []
    rows: list[dict] = []
    for _ in range(100):
        frame = await conn.recv_for(call_id)
        assert frame["t"] == "next" and frame["d"]["op"] == "snapshot", frame
        rows.extend(frame["d"]["data"])
        if frame["d"]["last"]:
            assert "eid" in frame, "a complete snapshot is a point to resume from"
            return ready, rows
        assert "eid" not in frame, "a partial snapshot is no point to resume from"
    raise AssertionError("snapshot never ended")


async def next_frame(conn: Connection, call_id: int) -> dict:
    frame = await conn.recv_for(call_id)
    assert frame["t"] == "next", frame
    return frame


create_note = sync_to_async(lambda **fields: Note.objects.create(**fields))


async def test_watch_of_one_id_sees_only_that_row(daphne_on_redis):
    one, other = await create_note(text="one"), await create_note(text="other")
    async with connected(daphne_on_redis.ws_url) as watcher:
        _, rows = await watch(watcher, 1, {"id": one.pk})
        assert [row["id"] for row in rows] == [one.pk]
        other.text = "other, edited"
        await sync_to_async(other.save)()
        one.text = "one, edited"
        await sync_to_async(one.save)()
        frame = await next_frame(watcher, 1)
    assert frame["d"] == {"op": "updated", "pk": one.pk, "data": {**rows[0], "text": "one, edited", "updated": frame["d"]["data"]["updated"]}}


async def test_watch_of_public_rows_sees_a_row_that_turns_private_as_deleted(daphne_on_redis, make_user):
    owner = await sync_to_async(make_user)("olga")
    note = await create_note(text="shared", owner=owner)
    async with connected(daphne_on_redis.ws_url) as watcher:
        _, rows = await watch(watcher, 1, {"public": True})
        assert [row["id"] for row in rows] == [note.pk]
        await sync_to_async(Note.objects.filter(pk=note.pk).update)(public=False)  # ChangeManager publishes it
        assert (await next_frame(watcher, 1))["d"] == {"op": "deleted", "pk": note.pk}


async def test_unknown_filter_argument_is_invalid_argument_naming_it(daphne_on_redis):
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watcher.call(1, "notes.watch", {"owner": 3})
        frame = await watcher.recv_for(1)
    assert frame["t"] == "error" and frame["code"] == "invalid_argument", frame
    assert frame["details"]["errors"] == {"owner": ["Unknown argument."]}


async def test_ill_typed_filter_argument_is_invalid_argument_naming_it(daphne_on_redis):
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watcher.call(1, "notes.watch", {"id": "five", "public": True})
        frame = await watcher.recv_for(1)
    assert frame["t"] == "error" and frame["code"] == "invalid_argument", frame
    assert list(frame["details"]["errors"]) == ["id"]


# -- writes that send no signal --------------------------------------------------------------


async def test_queryset_update_through_the_change_manager_is_sent(daphne_on_redis):
    notes = await sync_to_async(Note.objects.bulk_create)([Note(text="old") for _ in range(3)])  # publishes created
    async with connected(daphne_on_redis.ws_url) as watcher:
        _, rows = await watch(watcher, 1)
        assert len(rows) == 3
        await sync_to_async(Note.objects.filter(pk__in=[n.pk for n in notes]).update)(text="new")
        changes = [(await next_frame(watcher, 1))["d"] for _ in range(3)]
    assert sorted(c["pk"] for c in changes) == sorted(n.pk for n in notes)
    assert {(c["op"], c["data"]["text"]) for c in changes} == {("updated", "new")}


async def test_bulk_create_and_bulk_update_through_the_change_manager_are_sent(daphne_on_redis):
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watch(watcher, 1)
        notes = await sync_to_async(Note.objects.bulk_create)([Note(text=f"b{k}") for k in range(2)])
        created = [(await next_frame(watcher, 1))["d"] for _ in range(2)]
        for note in notes:
            note.text += "!"
        await sync_to_async(Note.objects.bulk_update)(notes, ["text"])
        updated = [(await next_frame(watcher, 1))["d"] for _ in range(2)]
    assert [(c["op"], c["data"]["text"]) for c in created] == [("created", "b0"), ("created", "b1")]
    assert [(c["op"], c["data"]["text"]) for c in updated] == [("updated", "b0!"), ("updated", "b1!")]


async def test_update_in_a_rolled_back_transaction_is_never_sent(daphne_on_redis):
    from django.db import transaction

    note = await create_note(text="before")
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watch(watcher, 1)

        def rolled_back_update_then_committed_one():
            try:
                with transaction.atomic():
                    Note.objects.filter(pk=note.pk).update(text="never")
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
            Note.objects.filter(pk=note.pk).update(text="after")

        await sync_to_async(rolled_back_update_then_committed_one)()
        first = (await next_frame(watcher, 1))["d"]
        assert await watcher.quiet(0.3) == []
    assert first["op"] == "updated" and first["data"]["text"] == "after"


# -- resuming -----------------------------------------------------------------------------------


async def test_resumed_watch_gets_only_what_it_missed_and_nothing_private(daphne_on_redis, make_token):
    alice, bob = await sync_to_async(make_token)("alice"), await sync_to_async(make_token)("bob")
    kept = await create_note(text="kept")
    gone = await create_note(text="soon private")
    async with connected(daphne_on_redis.ws_url, headers=bearer(alice)) as first:
        _, rows = await watch(first, 1)
        assert {row["id"] for row in rows} == {kept.pk, gone.pk}
        fresh = await create_note(text="seen live")
        seen = await next_frame(first, 1)
        assert seen["d"]["pk"] == fresh.pk
        last_eid = seen["eid"]
    # Missed while away: an edit, a row turned private, a private row of bob's, a new public row.
    async with connected(daphne_on_redis.ws_url, headers=bearer(bob)) as bob_ws:
        await bob_ws.result(1, "notes.edit", {"id": kept.pk, "text": "kept, edited"})
        secret = (await bob_ws.result(2, "notes.add", {"text": "bob's secret", "public": False}))["d"]
    await sync_to_async(Note.objects.filter(pk=gone.pk).update)(public=False)
    added = await create_note(text="added while away")
    async with connected(daphne_on_redis.ws_url, headers=bearer(alice)) as again:
        ready, rows = await watch(again, 1, resume=last_eid)
        assert ready["recovered"] is True and ready["eid"] == last_eid and rows == []
        missed = [(await next_frame(again, 1))["d"] for _ in range(3)]
        assert await again.quiet(0.3) == []
    assert [(m["op"], m["pk"]) for m in missed] == [("updated", kept.pk), ("deleted", gone.pk), ("created", added.pk)]
    assert all(m.get("data", {}).get("text") != "bob's secret" for m in missed) and secret["id"] not in {m["pk"] for m in missed}


async def test_resume_point_of_another_user_snapshots_again(daphne_on_redis, make_token):
    alice = await sync_to_async(make_token)("alice")
    await create_note(text="n")
    async with connected(daphne_on_redis.ws_url) as anonymous:
        await watch(anonymous, 1)
        await create_note(text="m")
        eid = (await next_frame(anonymous, 1))["eid"]
    async with connected(daphne_on_redis.ws_url, headers=bearer(alice)) as signed_in:
        ready, rows = await watch(signed_in, 1, resume=eid)
    assert ready["recovered"] is False and len(rows) == 2


async def test_resume_point_of_another_filter_or_model_or_epoch_snapshots_again(daphne_on_redis):
    note = await create_note(text="n")
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watch(watcher, 1)
        await create_note(text="m")
        eid = (await next_frame(watcher, 1))["eid"]
        await watcher.call(2, "interop.subscribe", {"topic": "other"})
        topic_eid = (await watcher.recv_for(2))["eid"]  # ready of another topic
    epoch, _, offset = eid.rpartition(":")
    for resume, args in [(eid, {"id": note.pk}), (topic_eid, None), (f"0000{epoch}:{offset}", None)]:
        async with connected(daphne_on_redis.ws_url) as again:
            ready, rows = await watch(again, 1, args, resume=resume)
        assert ready["recovered"] is False, resume
        assert [row["text"] for row in rows] == (["n"] if args else ["n", "m"])


async def test_resume_point_taken_during_a_snapshot_snapshots_again(daphne_on_redis):
    await sync_to_async(Note.objects.bulk_create)([Note(text=f"n{k}") for k in range(150)])
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watcher.call(1, "notes.watch", credit=1)
        ready = await watcher.recv_for(1)
        first_chunk = await watcher.recv_for(1)
        assert first_chunk["d"]["last"] is False
    async with connected(daphne_on_redis.ws_url) as again:
        ready_again, rows = await watch(again, 1, resume=ready["eid"])
    assert ready_again["recovered"] is False and len(rows) == 150


async def test_malformed_resume_point_is_invalid_argument(daphne_on_redis):
    async with connected(daphne_on_redis.ws_url) as watcher:
        await watcher.call(1, "notes.watch", resume="not an event id")
        frame = await watcher.recv_for(1)
    assert frame["t"] == "error" and frame["code"] == "invalid_argument", frame


async def sse_events(response):
    """The events of an SSE response as dicts (``event``, ``id``, ``data`` decoded), comments skipped."""
    import json

    event: dict = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in event:
                event["data"] = json.loads(event["data"])
                yield event
            event = {}
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            event[field] = value[1:] if value.startswith(" ") else value


async def test_watch_over_sse_resumes_with_last_event_id(daphne_on_redis):
    import httpx

    await create_note(text="n")
    url = f"{daphne_on_redis.http_url}/streams/notes.watch"
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
            events = sse_events(response)
            ready = await anext(events)
            snapshot = await anext(events)
            assert ready["event"] == "ready" and snapshot["data"]["last"] is True and snapshot["id"]
            await create_note(text="live")
            live = await anext(events)
        await create_note(text="missed")
        headers = {"Accept": "text/event-stream", "Last-Event-ID": live["id"]}
        async with client.stream("GET", url, headers=headers) as response:
            events = sse_events(response)
            ready = await anext(events)
            missed = await anext(events)
    assert live["data"]["op"] == "created" and live["data"]["data"]["text"] == "live"
    assert ready["data"]["recovered"] is True
    assert missed["data"]["op"] == "created" and missed["data"]["data"]["text"] == "missed"


# -- what a change costs -------------------------------------------------------------------------


@pytest.fixture
def watch_probe(tmp_path, redis_url):
    """A daphne of the example project plus ``watchprobe`` (tests/probes/watchprobe_asgi.py) on Redis,
    counting its own SQL statements; this process publishes through the same Redis."""
    from django.test import override_settings

    from conftest import start_server

    server = start_server(tmp_path, app="probes.watchprobe_asgi:application", env={"REDIS_URL": redis_url})
    with override_settings(STREAMING={"BROKER": redis_url}):
        yield server
    server.stop()


async def probe_counts(conn: Connection, call_id: int) -> dict:
    return (await conn.result(call_id, "watchprobe.queries"))["d"]


async def save_notes(changes: int):
    """Saves, seen by post_save: their events carry the row."""

    async def write() -> None:
        for k in range(changes):
            await create_note(text=f"change {k}")

    return write


async def update_notes(changes: int):
    """``update()`` through the change manager: its events name rows by key only (drafts made beforehand)."""
    notes = await sync_to_async(Note.objects.bulk_create)([Note(text="draft", public=False) for _ in range(changes)])

    async def write() -> None:
        for note in notes:
            await sync_to_async(Note.objects.filter(pk=note.pk).update)(public=True)

    return write


async def work_per_change(
    server, method: str, watchers: int, setup, changes: int = 5, tokens: list[str] | None = None
) -> tuple[float, float]:
    """SQL statements and change reads of the serving process per change, with ``watchers`` watching
    (anonymous, or each signed in with the next of ``tokens``)."""
    from contextlib import AsyncExitStack

    write = await setup(changes)
    await asyncio.sleep(0.3)  # the setup's own events are past
    async with AsyncExitStack() as stack:
        conns = [
            await stack.enter_async_context(connected(server.ws_url, headers=bearer(tokens[n]) if tokens else None))
            for n in range(watchers)
        ]
        for conn in conns:
            await conn.call(1, method)
            assert (await conn.recv_for(1))["t"] == "ready"
            assert (await conn.recv_for(1))["d"]["last"] is True
        before = await probe_counts(conns[0], 2)
        await write()
        for conn in conns:
            for _ in range(changes):
                assert (await next_frame(conn, 1))["d"]["op"] == "created"
        after = await probe_counts(conns[0], 3)
    return (after["queries"] - before["queries"]) / changes, (after["reads"] - before["reads"]) / changes


@pytest.mark.parametrize(
    "method, write, reads",
    [
        ("notes.watch", save_notes, 0),  # the event carries the saved row: nothing to read
        ("notes.watch", update_notes, 1),  # named by key: one read per change
        ("watchprobe.watch", save_notes, 1),  # no is_visible: one read per queryset (all anonymous here)
    ],
    ids=["carried", "read", "grouped"],
)
async def test_database_work_per_change_does_not_grow_with_the_watchers(watch_probe, method, write, reads):
    few = await work_per_change(watch_probe, method, 5, write)
    many = await work_per_change(watch_probe, method, 50, write)
    assert many[1] == few[1] == reads, (few, many)
    # One statement per read (the probe's own calls may add a history write, hence the margin).
    assert many[0] <= reads + 0.5 and few[0] <= reads + 0.5, (few, many)


async def test_database_work_per_change_does_not_grow_with_distinct_users(watch_probe, make_token):
    tokens = [await sync_to_async(make_token)(f"watcher{n}") for n in range(50)]
    few = await work_per_change(watch_probe, "notes.watch", 5, update_notes, tokens=tokens[:5])
    many = await work_per_change(watch_probe, "notes.watch", 50, update_notes, tokens=tokens)
    assert many[1] == few[1] == 1, (few, many)


async def test_cancelled_watch_stops_reading_its_snapshot(watch_probe):
    await sync_to_async(Note.objects.bulk_create)([Note(text=f"n{k}") for k in range(200)])
    async with connected(watch_probe.ws_url) as watcher:
        before = await probe_counts(watcher, 1)
        await watcher.call(2, "watchprobe.watch", credit=2)  # 20 chunks of 10 rows
        assert (await watcher.recv_for(2))["t"] == "ready"
        assert (await watcher.recv_for(2))["d"]["last"] is False
        await watcher.send({"t": "cancel", "id": 2})
        await watcher.sync()  # no terminal frame for a cancelled call
        await watcher.quiet(0.3)
        after = await probe_counts(watcher, 3)
    assert after["queries"] - before["queries"] <= 3  # the chunks credit allowed, not the other 18


# -- several processes ------------------------------------------------------------------------------


async def test_watch_resumes_exactly_on_another_process_after_a_kill(two_servers):
    from django.test import override_settings

    first, second = two_servers
    with override_settings(STREAMING={"BROKER": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}):
        async with connected(first.ws_url) as watcher:
            await watch(watcher, 1)
            seen = await create_note(text="seen")
            frame = await next_frame(watcher, 1)
            assert frame["d"]["pk"] == seen.pk
            first.process.kill()
            first.process.wait(10)
        missed = [await create_note(text=f"missed {k}") for k in range(3)]
        async with connected(second.ws_url) as again:
            ready, rows = await watch(again, 1, resume=frame["eid"])
            got = [(await next_frame(again, 1))["d"] for _ in range(3)]
            assert await again.quiet(0.3) == []
    assert ready["recovered"] is True and rows == []
    assert [(g["op"], g["pk"]) for g in got] == [("created", note.pk) for note in missed]


async def test_visibility_that_needs_a_relation_reads_the_row_instead_of_the_carried_one(watch_probe, make_user):
    owner = await sync_to_async(make_user)("rosa")
    async with connected(watch_probe.ws_url) as watcher:
        await watcher.call(1, "ownerprobe.watch")
        assert (await watcher.recv_for(1))["t"] == "ready"
        assert (await watcher.recv_for(1))["d"]["last"] is True
        before = await probe_counts(watcher, 2)
        notes = [await create_note(text=f"owned {k}", owner=owner) for k in range(3)]
        got = [(await next_frame(watcher, 1))["d"] for _ in range(3)]
        after = await probe_counts(watcher, 3)
    assert [(g["op"], g["pk"], g["data"]["owner"]) for g in got] == [("created", n.pk, "rosa") for n in notes]
    assert after["reads"] - before["reads"] == 3
