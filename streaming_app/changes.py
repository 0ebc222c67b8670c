"""Model changes as topic events: what model change streams listen to.

``post_save`` and ``post_delete`` of a tracked model publish after the
transaction commits (a rolled-back one publishes nothing). ``QuerySet.update()``,
``bulk_create()``, ``bulk_update()``, raw SQL and changes made outside Django
send no signal: do those writes through :class:`ChangeQuerySet` (the manager
:class:`ChangeManager`), which publishes what it wrote, or announce them with
:func:`publish_changes`.

An event names rows (``{"op": "updated", "pks": [7]}``); each serving process
reads them once and decides per watcher what it may see. A save or delete
seen by a signal carries the row too (``"row"``: its columns and its
rendering by each stream view of the model that allows it, or ``null`` for a
delete), so the serving processes need not read it at all. Writes announced
by key (``publish_changes``, the bulk writes) carry no row and are read.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any, Callable, Iterable, TypeVar

from django.db import models, router, transaction
from django.db.models.signals import post_delete, post_save

from .encoding import json_default
from .topics import publish

logger = logging.getLogger("streaming_app")

CREATED, UPDATED, DELETED = "created", "updated", "deleted"
OPS = (CREATED, UPDATED, DELETED)

# Rows named by one event: a bulk write of many rows becomes several events,
# each well under the frame limit.
PKS_PER_EVENT = 500

M = TypeVar("M", bound=models.Model)


def model_topic(model: type[models.Model]) -> str:
    """The topic of a model's changes, e.g. ``models.shop.order``."""
    meta = model._meta
    return f"models.{meta.app_label}.{meta.model_name}"


def wire_pk(value: Any) -> Any:
    """A primary key as it travels in JSON (UUIDs and the like as strings)."""
    return value if isinstance(value, (int, str)) else str(value)


def publish_changes(
    target: type[models.Model] | models.QuerySet[Any] | models.Model,
    pks: Iterable[Any] | None = None,
    *,
    op: str = UPDATED,
    using: str | None = None,
) -> None:
    """Tell change streams that these rows changed, once the transaction commits.

    ``publish_changes(Order.objects.filter(shop=shop))`` after an ``update()``;
    ``publish_changes(Order, [o.pk for o in created], op="created")`` after a
    ``bulk_create()``. Streams read each row as it is when they get the event,
    so ``op`` is a hint: a row that is gone or out of a viewer's sight is sent
    to that viewer as deleted whatever ``op`` says.
    """
    if op not in OPS:
        raise ValueError(f"op must be one of {', '.join(OPS)}, not {op!r}.")
    if isinstance(target, models.QuerySet):
        model = target.model
        pks = list(target.values_list("pk", flat=True)) if pks is None else pks
        using = using or target.db
    elif isinstance(target, models.Model):
        model, pks = type(target), [target.pk]
    else:
        model = target
    pk_list = [wire_pk(pk) for pk in (pks or ()) if pk is not None]
    if not pk_list:
        return
    topic = model_topic(model)
    for start in range(0, len(pk_list), PKS_PER_EVENT):
        event = {"op": op, "pks": pk_list[start : start + PKS_PER_EVENT]}
        transaction.on_commit(
            functools.partial(publish, topic, event), using=using or router.db_for_write(model), robust=True
        )


class ChangeQuerySet(models.QuerySet[M]):
    """A queryset whose bulk writes tell change streams what they changed.

    ``update()``, ``bulk_create()`` and ``bulk_update()`` send no signals, so
    a change stream would not see them; these publish the rows they wrote once
    the transaction commits. ``delete()`` needs nothing: Django sends
    ``post_delete`` per row of a model that has receivers, as tracked models do.
    """

    def update(self, **kwargs: Any) -> int:
        # The rows are read first, in the same transaction: after the update
        # they may no longer match the queryset's filters.
        with transaction.atomic(using=self.db, savepoint=False):
            pks = list(self.values_list("pk", flat=True))
            count = super().update(**kwargs)
            publish_changes(self.model, pks, op=UPDATED, using=self.db)
        return count

    def bulk_create(self, objs: Iterable[M], *args: Any, **kwargs: Any) -> list[M]:
        created = super().bulk_create(objs, *args, **kwargs)
        missing = sum(1 for obj in created if obj.pk is None)
        if missing:
            logger.warning(
                "bulk_create() of %s: %d rows came back without a primary key (the database cannot "
                "return them); announce them with publish_changes().",
                self.model._meta.label,
                missing,
            )
        publish_changes(self.model, [obj.pk for obj in created], op=CREATED, using=self.db)
        return created

    def bulk_update(self, objs: Iterable[M], fields: Iterable[str], batch_size: int | None = None) -> int:
        objs = list(objs)
        count = super().bulk_update(objs, fields, batch_size)
        publish_changes(self.model, [obj.pk for obj in objs], op=UPDATED, using=self.db)
        return count


_ChangeManagerBase = models.Manager.from_queryset(ChangeQuerySet)


class ChangeManager(_ChangeManagerBase[M]):
    """``objects = ChangeManager()``: the default manager of a model with change streams."""


# What renders a saved row for a stream view, by model: (namespace, render) pairs.
# A render raises when the view cannot render a row from the saved instance alone.
Carrier = tuple[str, Callable[[models.Model], Any]]
_carriers: dict[type[models.Model], dict[str, Callable[[models.Model], Any]]] = {}


def _row(model: type[models.Model], instance: models.Model) -> dict[str, Any] | None:
    """The saved row as an event carries it: its columns and each view's rendering, or None."""
    carriers = _carriers.get(model)
    if not carriers:
        return None
    data = {}
    for namespace, render in carriers.items():
        try:
            data[namespace] = render(instance)
        except Exception:  # e.g. a serializer that needs the request or an annotation: read instead
            logger.debug("%s cannot render a saved %s; its watchers read it", namespace, model._meta.label, exc_info=True)
    if not data:
        return None
    row = {"fields": {field.attname: field.value_from_object(instance) for field in model._meta.concrete_fields},
           "data": data}
    try:
        # Encoded now, so a value JSON cannot hold costs the row, never the event.
        encoded: dict[str, Any] = json.loads(json.dumps(row, default=json_default))
        return encoded
    except (TypeError, ValueError):
        logger.debug("A saved %s has values JSON cannot hold; its watchers read it", model._meta.label, exc_info=True)
        return None


def saved_instance(model: type[M], fields: dict[str, Any]) -> M:
    """The instance a carried row describes, as if loaded from the database (nothing is read).

    A column the row lacks is deferred: reading it would query, which a caller
    on the event loop sees as ``SynchronousOnlyOperation``.
    """
    names, values = [], []
    for field in model._meta.concrete_fields:
        if field.attname in fields:
            names.append(field.attname)
            values.append(field.to_python(fields[field.attname]))
    return model.from_db(None, names, values)


def _publish_instance(model: type[models.Model], instance: models.Model, op: str, using: str) -> None:
    event: dict[str, Any] = {"op": op, "pks": [wire_pk(instance.pk)]}
    if op == DELETED:
        event["row"] = None  # gone: there is nothing to read
    else:
        row = _row(model, instance)
        if row is not None:
            event["row"] = row
    topic = model_topic(model)
    transaction.on_commit(lambda: publish(topic, event), using=using, robust=True)


def _saved(sender: type[models.Model], instance: models.Model, created: bool, using: str, **kwargs: Any) -> None:
    if instance.pk is not None:
        _publish_instance(sender, instance, CREATED if created else UPDATED, using)


def _deleted(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    if instance.pk is not None:
        _publish_instance(sender, instance, DELETED, using)


def track(model: type[models.Model], carrier: Carrier | None = None) -> None:
    """Publish the model's saves and deletes (idempotent); ``carrier`` renders saved rows for one stream view."""
    uid = f"streaming_app.changes:{model._meta.label_lower}"
    post_save.connect(_saved, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_deleted, sender=model, dispatch_uid=uid, weak=False)
    if carrier is not None:
        namespace, render = carrier
        _carriers.setdefault(model, {})[namespace] = render


def untrack_carrier(model: type[models.Model], namespace: str) -> None:
    """Stop rendering saved rows for a view (it was unregistered)."""
    _carriers.get(model, {}).pop(namespace, None)
