"""Model changes as topic events: what model change streams listen to.

``post_save`` and ``post_delete`` of a tracked model publish after the
transaction commits. ``QuerySet.update()``, ``bulk_create()``, raw SQL and
changes made outside Django send no signal: announce them with
:func:`publish_changes`.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from django.db import models, router, transaction
from django.db.models.signals import post_delete, post_save

from .topics import publish

logger = logging.getLogger("streaming_app")

CREATED, UPDATED, DELETED = "created", "updated", "deleted"


def model_topic(model: type[models.Model]) -> str:
    """The topic of a model's changes, e.g. ``models.shop.order``."""
    meta = model._meta
    return f"models.{meta.app_label}.{meta.model_name}"


def publish_changes(
    target: type[models.Model] | models.QuerySet | models.Model,
    pks: Iterable[Any] | None = None,
    *,
    op: str = UPDATED,
    using: str | None = None,
) -> None:
    """Tell change streams that these rows changed, once the transaction commits.

    ``publish_changes(Order.objects.filter(shop=shop))`` after an ``update()``;
    ``publish_changes(Order, [o.pk for o in created], op="created")`` after a
    ``bulk_create()``. Streams re-read each row through their viewer's
    queryset, so ``op`` is a hint: a row that left the queryset is sent as
    deleted whatever ``op`` says.
    """
    if isinstance(target, models.QuerySet):
        model = target.model
        pks = list(target.values_list("pk", flat=True)) if pks is None else pks
        using = using or target.db
    elif isinstance(target, models.Model):
        model, pks = type(target), [target.pk]
    else:
        model = target
    pk_list = [pk if isinstance(pk, (int, str)) else str(pk) for pk in (pks or ())]
    if not pk_list:
        return
    topic = model_topic(model)
    event = {"op": op, "pks": pk_list}
    transaction.on_commit(lambda: publish(topic, event), using=using or router.db_for_write(model), robust=True)


def _saved(sender: type[models.Model], instance: models.Model, created: bool, using: str, **kwargs: Any) -> None:
    publish_changes(sender, [instance.pk], op=CREATED if created else UPDATED, using=using)


def _deleted(sender: type[models.Model], instance: models.Model, using: str, **kwargs: Any) -> None:
    publish_changes(sender, [instance.pk], op=DELETED, using=using)


def track(model: type[models.Model]) -> None:
    """Publish the model's saves and deletes (idempotent)."""
    uid = f"streaming_app.changes:{model._meta.label_lower}"
    post_save.connect(_saved, sender=model, dispatch_uid=uid, weak=False)
    post_delete.connect(_deleted, sender=model, dispatch_uid=uid, weak=False)
