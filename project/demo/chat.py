"""The demo's chat room: ``chat.room``, a bidirectional call over a broadcast topic.

Each member's call subscribes to the room's topic and publishes what the
member sends on it, so everyone in the room (on any server process, with the
Redis broker) receives every message, in the topic's order, including their
own. Input is validated by serializers: a bad room name at the start, or a bad
message later, ends that member's call with ``invalid_argument`` naming the
field; the server and the other members carry on.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, TypedDict

from rest_framework import serializers

from streaming_app import StreamView, apublish, bidi_stream
from streaming_app.exceptions import InvalidArgument

MAX_MESSAGE = 500


class JoinSerializer(serializers.Serializer):
    """The call's arguments: which room, and a guest's name (a signed-in user's is their username)."""

    room = serializers.SlugField(max_length=50, default="lobby")
    name = serializers.CharField(max_length=40, required=False, allow_blank=True, trim_whitespace=True)


class MessageSerializer(serializers.Serializer):
    """One item a member sends: ``{"text": "..."}``, 1 to MAX_MESSAGE characters."""

    text = serializers.CharField(max_length=MAX_MESSAGE, trim_whitespace=True)


# One message of the room, as every member receives it ("from" is a keyword: the functional form).
ChatLine = TypedDict("ChatLine", {"from": str, "text": str})


def validated_message(item: Any) -> str:
    if not isinstance(item, dict):
        raise InvalidArgument("A chat message is an object {\"text\": ...}.", {"errors": {"item": ["Expected an object."]}})
    serializer = MessageSerializer(data=item)
    if not serializer.is_valid():
        errors = {field: [str(error) for error in messages] for field, messages in serializer.errors.items()}
        raise InvalidArgument("Invalid chat message.", {"errors": errors})
    return serializer.validated_data["text"]


class ChatStreams(StreamView):
    namespace = "chat"

    @bidi_stream(serializer_class=JoinSerializer)
    async def room(self, ctx, items: AsyncIterator[Any], room: str, name: str = "") -> AsyncIterator[ChatLine]:
        """Relay the room's messages to this member while publishing theirs."""
        # A signed-in member speaks under their username; a guest's chosen name is marked as such.
        name = ctx.user.get_username() if ctx.user.is_authenticated else f"{name or 'someone'} (guest)"
        topic = f"chat.{room}"
        subscription = await ctx.subscribe(topic)  # live before anything is published: nothing missed

        async def publish_messages() -> None:
            async for item in items:
                await apublish(topic, {"from": name, "text": validated_message(item)})

        sender = asyncio.ensure_future(publish_messages())
        next_event = asyncio.ensure_future(subscription.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({sender, next_event}, return_when=asyncio.FIRST_COMPLETED)
                if next_event in done:
                    yield next_event.result()  # an Event: sent with its eid
                    next_event = asyncio.ensure_future(subscription.__anext__())
                if sender in done:
                    sender.result()  # a bad message ends the call with its invalid_argument
                    return  # the member ended their half: they left the room
        finally:
            for task in (sender, next_event):
                task.cancel()
            await asyncio.gather(sender, next_event, return_exceptions=True)
