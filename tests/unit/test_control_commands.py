"""Control commands are a table: modules register handlers by op; the listener verifies and dispatches."""

from __future__ import annotations

import asyncio

import pytest
from django.test import override_settings

from streaming_app import control
from streaming_app.monitor import Monitor, monitor

RECEIVED: list[tuple[object, dict]] = []


@control.command("test.echo")
def _echo(owner, command) -> None:
    command = dict(command)
    assert isinstance(command.pop("nonce"), str)
    RECEIVED.append((owner, command))


@pytest.fixture(autouse=True)
def memory_broker():
    RECEIVED.clear()
    with override_settings(STREAMING={"BROKER": "memory://"}):
        yield


def test_the_monitor_and_the_switches_registered_their_commands():
    import streaming_app.switches  # noqa: F401  (registers "switches" on import)

    assert {"terminate", "switches", "test.echo"} <= set(control._handlers)


def test_an_op_takes_one_handler():
    with pytest.raises(ValueError, match="control command 'terminate' already has a handler"):
        control.command("terminate")(lambda owner, command: None)


def test_a_signed_command_reaches_its_handler_with_the_listeners_owner():
    owner = Monitor()
    control.handle(owner, control._sign({"op": "test.echo", "n": 1}))
    assert RECEIVED == [(owner, {"op": "test.echo", "n": 1})]


def test_an_op_nobody_handles_is_ignored(caplog):
    caplog.set_level("WARNING", logger="streaming_app")
    control.handle(monitor, control._sign({"op": "test.nobody"}))
    assert RECEIVED == [] and caplog.records == []


async def test_the_listener_dispatches_what_is_published_on_the_control_topic():
    owner = Monitor()
    listener = asyncio.get_running_loop().create_task(control.listen(owner))
    try:
        for _ in range(100):  # until the listener is subscribed: a command sent before would be lost
            await control.asend(control._sign({"op": "test.echo"}))
            await asyncio.sleep(0.01)
            if RECEIVED:
                break
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    assert RECEIVED and RECEIVED[0] == (owner, {"op": "test.echo"})


# -- revocation notices (streaming_app.revocation) -----------------------------------------------------------


class _Watched:
    def __init__(self, credential):
        self.credential = credential
        self.revoked = 0

    def credential_revoked(self) -> None:
        self.revoked += 1

    def credential_refreshed(self, user) -> None:
        pass


def test_a_revocation_notice_naming_a_token_closes_only_the_connections_holding_it():
    from django.core import signing

    from streaming_app.revocation import SALT, Credential, Guard, key_hash

    guard = Guard()
    holder, other = _Watched(Credential("7", token_key="k1")), _Watched(Credential("7", token_key="k2"))
    guard._by_user["7"] = {holder, other}
    guard.handle(signing.dumps({"u": "7", "k": key_hash("k1")}, salt=SALT))
    assert (holder.revoked, other.revoked) == (1, 0)
    assert guard.generation("7") == 1


def test_a_forged_revocation_notice_is_ignored():
    from django.core import signing

    from streaming_app.revocation import Credential, Guard, key_hash

    guard = Guard()
    holder = _Watched(Credential("7", token_key="k1"))
    guard._by_user["7"] = {holder}
    guard.handle(signing.dumps({"u": "7", "k": key_hash("k1")}, salt="not-the-salt"))
    assert holder.revoked == 0 and guard.generation("7") == 0


def test_a_command_published_again_is_not_carried_out_again(caplog):
    caplog.set_level("WARNING", logger="streaming_app")
    owner = Monitor()
    signed = control._sign({"op": "test.echo", "n": 1})
    control.handle(owner, signed)
    control.handle(owner, signed)  # captured from the broker and published again
    assert RECEIVED == [(owner, {"op": "test.echo", "n": 1})]
    assert [r.getMessage() for r in caplog.records] == ["streaming_app: ignored a replayed control command"]


def test_two_commands_with_the_same_content_are_both_carried_out():
    owner = Monitor()
    control.handle(owner, control._sign({"op": "test.echo", "n": 1}))
    control.handle(owner, control._sign({"op": "test.echo", "n": 1}))
    assert len(RECEIVED) == 2


def test_a_signed_command_without_a_nonce_is_ignored():
    from django.core import signing

    control.handle(Monitor(), signing.dumps({"op": "test.echo"}, salt=control.SALT, compress=False))
    assert RECEIVED == []
