"""One schema (streaming_app.conf.SCHEMA) gives the defaults and the checks; every key is checked."""

from __future__ import annotations

import subprocess
import sys

import pytest
from django.core.checks import Error
from django.test import override_settings

from conftest import ROOT
from streaming_app import checks
from streaming_app.conf import DEFAULTS, SCHEMA, StreamingSettings, streaming_settings


def messages(streaming) -> list:
    with override_settings(STREAMING=streaming):
        return [*checks.check_settings(), *checks.check_installed(), *checks.check_broker(), *checks.check_topic_history()]


def test_streaming_none_is_error_e001_and_nothing_else_fails():
    found = messages(None)
    errors = [m for m in found if isinstance(m, Error)]
    assert [(m.id, m.msg, m.hint) for m in errors] == [
        (
            "streaming_app.E001",
            "STREAMING must be a dict, got None.",
            "Set STREAMING = {...} in your settings, or leave it out for the defaults.",
        )
    ]


def test_streaming_that_is_not_a_dict_reads_as_the_defaults_meanwhile():
    with override_settings(STREAMING=["not", "a", "dict"]):
        assert streaming_settings.HEARTBEAT_INTERVAL == DEFAULTS["HEARTBEAT_INTERVAL"]
        [error] = checks.check_settings()
    assert (error.id, error.msg) == ("streaming_app.E001", "STREAMING must be a dict, got ['not', 'a', 'dict'].")


def test_manage_py_check_reports_streaming_none_instead_of_crashing(tmp_path):
    (tmp_path / "none_settings.py").write_text("from project.settings import *  # noqa\nSTREAMING = None\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--settings", "none_settings"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{ROOT}"},
    )
    assert "?: (streaming_app.E001) STREAMING must be a dict, got None." in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_the_defaults_are_the_schemas():
    assert DEFAULTS == {key: setting.default for key, setting in SCHEMA.items()}
    fresh = StreamingSettings()
    with override_settings(STREAMING={}):
        for key, setting in SCHEMA.items():
            if not setting.import_strings:
                assert getattr(fresh, key) == setting.default


def test_every_default_passes_its_own_rule():
    assert [key for key, setting in SCHEMA.items() if setting.problem(key, setting.default)] == []


@pytest.mark.parametrize(
    ("key", "value", "check_id"),
    [
        ("STREAMS_MODULE", "my streams", "streaming_app.E015"),
        ("STREAMS_MODULE", 5, "streaming_app.E015"),
        ("MAX_CONNECTIONS_PER_PROCESS", 0, "streaming_app.E016"),
        ("MAX_CONNECTIONS_PER_PROCESS", 10.5, "streaming_app.E016"),
        ("DEFAULT_TIMEOUT", 0, "streaming_app.E017"),
        ("MAX_TIMEOUT", "30", "streaming_app.E017"),
        ("ALLOWED_ORIGINS", "https://app.example.com", "streaming_app.E018"),
        ("ALLOWED_ORIGINS", [None], "streaming_app.E018"),
        ("DB_CONNECTION_CHECK_INTERVAL", -1, "streaming_app.E019"),
        ("TOPIC_PREFIX", "", "streaming_app.E020"),
        ("TOPIC_PREFIX", "my app", "streaming_app.E020"),
        ("BROKER", 6379, "streaming_app.E007"),
        ("DEFAULT_PERMISSION_CLASSES", "rest_framework.permissions.AllowAny", "streaming_app.E003"),
        ("REVALIDATE_INTERVAL", 0, "streaming_app.E030"),
        ("MAX_CONNECTION_AGE", "1d", "streaming_app.E030"),
        ("MAX_CONNECTIONS_PER_USER", 0, "streaming_app.E031"),
        ("MAX_CONNECTIONS_PER_IP", 2.5, "streaming_app.E031"),
        ("MAX_CALLS_PER_SECOND", -1, "streaming_app.E032"),
    ],
)
def test_settings_no_check_looked_at_before_are_checked(key, value, check_id):
    # A Redis broker, whatever REDIS_URL is: with the in-memory one and DEBUG off W005 would join in.
    with override_settings(STREAMING={"BROKER": "redis://127.0.0.1:6379/0", key: value}):
        found = [*checks.check_settings(), *checks.check_broker()]
    assert [(m.id, m.msg) for m in found] == [(check_id, f"STREAMING[{key!r}] must be {SCHEMA[key].expected}, got {value!r}.")]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("STREAMS_MODULE", "api.streams"),
        ("MAX_CONNECTIONS_PER_PROCESS", 5000),
        ("DEFAULT_TIMEOUT", 30),
        ("MAX_TIMEOUT", 0.5),
        ("ALLOWED_ORIGINS", ["https://app.example.com"]),
        ("DB_CONNECTION_CHECK_INTERVAL", 0),
        ("TOPIC_PREFIX", "myproject"),
    ],
)
def test_valid_values_of_those_settings_pass(key, value):
    with override_settings(STREAMING={key: value}):
        assert checks.check_settings() == []


def test_a_wrong_value_is_reported_once_and_rules_between_keys_skip_it():
    # HEARTBEAT_TIMEOUT is not a number: E002 for it, and no E004 comparing it.
    with override_settings(STREAMING={"HEARTBEAT_TIMEOUT": "60"}):
        assert [m.id for m in checks.check_settings()] == ["streaming_app.E002"]
