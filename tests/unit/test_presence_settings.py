"""System checks of the presence settings (streaming_app.presence): E060, E061."""

from __future__ import annotations

import pytest
from django.test import override_settings

from streaming_app import checks


def check_ids(streaming: dict) -> list[str]:
    with override_settings(STREAMING=streaming):
        return [message.id for message in checks.check_settings()]


@pytest.mark.parametrize("value", [0, -1, 1.5, "2048", True])
def test_check_reports_an_info_limit_that_is_not_a_positive_integer(value):
    assert check_ids({"PRESENCE_MAX_INFO_BYTES": value}) == ["streaming_app.E060"]


@pytest.mark.parametrize("value", [0, 0.05, 4, "3"])
def test_check_reports_a_heartbeat_interval_that_would_keep_the_dead_past_15_seconds(value):
    assert check_ids({"PRESENCE_HEARTBEAT_INTERVAL": value}) == ["streaming_app.E061"]


def test_check_accepts_presence_settings_in_range():
    assert check_ids({"PRESENCE_MAX_INFO_BYTES": 100, "PRESENCE_HEARTBEAT_INTERVAL": 1}) == []
