"""Model change streams: first the rows a viewer may see, then their changes, live.

    class OrderStream(ModelStreamView):
        namespace = "orders"
        queryset = Order.objects.all()
        serializer_class = OrderSerializer

        def get_queryset(self):
            return super().get_queryset().filter(owner=self.request.user)

serves ``orders.watch``: ``{"op": "snapshot", "data": [...], "last": false}``
chunks (in primary-key order, ``last`` true on the final one), then
``{"op": "created" | "updated", "pk": ..., "data": {...}}`` and
``{"op": "deleted", "pk": ...}`` as rows enter, change in or leave the viewer's
queryset. It subscribes before reading the snapshot, so nothing committed
meanwhile is missed. Each change is re-read through the viewer's
``get_queryset()``, which is what filters it: one query per change event and
watcher (rows changed together by :func:`~streaming_app.changes.publish_changes`
share one query).
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from channels.db import database_sync_to_async
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from .changes import CREATED, DELETED, UPDATED, model_topic, track
from .context import CallContext
from .decorators import server_stream
from .views import StreamView


def _pk(value: Any) -> Any:
    """A primary key as it travels in JSON (UUIDs and the like as strings)."""
    return value if isinstance(value, (int, str)) else str(value)


class ModelStreamView(StreamView):
    """A stream view over a queryset and a serializer, like DRF's ``GenericAPIView``."""

    queryset: models.QuerySet | None = None
    snapshot_chunk_size = 100

    @classmethod
    def on_registered(cls) -> None:
        track(cls.get_model())

    @classmethod
    def get_model(cls) -> type[models.Model]:
        if cls.queryset is None:
            raise ImproperlyConfigured(f"{cls.__qualname__} needs a 'queryset'.")
        return cls.queryset.model

    def get_queryset(self) -> models.QuerySet:
        """The rows this request may see; override to filter by ``self.request.user``."""
        return self.get_model()._default_manager.all() if self.queryset is None else self.queryset.all()

    def get_arguments_serializer_class(self) -> type | None:
        # serializer_class renders rows here; arguments are validated from type hints.
        return self.stream_method.options.serializer_class

    def serialize(self, rows: list[models.Model]) -> list[Any]:
        return list(self.get_serializer(rows, many=True).data)

    @server_stream
    async def watch(self, ctx: CallContext) -> AsyncIterator[dict[str, Any]]:
        # Not resumable: a resumed watcher would need the rows it saw, so it reloads instead.
        changes = await ctx.subscribe(model_topic(self.get_model()), resumable=False)
        visible: set[Any] = set()
        after = None
        while True:
            rows, data = await database_sync_to_async(self._snapshot_chunk)(after)
            visible.update(_pk(row.pk) for row in rows)
            last = len(rows) < self.snapshot_chunk_size
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
                    op = UPDATED if pk in visible else CREATED
                    visible.add(pk)
                    yield {"op": op, "pk": pk, "data": found[pk]}
                elif pk in visible:
                    visible.discard(pk)
                    yield {"op": DELETED, "pk": pk}

    def _snapshot_chunk(self, after: Any) -> tuple[list[models.Model], list[Any]]:
        queryset = self.get_queryset().order_by("pk")
        if after is not None:
            queryset = queryset.filter(pk__gt=after)
        rows = list(queryset[: self.snapshot_chunk_size])
        return rows, self.serialize(rows)

    def _rows(self, pks: list[Any]) -> dict[Any, Any]:
        """The serialized rows among ``pks`` that the viewer's queryset includes now."""
        rows = list(self.get_queryset().filter(pk__in=pks))
        return {_pk(row.pk): item for row, item in zip(rows, self.serialize(rows))}
