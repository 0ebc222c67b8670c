"""Commands from the admin to the server process that owns a call, through the broker.

A call lives in one process's memory, and the admin request that wants it
ended is served by any process (or by a management command), so commands
travel on a control topic that every server process subscribes to while it
has calls (its monitor's flusher runs the listener). Commands are signed with
the project's ``SECRET_KEY``: a topic is something any code holding the
broker can publish to, and a forged command must not end someone's call.

Commands: ``terminate`` (one call, or a whole connection), ``switches`` (the
endpoint switches changed: drop the cache, and optionally end the open calls
of what was disabled).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from django.core import signing

from . import exceptions
from .topics import apublish, publish, subscribe

if TYPE_CHECKING:
    from .monitor import Monitor

logger = logging.getLogger("streaming_app")

CONTROL_TOPIC = "streaming_app.control"
SALT = "streaming_app.control"
MAX_AGE = 60  # seconds a command stays valid (a replay later does nothing)

TERMINATED_MESSAGE = "Terminated by an administrator."


def terminated_error() -> exceptions.StreamError:
    """What the client of a terminated call receives: ``cancelled``, with ``details.reason``.

    ``cancelled`` because the client never receives it for its own cancel (that
    ends silently), so it is unambiguous, and clients do not retry it the way
    they may retry ``unavailable``.
    """
    return exceptions.Cancelled(TERMINATED_MESSAGE, {"reason": "terminated"})


def disabled_error(name: str) -> exceptions.StreamError:
    return exceptions.Unavailable(f"{name} is disabled by an administrator.", {"reason": "disabled", "method": name})


def _sign(command: dict[str, Any]) -> str:
    return signing.dumps(command, salt=SALT, compress=False)


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


def handle(monitor: Monitor, data: Any) -> None:
    """Carry out one command if it is genuine and concerns this process."""
    from . import switches
    from .monitor import process_id

    try:
        command = signing.loads(data, salt=SALT, max_age=MAX_AGE)
    except (signing.BadSignature, TypeError):
        logger.warning("streaming_app: ignored a control command with a bad or expired signature")
        return
    op = command.get("op")
    if op == "terminate":
        if command.get("process") == process_id():
            monitor.terminate(str(command["conn"]), command.get("call"), terminated_error())
    elif op == "switches":
        switches.invalidate()
        names = set(command.get("end") or [])
        if names:
            for call in [c for c in monitor.calls.values() if c.method in names or c.namespace in names]:
                call.terminate(disabled_error(call.method))  # each call's own method in the message


async def listen(monitor: Monitor) -> None:
    """Carry out commands until cancelled; the switches cache is dropped once live."""
    from . import switches

    while True:
        try:
            async with subscribe(CONTROL_TOPIC, buffer=10_000) as subscription:
                switches.invalidate()  # changes made while nobody listened
                async for event in subscription:
                    try:
                        handle(monitor, event.data)
                    except Exception:
                        logger.exception("streaming_app: a control command failed")
        except exceptions.StreamError as exc:
            logger.warning("streaming_app: the control topic failed (%s); subscribing again", exc)
        await asyncio.sleep(1.0)
