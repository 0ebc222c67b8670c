"""System checks of model stream views: what cannot be streamed fails ``check``, not a call."""

from __future__ import annotations

import pytest
from django.db import models
from rest_framework import serializers

from project.demo.models import Note
from project.demo.streams import NoteSerializer
from streaming_app import ModelStreamView
from streaming_app.checks import check_model_streams
from streaming_app.registry import registry


class Pair(models.Model):
    """A model keyed by two columns: its rows have no single key to stream by."""

    pk = models.CompositePrimaryKey("left", "right")
    left = models.IntegerField()
    right = models.IntegerField()

    class Meta:
        app_label = "demo"
        managed = False


class TextOnly(serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = ["text"]


@pytest.fixture
def registered():
    """Register views for one test, then forget them."""
    namespaces = []

    def register(view_class):
        registry.register(view_class)
        namespaces.append(view_class.namespace)

    yield register
    for namespace in namespaces:
        registry.unregister(namespace)


def check_ids() -> list[str]:
    return [message.id for message in check_model_streams()]


def test_the_example_projects_model_streams_pass():
    assert check_ids() == []


def test_view_without_queryset_is_e021(registered):
    registered(type("NoQueryset", (ModelStreamView,), {"namespace": "bad_noqs", "__module__": __name__}))
    assert check_ids() == ["streaming_app.E021"]


def test_model_without_single_column_key_is_e022(registered):
    registered(type("Pairs", (ModelStreamView,), {"namespace": "bad_pairs", "__module__": __name__,
                                                  "queryset": Pair.objects.all()}))
    [message] = check_model_streams()
    assert message.id == "streaming_app.E022"
    assert message.msg == f"{__name__}.Pairs streams demo.Pair, which has no single-column primary key."


def test_serializer_without_the_key_is_e023(registered):
    registered(type("Texts", (ModelStreamView,), {"namespace": "bad_texts", "__module__": __name__,
                                                  "queryset": Note.objects.all(), "serializer_class": TextOnly}))
    [message] = check_model_streams()
    assert message.id == "streaming_app.E023"
    assert message.msg == f"{__name__}.Texts: its serializer TextOnly has no 'id' field."


def test_filter_on_no_such_field_is_e024_and_is_not_an_argument(registered):
    view = type("Colours", (ModelStreamView,), {"namespace": "bad_colours", "__module__": __name__,
                                                "queryset": Note.objects.all(), "serializer_class": NoteSerializer,
                                                "filter_fields": ["colour", "public"]})
    registered(view)
    [message] = check_model_streams()
    assert message.id == "streaming_app.E024"
    assert message.msg.startswith(f"{__name__}.Colours.filter_fields: 'colour' cannot filter a watch")
    assert set(registry.get("bad_colours.watch").arguments.converters) == {"public"}
