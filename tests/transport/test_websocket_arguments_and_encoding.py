"""Values in and out of a call over the WebSocket: arguments by type hint or DRF serializer, items and results as JSON.

In-process, through StreamTestClient (Channels' communicator, no socket); the test-only
stream views and helpers are in tests/consumer_views.py, registered for each test.
"""

from __future__ import annotations

import datetime

import pytest

from streaming_app.exceptions import StreamError
from streaming_app.testing import StreamTestClient

from consumer_views import Point, Color, call_error, frames_for
from consumer_views import views  # noqa: F401  (autouse: registers the test views, clears their state)

pytestmark = pytest.mark.usefixtures("close_worker_connections")


# -- argument validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, expected",
    [
        ("i", 3, ["int", 3]),
        ("i", 3.0, ["int", 3]),
        ("s", "hé", ["str", "hé"]),
        ("b", True, ["bool", True]),
        ("f", 2, ["float", 2.0]),
        ("f", 2.5, ["float", 2.5]),
        ("o", None, ["NoneType", None]),
        ("o", 4, ["int", 4]),
        ("li", [1, 2.0], ["list", [1, 2]]),
        ("lit", "b", ["str", "b"]),
        ("point", {"x": 1}, ["Point", {"x": 1, "y": 0}]),
        ("color", "blue", ["Color", "blue"]),
        ("when", "2024-01-02T03:04:05+00:00", ["datetime", "2024-01-02T03:04:05Z"]),
    ],
)
async def test_argument_is_converted_to_its_type_hint(name, value, expected):
    async with StreamTestClient() as client:
        result = await client.call("t_args.types", {name: value})
    assert result[name] == expected


@pytest.mark.parametrize(
    "name, value, key, message",
    [
        ("i", "3", "i", "Must be an integer."),
        ("i", True, "i", "Must be an integer."),
        ("i", 3.5, "i", "Must be an integer."),
        ("s", 5, "s", "Must be a string."),
        ("b", 1, "b", "Must be a boolean."),
        ("b", "true", "b", "Must be a boolean."),
        ("f", "1.5", "f", "Must be a number."),
        ("f", True, "f", "Must be a number."),
        ("o", "x", "o", "Must be an integer. Or: Must be null."),
        ("li", 3, "li", "Must be a list."),
        ("li", [1, "x"], "li.1", "Must be an integer."),
        ("lit", "c", "lit", "Must be one of ['a', 'b']."),
        ("point", {"y": 1}, "point.x", "This field is required."),
        ("point", {"x": "1"}, "point.x", "Must be an integer."),
        ("point", {"x": 1, "z": 2}, "point", "Unknown field 'z'."),
        ("point", [1, 2], "point", "Must be an object."),
        ("color", "purple", "color", "Must be one of ['red', 'blue']."),
        ("when", "yesterday", "when", "Must be an ISO 8601 date and time."),
        ("when", 1700000000, "when", "Must be an ISO 8601 date and time."),
    ],
)
async def test_argument_of_the_wrong_type_is_invalid_argument(name, value, key, message):
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.types", {name: value})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {key: [message]}}


async def test_missing_required_argument_is_invalid_argument():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.required", {"b": "y"})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {"a": ["This argument is required."]}}


async def test_unknown_argument_is_invalid_argument():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.required", {"a": 1, "zzz": 2})
    assert error.details == {"errors": {"zzz": ["Unknown argument."]}}


async def test_every_argument_error_is_reported_at_once():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_args.required", {"b": 3, "zzz": 2})
    assert error.details == {
        "errors": {
            "a": ["This argument is required."],
            "b": ["Must be a string."],
            "zzz": ["Unknown argument."],
        }
    }
    assert error.message == "Invalid arguments: a, b, zzz."


async def test_valid_arguments_with_defaults_reach_the_handler():
    async with StreamTestClient() as client:
        assert await client.call("t_args.required", {"a": 1}) == {"a": 1, "b": "x"}


async def test_incoming_item_of_the_wrong_type_is_invalid_argument():
    async with StreamTestClient() as client:
        call_id = await client.start("interop.sum")
        await client.send({"t": "next", "id": call_id, "d": {"v": "x"}})
        await client.send({"t": "end", "id": call_id})
        with pytest.raises(StreamError) as info:
            await client.collect_call(call_id)
    assert info.value.code == "invalid_argument"
    assert info.value.details == {"errors": {"item.v": ["Must be an integer."]}}


# -- DRF serializers ---------------------------------------------------------------------------------------


async def test_serializer_validated_data_is_passed_as_keyword_arguments():
    async with StreamTestClient() as client:
        result = await client.call("t_ser.place", {"quantity": "3"})
    assert result == {"quantity": ["int", 3], "note": ""}


async def test_serializer_errors_are_invalid_argument_with_field_details():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_ser.place", {"quantity": 0})
    assert error.code == "invalid_argument"
    assert error.details == {"errors": {"quantity": ["Ensure this value is greater than or equal to 1."]}}


async def test_serializer_reports_missing_fields():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_ser.place", {})
    assert error.details == {"errors": {"quantity": ["This field is required."]}}


# -- encoding of outgoing values ---------------------------------------------------------------------------


async def test_outgoing_values_are_encoded_as_json():
    async with StreamTestClient() as client:
        items, _ = await client.collect("t_enc.values")
    assert items == [
        {"x": 1, "y": 2},
        1.25,  # DRF's JSONEncoder turns a Decimal into a float
        "2024-01-02T03:04:05Z",
        "2024-01-02",
        "12345678-1234-5678-1234-567812345678",
        {"quantity": 3, "note": "n"},
        {"quantity": 4, "note": "m"},
        "blue",
    ]


async def test_unserializable_item_fails_the_call_with_internal():
    async with StreamTestClient() as client:
        call_id = await client.start("t_enc.unserializable")
        frames = await frames_for(client, call_id, 2)
    assert frames[0] == {"t": "next", "id": call_id, "d": 1}
    assert frames[1]["t"] == "error" and frames[1]["code"] == "internal"
    assert "object" not in frames[1]["message"]


async def test_unserializable_result_fails_the_call_with_internal():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_enc.unserializable_result")
    assert error.code == "internal"


async def test_nan_result_fails_the_call_with_internal():
    async with StreamTestClient() as client:
        error = await call_error(client, "t_enc.nan")
    assert error.code == "internal"
