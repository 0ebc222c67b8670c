"""The demo's chat room (``chat.room``) through the Python client, on a real daphne.

Input is validated by serializers: every bad input ends only the sender's
call with ``invalid_argument`` naming the field; the room goes on.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from streaming_app.client import InvalidArgument, StreamClient

pytestmark = pytest.mark.django_db(transaction=True)


async def join(client: StreamClient, room: str, name: str):
    call = await client.open("chat.room", room=room, name=name)
    await asyncio.sleep(0.2)  # subscribed before the other member speaks
    return call, call.__aiter__()


async def next_message(items) -> dict:
    return await asyncio.wait_for(items.__anext__(), 10)


async def test_every_member_receives_every_message_of_the_room(daphne_server):
    room = uuid.uuid4().hex[:12]
    async with StreamClient(daphne_server.ws_url) as ann, StreamClient(daphne_server.ws_url) as bob:
        ann_call, ann_items = await join(ann, room, "ann")
        bob_call, bob_items = await join(bob, room, "bob")
        await ann_call.send({"text": "hi bob"})
        await bob_call.send({"text": "hi ann"})
        for items in (ann_items, bob_items):
            assert await next_message(items) == {"from": "ann (guest)", "text": "hi bob"}
            assert await next_message(items) == {"from": "bob (guest)", "text": "hi ann"}


async def test_rooms_are_separate(daphne_server):
    async with StreamClient(daphne_server.ws_url) as ann, StreamClient(daphne_server.ws_url) as bob:
        ann_call, ann_items = await join(ann, uuid.uuid4().hex[:12], "ann")
        _, bob_items = await join(bob, uuid.uuid4().hex[:12], "bob")
        await ann_call.send({"text": "only here"})
        assert (await next_message(ann_items))["text"] == "only here"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(bob_items.__anext__(), 0.5)


@pytest.fixture
def frank_token(make_token) -> str:
    return make_token("frank")


async def test_a_signed_in_member_speaks_under_their_username(daphne_server, frank_token):
    token = frank_token
    async with StreamClient(daphne_server.ws_url, token=token) as frank:
        call, items = await join(frank, uuid.uuid4().hex[:12], "pretending-to-be-someone")
        await call.send({"text": "it's me"})
        assert await next_message(items) == {"from": "frank", "text": "it's me"}


@pytest.mark.parametrize(
    "item, field",
    [({"text": "x" * 501}, "text"), ({"text": "   "}, "text"), ({}, "text"), ("just a string", "item"), ({"text": None}, "text")],
    ids=["too-long", "blank", "missing", "not-an-object", "null"],
)
async def test_a_bad_message_ends_only_the_senders_call_with_invalid_argument(daphne_server, item, field):
    room = uuid.uuid4().hex[:12]
    async with StreamClient(daphne_server.ws_url) as ann, StreamClient(daphne_server.ws_url) as bob:
        ann_call, ann_items = await join(ann, room, "ann")
        bob_call, bob_items = await join(bob, room, "bob")
        await ann_call.send(item)
        with pytest.raises(InvalidArgument) as raised:
            await next_message(ann_items)
        assert field in raised.value.details["errors"]
        await bob_call.send({"text": "still here"})
        assert (await next_message(bob_items))["text"] == "still here"


@pytest.mark.parametrize(
    "arguments, field",
    [({"room": "no spaces allowed"}, "room"), ({"room": "r" * 51}, "room"), ({"name": "n" * 41}, "name")],
    ids=["bad-slug", "long-room", "long-name"],
)
async def test_bad_join_arguments_are_invalid_argument(daphne_server, arguments, field):
    async with StreamClient(daphne_server.ws_url) as client:
        call = await client.open("chat.room", arguments)
        with pytest.raises(InvalidArgument) as raised:
            await call.result()
        assert field in raised.value.details["errors"]
        assert await client.call("interop.empty") == {}
