"""System checks of the STREAMING settings the WebSocket transport reads: numbers, heartbeats, frame size, classes.

Moved from test_consumer.py; the schema's own tests are in test_settings_schema.py.
"""

from __future__ import annotations

from django.test import override_settings

from streaming_app import checks


def check_ids(streaming: dict) -> list[str]:
    with override_settings(STREAMING=streaming):
        return [message.id for message in checks.check_settings()]


def test_default_settings_pass_the_checks():
    assert check_ids({}) == []


def test_check_reports_a_setting_that_is_not_a_positive_number():
    assert check_ids({"CLIENT_WINDOW": 0}) == ["streaming_app.E002"]


def test_check_reports_a_heartbeat_timeout_not_longer_than_the_interval():
    assert check_ids({"HEARTBEAT_INTERVAL": 10, "HEARTBEAT_TIMEOUT": 10}) == ["streaming_app.E004"]


def test_check_reports_an_unknown_setting():
    assert check_ids({"HEARTBEAT": 5}) == ["streaming_app.W001"]


def test_check_warns_of_a_frame_limit_daphne_would_drop():
    assert check_ids({"MAX_FRAME_BYTES": 1024 * 1024}) == ["streaming_app.W002"]


def test_check_reports_an_unimportable_class():
    assert check_ids({"DEFAULT_PERMISSION_CLASSES": ["nowhere.Nothing"]}) == ["streaming_app.E003"]
