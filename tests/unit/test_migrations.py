"""streaming_app's migrations describe its models as they are: a change to a model (or to the
choices of a field, such as ``EndReason``) comes with its migration, or projects get a
``makemigrations`` diff for a third-party app they cannot commit."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_the_models_need_no_new_migration():
    out = StringIO()
    try:
        call_command("makemigrations", "streaming_app", "--check", "--dry-run", stdout=out)
    except SystemExit:
        pytest.fail(f"streaming_app's models changed without a migration:\n{out.getvalue()}")
