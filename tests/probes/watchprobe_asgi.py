"""The example project plus a probe counting this process's database queries, for model stream tests.

``watchprobe.queries`` reports how many SQL statements the process has run
(every thread, counted by an execute wrapper on each new connection) and how
many change reads its feed started. ``watchprobe.watch`` is ``notes.watch``
without ``is_visible``: the fallback that groups watchers by their queryset.
Served only by tests (see tests/e2e/test_e2e_model_streams.py).
"""

import threading

from django.db.backends.signals import connection_created

from project.asgi import application  # noqa: F401  (sets Django up)
from project.demo.streams import NoteStreams
from streaming_app import unary
from streaming_app.changefeed import get_feed
from streaming_app.registry import registry

_lock = threading.Lock()
QUERIES = [0]


def _count(execute, sql, params, many, context):
    with _lock:
        QUERIES[0] += 1
    return execute(sql, params, many, context)


def _wrap(sender, connection, **kwargs):
    if _count not in connection.execute_wrappers:  # a reconnect keeps the wrapper object
        connection.execute_wrappers.append(_count)


connection_created.connect(_wrap, weak=False)


class WatchProbe(NoteStreams):
    namespace = "watchprobe"
    is_visible = NoteStreams.__mro__[1].is_visible  # the base's: undeclared, so the grouped fallback
    snapshot_chunk_size = 10

    @unary(safe=True)
    async def queries(self, ctx) -> dict:
        return {"queries": QUERIES[0], "reads": get_feed().reads_started}


registry.register(WatchProbe)


class OwnerProbe(NoteStreams):
    """Its ``is_visible`` reads a relation, which a carried row does not hold: watchers read the row."""

    namespace = "ownerprobe"

    def is_visible(self, note):
        return note.public and (note.owner is None or note.owner.is_active)


registry.register(OwnerProbe)
