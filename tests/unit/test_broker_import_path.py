"""A broker of the project's own, selected by its dotted path in ``STREAMING["BROKER"]``.

``LoopbackBroker`` below is such a broker, written against the
``Broker``/``BrokerEventHandler`` interfaces only: it numbers events per topic
and hands them to every listening hub, keeps no history. The topics API, the
hub and the system checks use it as they use the built-in ones.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import weakref

import pytest
from django.test import override_settings

from streaming_app.brokers import get_broker
from streaming_app.brokers.base import Backlog, Broker, BrokerEventHandler
from streaming_app.checks import check_broker
from streaming_app.monitor import LocalStore, get_store
from streaming_app.topics import apublish, publish, subscribe


class LoopbackBroker(Broker):
    """One process; every event is delivered, none is kept."""

    def __init__(self) -> None:
        self.epoch = secrets.token_hex(4)
        self.published: list[tuple[str, str]] = []
        self._offsets: dict[str, int] = {}
        self._handlers: weakref.WeakSet[BrokerEventHandler] = weakref.WeakSet()
        self._lock = threading.Lock()

    def publish(self, topic: str, data_json: str) -> str:
        with self._lock:
            offset = self._offsets[topic] = self._offsets.get(topic, 0) + 1
            eid = f"{self.epoch}:{offset}"
            self.published.append((topic, data_json))
            for handler in list(self._handlers):
                if handler.wants(topic):
                    handler.loop.call_soon_threadsafe(handler.deliver, topic, eid, data_json)
        return eid

    async def apublish(self, topic: str, data_json: str) -> str:
        return self.publish(topic, data_json)

    async def position(self, topic: str) -> tuple[str, int]:
        with self._lock:
            return self.epoch, self._offsets.get(topic, 0)

    async def history(self, topic: str, after: int, upto: int) -> Backlog:
        return Backlog(self.epoch, None)

    async def listen(self, handler: BrokerEventHandler) -> None:
        with self._lock:
            self._handlers.add(handler)


class NotABroker:
    pass


PATH = f"{__name__}.LoopbackBroker"


@pytest.fixture
def loopback():
    with override_settings(STREAMING={"BROKER": PATH}):
        yield


def test_the_dotted_path_selects_the_class_made_with_no_arguments(loopback):
    broker = get_broker()
    assert type(broker) is LoopbackBroker
    assert get_broker() is broker  # one per process


async def test_subscribers_receive_what_is_published_through_it(loopback):
    async with subscribe("loop.news") as subscription:
        eid = await apublish("loop.news", {"n": 1})
        sync_eid = await asyncio.to_thread(publish, "loop.news", {"n": 2})
        first = await asyncio.wait_for(subscription.__anext__(), 2)
        second = await asyncio.wait_for(subscription.__anext__(), 2)
    assert [(first.eid, first.data), (second.eid, second.data)] == [(eid, {"n": 1}), (sync_eid, {"n": 2})]
    assert get_broker().published == [("loop.news", '{"n":1}'), ("loop.news", '{"n":2}')]


def test_a_broker_without_a_redis_url_keeps_live_snapshots_in_process_memory(loopback):
    assert isinstance(get_store(), LocalStore)


def test_it_passes_the_broker_check(loopback):
    with override_settings(DEBUG=False):
        assert check_broker() == []


def test_a_path_that_does_not_import_is_error_e007():
    with override_settings(STREAMING={"BROKER": "nowhere.brokers.Missing"}):
        [message] = check_broker()
    assert message.id == "streaming_app.E007"
    assert message.msg.startswith("STREAMING['BROKER'] 'nowhere.brokers.Missing' cannot be imported: ")


def test_a_class_that_is_not_a_broker_is_error_e007():
    with override_settings(STREAMING={"BROKER": f"{__name__}.NotABroker"}):
        [message] = check_broker()
    assert (message.id, message.msg) == (
        "streaming_app.E007",
        f"STREAMING['BROKER'] '{__name__}.NotABroker' is not a subclass of streaming_app.brokers.base.Broker.",
    )
