"""Model change streams: first the rows a viewer may see, then their changes, live and resumable.

    class OrderStream(ModelStreamView):
        namespace = "orders"
        queryset = Order.objects.select_related("customer")
        serializer_class = OrderSerializer
        filter_fields = ["id", "status"]

        def get_queryset(self):              # the snapshot: what this viewer may see
            return super().get_queryset().filter(customer__user=self.request.user)

        def is_visible(self, order):         # the same rule for one row, without a query
            return order.customer.user_id == self.request.user.pk

serves ``orders.watch(id=None, status=None)``: ``ready``, then
``{"op": "snapshot", "data": [...], "last": bool}`` chunks in primary-key
order, then ``{"op": "created" | "updated", "pk": ..., "data": {...}}`` and
``{"op": "deleted", "pk": ...}`` as rows enter, change within or leave what
the viewer may see, each change with an event id to resume after.

The cost of a change does not grow with the watchers: each serving process
reads the changed rows once through the class's ``queryset`` and renders each
once (:mod:`streaming_app.changefeed`); ``is_visible`` and the filters decide
per watcher, in memory. A view that declares no ``is_visible`` is still
correct: its watchers are grouped by the SQL of their ``get_queryset()``, and
each group shares one re-read of every change.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import inspect
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, ClassVar, Hashable, Sequence

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models

from . import exceptions
from .changefeed import ChangedRows, get_feed
from .changes import CREATED, DELETED, UPDATED, model_topic, track, wire_pk
from .context import CallContext
from .db import run_in_worker
from .decorators import MARK, MethodOptions, server_stream
from .events import Event
from .hub import parse_eid
from .protocol import frames as wire
from .protocol.session import CallKind
from .views import StreamView

if TYPE_CHECKING:
    from .hub import Subscription

# A model field's Python type, for the watch's filter arguments (first match wins).
_FIELD_TYPES: list[tuple[type[models.Field[Any, Any]], type]] = [
    (models.BooleanField, bool),
    (models.DateTimeField, datetime.datetime),
    (models.DateField, datetime.date),
    (models.TimeField, datetime.time),
    (models.UUIDField, uuid.UUID),
    (models.DecimalField, decimal.Decimal),
    (models.FloatField, float),
    (models.IntegerField, int),
    (models.AutoField, int),
    (models.CharField, str),
    (models.TextField, str),
]


def filter_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The concrete model field behind filter argument ``name`` (a foreign key filters by its target's key)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise LookupError(f"{name!r} is not a concrete field of {model._meta.label}")
    return field


def filter_type(field: models.Field[Any, Any]) -> type:
    """The Python type a filter on ``field`` takes."""
    target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
    for field_class, python_type in _FIELD_TYPES:
        if isinstance(target, field_class):
            return python_type
    raise LookupError(f"{field.model._meta.label}.{field.name}: no filter type for {type(target).__name__}")


def _watch_for(view_class: type[ModelStreamView]) -> Callable[..., Any]:
    """``watch`` with the view's filter fields as keyword arguments, each optional.

    Generated so the arguments are validated like any method's (unknown or
    ill-typed ones are ``invalid_argument`` naming the field) and described
    by the signature that schemas and clients read.
    """
    model = view_class.get_model()
    parameters = [
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    annotations: dict[str, Any] = {}
    for name in view_class.filter_fields:
        try:
            python_type = filter_type(filter_field(model, name))
        except (LookupError, FieldDoesNotExist):
            continue  # streaming_app.E022 reports it
        annotations[name] = python_type | None
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=python_type | None)
        )

    async def watch(self: ModelStreamView, ctx: CallContext, **filters: Any) -> AsyncIterator[Any]:
        async for item in self.stream_changes(ctx, filters):
            yield item

    watch.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    watch.__annotations__ = annotations
    watch.__doc__ = f"The {model._meta.verbose_name_plural} this viewer may see, then their changes, live."
    watch.__qualname__ = f"{view_class.__qualname__}.watch"
    setattr(watch, MARK, MethodOptions(CallKind.SERVER_STREAM))
    return watch


class ModelStreamView(StreamView):
    """A stream view over a queryset and a serializer, like DRF's ``GenericAPIView``.

    ``get_queryset()`` decides what a viewer's snapshot holds; ``is_visible``
    decides the same for one changed row without a query (declare it: it is
    what keeps a change's cost flat in the watchers); ``filter_fields`` are
    the equality filters ``watch`` takes; ``get_rendering_key()`` says which
    viewers may share one serialization of a row.
    """

    queryset: ClassVar[models.QuerySet[Any] | None] = None
    filter_fields: ClassVar[Sequence[str]] = ()
    snapshot_chunk_size: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.queryset is not None and "watch" not in cls.__dict__:
            cls.watch = _watch_for(cls)  # type: ignore[method-assign]

    @classmethod
    def on_registered(cls) -> None:
        if cls.queryset is not None:  # without one, streaming_app.E020 says so
            track(cls.queryset.model)

    @classmethod
    def get_model(cls) -> type[models.Model]:
        if cls.queryset is None:
            raise ImproperlyConfigured(f"{cls.__qualname__} needs a 'queryset'.")
        return cls.queryset.model

    # -- policies ------------------------------------------------------------------

    def get_queryset(self) -> models.QuerySet[Any]:
        """The rows this request may see; override to filter by ``self.request.user``."""
        assert self.queryset is not None, f"{type(self).__qualname__} needs a 'queryset'."
        return self.queryset.all()

    def is_visible(self, obj: models.Model) -> bool:
        """May this viewer see ``obj``? The in-memory twin of :meth:`get_queryset` for one row.

        Override it, with the same rule as ``get_queryset()`` and without
        touching the database (``obj`` comes from the class's ``queryset``, so
        ``select_related`` there makes relations free): then every watcher of
        a process shares one read of each change. Left as it is, watchers are
        grouped by their ``get_queryset()`` SQL and each group re-reads.
        """
        raise NotImplementedError

    @classmethod
    def declares_visibility(cls) -> bool:
        return cls.is_visible is not ModelStreamView.is_visible

    def get_rendering_key(self) -> Hashable:
        """Viewers with equal keys share one serialization of each changed row.

        The default shares it among every viewer: right for serializers whose
        output does not depend on the request. Return something per user
        (``self.request.user.pk``) when it does.
        """
        return None

    def get_arguments_serializer_class(self) -> type | None:
        # serializer_class renders rows here; arguments are validated from type hints.
        return self.stream_method.options.serializer_class

    def filter_queryset(self, queryset: models.QuerySet[Any], filters: dict[str, Any]) -> models.QuerySet[Any]:
        """The snapshot's queryset narrowed by the watch's filter arguments."""
        return queryset.filter(**filters) if filters else queryset

    def serialize(self, rows: list[models.Model]) -> list[Any]:
        return list(self.get_serializer(rows, many=True).data)

    # -- the stream ------------------------------------------------------------------

    @server_stream
    async def watch(self, ctx: CallContext) -> AsyncIterator[Any]:
        """Replaced, in each subclass with a ``queryset``, by one taking its ``filter_fields``."""
        async for item in self.stream_changes(ctx, {}):
            yield item

    async def stream_changes(self, ctx: CallContext, filters: dict[str, Any]) -> AsyncIterator[Any]:
        """``watch``'s body: ready, the snapshot (unless resumed), then changes."""
        watch = _Watch(self, ctx, {name: value for name, value in filters.items() if value is not None})
        async for item in watch.run():
            yield item


class _Watch:
    """One watcher: what it has been sent, and how a change looks to it."""

    def __init__(self, view: ModelStreamView, ctx: CallContext, filters: dict[str, Any]) -> None:
        self.view = view
        self.ctx = ctx
        self.model = view.get_model()
        self.filters = filters
        self.matchers = [(filter_field(self.model, name).attname, value) for name, value in filters.items()]
        self.scope = self._scope()
        self.visible: set[Any] = set()  # pks this watcher holds, as far as the server knows
        self.sent_deleted: set[Any] = set()
        self.knows_state = True  # False after a recovered resume: the client's rows are its own
        self.rendering = view.get_rendering_key()
        self.fast = view.declares_visibility()
        self.group_key: Hashable = None
        self.confirmed: str | None = None  # the watch eid the client has all items up to

    # -- resume points ------------------------------------------------------------------

    def _scope(self) -> str:
        """What a resume point is valid for: this model, these filters, this user."""
        user = self.ctx.user
        who = f"user:{user.pk}" if getattr(user, "is_authenticated", False) else "anonymous"
        filters = ",".join(f"{name}={value!r}" for name, value in sorted(self.filters.items()))
        text = f"{self.model._meta.label_lower}|{filters}|{who}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def eid(self, topic_eid: str) -> str:
        """The watch's event id for a topic event id: the topic's, scoped to this watch."""
        epoch, _, offset = topic_eid.rpartition(":")
        return f"{epoch}~{self.scope}:{offset}"

    def snapshot_eid(self, topic_eid: str) -> str:
        """A position that cannot be resumed from: the client has no complete snapshot yet."""
        epoch, _, offset = topic_eid.rpartition(":")
        return f"{epoch}~{self.scope}~snapshot:{offset}"

    def topic_resume(self) -> str | None:
        """The topic event id to resume after, if the client's resume point is one of this watch's."""
        resume = self.ctx.resume
        if resume is None:
            return None
        epoch, offset = parse_eid(resume)  # invalid_argument for what is no event id at all
        topic_epoch, _, scope = epoch.rpartition("~")
        if scope != self.scope or not topic_epoch:
            return None  # another model, filter set or user, or a snapshot position
        return f"{topic_epoch}:{offset}"

    def _on_error(self, error: exceptions.StreamError) -> None:
        """A subscription error's resume point, as the client knows positions (watch eids)."""
        if "resume" in error.details:
            error = type(error)(error.message, {**error.details, "resume": self.confirmed})
        self.ctx.abort(error)

    # -- the stream -------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[Any]:
        topic_resume = self.topic_resume()
        subscription: Subscription = await self.ctx.subscribe(
            model_topic(self.model), resumable=False, after=topic_resume, on_error=self._on_error
        )
        position = subscription.position
        assert position is not None
        self.confirmed = self.snapshot_eid(position)
        if topic_resume is not None and subscription.recovered:
            self.knows_state = False
            self.confirmed = self.eid(position)
            await self.ctx.ready(self.confirmed, True)
        else:
            await self.ctx.ready(self.snapshot_eid(position), False)
            async for item in self.snapshot(position):
                yield item
        if not self.fast:
            # Compiling SQL may need the connection (server version): off the loop.
            self.group_key = await run_in_worker(self.queryset_sql)
        feed = get_feed()
        async for event in subscription:
            change = event.data
            if not isinstance(change, dict):
                continue
            pks = [wire_pk(pk) for pk in change.get("pks", ())]
            rows = await feed.rows((type(self.view), event.eid, self.group_key), lambda: self.read(pks))
            items = await self.changes(rows, pks, str(change.get("op")))
            watch_eid = self.eid(event.eid or position)
            for index, item_json in enumerate(items):
                last = index == len(items) - 1
                yield Event.from_json(item_json, eid=watch_eid if last else None)
            self.confirmed = watch_eid

    async def snapshot(self, position: str) -> AsyncIterator[Any]:
        """The viewer's rows in keyset-paginated chunks: one query per chunk, as credit allows."""
        after = None
        size = self.view.snapshot_chunk_size
        while True:
            rows, data = await run_in_worker(self.snapshot_chunk, after)
            self.visible.update(wire_pk(row.pk) for row in rows)
            last = len(rows) < size
            item = {"op": "snapshot", "data": data, "last": last}
            if last:
                # Only a complete snapshot is a point to resume from.
                self.confirmed = self.eid(position)
                yield Event(item, eid=self.confirmed)
                return
            yield item
            after = rows[-1].pk

    def snapshot_chunk(self, after: Any) -> tuple[list[models.Model], list[Any]]:
        queryset = self.view.filter_queryset(self.view.get_queryset(), self.filters).order_by("pk")
        if after is not None:
            queryset = queryset.filter(pk__gt=after)
        rows = list(queryset[: self.view.snapshot_chunk_size])
        return rows, self.view.serialize(rows)

    def queryset_sql(self) -> str:
        """What groups watchers of a view without ``is_visible``: their queryset's SQL."""
        return str(self.view.filter_queryset(self.view.get_queryset(), self.filters).query)

    def read(self, pks: list[Any]) -> dict[Any, models.Model]:
        """The changed rows now: through the shared ``queryset`` (fast path) or this group's queryset."""
        if self.fast:
            queryset = self.view.queryset.all()  # type: ignore[union-attr]
        else:
            queryset = self.view.filter_queryset(self.view.get_queryset(), self.filters)
        return {wire_pk(row.pk): row for row in queryset.filter(pk__in=pks)}

    def sees(self, row: models.Model) -> bool:
        if self.fast and not self.view.is_visible(row):
            return False
        return all(getattr(row, attname) == value for attname, value in self.matchers)

    async def changes(self, rows: ChangedRows, pks: list[Any], op_hint: str) -> list[str]:
        """The items (as JSON) one change event makes for this watcher."""
        items: list[str] = []
        rendered: dict[Any, Any] | None = None
        for pk in dict.fromkeys(pks):
            row = rows.rows.get(pk)
            if row is not None and self.sees(row):
                if rendered is None:
                    rendered = await rows.rendered(self.rendering, self.view.serialize)
                if pk in self.visible:
                    op = UPDATED
                elif self.knows_state:
                    op = CREATED
                else:
                    op = CREATED if op_hint == CREATED else UPDATED
                self.visible.add(pk)
                self.sent_deleted.discard(pk)
                items.append(rows.item_json(self.rendering, pk, op, rendered[pk]))
            elif pk in self.visible:
                self.visible.discard(pk)
                items.append(_deleted_json(pk))
            elif not self.knows_state and op_hint != CREATED and pk not in self.sent_deleted:
                # After a resume the client may hold a row that left its sight meanwhile.
                self.sent_deleted.add(pk)
                items.append(_deleted_json(pk))
        return items


def _deleted_json(pk: Any) -> str:
    return wire.dumps({"op": DELETED, "pk": pk})
