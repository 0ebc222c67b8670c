"""Model change streams: first the rows a viewer may see, then their changes, live and resumable.

    class OrderStream(ModelStreamView):
        namespace = "orders"
        queryset = Order.objects.all()
        serializer_class = OrderSerializer
        filter_fields = ["id", "status"]

        def get_queryset(self):              # the snapshot: what this viewer may see
            return super().get_queryset().filter(owner=self.request.user)

        def is_visible(self, order):         # the same rule for one row, without a query
            return order.owner_id == self.request.user.pk

serves ``orders.watch(id=None, status=None)``: ``ready``, then
``{"op": "snapshot", "data": [...], "last": bool}`` chunks in primary-key
order, then ``{"op": "created" | "updated", "pk": ..., "data": {...}}`` and
``{"op": "deleted", "pk": ...}`` as rows enter, change within or leave what
the viewer may see, each change with an event id to resume after.

The cost of a change does not grow with the watchers. A save carries its row
in the change event (:mod:`streaming_app.changes`), so serving processes read
nothing; rows named by key only are read once per process through the class's
``queryset`` (:mod:`streaming_app.changefeed`). Each row is rendered and each
item encoded once; ``is_visible`` and the filters decide per watcher, in
memory. A view that declares no ``is_visible`` is still correct: its watchers
are grouped by the SQL of their ``get_queryset()``, and each group shares one
re-read of every change.
"""

from __future__ import annotations

import datetime
import decimal
import hashlib
import inspect
import types
import uuid
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, ClassVar, Hashable, Sequence

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured, SynchronousOnlyOperation
from django.db import models
from django.db.models.fields.related import RelatedField

from . import exceptions
from .changefeed import ChangedRows, ChangeFeed, get_feed
from .changes import CREATED, DELETED, UPDATED, model_topic, saved_instance, track, wire_pk
from .context import CallContext
from .db import run_in_worker
from .decorators import MARK, MethodOptions
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
    target = field.target_field if isinstance(field, RelatedField) else field
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
    parameters = list(_SELF_CTX)
    annotations: dict[str, Any] = {}
    for name in view_class.filter_fields:
        try:
            python_type = filter_type(filter_field(model, name))
        except (LookupError, FieldDoesNotExist):
            continue  # streaming_app.E024 reports it
        annotations[name] = python_type | None
        parameters.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=python_type | None)
        )

    doc = f"The {model._meta.verbose_name_plural} this viewer may see, then their changes, live."
    return _watch_method(view_class.__qualname__, parameters, annotations, doc)


def _watch_method(owner: str, parameters: list[inspect.Parameter], annotations: dict[str, Any], doc: str) -> Callable[..., Any]:
    """A server-stream method running :func:`_flat_watch`, with its own signature.

    A new function object per view, so each view's arguments are its own; the
    signature is what argument validation reads, so nothing else reaches the
    queryset's ``filter()``.
    """
    func = _flat_watch
    watch = types.FunctionType(func.__code__, func.__globals__, "watch", func.__defaults__, func.__closure__)
    setattr(watch, "__signature__", inspect.Signature(parameters))  # what inspect.signature() reads
    watch.__annotations__ = annotations
    watch.__doc__ = doc
    watch.__qualname__ = f"{owner}.watch"
    watch.__module__ = __name__
    setattr(watch, MARK, MethodOptions(CallKind.SERVER_STREAM))
    return watch


_SELF_CTX = [
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD),
]


async def _flat_watch(self: ModelStreamView, ctx: CallContext, **filters: Any) -> AsyncIterator[Any]:
    """``watch``'s body: ``ready``, the snapshot (unless resumed), then changes.

    One generator rather than a chain of them: each change passes through here
    once per watcher, so every layer would be paid thousands of times.
    """
    watch = _Watch(self, ctx, {name: value for name, value in filters.items() if value is not None})
    subscription = await watch.start()
    if not watch.recovered:
        async for chunk in watch.snapshot():
            yield chunk
    await watch.go_live()
    feed = get_feed()
    async for event in subscription:
        items = await watch.items_for(feed, event)
        eid = watch.eid(event.eid)  # once per event: this runs for every watcher
        if items:
            last = len(items) - 1
            for index, item_json in enumerate(items):
                yield Event.from_json(item_json, eid=eid if index == last else None)
        watch.confirmed = eid


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
    # Saves seen by a signal carry the row rendered by serializer_class from the
    # saved instance, so serving processes read nothing. Set False when the
    # serializer needs what only get_queryset() adds (annotations).
    carry_rows: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.queryset is not None and "watch" not in cls.__dict__:
            cls.watch = _watch_for(cls)

    @classmethod
    def on_registered(cls) -> None:
        if cls.queryset is None:  # streaming_app.E021 says so
            return
        carrier = (cls.namespace, cls.render_saved) if cls.carries_rows() and cls.namespace else None
        track(cls.queryset.model, carrier)

    @classmethod
    def carries_rows(cls) -> bool:
        """Whether watchers may take a saved row from its event instead of reading it.

        Only with ``is_visible`` (it decides on the carried columns) and one
        rendering for everyone (the carried one).
        """
        return (
            cls.carry_rows
            and cls.declares_visibility()
            and cls.get_rendering_key is ModelStreamView.get_rendering_key
            and cls.serializer_class is not None
        )

    @classmethod
    def render_saved(cls, instance: models.Model) -> Any:
        """A saved row as watchers see it, rendered in the saving process (no request there)."""
        assert cls.serializer_class is not None
        return cls.serializer_class(instance, context={"request": None, "view": None}).data

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

    # Replaced, in each subclass with a ``queryset``, by one taking its ``filter_fields``.
    watch = _watch_method("ModelStreamView", _SELF_CTX, {}, "Rows, then their changes (needs a queryset).")


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
        self.recovered = False  # True after a recovered resume: the client's rows are its own
        self.view_class = type(view)
        self.rendering = view.get_rendering_key()
        self.fast = view.declares_visibility()
        self.carries = self.fast and view.carries_rows()
        self.group_key: Hashable = None
        self.position = ""
        self.confirmed: str | None = None  # the watch eid the client has every item up to

    # -- resume points ------------------------------------------------------------------

    def _scope(self) -> str:
        """What a resume point is valid for: this model, these filters, this user."""
        user = self.ctx.user
        who = f"user:{user.pk}" if getattr(user, "is_authenticated", False) else "anonymous"
        filters = ",".join(f"{name}={value!r}" for name, value in sorted(self.filters.items()))
        text = f"{self.model._meta.label_lower}|{filters}|{who}"
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def eid(self, topic_eid: str | None) -> str:
        """The watch's event id for a topic event id: the topic's, scoped to this watch."""
        epoch, _, offset = (topic_eid or self.position).rpartition(":")
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

    async def start(self) -> Subscription:
        """Go live on the model's topic (resuming when the client's point is ours), then say ``ready``."""
        topic_resume = self.topic_resume()
        subscription: Subscription = await self.ctx.subscribe(
            model_topic(self.model), resumable=False, after=topic_resume, on_error=self._on_error
        )
        assert subscription.position is not None
        self.position = subscription.position
        if topic_resume is not None and subscription.recovered:
            self.recovered = True
            self.confirmed = self.eid(self.position)
            await self.ctx.ready(self.confirmed, True)
        else:
            self.confirmed = self.snapshot_eid(self.position)
            await self.ctx.ready(self.confirmed, False)
        return subscription

    async def snapshot(self) -> AsyncIterator[Any]:
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
                self.confirmed = self.eid(self.position)
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

    async def go_live(self) -> None:
        if not self.fast:
            # Compiling SQL may need the connection (server version): off the loop.
            self.group_key = await run_in_worker(self.queryset_sql)

    def queryset_sql(self) -> str:
        """What groups watchers of a view without ``is_visible``: their queryset's SQL."""
        return str(self.view.filter_queryset(self.view.get_queryset(), self.filters).query)

    # -- changes ----------------------------------------------------------------------------------

    async def items_for(self, feed: ChangeFeed, event: Event) -> list[str]:
        """The items (as JSON) one change event makes for this watcher.

        Every watcher of the process passes here for every event, so the
        common case (another watcher already made the event's rows) allocates
        little and never suspends.
        """
        key = (self.view_class, event.eid, self.group_key)
        rows = feed.ready(key)
        if rows is None:
            rows = await self.rows_of(feed, key, event)
        try:
            seen = self.decide(rows)
        except SynchronousOnlyOperation:
            if not rows.carried:
                raise
            # is_visible reads a relation the event does not carry: read the rows from now on.
            feed.read_from_now_on(self.view_class)
            pks, op = rows.pks, rows.op
            rows = await feed.rows((*key, "read"), lambda: ChangedRows(self.read(pks), pks=pks, op=op))
            seen = self.decide(rows)
        rendered = None
        for _, row in seen:
            if row is not None:
                rendered = rows.rendered_now(self.rendering) or await rows.rendered(self.rendering, self.view.serialize)
                break
        return self.changes(rows, seen, rendered)

    async def rows_of(self, feed: ChangeFeed, key: Hashable, event: Event) -> ChangedRows:
        """The event's rows, made once per process: from what the event carries, or read."""
        change = event.data
        if not isinstance(change, dict):
            change = {}
        pks = [wire_pk(pk) for pk in change.get("pks", ())]
        op = str(change.get("op"))
        carried = None
        if self.carries and "row" in change and not feed.must_read(self.view_class):
            carried = self.carried(change, pks, op)
        return await feed.rows(key, lambda: ChangedRows(self.read(pks), pks=pks, op=op), carried)

    def carried(self, change: dict[str, Any], pks: list[Any], op: str) -> Callable[[], ChangedRows | None]:
        """How to make the event's rows from what it carries (nothing read), or None if it carries too little."""

        def build() -> ChangedRows | None:
            row = change.get("row")
            if row is None:  # a deleted row: nothing to read
                return ChangedRows({}, pks=pks, op=op, carried=True)
            data = row.get("data", {}).get(self.view.namespace)
            if data is None or len(pks) != 1:
                return None
            instance = saved_instance(self.model, row.get("fields", {}))
            return ChangedRows({pks[0]: instance}, pks=pks, op=op, carried=True, rendered={None: {pks[0]: data}})

        return build

    def read(self, pks: list[Any]) -> dict[Any, models.Model]:
        """The changed rows now: through the shared ``queryset`` (fast path) or this group's queryset."""
        if self.fast:
            shared = self.view.queryset
            assert shared is not None, "a view with no queryset has no watch"
            queryset = shared.all()
        else:
            queryset = self.view.filter_queryset(self.view.get_queryset(), self.filters)
        return {wire_pk(row.pk): row for row in queryset.filter(pk__in=pks)}

    def decide(self, rows: ChangedRows) -> list[tuple[Any, models.Model | None]]:
        """Each named row and whether this watcher sees it now (the row, or None). Changes nothing."""
        decided = []
        for pk in rows.pks:
            row = rows.rows.get(pk)
            if row is not None and self.fast and not self.view.is_visible(row):
                row = None
            if row is not None and not all(getattr(row, attname) == value for attname, value in self.matchers):
                row = None
            decided.append((pk, row))
        return decided

    def changes(
        self, rows: ChangedRows, seen: list[tuple[Any, models.Model | None]], rendered: dict[Any, Any] | None
    ) -> list[str]:
        items: list[str] = []
        op_hint = rows.op
        for pk, row in seen:
            if row is not None:
                assert rendered is not None
                if pk in self.visible:
                    op = UPDATED
                elif self.recovered and op_hint != CREATED:
                    op = UPDATED  # the client may hold it from before it went away
                else:
                    op = CREATED
                self.visible.add(pk)
                self.sent_deleted.discard(pk)
                items.append(rows.item_json(self.rendering, pk, op, rendered[pk]))
            elif pk in self.visible:
                self.visible.discard(pk)
                items.append(_deleted_json(pk))
            elif self.recovered and op_hint != CREATED and pk not in self.sent_deleted:
                # After a resume the client may hold a row that left its sight meanwhile.
                self.sent_deleted.add(pk)
                items.append(_deleted_json(pk))
        return items


def _deleted_json(pk: Any) -> str:
    return wire.dumps({"op": DELETED, "pk": pk})
