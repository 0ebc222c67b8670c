"""Settings of the HTTP transport: defaults and the system checks that guard them."""

from __future__ import annotations

import pytest
from django.test import override_settings

from streaming_app.checks import check_settings
from streaming_app.conf import streaming_settings


def check_ids(streaming: dict) -> list[str]:
    with override_settings(STREAMING=streaming):
        return [message.id for message in check_settings()]


def test_defaults_are_a_three_second_retry_hint_and_fifteen_second_keepalives():
    with override_settings(STREAMING={}):
        assert streaming_settings.SSE_RETRY == 3000
        assert streaming_settings.HTTP_KEEPALIVE_INTERVAL == 15.0


def test_the_defaults_pass_the_checks():
    assert check_ids({}) == []


@pytest.mark.parametrize("retry", [None, 0, 500])
def test_sse_retry_may_be_none_or_a_non_negative_integer(retry):
    assert check_ids({"SSE_RETRY": retry}) == []


@pytest.mark.parametrize("retry", [-1, 1.5, "3000", True])
def test_sse_retry_of_another_kind_is_error_e008(retry):
    assert check_ids({"SSE_RETRY": retry}) == ["streaming_app.E008"]


@pytest.mark.parametrize("interval", [0, -5, "15", None])
def test_keepalive_interval_must_be_a_positive_number(interval):
    assert check_ids({"HTTP_KEEPALIVE_INTERVAL": interval}) == ["streaming_app.E002"]


def test_the_check_message_names_the_setting():
    with override_settings(STREAMING={"SSE_RETRY": -1}):
        [message] = check_settings()
    assert "SSE_RETRY" in message.msg and message.hint
