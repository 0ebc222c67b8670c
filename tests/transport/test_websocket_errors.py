"""Exceptions raised by handlers, as the error frame a WebSocket client receives.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import pytest

from streaming_app.testing import StreamTestClient

from consumer_views import call_error, frames_for
from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


@pytest.mark.parametrize(
    "kind, code",
    [
        ("drf_not_found", "not_found"),
        ("drf_permission_denied", "permission_denied"),
        ("drf_not_authenticated", "unauthenticated"),
        ("drf_throttled", "resource_exhausted"),
        ("object_does_not_exist", "not_found"),
    ],
)
async def test_framework_exception_maps_to_its_code(kind, code):
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": kind})
    assert error.code == code


async def test_drf_exception_message_is_kept():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "drf_not_found"})
    assert error.message == "No such order."


async def test_drf_validation_error_with_fields_is_invalid_argument_with_errors():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "drf_validation_dict"})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {"name": ["Too short."]}}


async def test_drf_validation_error_without_fields_is_under_non_field_errors():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "drf_validation_list"})
    assert error.details == {"errors": {"non_field_errors": ["Bad input."]}}


async def test_model_does_not_exist_is_not_found():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.missing_user")
    assert error.code == "not_found"


async def test_error_whose_details_cannot_be_encoded_still_ends_the_call_without_them():
    # Over HTTP such an error was always sent without its details; over the
    # WebSocket the call used to get no terminal frame at all.
    async with StreamTestClient(timeout=2) as client:
        error = await call_error(client, "t_err.unencodable_details")
        call_id = await client.start("t_err.stream_unencodable_details")
        frames = await frames_for(client, call_id, 2)
        assert await client.call("t_flow.fast") == "fast"  # the connection serves on
    assert (error.code, error.message, error.details) == ("failed_precondition", "Stock changed.", {})
    assert frames == [
        {"t": "next", "id": call_id, "d": 1},
        {"t": "error", "id": call_id, "code": "aborted", "message": "Conflict.", "details": {}},
    ]


async def test_handler_that_raises_cancelled_error_itself_ends_with_cancelled():
    # As over HTTP; the WebSocket used to leave such a call without a terminal frame.
    async with StreamTestClient(timeout=2) as client:
        error = await call_error(client, "t_err.raise_cancelled")
    assert (error.code, error.message) == ("cancelled", "The call was cancelled.")


async def test_unexpected_exception_is_internal_without_its_text():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_err.raise_", {"kind": "runtime"})
    assert error.code == "internal"
    assert "secret-detail-42" not in error.message
    assert "secret-detail-42" not in str(error.details)
