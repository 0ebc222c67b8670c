"""Opt-in: a process serving streams raises the collector's young threshold when the project asks.

Why: at the interpreter's default (700) a fan-out to 500 subscribers ran a full
collection every ~3 s, each a 80-105 ms pause of every stream on the process
(bench/fanout.py). The collector is the whole process's, so nothing changes
unless ``STREAMING["GC_GEN0_THRESHOLD"]`` is set; the example project sets it
to 10,000. The servers here are real daphnes; ``/gcprobe``
(tests/probes/gcprobe_asgi.py) reports the process's thresholds.
"""

from __future__ import annotations

import gc
import subprocess
import sys

import httpx
import pytest
from conftest import start_server
from django.test import override_settings
from wsclient import connect

from streaming_app.checks import check_settings
from streaming_app.gc_tuning import tune_for_serving

pytestmark = pytest.mark.django_db(transaction=True)

# What a fresh interpreter starts with (700 up to Python 3.13); this test process may have served streams.
INTERPRETER_DEFAULT = int(subprocess.check_output([sys.executable, "-c", "import gc; print(gc.get_threshold()[0])"]))


@pytest.fixture
def gc_server(tmp_path, request):
    env = getattr(request, "param", None) or {}
    server = start_server(tmp_path, app="probes.gcprobe_asgi:application", env=env)
    yield server
    server.stop()


def thresholds(server) -> list[int]:
    response = httpx.get(server.http_url + "/gcprobe", timeout=5, trust_env=False)
    response.raise_for_status()
    return response.json()["threshold"]


@pytest.fixture
def restore_gc():
    saved, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.set_threshold(*saved)
    if enabled:
        gc.enable()


async def test_a_server_keeps_the_interpreters_threshold_until_it_serves_a_stream(gc_server):
    assert thresholds(gc_server)[0] == INTERPRETER_DEFAULT


async def test_a_websocket_connection_raises_the_young_threshold_to_the_projects_setting(gc_server):
    conn = await connect(gc_server.ws_url)
    try:
        assert thresholds(gc_server) == [10_000, 10, 10]
    finally:
        await conn.close()


async def test_an_http_stream_raises_it_too(gc_server):
    with httpx.stream("GET", gc_server.http_url + "/streams/interop.count?n=1", timeout=5, trust_env=False) as response:
        assert response.status_code == 200
        response.read()
    assert thresholds(gc_server)[0] == 10_000


@pytest.mark.parametrize("gc_server", [{"DJANGO_SETTINGS_MODULE": "probes.gcuntouched_settings"}], indirect=True)
async def test_a_project_that_does_not_ask_keeps_the_interpreters_collector(gc_server):
    conn = await connect(gc_server.ws_url)
    try:
        assert thresholds(gc_server)[0] == INTERPRETER_DEFAULT
    finally:
        await conn.close()


def test_it_is_off_by_default(restore_gc):
    gc.set_threshold(700, 10, 10)
    with override_settings(STREAMING={}):
        tune_for_serving()
    assert gc.get_threshold() == (700, 10, 10)


def test_none_leaves_the_collector_alone(restore_gc):
    gc.set_threshold(700, 10, 10)
    with override_settings(STREAMING={"GC_GEN0_THRESHOLD": None}):
        tune_for_serving()
    assert gc.get_threshold() == (700, 10, 10)


def test_a_higher_threshold_of_the_projects_own_is_kept(restore_gc):
    gc.set_threshold(50_000, 20, 30)
    with override_settings(STREAMING={"GC_GEN0_THRESHOLD": 10_000}):
        tune_for_serving()
    assert gc.get_threshold() == (50_000, 20, 30)


def test_only_the_young_threshold_changes(restore_gc):
    gc.set_threshold(700, 20, 30)
    with override_settings(STREAMING={"GC_GEN0_THRESHOLD": 10_000}):
        tune_for_serving()
    assert gc.get_threshold() == (10_000, 20, 30)


def test_a_disabled_collector_stays_as_it_is(restore_gc):
    gc.set_threshold(700, 10, 10)
    gc.disable()
    with override_settings(STREAMING={"GC_GEN0_THRESHOLD": 10_000}):
        tune_for_serving()
    assert not gc.isenabled()
    assert gc.get_threshold() == (700, 10, 10)


@pytest.mark.parametrize("value", [None, 1, 10_000])
def test_none_or_a_positive_integer_passes_the_checks(value):
    with override_settings(STREAMING={"GC_GEN0_THRESHOLD": value}):
        assert [m.id for m in check_settings()] == []


@pytest.mark.parametrize("value", [0, -1, 1.5, "10000", True])
def test_another_value_is_error_e014(value):
    with override_settings(STREAMING={"GC_GEN0_THRESHOLD": value}):
        assert [m.id for m in check_settings()] == ["streaming_app.E014"]
