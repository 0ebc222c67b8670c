"""Presence on the client: a room's member list, kept from a server's presence items (docs/presence.md).

A stream method that relays presence (``ctx.presence_events(topic)`` on the
server) sends joins and leaves, ``{"presence": "join" | "leave", "user",
"client", ...}``; a read (``ctx.presence(topic)``) gives the members,
``[{"client", "user", "info"}]``. A :class:`Roster` starts from such a read
(or empty) and applies each event::

    roster = Roster(await client.call("rooms.members", room="lobby"))
    async for item in client.stream("rooms.join", room="lobby"):
        if is_presence_event(item):
            roster.apply(item)

A member is a client (one call); ``user`` is a username, or None for an
anonymous member, who is counted and never named. The JavaScript client has
the same ``Roster`` (``presence.js``).
"""

from __future__ import annotations

from typing import Any, Iterable, Literal, NotRequired, TypedDict, TypeGuard


class PresenceMember(TypedDict):
    """One member: a call in the topic's presence."""

    client: str
    user: str | None
    info: Any


class PresenceEvent(TypedDict):
    """A join or a leave (``info`` on joins; ``clients``: that user's clients after it)."""

    presence: Literal["join", "leave"]
    client: str
    user: str | None
    info: NotRequired[Any]
    clients: NotRequired[int]


class PresenceStats(TypedDict):
    """What ``ctx.presence_stats(topic)`` gives: every client, distinct signed-in users, anonymous clients."""

    clients: int
    users: int
    anonymous: int


def is_presence_event(item: Any) -> TypeGuard[PresenceEvent]:
    """Whether a stream item is a join or a leave."""
    return (
        isinstance(item, dict)
        and item.get("presence") in ("join", "leave")
        and isinstance(item.get("client"), str)
    )


class Roster:
    """The members of one room, by client id."""

    def __init__(self, members: Iterable[PresenceMember] = ()) -> None:
        self.members: dict[str, PresenceMember] = {
            member["client"]: {"client": member["client"], "user": member["user"], "info": member.get("info")}
            for member in members
        }

    def apply(self, event: PresenceEvent) -> bool:
        """Apply a join or a leave; True when the list changed (a repeated event changes nothing)."""
        if event["presence"] == "join":
            known = event["client"] in self.members
            self.members[event["client"]] = {
                "client": event["client"], "user": event.get("user"), "info": event.get("info"),
            }
            return not known
        return self.members.pop(event["client"], None) is not None

    def __len__(self) -> int:
        return len(self.members)

    def by_user(self) -> dict[str | None, int]:
        """Clients per signed-in user; anonymous clients under None."""
        counts: dict[str | None, int] = {}
        for member in self.members.values():
            counts[member["user"]] = counts.get(member["user"], 0) + 1
        return counts

    def stats(self) -> PresenceStats:
        counts = self.by_user()
        return {
            "clients": len(self.members),
            "users": len(counts) - (1 if None in counts else 0),
            "anonymous": counts.get(None, 0),
        }
