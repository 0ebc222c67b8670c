"""Which methods exist: registration and discovery of stream views.

At start-up (``AppConfig.ready``) every installed app's ``streams`` module is
imported, as the admin does with ``admin.py``, and the stream views defined in
it are registered. Views elsewhere are registered explicitly with
``register``. Each method's shape is checked once here, so a mistake fails at
start-up rather than on the first call.
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Callable, TypeVar, overload

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import module_has_submodule

from .arguments import ArgumentSpec, Converter, item_converter
from .decorators import MARK, MethodOptions
from .protocol.session import CallKind
from .views import StreamView

V = TypeVar("V", bound=type[StreamView])

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class StreamMethod:
    """One callable method, as the transports see it."""

    name: str
    namespace: str
    attr: str
    view_class: type[StreamView]
    function: Callable[..., Any]
    options: MethodOptions
    arguments: ArgumentSpec
    item_converter: Converter | None
    is_async: bool

    @property
    def kind(self) -> CallKind:
        return self.options.kind

    @property
    def http_methods(self) -> tuple[str, ...]:
        """The HTTP verbs that may call it: GET only for a safe unary method or a server stream."""
        if self.kind is CallKind.SERVER_STREAM or (self.kind is CallKind.UNARY and self.options.safe):
            return ("GET", "POST")
        if self.kind is CallKind.UNARY:
            return ("POST",)
        return ()


def _check_shape(view_class: type, attr: str, func: Callable[..., Any], kind: CallKind) -> bool:
    where = f"{view_class.__module__}.{view_class.__qualname__}.{attr}"
    if kind in (CallKind.SERVER_STREAM, CallKind.BIDI_STREAM):
        if not inspect.isasyncgenfunction(func):
            raise ImproperlyConfigured(f"{where} is a {kind} method and must be an async generator (async def with yield).")
        return True
    if inspect.isasyncgenfunction(func) or inspect.isgeneratorfunction(func):
        raise ImproperlyConfigured(f"{where} is a {kind} method and must not yield; use @server_stream or @bidi_stream.")
    if kind is CallKind.CLIENT_STREAM and not inspect.iscoroutinefunction(func):
        raise ImproperlyConfigured(f"{where} is a client_stream method and must be async (it iterates incoming items).")
    return inspect.iscoroutinefunction(func)


def build_method(namespace: str, view_class: type[StreamView], attr: str, func: Callable[..., Any]) -> StreamMethod:
    options: MethodOptions = getattr(func, MARK)
    where = f"{view_class.__module__}.{view_class.__qualname__}.{attr}"
    is_async = _check_shape(view_class, attr, func, options.kind)
    name = options.name or attr
    if not NAME_RE.match(name):
        raise ImproperlyConfigured(f"{where}: method name {name!r} must be a Python identifier.")
    parameters = list(inspect.signature(func).parameters.values())
    if len(parameters) < 2:
        raise ImproperlyConfigured(f"{where} must take (self, ctx, ...).")
    parameters = parameters[2:]
    try:
        hints = typing.get_type_hints(func)
    except Exception as exc:
        raise ImproperlyConfigured(f"{where}: cannot resolve type hints: {exc}") from exc
    converter = None
    if options.kind.client_streams:
        if not parameters or parameters[0].kind is inspect.Parameter.KEYWORD_ONLY:
            raise ImproperlyConfigured(f"{where} must take the incoming items as its first argument after ctx.")
        items = parameters.pop(0)
        try:
            converter = item_converter(hints.get(items.name, items.annotation))
        except TypeError as exc:
            raise ImproperlyConfigured(f"{where}: {exc}") from exc
    try:
        spec = ArgumentSpec(parameters, hints)
    except TypeError as exc:
        raise ImproperlyConfigured(f"{where}: {exc}") from exc
    return StreamMethod(
        name=f"{namespace}.{name}",
        namespace=namespace,
        attr=attr,
        view_class=view_class,
        function=func,
        options=options,
        arguments=spec,
        item_converter=converter,
        is_async=is_async,
    )


# Characters of a method name an error repeats: the name is the client's, up
# to a whole frame of it, and the error must stay far smaller than that.
SHOWN_NAME_LENGTH = 100


def shown_name(name: str) -> str:
    """A method name as an error message repeats it: cut to :data:`SHOWN_NAME_LENGTH` characters."""
    return name if len(name) <= SHOWN_NAME_LENGTH else name[:SHOWN_NAME_LENGTH] + "..."


def unknown_method(name: str) -> str:
    """The message for a name no method has (the name repr'd, and cut if long)."""
    return f"Unknown method {shown_name(name)!r}."


class StreamRegistry:
    """Maps ``<namespace>.<method>`` names to methods."""

    def __init__(self) -> None:
        self._methods: dict[str, StreamMethod] = {}
        self._views: dict[str, type[StreamView]] = {}

    @overload
    def register(self, view_class: V, *, namespace: str | None = None) -> V: ...

    @overload
    def register(self, view_class: None = None, *, namespace: str | None = None) -> Callable[[V], V]: ...

    def register(self, view_class: V | None = None, *, namespace: str | None = None) -> V | Callable[[V], V]:
        """Register a view class; usable as ``@register`` or ``@register(namespace="x")``."""
        if view_class is None:
            def register_with_namespace(cls: V) -> V:
                return self.register(cls, namespace=namespace)

            return register_with_namespace
        namespace = namespace or view_class.namespace
        where = f"{view_class.__module__}.{view_class.__qualname__}"
        if not isinstance(view_class, type) or not issubclass(view_class, StreamView):
            raise ImproperlyConfigured(f"{where} is not a StreamView subclass.")
        if not namespace or not NAME_RE.match(namespace):
            raise ImproperlyConfigured(f"{where} needs a 'namespace' that is a Python identifier (got {namespace!r}).")
        existing = self._views.get(namespace)
        if existing is view_class:
            return view_class
        if existing is not None:
            raise ImproperlyConfigured(
                f"Namespace {namespace!r} of {where} is already registered by "
                f"{existing.__module__}.{existing.__qualname__}. Give one of them another "
                "namespace (each namespace is served by one view class)."
            )
        methods = {}
        for attr, func in inspect.getmembers(view_class, predicate=callable):
            if hasattr(func, MARK):
                method = build_method(namespace, view_class, attr, func)
                if method.name in methods:
                    raise ImproperlyConfigured(f"{where} declares {method.name!r} twice.")
                methods[method.name] = method
        if not methods:
            raise ImproperlyConfigured(f"{where} declares no streaming methods.")
        self._views[namespace] = view_class
        self._methods.update(methods)
        view_class.on_registered()
        return view_class

    def unregister(self, namespace: str) -> None:
        self._views.pop(namespace, None)
        for name in [n for n, m in self._methods.items() if m.namespace == namespace]:
            del self._methods[name]

    def get(self, name: str) -> StreamMethod | None:
        return self._methods.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._methods

    def methods(self) -> list[StreamMethod]:
        return sorted(self._methods.values(), key=lambda m: m.name)

    def views(self) -> dict[str, type[StreamView]]:
        return dict(self._views)

    def register_module(self, module: Any) -> None:
        """Register every StreamView subclass with a namespace defined in ``module``."""
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, StreamView)
                and value is not StreamView
                and value.__module__ == module.__name__
                and value.namespace
                and value not in self._views.values()  # already registered, e.g. by @register
            ):
                # A second class with a namespace already taken raises, as register() does:
                # skipping it would leave its methods "Unknown method" with no word why.
                self.register(value)

    def autodiscover(self, module_name: str) -> None:
        for app_config in apps.get_app_configs():
            if module_has_submodule(app_config.module, module_name):
                self.register_module(import_module(f"{app_config.name}.{module_name}"))


registry = StreamRegistry()


@overload
def register(view_class: V, *, namespace: str | None = None) -> V: ...


@overload
def register(view_class: None = None, *, namespace: str | None = None) -> Callable[[V], V]: ...


def register(view_class: V | None = None, *, namespace: str | None = None) -> V | Callable[[V], V]:
    """Register a stream view with the default registry."""
    if view_class is None:
        return registry.register(namespace=namespace)
    return registry.register(view_class, namespace=namespace)
