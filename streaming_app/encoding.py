"""Turning what handlers yield into JSON.

Items may be plain JSON values, dataclasses, serializer output
(``serializer.data``) or the values Django and DRF commonly produce (dates,
decimals, UUIDs, lazy strings). Encoding stays in the C JSON encoder: this
hook is only consulted for values it does not know.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from rest_framework.serializers import BaseSerializer
from rest_framework.utils.encoders import JSONEncoder

_drf_default = JSONEncoder().default


def json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, BaseSerializer):
        return value.data
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    return _drf_default(value)
