"""Model change streams (the demo's ``notes.watch``) against a real daphne on Redis.

Snapshot first, in chunks; then live changes, each filtered by the viewer's
queryset: public notes for everyone, private ones for their owner only.
"""

from __future__ import annotations

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
    await conn.call(call_id, "notes.watch", args)
    ready = await conn.recv_for(call_id)
    assert ready["t"] == "ready", ready
    rows: list[dict] = []
    for _ in range(100):
        frame = await conn.recv_for(call_id)
        assert frame["t"] == "next" and frame["d"]["op"] == "snapshot", frame
        rows.extend(frame["d"]["data"])
        if frame["d"]["last"]:
            return rows
    raise AssertionError("snapshot never ended")


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
