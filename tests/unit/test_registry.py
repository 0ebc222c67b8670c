"""The stream registry: which views and methods it accepts, and what it refuses with ImproperlyConfigured.

No socket: views are registered on a StreamRegistry of the test's own (and the project's
autodiscovered one is read). FlowViews comes from tests/consumer_views.py.
"""

from __future__ import annotations

from typing import AsyncIterator

import pytest
from django.core.exceptions import ImproperlyConfigured

from streaming_app.decorators import bidi_stream, client_stream, server_stream, unary
from streaming_app.registry import StreamRegistry, registry
from streaming_app.views import StreamView

from consumer_views import FlowViews


def test_server_stream_that_is_not_an_async_generator_is_improperly_configured():
    class NotAGenerator(StreamView):
        namespace = "bad"

        @server_stream
        async def items(self, ctx):
            return [1, 2]

    with pytest.raises(ImproperlyConfigured, match="async generator"):
        StreamRegistry().register(NotAGenerator)


def test_sync_generator_server_stream_is_improperly_configured():
    class SyncGenerator(StreamView):
        namespace = "bad"

        @server_stream
        def items(self, ctx):
            yield 1

    with pytest.raises(ImproperlyConfigured, match="async generator"):
        StreamRegistry().register(SyncGenerator)


def test_unary_that_yields_is_improperly_configured():
    class YieldingUnary(StreamView):
        namespace = "bad"

        @unary
        async def get(self, ctx):
            yield 1

    with pytest.raises(ImproperlyConfigured, match="must not yield"):
        StreamRegistry().register(YieldingUnary)


def test_sync_client_stream_is_improperly_configured():
    class SyncClientStream(StreamView):
        namespace = "bad"

        @client_stream
        def total(self, ctx, items):
            return 0

    with pytest.raises(ImproperlyConfigured, match="must be async"):
        StreamRegistry().register(SyncClientStream)


def test_argument_of_an_unsupported_type_is_improperly_configured():
    class UnsupportedType(StreamView):
        namespace = "bad"

        @unary
        async def get(self, ctx, z: complex) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="complex"):
        StreamRegistry().register(UnsupportedType)


def test_duplicate_namespace_is_improperly_configured():
    class First(StreamView):
        namespace = "dup"

        @unary
        async def get(self, ctx) -> None:
            return None

    class Second(StreamView):
        namespace = "dup"

        @unary
        async def get(self, ctx) -> None:
            return None

    reg = StreamRegistry()
    reg.register(First)
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        reg.register(Second)


def test_registering_the_same_view_twice_is_harmless():
    reg = StreamRegistry()
    assert reg.register(FlowViews) is FlowViews
    assert reg.register(FlowViews) is FlowViews
    assert "t_flow.numbers" in reg


def test_view_without_namespace_is_improperly_configured():
    class Nameless(StreamView):
        @unary
        async def get(self, ctx) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="namespace"):
        StreamRegistry().register(Nameless)


def test_namespace_that_is_not_an_identifier_is_improperly_configured():
    class Dashed(StreamView):
        namespace = "not-valid"

        @unary
        async def get(self, ctx) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="namespace"):
        StreamRegistry().register(Dashed)


def test_view_without_methods_is_improperly_configured():
    class Empty(StreamView):
        namespace = "empty"

        async def helper(self, ctx) -> None:
            return None

    with pytest.raises(ImproperlyConfigured, match="no streaming methods"):
        StreamRegistry().register(Empty)


def test_unregister_removes_the_namespace_methods():
    reg = StreamRegistry()
    reg.register(FlowViews)
    reg.unregister("t_flow")
    assert reg.get("t_flow.numbers") is None
    assert "t_flow" not in reg.views()


def test_register_sets_each_method_kind():
    class Kinds(StreamView):
        namespace = "kinds"

        @unary
        async def u(self, ctx) -> None: ...

        @server_stream
        async def s(self, ctx):
            yield 1

        @client_stream
        async def c(self, ctx, items: AsyncIterator[int]) -> None: ...

        @bidi_stream
        async def b(self, ctx, items: AsyncIterator[int]):
            yield 1

    reg = StreamRegistry()
    reg.register(Kinds)
    assert {m.name: str(m.kind) for m in reg.methods()} == {
        "kinds.b": "bidi_stream",
        "kinds.c": "client_stream",
        "kinds.s": "server_stream",
        "kinds.u": "unary",
    }


def test_autodiscovery_registers_the_demo_interop_views():
    from project.demo.streams import InteropStreams

    assert registry.views()["interop"] is InteropStreams
    assert registry.get("interop.unary").view_class is InteropStreams
    assert str(registry.get("interop.count").kind) == "server_stream"
    assert str(registry.get("interop.sum").kind) == "client_stream"
    assert str(registry.get("interop.echo").kind) == "bidi_stream"


# -- HTTP verbs (safe methods) ------------------------------------------------------------------------------


def test_a_unary_method_is_called_with_post_only_unless_declared_safe():
    from streaming_app import StreamView, server_stream, unary
    from streaming_app.registry import StreamRegistry

    class Verbs(StreamView):
        namespace = "verbs"

        @unary
        async def change(self, ctx) -> None: ...

        @unary(safe=True)
        async def read(self, ctx) -> None: ...

        @server_stream
        async def watch(self, ctx):
            yield 1

    local = StreamRegistry()
    local.register(Verbs)
    assert local.get("verbs.change").http_methods == ("POST",)
    assert local.get("verbs.read").http_methods == ("GET", "POST")
    assert local.get("verbs.watch").http_methods == ("GET", "POST")


def _streams_module(tmp_path, monkeypatch, name: str, source: str):
    """A real module file, imported as autodiscovery imports an app's streams.py."""
    import importlib
    import textwrap

    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    return importlib.import_module(name)


CLASHING_MODULE = """
    from streaming_app import StreamView, server_stream, unary


    class OrderStreams(StreamView):
        namespace = "orders"

        @unary
        async def get(self, ctx, id: int) -> dict:
            return {"id": id}


    class OrderWatch(StreamView):
        namespace = "orders"

        @server_stream
        async def watch(self, ctx):
            yield {}
"""


def test_autodiscovery_raises_on_a_namespace_clash_within_a_module(tmp_path, monkeypatch):
    module = _streams_module(tmp_path, monkeypatch, "clash_streams_a", CLASHING_MODULE)
    reg = StreamRegistry()
    with pytest.raises(ImproperlyConfigured, match=r"Namespace 'orders' of clash_streams_a\.OrderWatch is already registered by clash_streams_a\.OrderStreams"):
        reg.register_module(module)


def test_autodiscovery_raises_on_a_namespace_clash_across_modules(tmp_path, monkeypatch):
    first = _streams_module(tmp_path, monkeypatch, "clash_streams_b1", CLASHING_MODULE.split("class OrderWatch")[0])
    second = _streams_module(
        tmp_path, monkeypatch, "clash_streams_b2",
        "from streaming_app import StreamView, server_stream\n" + "class OrderWatch" + CLASHING_MODULE.split("class OrderWatch")[1],
    )
    reg = StreamRegistry()
    reg.register_module(first)
    with pytest.raises(ImproperlyConfigured, match="another namespace"):
        reg.register_module(second)


def test_autodiscovery_skips_a_view_already_registered_by_the_decorator(tmp_path, monkeypatch):
    module = _streams_module(tmp_path, monkeypatch, "decorated_streams", """
        from streaming_app import StreamView, unary
        from streaming_app.registry import StreamRegistry

        local = StreamRegistry()


        @local.register(namespace="renamed")
        class Renamed(StreamView):
            namespace = "original"

            @unary
            async def get(self, ctx) -> None:
                return None
    """)
    module.local.register_module(module)
    assert sorted(module.local.views()) == ["renamed"]
