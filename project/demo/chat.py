"""The demo's chat room: ``chat.room``, a bidirectional call over a broadcast topic.

Each member's call subscribes to the room's topic and publishes what the
member sends on it, so everyone in the room (on any server process, with the
Redis broker) receives every message, in the topic's order, including their
own. Input is validated by serializers: a bad room name at the start, or a bad
message later, ends that member's call with ``invalid_argument`` naming the
field; the server and the other members carry on.

Each member is in the room's presence (``ctx.join``) under their name, so a
member list is always right, across processes. A call with ``members=true``
(the demo page) also gets ``{"members": [{"client", "name"}]}`` first and then
``{"presence": "join" | "leave", "client", "name"}`` as members come and go.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Literal, TypedDict

from rest_framework import serializers

from streaming_app import StreamView, apublish, bidi_stream
from streaming_app.exceptions import InvalidArgument
from streaming_app.merge import merge

MAX_MESSAGE = 500


class JoinSerializer(serializers.Serializer):
    """The call's arguments: which room, and a guest's name (a signed-in user's is their username)."""

    room = serializers.SlugField(max_length=50, default="lobby")
    name = serializers.CharField(max_length=40, required=False, allow_blank=True, trim_whitespace=True)
    members = serializers.BooleanField(default=False)


class MessageSerializer(serializers.Serializer):
    """One item a member sends: ``{"text": "..."}``, 1 to MAX_MESSAGE characters."""

    text = serializers.CharField(max_length=MAX_MESSAGE, trim_whitespace=True)


# One message of the room, as every member receives it ("from" is a keyword: the functional form).
ChatLine = TypedDict("ChatLine", {"from": str, "text": str})


class ChatMember(TypedDict):
    client: str
    name: str


class ChatMembers(TypedDict):
    """The member list a ``members=true`` call gets first."""

    members: list[ChatMember]


class ChatPresence(TypedDict):
    """A member who came or went (a leave carries no name: the client id identifies them)."""

    presence: Literal["join", "leave"]
    client: str
    name: str


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
    async def room(
        self, ctx, items: AsyncIterator[Any], room: str, name: str = "", members: bool = False
    ) -> AsyncIterator[ChatLine | ChatMembers | ChatPresence]:
        """Relay the room's messages (and, with ``members``, who comes and goes) while publishing theirs."""
        # A signed-in member speaks under their username; a guest's chosen name is marked as such.
        name = ctx.user.get_username() if ctx.user.is_authenticated else f"{name or 'someone'} (guest)"
        topic = f"chat.{room}"
        comings = await ctx.presence_events(topic, per_user=False) if members else None
        subscription = await ctx.subscribe(topic)  # live before anything is published: nothing missed
        await ctx.join(topic, info={"name": name})
        if comings is not None:
            yield {"members": [{"client": m["client"], "name": _name(m)} for m in await ctx.presence(topic)]}

        async def publish_messages() -> None:
            async for item in items:
                await apublish(topic, {"from": name, "text": validated_message(item)})

        async def presence_changes() -> AsyncIterator[dict]:
            assert comings is not None
            async for event in comings:
                data = event.data
                yield {"presence": data["presence"], "client": data["client"], "name": _name(data)}

        sources = [subscription] if comings is None else [subscription, presence_changes()]
        sender = asyncio.ensure_future(publish_messages())
        relayed = merge(*sources)
        next_event = asyncio.ensure_future(relayed.__anext__())
        try:
            while True:
                done, _ = await asyncio.wait({sender, next_event}, return_when=asyncio.FIRST_COMPLETED)
                if next_event in done:
                    yield next_event.result()  # a message Event (sent with its eid) or a presence change
                    next_event = asyncio.ensure_future(relayed.__anext__())
                if sender in done:
                    sender.result()  # a bad message ends the call with its invalid_argument
                    return  # the member ended their half: they left the room
        finally:
            for task in (sender, next_event):
                task.cancel()
            await asyncio.gather(sender, next_event, return_exceptions=True)
            await relayed.aclose()


def _name(member: dict) -> str:
    """A member's display name: what they joined with (leave events carry none: the client id identifies them)."""
    info = member.get("info")
    return str(info.get("name", "")) if isinstance(info, dict) else ""
