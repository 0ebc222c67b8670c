"""Commands from the admin to the server process that owns a call, through the broker.

A call lives in one process's memory, and the admin request that wants it
ended is served by any process (or by a management command), so commands
travel on a control topic that every server process subscribes to while it
has calls (its monitor's flusher runs the listener). Commands are signed with
the project's ``SECRET_KEY``: a topic is something any code holding the
broker can publish to, and a forged command must not end someone's call.
Each carries a random nonce and a process carries a command out once: a
captured command published again within its validity is ignored.

Commands are data: a table from a command's ``op`` to its handler, which the
modules that carry them out register into (:func:`command`), so this module
imports neither of them:

* ``terminate`` (one call, or a whole connection): :mod:`streaming_app.monitor`;
* ``switches`` (the endpoint switches changed: drop the cache, and optionally
  end the open calls of what was disabled): :mod:`streaming_app.switches`,
  which also drops its cache each time the listener goes live
  (:func:`on_listening`).

A handler gets the object the listener runs for (the process's monitor, which
holds the open calls) and the verified command. Handlers register when their
module is imported, which every process serving calls does (the transports
import the monitor and the switches); a command nobody registered for is
ignored, as one for another process is.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any, Callable

from django.core import signing

from . import exceptions
from .topics import apublish, publish, subscribe

# handler(owner, command): owner is what listen() runs for (the monitor).
Handler = Callable[[Any, dict[str, Any]], None]

logger = logging.getLogger("streaming_app")

CONTROL_TOPIC = "streaming_app.control"
SALT = "streaming_app.control"
MAX_AGE = 60  # seconds a command stays valid (a replay later does nothing)
# Nonces of the commands this process carried out in the last MAX_AGE seconds:
# within its validity a command is carried out once, so a captured command
# published again (by anyone who can publish to the broker) does nothing.
# Only genuine commands are recorded, so only the admins' rate fills it.
_done: dict[str, float] = {}

TERMINATED_MESSAGE = "Terminated by an administrator."

_handlers: dict[str, Handler] = {}
_listening_hooks: list[Callable[[], None]] = []


def command(op: str) -> Callable[[Handler], Handler]:
    """Register the handler of the ``op`` command (a decorator; one handler per op)."""

    def register(handler: Handler) -> Handler:
        known = _handlers.get(op)
        if known is not None and known is not handler:
            raise ValueError(f"control command {op!r} already has a handler: {known!r}")
        _handlers[op] = handler
        return handler

    return register


def on_listening(hook: Callable[[], None]) -> Callable[[], None]:
    """Run ``hook`` each time the listener is subscribed (again): what changed while nobody listened."""
    if hook not in _listening_hooks:
        _listening_hooks.append(hook)
    return hook


def terminated_error() -> exceptions.StreamError:
    """What the client of a terminated call receives: ``cancelled``, with ``details.reason``.

    ``cancelled`` because the client never receives it for its own cancel (that
    ends silently), so it is unambiguous, and clients do not retry it the way
    they may retry ``unavailable``.
    """
    return exceptions.Cancelled(TERMINATED_MESSAGE, {"reason": "terminated"})


def _sign(command: dict[str, Any]) -> str:
    return signing.dumps({**command, "nonce": secrets.token_hex(16)}, salt=SALT, compress=False)


def _first_time(nonce: Any, now: float) -> bool:
    """Whether the command with this nonce is new to this process (and remember it if so)."""
    if not isinstance(nonce, str):
        return False  # unsigned nonces cannot exist; a command without one is not ours
    if nonce in _done:
        return False
    for seen, expires in list(_done.items()):
        if expires > now:
            break  # insertion order is expiry order
        del _done[seen]
    _done[nonce] = now + MAX_AGE
    return True


def terminate_command(process: str, connection_id: str, call_id: int | None = None) -> str:
    return _sign({"op": "terminate", "process": process, "conn": connection_id, "call": call_id})


def switches_command(end_open: list[str] | None = None) -> str:
    return _sign({"op": "switches", "end": sorted(end_open or [])})


def send(command: str) -> str:
    """Publish a signed command from synchronous code (admin views, commands)."""
    return publish(CONTROL_TOPIC, command)


async def asend(command: str) -> str:
    return await apublish(CONTROL_TOPIC, command)


def terminate(process: str, connection_id: str, call_id: int | None = None) -> str:
    """Ask the owning process to end a call (``call_id``) or to close a connection (None)."""
    return send(terminate_command(process, connection_id, call_id))


def switches_changed(end_open: list[str] | None = None) -> str:
    """Tell every process to reload the switches; end open calls of ``end_open`` names."""
    return send(switches_command(end_open))


def handle(owner: Any, data: Any) -> None:
    """Carry out one command if it is genuine (its handler decides whether it concerns this process)."""
    try:
        command = signing.loads(data, salt=SALT, max_age=MAX_AGE)
    except (signing.BadSignature, TypeError):
        logger.warning("streaming_app: ignored a control command with a bad or expired signature")
        return
    if not isinstance(command, dict):
        return
    if not _first_time(command.get("nonce"), time.monotonic()):
        logger.warning("streaming_app: ignored a replayed control command")
        return
    op = command.get("op")
    handler = _handlers.get(op) if isinstance(op, str) else None
    if handler is not None:
        handler(owner, command)


async def listen(owner: Any) -> None:
    """Carry out commands for ``owner`` (the monitor) until cancelled."""
    while True:
        try:
            async with subscribe(CONTROL_TOPIC, buffer=10_000) as subscription:
                for hook in list(_listening_hooks):
                    hook()
                async for event in subscription:
                    try:
                        handle(owner, event.data)
                    except Exception:
                        logger.exception("streaming_app: a control command failed")
        except exceptions.StreamError as exc:
            logger.warning("streaming_app: the control topic failed (%s); subscribing again", exc)
        await asyncio.sleep(1.0)
