"""Today's per-watcher re-read, kept for bench/model_fanout.py's ``legacy`` variant.

``legacy_notes.watch`` is ``ModelStreamView.watch`` as it stood at commit
7c8ee82 (streaming_app/generics.py), over the demo's ``Note`` model with the
demo's visibility rule (public notes, and a signed-in user's own): subscribe,
send the snapshot in primary-key chunks, then re-read every change through the
watcher's own ``get_queryset()``, one query per change and watcher, on the
process's database thread (``database_sync_to_async``).

It depends on nothing of ``ModelStreamView`` or ``streaming_app.changes``, so
it keeps measuring the old design while those change: it is a plain
``StreamView``, and this module publishes its own change events
(``{"op": ..., "pks": [pk]}`` on the topic ``bench.legacy_notes``, after the
transaction commits, exactly what ``changes.publish_changes`` published at that
commit) from ``Note``'s ``post_save``/``post_delete``. It is registered only by
``bench.model_fanout_settings``, whose ``STREAMS_MODULE`` names this module, so
those processes serve it and not ``notes.*``.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from channels.db import database_sync_to_async
from django.db import models, router, transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save

from rest_framework import serializers

from project.demo.models import Note
from streaming_app import StreamView, server_stream
from streaming_app.topics import publish

TOPIC = "bench.legacy_notes"
CHUNK = 100


class NoteSerializer(serializers.ModelSerializer):
    """The demo's ``NoteSerializer`` as at 7c8ee82 (kept here so the demo may change)."""

    owner = serializers.CharField(source="owner.username", default=None, read_only=True)

    class Meta:
        model = Note
        fields = ["id", "text", "public", "owner", "updated"]


def _pk(value: Any) -> Any:
    return value if isinstance(value, (int, str)) else str(value)


def _publish(op: str, instance: Note, using: str) -> None:
    event = {"op": op, "pks": [_pk(instance.pk)]}
    transaction.on_commit(lambda: publish(TOPIC, event), using=using or router.db_for_write(Note), robust=True)


def _saved(sender: Any, instance: Note, created: bool, using: str, **kwargs: Any) -> None:
    _publish("created" if created else "updated", instance, using)


def _deleted(sender: Any, instance: Note, using: str, **kwargs: Any) -> None:
    _publish("deleted", instance, using)


post_save.connect(_saved, sender=Note, dispatch_uid="bench.legacy_notes", weak=False)
post_delete.connect(_deleted, sender=Note, dispatch_uid="bench.legacy_notes", weak=False)


class LegacyNoteStreams(StreamView):
    """``legacy_notes.watch``: snapshot, then every change re-read per watcher."""

    namespace = "legacy_notes"

    def get_queryset(self) -> models.QuerySet:
        queryset = Note.objects.select_related("owner")
        user = self.request.user
        if user.is_authenticated:
            return queryset.filter(Q(public=True) | Q(owner=user))
        return queryset.filter(public=True)

    def serialize(self, rows: list[Note]) -> list[Any]:
        return list(NoteSerializer(rows, many=True).data)

    @server_stream
    async def watch(self, ctx) -> AsyncIterator[dict[str, Any]]:
        # As at 7c8ee82: subscribe first (nothing committed meanwhile is missed), not resumable.
        changes = await ctx.subscribe(TOPIC, resumable=False)
        visible: set[Any] = set()
        after = None
        while True:
            rows, data = await database_sync_to_async(self._snapshot_chunk)(after)
            visible.update(_pk(row.pk) for row in rows)
            last = len(rows) < CHUNK
            yield {"op": "snapshot", "data": data, "last": last}
            if last:
                break
            after = rows[-1].pk
        async for event in changes:
            change = event.data
            pks = [_pk(pk) for pk in change.get("pks", ())]
            found = await database_sync_to_async(self._rows)(pks)
            for pk in pks:
                if pk in found:
                    op = "updated" if pk in visible else "created"
                    visible.add(pk)
                    yield {"op": op, "pk": pk, "data": found[pk]}
                elif pk in visible:
                    visible.discard(pk)
                    yield {"op": "deleted", "pk": pk}

    def _snapshot_chunk(self, after: Any) -> tuple[list[Note], list[Any]]:
        queryset = self.get_queryset().order_by("pk")
        if after is not None:
            queryset = queryset.filter(pk__gt=after)
        rows = list(queryset[:CHUNK])
        return rows, self.serialize(rows)

    def _rows(self, pks: list[Any]) -> dict[Any, Any]:
        rows = list(self.get_queryset().filter(pk__in=pks))
        return {_pk(row.pk): item for row, item in zip(rows, self.serialize(rows))}
