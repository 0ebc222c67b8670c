"""The example project plus a probe that lets tests watch flow control from the server side.

``flowprobe.items`` records how many items its generator has produced;
``flowprobe.produced`` reports it. Served only by tests: tests/e2e/test_client.py,
tests/e2e/test_js_client.py (for the JS client) and tests/transport/test_http_calls.py.
"""

from project.asgi import application  # noqa: F401  (sets Django up)
from streaming_app import StreamView, server_stream, unary
from streaming_app.registry import registry

PRODUCED: dict[str, int] = {}


class FlowProbe(StreamView):
    namespace = "flowprobe"

    @server_stream
    async def items(self, ctx, key: str, n: int):
        for i in range(n):
            PRODUCED[key] = i + 1
            yield {"i": i}

    @unary(safe=True)
    async def produced(self, ctx, key: str) -> dict:
        return {"produced": PRODUCED.get(key, 0)}


registry.register(FlowProbe)
