"""The DCRF peer's consumer: ``subscribe_to_notes``, then every visible ``Note`` change through ``@model_observer``.

Frames, DCRF's own: the client sends ``{"action": "subscribe_to_notes",
"request_id": 1}``; the consumer answers ``{"action": "subscribe_to_notes",
"data": {"subscribed": true}, ...}`` and then relays each change as
``{"action": "create" | "update" | "delete", "data": <note>, "request_id": 1,
"errors": [], "response_status": 200}``. DCRF sends no snapshot and cannot
resume.

Visibility by groups, as DCRF's documentation does it: a public note goes to
the group ``public``, a private one to ``user-<owner id>``; an anonymous
consumer joins ``public``, a signed-in one also its own user's group. The
observer serializes a change once, in the process that saved the row, and
sends the result through the channel layer (Redis) to each group.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from djangochannelsrestframework.consumers import AsyncAPIConsumer
from djangochannelsrestframework.decorators import action
from djangochannelsrestframework.observer import model_observer
from rest_framework import serializers

from project.demo.models import Note


class NoteSerializer(serializers.ModelSerializer):
    """The demo's note rendering (``{"id", "text", "public", "owner", "updated"}``)."""

    owner = serializers.CharField(source="owner.username", default=None, read_only=True)

    class Meta:
        model = Note
        fields = ["id", "text", "public", "owner", "updated"]


class NoteConsumer(AsyncAPIConsumer):
    @model_observer(Note, serializer_class=NoteSerializer)
    async def note_activity(self, message: Any, action: str, subscribing_request_ids: Any = (), **kwargs: Any) -> None:
        for request_id in subscribing_request_ids:
            await self.reply(data=message, action=action, request_id=request_id)

    @note_activity.groups_for_signal
    def note_activity(self, instance: Note, **kwargs: Any):
        yield "public" if instance.public else f"user-{instance.owner_id}"

    @note_activity.groups_for_consumer
    def note_activity(self, user_pk: Any = None, **kwargs: Any):
        yield "public"
        if user_pk is not None:
            yield f"user-{user_pk}"

    @action()
    async def subscribe_to_notes(self, request_id: Any, **kwargs: Any):
        user = self.scope.get("user")
        user_pk = user.pk if user is not None and user.is_authenticated else None
        await self.note_activity.subscribe(request_id=request_id, user_pk=user_pk)
        return {"subscribed": True}, 200


class BearerTokenAuthMiddleware:
    """``scope["user"]`` from a DRF token in ``Authorization: Bearer <key>``; anonymous without one.

    What a DCRF project adds for non-browser clients (DCRF itself reads
    ``scope["user"]``, usually set by Channels' session ``AuthMiddlewareStack``).
    A bad token is refused at the handshake.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> Any:
        from django.contrib.auth.models import AnonymousUser

        header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        user: Any = AnonymousUser()
        if header.startswith("Bearer "):
            user = await _user_for_token(header[len("Bearer "):].strip())
            if user is None:
                await send({"type": "websocket.close", "code": 4401})
                return None
        return await self.app({**scope, "user": user}, receive, send)


@database_sync_to_async
def _user_for_token(key: str) -> Any:
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token is not None and token.user.is_active else None
