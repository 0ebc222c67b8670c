"""Broadcast topics in one process (the memory broker), through the consumer.

Cross-process delivery over Redis is in e2e/test_e2e_topics.py; these tests pin
down what a subscriber sees: order, event ids, bounded buffers, permissions.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import override_settings
from rest_framework.permissions import BasePermission

from streaming_app import exceptions
from streaming_app.brokers.memory import MemoryBroker
from streaming_app.decorators import server_stream
from streaming_app.events import Event
from streaming_app.hub import Hub, get_hub
from streaming_app.registry import registry
from streaming_app.testing import StreamTestClient
from streaming_app.topics import apublish, publish, subscribe
from streaming_app.views import StreamView

MEMORY = {
    "BROKER": "memory://",
    "SUBSCRIPTION_BUFFER": 5,
    "TOPIC_HISTORY": {"public.nohistory.*": {"size": 0}, "public.short.*": {"size": 3}, "public.brief.*": {"size": 100, "ttl": 0.2}, "public.*": {"size": 100}},
}


class OnlyPublicTopics(BasePermission):
    message = "Only public topics."

    def has_permission(self, request, view) -> bool:
        return True

    def has_topic_permission(self, request, view, topic: str) -> bool:
        return topic.startswith("public.")


class TopicStreams(StreamView):
    namespace = "topics"
    permission_classes = [OnlyPublicTopics]

    @server_stream
    async def relay(self, ctx, topic: str):
        async for event in ctx.subscribe(topic):
            yield event



    @server_stream
    async def numbers(self, ctx, upto: int):
        """A resumable stream of its own making: event ids "n:<k>", resumed from ctx.resume."""
        start = int(ctx.resume.split(":")[1]) if ctx.resume else 0
        await ctx.ready(f"n:{start}", recovered=True)
        for k in range(start + 1, upto + 1):
            yield Event(k, eid=f"n:{k}")


@pytest.fixture(autouse=True)
def memory_broker():
    with override_settings(STREAMING=MEMORY):
        registry.register(TopicStreams)
        yield
        registry.unregister("topics")


async def started(client: StreamTestClient, topic: str, **options) -> int:
    """Start a relay and wait until the subscriber is live (its ``ready`` frame)."""
    call_id = await client.start("topics.relay", {"topic": topic}, **options)
    frame = await client.receive()
    assert frame["t"] == "ready" and frame["id"] == call_id, frame
    return call_id


async def test_subscriber_receives_published_events_in_order_with_event_ids():
    async with StreamTestClient() as client:
        call_id = await started(client, "public.news")
        eids = [await apublish("public.news", {"n": n}) for n in range(3)]
        frames = [await client.receive() for _ in range(3)]
    assert [frame["d"] for frame in frames] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [frame["eid"] for frame in frames] == eids
    assert all(frame["id"] == call_id for frame in frames)
    epoch = eids[0].split(":")[0]
    assert [eid.split(":") for eid in eids] == [[epoch, "1"], [epoch, "2"], [epoch, "3"]]


async def test_events_published_before_subscribing_are_not_delivered():
    await apublish("public.early", "before")
    async with StreamTestClient() as client:
        await started(client, "public.early")
        await apublish("public.early", "after")
        assert (await client.receive())["d"] == "after"


async def test_ready_is_the_first_frame_and_carries_the_position_after_which_delivery_starts():
    first = await apublish("public.pos", 1)
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.pos"})
        ready = await client.receive()
        second = await apublish("public.pos", 2)
        item = await client.receive()
    assert ready["t"] == "ready" and ready["eid"] == first and "recovered" not in ready
    assert item["eid"] == second


async def test_every_subscriber_of_a_topic_gets_every_event():
    async with StreamTestClient() as one, StreamTestClient() as two:
        await started(one, "public.all")
        await started(two, "public.all")
        await apublish("public.all", "x")
        assert (await one.receive())["d"] == (await two.receive())["d"] == "x"


async def test_subscribers_of_other_topics_get_nothing():
    async with StreamTestClient() as client:
        await started(client, "public.a")
        await apublish("public.b", "not for a")
        assert await client.nothing_received(0.2)


@override_settings(STREAMING={**MEMORY, "SUBSCRIPTION_BUFFER": 1000})
async def test_sync_publish_from_threads_keeps_each_topic_in_offset_order():
    async with StreamTestClient() as client:
        await started(client, "public.threads")

        def publish_many():
            for n in range(50):
                publish("public.threads", n)

        threads = [threading.Thread(target=publish_many) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            await asyncio.to_thread(thread.join, 10)
        frames = [await client.receive() for _ in range(200)]
    offsets = [int(frame["eid"].split(":")[1]) for frame in frames]
    assert offsets == sorted(offsets) and len(set(offsets)) == 200


async def test_management_command_publishes_to_subscribers():
    async with StreamTestClient() as client:
        await started(client, "public.cmd")
        await asyncio.to_thread(call_command, "streaming_publish", "public.cmd", '{"from": "cmd"}', stdout=None)
        assert (await client.receive())["d"] == {"from": "cmd"}


async def test_slow_subscriber_is_cut_off_with_resource_exhausted_and_resume_point():
    async with StreamTestClient() as client:
        call_id = await started(client, "public.slow", credit=2)  # ready uses no credit
        sent = [await apublish("public.slow", n) for n in range(2)]
        received = [await client.receive() for _ in range(2)]
        for n in range(2, 10):  # its credit is used up: these wait in its buffer of 5
            await apublish("public.slow", n)
        error = await client.receive()
    assert [frame["eid"] for frame in received] == sent
    assert error["t"] == "error" and error["id"] == call_id and error["code"] == "resource_exhausted"
    assert error["details"]["resume"] == sent[-1]  # the last event it was sent
    assert "public.slow" not in get_hub().topics


async def test_cut_off_happens_while_the_stream_waits_for_credit():
    async with StreamTestClient() as client:
        await started(client, "public.stalled", credit=1)
        for n in range(7):  # one is sent, five wait in the buffer, the seventh does not fit
            await apublish("public.stalled", n)
        frame = await client.receive()
    assert frame["t"] == "error" and frame["code"] == "resource_exhausted"


async def test_topic_permission_refuses_a_subscription():
    async with StreamTestClient(user=User(username="eve")) as client:
        with pytest.raises(exceptions.PermissionDenied, match="Only public topics"):
            await client.collect("topics.relay", {"topic": "private.payroll"})


async def test_topic_permission_refusing_an_anonymous_user_is_unauthenticated():
    async with StreamTestClient() as client:
        with pytest.raises(exceptions.Unauthenticated):
            await client.collect("topics.relay", {"topic": "private.payroll"})


async def test_invalid_topic_name_is_invalid_argument():
    async with StreamTestClient() as client:
        with pytest.raises(exceptions.InvalidArgument, match="Invalid topic name"):
            await client.collect("topics.relay", {"topic": "public.has space"})


async def test_publishing_more_than_a_frame_holds_is_refused():
    with pytest.raises(exceptions.InvalidArgument, match="too large"):
        with override_settings(STREAMING={**MEMORY, "MAX_FRAME_BYTES": 500}):
            await apublish("public.big", "x" * 1000)


async def test_cancelled_call_leaves_the_topic():
    async with StreamTestClient() as client:
        call_id = await started(client, "public.leave")
        assert "public.leave" in get_hub().topics
        await client.send({"t": "cancel", "id": call_id})
        for _ in range(50):
            if "public.leave" not in get_hub().topics:
                break
            await asyncio.sleep(0.01)
    assert "public.leave" not in get_hub().topics


async def test_disconnect_leaves_every_topic():
    async with StreamTestClient() as client:
        await started(client, "public.gone")
    assert "public.gone" not in get_hub().topics


async def test_module_level_subscribe_works_outside_a_call():
    async with subscribe("public.module") as subscription:
        await apublish("public.module", {"k": 1})
        event = await asyncio.wait_for(subscription.__anext__(), 2)
    assert isinstance(event, Event) and event.data == {"k": 1} and event.topic == "public.module"


async def test_event_json_is_made_once_for_all_subscribers():
    one, two = subscribe("public.once"), subscribe("public.once")
    await one
    await two
    await apublish("public.once", [1, 2])
    first, second = await one.__anext__(), await two.__anext__()
    assert first is second
    one.close()
    two.close()


# -- resuming -------------------------------------------------------------------------------


async def items(client: StreamTestClient, count: int) -> list[dict]:
    frames = [await client.receive() for _ in range(count)]
    assert all(frame["t"] == "next" for frame in frames), frames
    return frames


async def test_resume_gets_exactly_the_missed_events_then_live_ones():
    async with StreamTestClient() as client:
        await started(client, "public.resume")
        seen = await apublish("public.resume", 0)
        await client.receive()
    missed = [await apublish("public.resume", n) for n in (1, 2, 3)]
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.resume"}, resume=seen)
        ready = await client.receive()
        replayed = await items(client, 3)
        live = await apublish("public.resume", 4)
        after = await items(client, 1)
    assert ready["t"] == "ready" and ready["recovered"] is True and ready["eid"] == seen
    assert [frame["eid"] for frame in replayed] == missed and [frame["d"] for frame in replayed] == [1, 2, 3]
    assert after[0]["eid"] == live and after[0]["d"] == 4


async def test_resume_at_the_newest_event_recovers_with_nothing_to_replay():
    newest = await apublish("public.current", "x")
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.current"}, resume=newest)
        ready = await client.receive()
        assert await client.nothing_received(0.1)
    assert ready["recovered"] is True and ready["eid"] == newest


async def test_resume_past_a_trimmed_history_is_not_recovered_and_replays_nothing():
    seen = await apublish("public.short.t", 0)
    for n in range(1, 6):  # the history keeps 3: event 1 is gone
        newest = await apublish("public.short.t", n)
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.short.t"}, resume=seen)
        ready = await client.receive()
        assert await client.nothing_received(0.1)
        live = await apublish("public.short.t", 6)
        after = await items(client, 1)
    assert ready["recovered"] is False and ready["eid"] == newest
    assert after[0]["eid"] == live


async def test_resume_into_a_history_within_its_size_but_past_its_age_is_not_recovered():
    seen = await apublish("public.brief.t", 0)
    await apublish("public.brief.t", 1)
    await asyncio.sleep(0.3)  # the ttl is 0.2 s
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.brief.t"}, resume=seen)
        ready = await client.receive()
    assert ready["recovered"] is False


async def test_resume_from_another_epoch_is_not_recovered():
    await apublish("public.epoch", 0)
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.epoch"}, resume="0ldepoch:1")
        ready = await client.receive()
    assert ready["recovered"] is False and not ready["eid"].startswith("0ldepoch:")


async def test_topic_without_history_recovers_only_when_nothing_was_missed():
    seen = await apublish("public.nohistory.t", 0)
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.nohistory.t"}, resume=seen)
        assert (await client.receive())["recovered"] is True
    await apublish("public.nohistory.t", 1)
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.nohistory.t"}, resume=seen)
        assert (await client.receive())["recovered"] is False


async def test_malformed_resume_point_is_invalid_argument():
    async with StreamTestClient() as client:
        with pytest.raises(exceptions.InvalidArgument, match="Invalid resume point"):
            await client.collect("topics.relay", {"topic": "public.bad"}, resume="not-an-event-id")


async def test_subscriber_cut_off_for_being_slow_resumes_from_the_error_resume_point():
    async with StreamTestClient() as client:
        await started(client, "public.catchup", credit=1)
        sent = [await apublish("public.catchup", 0)]
        first = await client.receive()  # its only credit
        sent += [await apublish("public.catchup", n) for n in range(1, 7)]  # five fit its buffer
        error = await client.receive()
    assert error["code"] == "resource_exhausted" and error["details"]["resume"] == first["eid"] == sent[0]
    async with StreamTestClient() as client:
        await client.start("topics.relay", {"topic": "public.catchup"}, resume=error["details"]["resume"])
        ready = await client.receive()
        rest = await items(client, 6)
    assert ready["recovered"] is True and [frame["eid"] for frame in rest] == sent[1:]


async def test_stream_method_with_its_own_event_ids_resumes_from_ctx_resume():
    async with StreamTestClient() as client:
        call_id = await client.start("topics.numbers", {"upto": 5}, resume="n:3")
        ready = await client.receive()
        items_, _ = await client.collect_call(call_id)
    assert ready == {"t": "ready", "id": call_id, "eid": "n:3", "recovered": True}
    assert items_ == [4, 5]


async def test_stream_method_without_resume_gets_ready_without_recovered():
    async with StreamTestClient() as client:
        call_id = await client.start("topics.numbers", {"upto": 1})
        ready = await client.receive()
    assert ready == {"t": "ready", "id": call_id, "eid": "n:0"}


# -- the hub's bookkeeping, driven directly --------------------------------------------------


async def subscribed_to_own_hub(topic: str):
    """A subscription live on a hub of its own, fed by calling ``hub.deliver``; (hub, subscription, epoch)."""
    hub = Hub(MemoryBroker(), asyncio.get_running_loop())
    subscription = subscribe(topic)
    subscription._hub = hub
    await hub.add(subscription)
    return hub, subscription, hub.topics[topic].epoch


async def test_gap_in_offsets_fails_subscribers_with_data_loss():
    hub, subscription, epoch = await subscribed_to_own_hub("t.gap")
    hub.deliver("t.gap", f"{epoch}:1", "1")
    hub.deliver("t.gap", f"{epoch}:4", "4")  # 2 and 3 never arrived
    assert (await subscription.__anext__()).data == 1
    with pytest.raises(exceptions.DataLoss, match="2 events") as raised:
        await subscription.__anext__()
    assert raised.value.details["resume"] == f"{epoch}:1"


async def lossy_hub(topic: str, resume: str | None = None):
    """A hub whose broker keeps history but stopped delivering to it: events published "get lost"."""
    broker = MemoryBroker()
    hub = Hub(broker, asyncio.get_running_loop())
    subscription = subscribe(topic, resume=resume)
    subscription._hub = hub
    await hub.listen()
    broker._hubs.discard(hub)
    return broker, hub, subscription


async def test_gap_is_filled_from_the_history_when_the_topic_keeps_one():
    broker, hub, subscription = await lossy_hub("public.fill")
    await hub.add(subscription)
    eids = [broker.publish("public.fill", str(n)) for n in range(1, 5)]
    hub.deliver("public.fill", eids[0], "1")
    hub.deliver("public.fill", eids[3], "4")  # 2 and 3 never arrived, but the history has them
    hub.deliver("public.fill", broker.publish("public.fill", "5"), "5")  # arrives while the gap is filled
    got = [await asyncio.wait_for(subscription.__anext__(), 2) for _ in range(5)]
    assert [event.data for event in got] == [1, 2, 3, 4, 5]
    assert [event.eid for event in got[:4]] == eids


async def test_resume_ahead_of_this_process_skips_what_the_reader_already_has():
    broker = MemoryBroker()
    eids = [broker.publish("public.ahead", str(n)) for n in range(1, 4)]
    hub = Hub(broker, asyncio.get_running_loop())
    await hub.listen()
    broker._hubs.discard(hub)
    broker._offsets["public.ahead"] = 1  # this process has read up to 1; the reader had 2 elsewhere
    earlier = subscribe("public.ahead")
    earlier._hub = hub
    await hub.add(earlier)
    broker._offsets["public.ahead"] = 3
    subscription = subscribe("public.ahead", resume=eids[1])
    subscription._hub = hub
    await hub.add(subscription)
    for offset, eid in enumerate(eids, 1):
        hub.deliver("public.ahead", eid, str(offset))
    assert subscription.recovered is True
    assert (await asyncio.wait_for(subscription.__anext__(), 2)).data == 3
    assert not subscription._queue


async def test_duplicate_event_is_dropped():
    hub, subscription, epoch = await subscribed_to_own_hub("t.dup")
    for offset in (1, 1, 2):
        hub.deliver("t.dup", f"{epoch}:{offset}", str(offset))
    assert [(await subscription.__anext__()).data for _ in range(2)] == [1, 2]
    assert subscription._queue == type(subscription._queue)()


async def test_new_epoch_starting_at_one_is_not_a_gap():
    hub, subscription, _ = await subscribed_to_own_hub("t.epoch")
    hub.deliver("t.epoch", "fresh:1", '"after a reset"')
    assert (await subscription.__anext__()).data == "after a reset"


async def until_subscribed(topic: str) -> None:
    for _ in range(100):
        if get_hub().topics.get(topic) and get_hub().topics[topic].subscribers:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"nobody subscribed to {topic}")


# -- system checks -----------------------------------------------------------------------------


def test_memory_broker_in_a_deployment_is_warned_about():
    from streaming_app.checks import check_broker

    with override_settings(DEBUG=False, STREAMING={}, CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        assert [m.id for m in check_broker()] == ["streaming_app.W005"]
    with override_settings(DEBUG=True, STREAMING={}, CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}):
        assert check_broker() == []


def test_redis_channel_layer_gives_a_redis_broker_without_warning():
    from streaming_app.brokers import broker_url
    from streaming_app.checks import check_broker

    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [("10.0.0.5", 6380)]}}}
    with override_settings(DEBUG=False, STREAMING={}, CHANNEL_LAYERS=layers):
        assert broker_url() == "redis://10.0.0.5:6380/0"
        assert check_broker() == []


def test_topic_history_that_is_not_valid_is_an_error():
    from streaming_app.checks import check_topic_history

    with override_settings(STREAMING={"TOPIC_HISTORY": {"chat.*": {"size": -1}}}):
        assert [m.id for m in check_topic_history()] == ["streaming_app.E013"]
    with override_settings(STREAMING={"TOPIC_HISTORY": {"chat.*": {"size": 10, "ttl": "1h"}}}):
        assert [m.id for m in check_topic_history()] == ["streaming_app.E013"]
    with override_settings(STREAMING={"TOPIC_HISTORY": {"chat.*": {"size": 10, "ttl": 60}}}):
        assert check_topic_history() == []


def test_broker_url_that_is_not_one_is_an_error():
    from streaming_app.checks import check_broker

    with override_settings(STREAMING={"BROKER": "amqp://rabbit"}):
        assert [m.id for m in check_broker()] == ["streaming_app.E007"]
