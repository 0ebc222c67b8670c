"""Whether a connection's credential still holds (streaming_app.revocation.Credential), against the real database."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from streaming_app.revocation import Credential, _validate_all

pytestmark = pytest.mark.django_db


def token_credential(user) -> Credential:
    token = Token.objects.create(user=user)
    return Credential(str(user.pk), user.get_session_auth_hash(), token.key, Token)


def test_a_credential_whose_token_and_user_are_unchanged_holds(django_user_model):
    user = django_user_model.objects.create_user("cora", password="pw-123456")
    assert token_credential(user).validate() == user


def test_a_deleted_token_no_longer_holds(django_user_model):
    user = django_user_model.objects.create_user("cora", password="pw-123456")
    credential = token_credential(user)
    Token.objects.filter(user=user).delete()
    assert credential.validate() is None


def test_a_changed_password_no_longer_holds(django_user_model):
    user = django_user_model.objects.create_user("cora", password="pw-123456")
    credential = token_credential(user)
    user.set_password("another-pw-42")
    user.save()
    assert credential.validate() is None


def test_many_credentials_are_checked_in_a_few_queries(django_user_model, django_assert_max_num_queries):
    users = [django_user_model.objects.create_user(f"u{n}") for n in range(30)]
    credentials = [token_credential(user) for user in users]
    Token.objects.filter(user=users[0]).delete()
    with django_assert_max_num_queries(2):  # users, tokens
        results = _validate_all(credentials)
    assert results[credentials[0]] is None
    assert [results[c].pk for c in credentials[1:]] == [u.pk for u in users[1:]]
