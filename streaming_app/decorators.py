"""Decorators that mark a view method as one of the four call kinds.

Like DRF's ``@action`` they only set attributes; the registry reads the marks
when a view is registered, and checks the function has the right shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence, TypeVar, overload

from .protocol.session import CallKind

F = TypeVar("F", bound=Callable[..., Any])

MARK = "_streaming_method"


@dataclass(frozen=True)
class MethodOptions:
    kind: CallKind
    name: str | None = None
    serializer_class: type | None = None
    permission_classes: Sequence[type] | None = None
    # What the method sends, when its annotations cannot say it (see streaming_app.schema):
    # a type hint or a DRF serializer class for each item and for the result.
    item: Any = None
    result: Any = None
    # Safe in HTTP's sense (RFC 9110 §9.2.1): no side effects, so a GET may
    # call it. Only a safe unary method answers GET; any other answers 405, so
    # that a cross-site link or <img> (which carries the session cookie and no
    # CSRF token) cannot change data. Server streams always answer GET.
    safe: bool = False
    # DRF throttle classes of this method (None: the view's throttle_classes).
    throttle_classes: Sequence[type] | None = None


class MethodMarker(Protocol):
    """``@unary`` and its siblings: used bare, or called with options first."""

    @overload
    def __call__(self, func: F, /) -> F: ...

    @overload
    def __call__(
        self,
        *,
        name: str | None = None,
        serializer_class: type | None = None,
        permission_classes: Sequence[type] | None = None,
        item: Any = None,
        result: Any = None,
        safe: bool = False,
        throttle_classes: Sequence[type] | None = None,
    ) -> Callable[[F], F]: ...


def _marker(kind: CallKind) -> MethodMarker:
    @overload
    def decorate(func: F) -> F: ...

    @overload
    def decorate(
        *,
        name: str | None = None,
        serializer_class: type | None = None,
        permission_classes: Sequence[type] | None = None,
        item: Any = None,
        result: Any = None,
        safe: bool = False,
        throttle_classes: Sequence[type] | None = None,
    ) -> Callable[[F], F]: ...

    def decorate(
        func: F | None = None,
        *,
        name: str | None = None,
        serializer_class: type | None = None,
        permission_classes: Sequence[type] | None = None,
        item: Any = None,
        result: Any = None,
        safe: bool = False,
        throttle_classes: Sequence[type] | None = None,
    ) -> F | Callable[[F], F]:
        options = MethodOptions(
            kind, name, serializer_class, permission_classes, item, result, safe, throttle_classes
        )

        def mark(f: F) -> F:
            setattr(f, MARK, options)
            return f

        return mark if func is None else mark(func)

    decorate.__name__ = decorate.__qualname__ = kind.value
    decorate.__doc__ = f"Mark a view method as a {kind.value.replace('_', ' ')} method."
    return decorate


unary = _marker(CallKind.UNARY)
server_stream = _marker(CallKind.SERVER_STREAM)
client_stream = _marker(CallKind.CLIENT_STREAM)
bidi_stream = _marker(CallKind.BIDI_STREAM)
