"""Prometheus metrics of one server process, and the view that serves them.

Why it is shaped this way: a stream may send tens of thousands of items a
second, and a topic may fan an event out to thousands of subscribers, so
nothing here touches a ``prometheus_client`` metric (a lock and a label
lookup) per item. The runner counts a call's items in a plain attribute
(``CallRunner.items_sent``), the hub adds each event's deliveries to one
integer, and the per-call work (open, outcome, duration) is a few dict
operations under one uncontended lock. A :class:`StreamingCollector`
turns these into metric families only when Prometheus scrapes.

The names (``docs/operations.md`` lists them with their PromQL):

- ``streaming_connections`` gauge: open WebSocket connections;
- ``streaming_calls_open{method}`` gauge;
- ``streaming_calls_total{method, transport, outcome}`` counter, ``outcome``
  being ``ok``, an error code (``unauthenticated`` for calls ended by revoked
  credentials), or ``cancelled``;
- ``streaming_items_sent_total{method}`` counter (items of streams, open
  calls included);
- ``streaming_call_duration_seconds{method}`` histogram;
- ``streaming_published_total`` and ``streaming_deliveries_total`` counters
  (events published by this process; events handed to its subscribers).

``STREAMING["METRICS"] = False`` counts nothing and registers no collector.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Iterable

from django.http import HttpRequest, HttpResponse
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from rest_framework.authentication import BaseAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from .conf import streaming_settings
from .outcomes import EndReason
from .protocol.codes import ErrorCode

if TYPE_CHECKING:
    from .runner import CallRunner

#: Upper bounds (seconds) of the call duration histogram: unary calls land in
#: the first buckets, streams that live for minutes or hours in the last.
DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0, 3600.0,
)


class MethodStats:
    """What one method's finished and open calls add up to, in this process."""

    __slots__ = ("open", "items", "outcomes", "buckets", "duration_sum")

    def __init__(self) -> None:
        self.open = 0
        self.items = 0  # items of the calls that ended; open calls' are read from their runners
        self.outcomes: dict[tuple[str, str], int] = {}  # (transport, outcome) -> calls
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)  # the last one is +Inf
        self.duration_sum = 0.0


class ProcessMetrics:
    """The process's counters; the runner and the hub write them, the collector reads them.

    The lock makes a call's end one step for a scrape from another thread:
    its items move from the open call to the method's total at once, so the
    items counter never goes backwards (Prometheus would read a reset).
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.methods: dict[str, MethodStats] = {}
        self.open_calls: set[CallRunner] = set()
        self.published = 0
        self.deliveries = 0  # written by the hub, on the event loop only

    def call_started(self, runner: CallRunner) -> None:
        """A call began (its runner counts its items in ``items_sent``)."""
        name = runner.method.name
        with self.lock:
            stats = self.methods.get(name)
            if stats is None:
                stats = self.methods[name] = MethodStats()
            stats.open += 1
            self.open_calls.add(runner)

    def call_ended(self, runner: CallRunner, transport: str, outcome: str, duration: float) -> None:
        """A call that :meth:`call_started` counted has ended with ``outcome``."""
        with self.lock:
            if runner not in self.open_calls:
                return  # started while metrics were off
            self.open_calls.discard(runner)
            stats = self.methods[runner.method.name]
            stats.open -= 1
            stats.items += runner.items_sent
            key = (transport, outcome)
            stats.outcomes[key] = stats.outcomes.get(key, 0) + 1
            stats.buckets[bisect_left(DURATION_BUCKETS, duration)] += 1
            stats.duration_sum += duration

    def count_published(self) -> None:
        """One event published from this process (from any thread)."""
        with self.lock:
            self.published += 1


metrics = ProcessMetrics()


class StreamingCollector(Collector):
    """Builds the ``streaming_*`` metric families from :data:`metrics` at scrape time."""

    def __init__(self, source: ProcessMetrics = metrics) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        from .transports.websocket import StreamConsumer

        source = self.source
        with source.lock:
            live_items: dict[str, int] = {}
            for runner in source.open_calls:
                name = runner.method.name
                live_items[name] = live_items.get(name, 0) + runner.items_sent
            rows = [
                (name, stats.open, stats.items + live_items.get(name, 0), dict(stats.outcomes),
                 list(stats.buckets), stats.duration_sum)
                for name, stats in sorted(source.methods.items())
            ]
            published, deliveries = source.published, source.deliveries

        yield GaugeMetricFamily(
            "streaming_connections", "Open WebSocket connections of this process.",
            value=StreamConsumer.open_connections,
        )
        calls_open = GaugeMetricFamily("streaming_calls_open", "Open calls, by method.", labels=["method"])
        calls = CounterMetricFamily(
            "streaming_calls", "Calls that ended, by method, transport and outcome (ok, an error code, cancelled).",
            labels=["method", "transport", "outcome"],
        )
        items = CounterMetricFamily("streaming_items_sent", "Stream items sent, by method.", labels=["method"])
        durations = HistogramMetricFamily(
            "streaming_call_duration_seconds", "Duration of the calls that ended, by method.", labels=["method"]
        )
        for name, open_count, sent, outcomes, buckets, total in rows:
            calls_open.add_metric([name], open_count)
            for (transport, outcome), count in sorted(outcomes.items()):
                calls.add_metric([name, transport, outcome], count)
            items.add_metric([name], sent)
            cumulative, running = [], 0
            for bound, count in zip([*map(_bound, DURATION_BUCKETS), "+Inf"], buckets):
                running += count
                cumulative.append((bound, running))
            durations.add_metric([name], cumulative, total)
        yield calls_open
        yield calls
        yield items
        yield durations
        yield CounterMetricFamily(
            "streaming_published", "Events published on topics from this process.", value=published
        )
        yield CounterMetricFamily(
            "streaming_deliveries", "Events handed to this process's topic subscribers.", value=deliveries
        )


def _bound(value: float) -> str:
    return repr(float(value))


_collector: StreamingCollector | None = None
_collector_lock = threading.Lock()


def register_collector(registry: CollectorRegistry = REGISTRY) -> None:
    """Register the ``streaming_*`` metrics once per process (``ready()`` calls it when METRICS is on)."""
    global _collector
    with _collector_lock:
        if _collector is None:
            _collector = StreamingCollector()
            registry.register(_collector)


def outcome_of(runner: CallRunner) -> str:
    """``ok``, the error code the call ended with, or ``cancelled`` (cancel, disconnect).

    A call ended by revoked credentials counts as ``unauthenticated`` on
    every transport: an HTTP stream ends with that error, a WebSocket call
    with its connection (4401) and no error of its own, and it is not a
    client that cancelled or left.
    """
    if runner.reason is EndReason.COMPLETED:
        return "ok"
    if runner.error is not None:
        return str(runner.error.code)
    if runner.reason is EndReason.REVOKED:
        return str(ErrorCode.UNAUTHENTICATED)
    return "cancelled"


def call_ended(runner: CallRunner) -> None:
    """The runner's hook: count a call that ended (nothing if it was not counted)."""
    transport = runner.writer.transport or runner.ctx.transport
    metrics.call_ended(runner, transport, outcome_of(runner), time.monotonic() - runner.started_at)


# -- who may read them -----------------------------------------------------------------------

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def is_loopback_request(request: HttpRequest) -> bool:
    """A request from this host itself, not relayed by a proxy.

    Behind a reverse proxy on the same host every request comes from a
    loopback address, so a request that carries a forwarding header is
    never taken for a local one.
    """
    meta = request.META
    if any(header in meta for header in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(str(meta.get("REMOTE_ADDR", "")).split("%")[0]).is_loopback
    except ValueError:
        return False


class IsLoopbackOrStaff(BasePermission):
    """Loopback clients without credentials (a local Prometheus or sidecar), and staff users."""

    def has_permission(self, request: Request, view: Any) -> bool:
        if is_loopback_request(request._request):
            return True
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


class MetricsNegotiation(BaseContentNegotiation):
    """Leave ``Accept`` to the view: it names Prometheus' formats, which no DRF renderer has.

    Without this, DRF would answer a scraper asking for OpenMetrics with 406.
    Refusals (401, 403) are rendered as JSON.
    """

    def select_parser(self, request: Request, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(self, request: Request, renderers: Any, format_suffix: str | None = None) -> Any:
        return renderers[0], renderers[0].media_type


class MetricsView(APIView):
    """``GET``: the process's metrics in Prometheus' text format.

    Include it where you like, e.g. ``path("metrics", MetricsView.as_view())``.
    Access follows ``STREAMING["METRICS_PERMISSION_CLASSES"]``; credentials
    are read as stream calls read them (``DEFAULT_AUTHENTICATION_CLASSES``:
    bearer token, session). The collector reads the counts under their lock,
    so a scrape from Django's worker thread is consistent.
    """

    registry: CollectorRegistry = REGISTRY
    renderer_classes = [JSONRenderer]
    content_negotiation_class = MetricsNegotiation

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [authenticator() for authenticator in streaming_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in streaming_settings.METRICS_PERMISSION_CLASSES]

    def get(self, request: Request) -> HttpResponse:
        # The text format Prometheus asks for in Accept (OpenMetrics or 0.0.4), as prometheus_client serves it.
        encode, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
        return HttpResponse(encode(self.registry), content_type=content_type)

