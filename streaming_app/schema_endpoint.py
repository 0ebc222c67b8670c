"""``GET <prefix>/_schema``: the AsyncAPI document, to whom ``SCHEMA_PERMISSION_CLASSES`` allows.

A DRF view, so the permission classes are DRF's own and the credentials the
streams accept (``DEFAULT_AUTHENTICATION_CLASSES``: bearer token, session,
ticket) work here too; presented but invalid credentials answer 401.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .conf import streaming_settings
from .schema import current_document


class SchemaView(APIView):
    """The same document as ``manage.py streaming_schema``, built per request (methods do not change at run time)."""

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [cls() for cls in streaming_settings.DEFAULT_AUTHENTICATION_CLASSES]

    def get_permissions(self) -> list[BasePermission]:
        return [cls() for cls in streaming_settings.SCHEMA_PERMISSION_CLASSES]

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(current_document())
