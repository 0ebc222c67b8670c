"""Throttles and connection limits (issue 17, item 4; shared/interop.md, "Limits and revocation").

The attacks that worked: 6 calls at an ``anon`` rate of 2/min all succeeded
(DRF ``throttle_classes`` were ignored), 2,000 connections of one user were
accepted, and 20,000 unary calls went through one anonymous socket in 2.2 s.
End to end on real daphne processes sharing PostgreSQL and Redis (the
throttle counts in Django's Redis cache, the connection counts in the
broker's Redis); DRF's default throttle setting in-process.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import redis
from conftest import start_server
from django.test import override_settings
from rest_framework.throttling import AnonRateThrottle
from httpclient import client as http_client
from wsclient import close_code_before_hello, connect, connected

from streaming_app.brokers.redis import RedisBroker
from streaming_app.testing import StreamTestClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("close_worker_connections")]


# -- interop.limited: 3 calls a minute per (user or IP, key), across processes ---------------------------------


async def test_the_fourth_limited_call_across_two_processes_is_resource_exhausted_with_retry_after(two_servers):
    key = uuid.uuid4().hex
    a, b = two_servers
    async with connected(a.ws_url) as on_a, connected(b.ws_url) as on_b:
        frames = [
            await on_a.result(1, "interop.limited", {"key": key}),
            await on_b.result(1, "interop.limited", {"key": key}),
            await on_a.result(2, "interop.limited", {"key": key}),
        ]
        fourth = await on_b.result(2, "interop.limited", {"key": key})
    assert [f["d"] for f in frames] == [{"ok": True}] * 3
    assert fourth["t"] == "error" and fourth["code"] == "resource_exhausted", fourth
    retry_after = fourth["details"]["retry_after"]
    assert isinstance(retry_after, (int, float)) and 0 < retry_after <= 60


async def test_the_fourth_limited_call_over_http_is_429_with_retry_after(two_servers):
    key = uuid.uuid4().hex
    responses = []
    for server in (two_servers[0], two_servers[1], two_servers[0], two_servers[1]):
        with http_client(server) as http:
            responses.append(http.post("interop.limited", json={"key": key}))
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    assert responses[3].json()["error"]["code"] == "resource_exhausted"
    assert 1 <= int(responses[3].headers["retry-after"]) <= 60


async def test_another_key_is_counted_apart(daphne_on_redis):
    first, second = uuid.uuid4().hex, uuid.uuid4().hex
    async with connected(daphne_on_redis.ws_url) as conn:
        for call_id in range(1, 4):
            assert (await conn.result(call_id, "interop.limited", {"key": first}))["t"] == "end"
        assert (await conn.result(4, "interop.limited", {"key": first}))["code"] == "resource_exhausted"
        assert (await conn.result(5, "interop.limited", {"key": second}))["t"] == "end"


async def test_a_client_cannot_name_its_own_address_in_x_forwarded_for_to_reset_its_throttle(daphne_on_redis):
    key = uuid.uuid4().hex
    with http_client(daphne_on_redis) as http:
        codes = [http.post("interop.limited", json={"key": key}, headers={"X-Forwarded-For": f"203.0.113.{n}"}).status_code
                 for n in range(1, 5)]
    assert codes == [200, 200, 200, 429]  # counted by the socket's address (NUM_PROXIES 0), not the header


# -- DRF's DEFAULT_THROTTLE_CLASSES apply to every stream method (in-process) ---------------------------------

class AnonTwoPerMinute(AnonRateThrottle):
    # DRF reads DEFAULT_THROTTLE_RATES into a class attribute at import time,
    # which override_settings cannot change; the rate is set here instead.
    rate = "2/min"


ANON_2_PER_MINUTE = {"DEFAULT_THROTTLE_CLASSES": [f"{__name__}.AnonTwoPerMinute"]}
LOCAL_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "limits-test"}}


@override_settings(REST_FRAMEWORK=ANON_2_PER_MINUTE, CACHES=LOCAL_CACHE)
async def test_default_throttle_classes_refuse_the_third_anonymous_call_at_two_a_minute():
    async with StreamTestClient() as client:
        codes = []
        for _ in range(6):
            call_id = await client.start("interop.empty")
            frame = await client.receive()
            codes.append(frame.get("code", frame["t"]))
    assert codes == ["end", "end"] + ["resource_exhausted"] * 4


@override_settings(REST_FRAMEWORK=ANON_2_PER_MINUTE, CACHES=LOCAL_CACHE)
async def test_default_throttle_classes_apply_to_server_streams_before_they_start():
    async with StreamTestClient() as client:
        frames = []
        for _ in range(3):
            call_id = await client.start("interop.count", {"n": 1})
            frames.append([await client.receive()])
            if frames[-1][0]["t"] == "next":
                frames[-1].append(await client.receive())
    assert frames[2] == [{"t": "error", "id": call_id, "code": "resource_exhausted",
                          "message": frames[2][0]["message"], "details": frames[2][0]["details"]}]
    assert frames[2][0]["details"]["retry_after"] > 0


# -- connections per user, across processes (example: 50) ---------------------------------------------------


async def test_the_51st_connection_of_a_user_across_two_processes_is_closed_with_4429_before_hello(
        two_servers, make_token, redis_url):
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    token = await sync_to_async(make_token)("many")
    headers = {"Authorization": f"Bearer {token}"}
    # A new test database gives the user the pk of an earlier run's, whose connections a stopped
    # server may have left counted for up to 30 s: a quick rerun starts from none.
    pk = (await Token.objects.select_related("user").aget(key=token)).user.pk
    await asyncio.to_thread(redis.Redis.from_url(redis_url).delete, f"streaming_app:conns:user:{pk}")
    opened = []
    try:
        for n in range(50):
            opened.append(await connect(two_servers[n % 2].ws_url, headers=headers))
        assert await close_code_before_hello(two_servers[0].ws_url, headers=headers) == 4429
        assert await close_code_before_hello(two_servers[1].ws_url, headers=headers) == 4429
        await opened.pop().close()
        await asyncio.sleep(0.5)  # the server releases the count as the socket closes
        opened.append(await connect(two_servers[1].ws_url, headers=headers))  # room again
    finally:
        await asyncio.gather(*(conn.close() for conn in opened))


async def test_the_user_limit_does_not_count_anonymous_connections(daphne_on_redis):
    opened = []
    try:
        for _ in range(55):
            opened.append(await connect(daphne_on_redis.ws_url))
    finally:
        await asyncio.gather(*(conn.close() for conn in opened))
    assert len(opened) == 55


# -- opt-in per-IP limit and calls per second (probes.limits_settings: 3 per IP, 20 calls/s) -----------------


@pytest.fixture(scope="module")
def limits_server(django_db_setup, django_db_blocker, tmp_path_factory, redis_url):
    with django_db_blocker.unblock():
        server = start_server(
            tmp_path_factory.mktemp("limits"),
            env={"DJANGO_SETTINGS_MODULE": "probes.limits_settings", "REDIS_URL": redis_url},
        )
    yield server
    server.stop()


async def test_the_fourth_connection_from_one_ip_is_closed_with_4429_when_the_ip_limit_is_on(limits_server):
    opened = [await connect(limits_server.ws_url) for _ in range(3)]
    try:
        assert await close_code_before_hello(limits_server.ws_url) == 4429
    finally:
        await asyncio.gather(*(conn.close() for conn in opened))


async def test_a_flood_of_calls_on_one_connection_is_refused_beyond_the_rate(limits_server):
    async with connected(limits_server.ws_url) as conn:
        for call_id in range(1, 201):
            await conn.call(call_id, "interop.empty")
        frames = [await conn.recv_for(call_id) for call_id in range(1, 201)]
    ended = [f for f in frames if f["t"] == "end"]
    refused = [f for f in frames if f["t"] == "error"]
    assert 20 <= len(ended) < 60, len(ended)  # a burst of 20, plus what refills meanwhile
    assert len(ended) + len(refused) == 200
    assert {f["code"] for f in refused} == {"resource_exhausted"}
    assert all(0 < f["details"]["retry_after"] <= 1 for f in refused)


async def test_interop_publish_spread_over_fresh_topics_is_refused_once_the_hourly_bytes_are_spent(
        limits_server, redis_url):
    base, event = uuid.uuid4().hex, "x" * 30_000  # about 30.3 KB a publish with its topic and overhead
    async with connected(limits_server.ws_url) as conn:
        frames = [await conn.result(n, "interop.publish", {"topic": f"{base}.{n}", "data": event}) for n in range(1, 6)]
    assert [f["t"] for f in frames] == ["end", "end", "end", "error", "error"], frames
    assert {f["code"] for f in frames[3:]} == {"resource_exhausted"}
    assert all(0 < f["details"]["retry_after"] <= 3600 for f in frames[3:])
    stored = redis.Redis.from_url(redis_url)
    broker = RedisBroker("redis://unused", "streaming_app")
    assert [stored.exists(broker.history_key(f"interop.{base}.{n}")) for n in range(1, 6)] == [1, 1, 1, 0, 0]


def test_a_signed_in_publisher_has_its_own_budget_and_gets_429_with_retry_after_over_http(
        limits_server, make_token):
    event, headers = "x" * 40_000, {"Authorization": f"Bearer {make_token('publisher')}"}
    with httpx.Client(base_url=limits_server.http_url, trust_env=False, timeout=5, headers=headers) as http:
        responses = [http.post("/streams/interop.publish", json={"topic": uuid.uuid4().hex, "data": event})
                     for _ in range(4)]
    assert [r.status_code for r in responses] == [200, 200, 429, 429]
    assert responses[2].json()["error"]["code"] == "resource_exhausted"
    assert 1 <= int(responses[2].headers["retry-after"]) <= 3600


async def test_interop_publish_is_not_refused_when_the_budgets_cache_is_down(tmp_path, redis_url):
    server = start_server(tmp_path, env={"DJANGO_SETTINGS_MODULE": "probes.deadcache_settings", "REDIS_URL": redis_url})
    try:
        async with connected(server.ws_url) as conn:
            frame = await conn.result(1, "interop.publish", {"topic": uuid.uuid4().hex, "data": 1})
    finally:
        server.stop()
    assert frame["t"] == "end", frame  # not counted, and logged: the broker, not the cache, says whether it can


async def test_http_calls_are_not_counted_as_connections(limits_server):
    async with httpx.AsyncClient(base_url=limits_server.http_url, trust_env=False, timeout=5) as http:
        responses = await asyncio.gather(*(http.get("/streams/interop.empty") for _ in range(6)))
    assert {r.status_code for r in responses} == {200}
