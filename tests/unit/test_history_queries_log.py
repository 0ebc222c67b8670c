"""The admin history's writes stay out of DEBUG's query log (found by bench/soak.py --probe).

With ``DEBUG = True`` Django keeps every query's SQL in the worker thread's
``connection.queries_log`` (up to 9,000), and nothing empties it outside a
request: WebSocket calls start none. The history writer's bulk inserts are
tens of kilobytes of SQL each, so a serving process's RSS grew ~3 MiB a minute
(tracemalloc: ``postgresql/operations.py`` ``last_executed_query``), towards
hundreds of MiB. A developer's own queries are still logged.
"""

from __future__ import annotations

import datetime

import pytest
from django.db import connection
from django.test.utils import override_settings

from streaming_app.monitor import _insert_history

pytestmark = pytest.mark.django_db


def row(n: int) -> dict:
    now = datetime.datetime.now(datetime.timezone.utc)
    return {
        "method": "interop.empty", "namespace": "interop", "kind": "unary", "transport": "websocket",
        "username": "", "client": "127.0.0.1:1", "process": "p", "connection_id": f"c{n}", "call_id": n,
        "started_at": now, "ended_at": now, "duration": 0.001, "items_in": 0, "items_out": 0,
        "bytes_in": 0, "bytes_out": 0, "end_reason": "completed", "error_code": "",
    }


@override_settings(DEBUG=True)
def test_writing_the_history_adds_nothing_to_debugs_query_log():
    from django.contrib.auth import get_user_model

    get_user_model().objects.exists()  # a developer's query, logged
    logged = list(connection.queries_log)
    _insert_history([row(n) for n in range(200)])
    assert list(connection.queries_log) == logged


@override_settings(DEBUG=True)
def test_the_developers_queries_around_it_are_still_logged():
    from django.contrib.auth import get_user_model

    before = len(connection.queries_log)
    _insert_history([row(1)])
    get_user_model().objects.exists()
    assert len(connection.queries_log) == before + 1
