"""The example project plus presence probes behind a topic permission, for tests/e2e/test_e2e_presence.py.

``presenceprobe.*`` may not touch a topic whose name contains "secret"
(``has_topic_permission``), so the tests can check that presence reads,
joins and event subscriptions use the topic's subscribe permission.
``presenceprobe.join`` joins with the given info and relays every client's
joins and leaves (no per-user aggregation). Served only by tests.
"""

from typing import Any

from rest_framework.permissions import BasePermission

from project.asgi import application  # noqa: F401  (sets Django up)
from streaming_app import StreamView, server_stream, unary
from streaming_app.registry import registry


class NoSecretTopics(BasePermission):
    message = "No secrets here."

    def has_permission(self, request, view) -> bool:
        return True

    def has_topic_permission(self, request, view, topic: str) -> bool:
        return "secret" not in topic


class PresenceProbe(StreamView):
    namespace = "presenceprobe"
    permission_classes = [NoSecretTopics]

    @unary
    async def members(self, ctx, topic: str) -> dict:
        return {"members": await ctx.presence(topic)}

    @unary
    async def stats(self, ctx, topic: str) -> dict:
        return await ctx.presence_stats(topic)

    @server_stream
    async def join(self, ctx, topic: str, info: Any = None):
        events = await ctx.presence_events(topic, per_user=False)
        member = await ctx.join(topic, info=info)
        yield {"client": member.client}
        async for event in events:
            yield event

    @server_stream
    async def watch(self, ctx, topic: str):
        async for event in ctx.presence_events(topic):
            yield event


registry.register(PresenceProbe)
