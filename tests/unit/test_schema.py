"""The schema generator (streaming_app.schema), its checks, and ``streaming_schema`` with ``--check``.

The document is validated against the official AsyncAPI 3.0 JSON Schema as
the ``@asyncapi/specs`` npm package ships it (package.json; ``npm ci``
installs it when ``node_modules`` lacks it), with the ``jsonschema`` package.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import enum
import io
import json
import subprocess
import sys
import time
import uuid
from typing import Any, AsyncIterator, Literal, TypedDict

import jsonschema
import pytest
from conftest import ROOT
from django.core.management import CommandError, call_command
from rest_framework import serializers

from streaming_app import StreamView, server_stream, unary
from streaming_app.checks import check_method_schemas
from streaming_app.registry import registry
from streaming_app.schema import Components, build_document, current_document, schema_for

SPEC = ROOT / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0-without-$id.json"


@pytest.fixture(scope="module")
def asyncapi_validator(node_packages) -> jsonschema.protocols.Validator:
    """A validator of the official AsyncAPI 3.0.0 JSON Schema (draft-07), from node_modules."""
    return jsonschema.Draft7Validator(json.loads(SPEC.read_text()))


def operation(name: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
    return (document or current_document())["operations"][name]["x-streaming"]


def resolved(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# -- the document --------------------------------------------------------------------------------


def test_the_document_is_valid_asyncapi_3(asyncapi_validator):
    errors = [error.message for error in asyncapi_validator.iter_errors(current_document())]
    assert errors == []


def test_an_operation_without_a_channel_is_not_valid_asyncapi(asyncapi_validator):
    document = current_document()
    del document["operations"]["interop.count"]["channel"]
    assert not asyncapi_validator.is_valid(document)


def test_every_method_is_an_operation_keyed_by_its_name():
    document = current_document()
    assert document["asyncapi"] == "3.0.0"
    assert set(document["operations"]) == {method.name for method in registry.methods()}
    assert {"interop.count", "interop.sum", "interop.echo", "notes.watch"} <= set(document["operations"])


def test_interop_count_says_what_interop_md_says():
    document = current_document()
    count = operation("interop.count", document)
    assert count["kind"] == "server_stream"
    arguments = count["arguments"]
    assert arguments["required"] == ["n"]
    assert {name: value["type"] for name, value in arguments["properties"].items()} == {
        "n": "integer", "interval_ms": "integer", "start": "integer"}
    item = resolved(count["item"], document)
    assert item["required"] == ["i"] and item["properties"]["i"] == {"type": "integer"}
    result = resolved(count["result"], document)
    assert result["required"] == ["total"] and result["properties"]["total"] == {"type": "integer"}


def test_each_kind_has_its_parts():
    document = current_document()
    assert set(operation("interop.unary", document)) == {"kind", "arguments", "result"}
    assert set(operation("interop.count", document)) == {"kind", "arguments", "item", "result"}
    assert set(operation("interop.sum", document)) == {"kind", "arguments", "client_item", "result"}
    assert set(operation("interop.echo", document)) == {"kind", "arguments", "item", "client_item", "result"}
    assert [operation(name, document)["kind"] for name in ("interop.unary", "interop.sum", "interop.echo")] == [
        "unary", "client_stream", "bidi_stream"]


def test_the_note_schema_comes_from_its_serializer():
    document = current_document()
    note = resolved(operation("notes.add", document)["result"], document)
    assert note["required"] == ["id", "text", "public", "owner", "updated"]
    assert note["properties"]["updated"] == {"type": "string", "format": "date-time"}
    assert note["properties"]["owner"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    watch = operation("notes.watch", document)["item"]
    assert [branch["properties"]["op"] for branch in watch["oneOf"]] == [
        {"const": "snapshot"}, {"enum": ["created", "updated"]}, {"const": "deleted"}]


def test_the_example_project_has_no_untyped_or_unreadable_methods():
    assert check_method_schemas() == []


# -- types -----------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Point(TypedDict):
    x: int
    label: str | None


@dataclasses.dataclass
class Box:
    corner: Point
    tags: list[str]
    size: float = 1.0


def schema(hint: Any, mode: Literal["input", "output"] = "output") -> tuple[dict[str, Any], dict[str, Any]]:
    components = Components()
    return schema_for(hint, components, mode), components.schemas


def test_plain_types_and_formats():
    assert schema(int)[0] == {"type": "integer"}
    assert schema(bool)[0] == {"type": "boolean"}
    assert schema(datetime.datetime)[0] == {"type": "string", "format": "date-time"}
    assert schema(datetime.date)[0] == {"type": "string", "format": "date"}
    assert schema(uuid.UUID)[0] == {"type": "string", "format": "uuid"}
    assert schema(decimal.Decimal)[0] == {"type": "string", "format": "decimal"}
    assert schema(Any)[0] == {}


def test_containers_literals_enums_and_optionals():
    assert schema(list[int])[0] == {"type": "array", "items": {"type": "integer"}}
    assert schema(dict[str, float])[0] == {"type": "object", "additionalProperties": {"type": "number"}}
    assert schema(Literal["a", "b"])[0] == {"enum": ["a", "b"]}
    assert schema(int | None)[0] == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    ref, components = schema(Color)
    assert components[ref["$ref"].rsplit("/", 1)[1]] == {"enum": ["red", "blue"]}


def test_typeddicts_and_dataclasses_are_named_components():
    ref, components = schema(Box, "input")
    assert ref == {"$ref": "#/components/schemas/Box"}
    assert components["Box"]["required"] == ["corner", "tags"]
    assert components["Box"]["properties"]["corner"] == {"$ref": "#/components/schemas/Point"}
    assert components["Point"] == {
        "type": "object", "additionalProperties": False, "required": ["x", "label"],
        "properties": {"x": {"type": "integer"}, "label": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
    }


class OrderSerializer(serializers.Serializer):
    quantity = serializers.IntegerField(min_value=1, max_value=10)
    color = serializers.ChoiceField(choices=["red", "blue"])
    note = serializers.CharField(required=False, allow_null=True, max_length=20)
    id = serializers.IntegerField(read_only=True)


def test_serializer_fields_with_required_null_choices_and_bounds():
    ref, components = schema(OrderSerializer, "input")
    order = components[ref["$ref"].rsplit("/", 1)[1]]
    assert order["required"] == ["quantity", "color"]
    assert "id" not in order["properties"]  # read-only: not an input
    assert order["properties"]["quantity"] == {"type": "integer", "minimum": 1, "maximum": 10}
    assert order["properties"]["color"] == {"enum": ["red", "blue"]}
    assert order["properties"]["note"] == {"anyOf": [{"type": "string", "maxLength": 20, "minLength": 1}, {"type": "null"}]}


def test_schemas_of_200_methods_take_under_a_second():
    methods = registry.methods()
    many = (methods * (200 // len(methods) + 1))[:200]
    started = time.perf_counter()
    build_document(many)
    assert time.perf_counter() - started < 1.0


# -- checks: untyped and unreadable methods --------------------------------------------------------


class Unreadable(StreamView):
    namespace = "t_schema_bad"

    @unary
    async def odd(self, ctx, n: int) -> complex:
        return complex(n)

    @unary
    async def loose(self, ctx, n):
        return n

    @server_stream
    async def typed(self, ctx) -> AsyncIterator[int]:
        yield 1


@pytest.fixture
def unreadable():
    registry.register(Unreadable)
    yield
    registry.unregister("t_schema_bad")


def test_an_annotation_with_no_schema_is_check_error_e040_naming_the_method(unreadable):
    errors = [m for m in check_method_schemas() if m.id == "streaming_app.E040"]
    assert len(errors) == 1
    assert "'t_schema_bad.odd'" in errors[0].msg and "complex" in errors[0].msg


def test_untyped_methods_are_listed_by_warning_w040(unreadable):
    (warning,) = [m for m in check_method_schemas() if m.id == "streaming_app.W040"]
    assert "t_schema_bad.loose (argument 'n', result)" in warning.msg
    assert "t_schema_bad.typed" not in warning.msg and "t_schema_bad.odd" not in warning.msg


def test_streaming_schema_does_not_crash_on_an_unreadable_method(unreadable):
    out = io.StringIO()
    call_command("streaming_schema", stdout=out)
    odd = json.loads(out.getvalue())["operations"]["t_schema_bad.odd"]
    assert "complex" in odd["x-streaming-error"]
    assert odd["x-streaming"]["result"] == {}
    assert json.loads(out.getvalue())["operations"]["t_schema_bad.loose"]["x-streaming"]["arguments"][
        "properties"] == {"n": {}}


# -- streaming_schema and --check ----------------------------------------------------------------


def test_dash_o_writes_the_document(tmp_path):
    call_command("streaming_schema", "-o", str(tmp_path / "schema.json"))
    assert json.loads((tmp_path / "schema.json").read_text()) == json.loads(json.dumps(current_document()))


def test_yaml_format_writes_the_same_document(tmp_path):
    yaml = pytest.importorskip("yaml")
    call_command("streaming_schema", "--format", "yaml", "-o", str(tmp_path / "schema.yaml"))
    assert yaml.safe_load((tmp_path / "schema.yaml").read_text()) == json.loads(json.dumps(current_document()))


def check(tmp_path, saved: dict[str, Any]) -> tuple[int, str]:
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(saved))
    out = io.StringIO()
    try:
        call_command("streaming_schema", "--check", str(path), stdout=out)
    except CommandError as exc:
        return exc.returncode, str(exc)
    return 0, out.getvalue()


def saved_document() -> dict[str, Any]:
    return copy.deepcopy(json.loads(json.dumps(current_document())))


def test_check_of_the_current_document_passes(tmp_path):
    assert check(tmp_path, saved_document()) == (0, f"No breaking changes since {tmp_path / 'saved.json'}.\n")


def test_check_reports_a_removed_method(tmp_path):
    saved = saved_document()
    saved["operations"]["interop.gone"] = copy.deepcopy(saved["operations"]["interop.empty"])
    code, message = check(tmp_path, saved)
    assert code == 1 and "interop.gone: method removed" in message


def test_check_reports_a_required_argument_added(tmp_path):
    saved = saved_document()
    arguments = operation("interop.count", saved)["arguments"]
    del arguments["properties"]["n"]
    arguments["required"] = []
    code, message = check(tmp_path, saved)
    assert code == 1 and "interop.count: required argument 'n' added" in message


def test_check_reports_an_argument_type_changed(tmp_path):
    saved = saved_document()
    operation("interop.unary", saved)["arguments"]["properties"]["payload"] = {"type": ["string", "integer"]}
    code, message = check(tmp_path, saved)
    assert code == 1 and "interop.unary: argument 'payload' type changed incompatibly" in message


def test_check_reports_an_item_type_changed(tmp_path):
    saved = saved_document()
    saved["components"]["schemas"]["CountItem"]["properties"]["i"] = {"type": "string"}
    code, message = check(tmp_path, saved)
    assert code == 1 and "interop.count: item type changed incompatibly" in message


def test_check_reports_a_result_type_changed(tmp_path):
    saved = saved_document()
    saved["components"]["schemas"]["CountResult"]["properties"]["total"] = {"type": "string"}
    code, message = check(tmp_path, saved)
    assert code == 1 and "interop.count: result type changed incompatibly" in message
    assert message.count("\n  - ") == 1


def test_check_passes_compatible_changes(tmp_path):
    """An optional argument added, a field added to a result, an argument widened: no break."""
    saved = saved_document()
    count = operation("interop.count", saved)["arguments"]
    del count["properties"]["start"]
    saved["components"]["schemas"]["Payload"] = {"type": "object", "properties": {}, "required": [],
                                                 "additionalProperties": False}
    operation("interop.cleanups", saved)["arguments"]["properties"]["tag"] = {"enum": ["a", "b"]}
    assert check(tmp_path, saved)[0] == 0


def test_check_of_a_file_that_is_not_asyncapi_exits_2_with_a_message(tmp_path):
    path = tmp_path / "saved.json"
    path.write_text(json.dumps({"openapi": "3.1.0", "paths": {}}))
    result = subprocess.run([sys.executable, "manage.py", "streaming_schema", "--check", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "is not an AsyncAPI document" in result.stderr and "Traceback" not in result.stderr


def test_check_of_operations_without_x_streaming_exits_2(tmp_path):
    code, message = check(tmp_path, {"asyncapi": "3.0.0", "operations": {"send": {"action": "send"}}})
    assert code == 2 and "operation 'send' has no 'x-streaming' object" in message


def test_check_of_a_file_that_is_not_json_exits_2(tmp_path):
    path = tmp_path / "saved.json"
    path.write_text("not json")
    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("streaming_schema", "--check", str(path), stdout=out)
    assert raised.value.returncode == 2 and "is not a JSON AsyncAPI document" in str(raised.value)


def test_check_exits_1_from_the_command_line(tmp_path):
    saved = saved_document()
    saved["operations"]["interop.gone"] = copy.deepcopy(saved["operations"]["interop.empty"])
    path = tmp_path / "saved.json"
    path.write_text(json.dumps(saved))
    result = subprocess.run([sys.executable, "manage.py", "streaming_schema", "--check", str(path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "interop.gone: method removed" in result.stderr


# -- settings -------------------------------------------------------------------------------------


def test_schema_info_names_the_document(settings):
    settings.STREAMING = {"SCHEMA_INFO": {"title": "Orders", "version": "2.1.0"}}
    assert current_document()["info"]["title"] == "Orders"
    assert current_document()["info"]["version"] == "2.1.0"


def test_bad_schema_settings_are_check_errors_e041_and_e042(settings):
    from streaming_app.checks import check_settings

    settings.STREAMING = {"SCHEMA_PERMISSION_CLASSES": "IsAdminUser", "SCHEMA_INFO": {"title": "x"}}
    assert sorted(m.id for m in check_settings()) == ["streaming_app.E041", "streaming_app.E042"]


# -- the admin's explorer page (its calls run in tests/browser/test_schema_explorer.py) -------------


@pytest.mark.django_db
def test_the_explorer_is_linked_from_the_live_page_and_lists_methods(admin_client):
    live = admin_client.get("/admin/streaming_app/livecall/")
    assert 'href="/admin/streaming_app/livecall/explorer/"' in live.content.decode()
    page = admin_client.get("/admin/streaming_app/livecall/explorer/")
    assert page.status_code == 200
    assert 'data-method="interop.count" data-kind="server_stream"' in page.content.decode()


@pytest.mark.django_db
def test_the_explorer_is_for_staff_only(client, django_user_model):
    django_user_model.objects.create_user("walter", password="pw-123456")
    client.login(username="walter", password="pw-123456")
    response = client.get("/admin/streaming_app/livecall/explorer/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_the_explorer_needs_the_live_pages_view_permission(client, django_user_model):
    django_user_model.objects.create_user("sam", password="pw-123456", is_staff=True)
    client.login(username="sam", password="pw-123456")
    assert client.get("/admin/streaming_app/livecall/explorer/").status_code == 403


# -- TypedDicts as arguments and client items: validated as their schema says ---------------------


def test_a_typeddict_argument_is_validated_as_its_schema_says():
    from streaming_app.arguments import Invalid, converter_for

    convert = converter_for(Point)
    assert convert({"x": 1, "label": None}) == {"x": 1, "label": None}
    for bad, path in [({"x": "1", "label": None}, ("x",)), ({"x": 1}, ("label",)), ({"x": 1, "label": "a", "y": 2}, ())]:
        with pytest.raises(Invalid) as raised:
            convert(bad)
        assert raised.value.path == path
        assert not jsonschema.Draft202012Validator(
            {**schema(Point, "input")[0], "components": {"schemas": schema(Point, "input")[1]}}).is_valid(bad)


def test_a_serializer_read_and_written_is_two_schemas():
    components = Components()
    written = schema_for(OrderSerializer, components, "output")
    read = schema_for(OrderSerializer, components, "input")
    assert (written, read) == ({"$ref": "#/components/schemas/Order"}, {"$ref": "#/components/schemas/OrderInput"})
    assert "id" in components.schemas["Order"]["properties"] and "id" not in components.schemas["OrderInput"]["properties"]


class ScoreSerializer(serializers.Serializer):
    score = serializers.SerializerMethodField()
    note = serializers.SerializerMethodField()

    def get_score(self, obj: Any) -> float | None:
        return None

    def get_note(self, obj):
        return ""


def test_a_method_field_is_typed_by_its_methods_return_annotation():
    ref, components = schema(ScoreSerializer)
    properties = components[ref["$ref"].rsplit("/", 1)[1]]["properties"]
    assert properties["score"] == {"anyOf": [{"type": "number"}, {"type": "null"}]}
    assert properties["note"] == {}
