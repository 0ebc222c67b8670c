"""How a project wires the app in, and the system checks that say when it does not.

A project that forgets a piece of the wiring sees nothing wrong in Django: its clients
get a bare HTTP 404 or 500 on the WebSocket handshake. These checks name the missing
piece instead (ids ``streaming_app.E055``–``E057``, ``W055``, ``W056``, ``W059``):

- ``daphne`` in ``INSTALLED_APPS``, before ``django.contrib.staticfiles``: without it
  ``manage.py runserver`` serves WSGI, which has no WebSocket at all (W055, W056).
- ``ASGI_APPLICATION`` imports (E055) and routes ``websocket`` connections to
  :class:`~streaming_app.transports.websocket.StreamConsumer` (E056, E057): found by
  walking the application the way Channels builds one (``ProtocolTypeRouter``,
  middleware ``inner``/``application``, ``URLRouter`` routes, ``include()``).
  A wrapper this walk cannot see through is left alone, never reported.

- On Django 4.2, an ``"http"`` route served by Django's own handler, which keeps
  running an HTTP stream after its client left (W059): Django 5.0 cancels such a
  request, :func:`streaming_app.asgi.get_asgi_application` does it on 4.2.

The in-memory broker with ``DEBUG`` off, which serves one process only, is
``streaming_app.W005`` (checks.py); the app sends nothing through the channel layer.
"""

from __future__ import annotations

from typing import Any, Iterator

import django
from django.apps import apps
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.utils.module_loading import import_string

MAX_DEPTH = 32  # nesting of routers and middleware the walk follows


@register(Tags.compatibility)
def check_daphne_installed(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    installed = list(settings.INSTALLED_APPS)
    if "daphne" not in installed and not apps.is_installed("daphne"):
        return [
            Warning(
                "'daphne' is not in INSTALLED_APPS: `manage.py runserver` serves WSGI only, and "
                "WebSocket handshakes get HTTP 404.",
                hint="Put 'daphne' first in INSTALLED_APPS (production servers run "
                "`daphne project.asgi:application` and do not need it).",
                id="streaming_app.W055",
            )
        ]
    staticfiles = "django.contrib.staticfiles"
    if "daphne" in installed and staticfiles in installed and installed.index("daphne") > installed.index(staticfiles):
        return [
            Warning(
                "'daphne' comes after 'django.contrib.staticfiles' in INSTALLED_APPS: staticfiles' "
                "WSGI `runserver` wins, and WebSocket handshakes get HTTP 404.",
                hint="Move 'daphne' before 'django.contrib.staticfiles' (first in the list).",
                id="streaming_app.W056",
            )
        ]
    return []


@register(Tags.compatibility)
def check_asgi_routes_websocket(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        return []  # streaming_app.W003 says so
    try:
        application = import_string(path)
    except Exception as exc:  # noqa: BLE001  (any error of the user's module is the finding)
        return [
            Error(
                f"ASGI_APPLICATION {path!r} cannot be imported: {type(exc).__name__}: {exc}",
                hint="Point ASGI_APPLICATION at the `application` of your asgi.py, which must import "
                "without errors once settings are configured.",
                id="streaming_app.E055",
            )
        ]
    websocket = websocket_application(application)
    if websocket is None:
        return [
            Error(
                f"ASGI_APPLICATION {path!r} does not route 'websocket' connections: the WebSocket "
                "handshake gets HTTP 404 or 500.",
                hint="Serve it with channels.routing.ProtocolTypeRouter({'http': get_asgi_application(), "
                "'websocket': URLRouter(streaming_app.routing.websocket_urlpatterns)}).",
                id="streaming_app.E056",
            )
        ]
    if websocket is UNKNOWN:
        return []
    found = reaches_stream_consumer(websocket)
    if found is False:
        return [
            Error(
                f"ASGI_APPLICATION {path!r} routes 'websocket' connections, but no route reaches "
                "streaming_app's StreamConsumer: calls get closed connections or HTTP 404.",
                hint="Add streaming_app.routing.websocket_urlpatterns (or a path to "
                "StreamConsumer.as_asgi()) to the websocket URLRouter.",
                id="streaming_app.E057",
            )
        ]
    return []


@register(Tags.compatibility)
def check_http_stops_on_disconnect(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    return http_disconnect_messages(django.VERSION)


def http_disconnect_messages(version: tuple[Any, ...]) -> list[Any]:
    """W059 for a Django ``version`` before 5.0 whose ``"http"`` route is Django's bare handler."""
    from django.core.handlers.asgi import ASGIHandler

    from .asgi import HANDLES_DISCONNECT

    path = getattr(settings, "ASGI_APPLICATION", None)
    if tuple(version[:2]) >= HANDLES_DISCONNECT or not path:
        return []
    try:
        application = import_string(path)
    except Exception:  # noqa: BLE001  (streaming_app.E055 reports it)
        return []
    mapping = getattr(application, "application_mapping", None)
    http = mapping.get("http") if isinstance(mapping, dict) else application
    if not isinstance(http, ASGIHandler):
        return []
    return [
        Warning(
            f"ASGI_APPLICATION {path!r} serves HTTP with Django's own handler, which on Django "
            f"{version[0]}.{version[1]} keeps running an HTTP stream (SSE, NDJSON) or a unary call "
            "after its client left.",
            hint="In asgi.py, use streaming_app.asgi.get_asgi_application() in place of "
            "django.core.asgi.get_asgi_application(): it stops such requests, as Django 5.0 does.",
            id="streaming_app.W059",
        )
    ]


class _Unknown:
    """A wrapper the walk cannot see through: nothing is reported about it."""


UNKNOWN: Any = _Unknown()


def _inner(app: Any) -> Any:
    """The application a middleware wraps (Channels' ``inner``, OriginValidator's ``application``)."""
    for attr in ("inner", "application", "app"):
        inner = getattr(app, attr, None)
        if inner is not None and inner is not app:
            return inner
    return None


def websocket_application(app: Any, depth: int = 0) -> Any:
    """What ``app`` runs for ``websocket`` connections: None if nothing, UNKNOWN if it cannot tell."""
    if depth > MAX_DEPTH:
        return UNKNOWN
    mapping = getattr(app, "application_mapping", None)  # channels.routing.ProtocolTypeRouter
    if isinstance(mapping, dict):
        return mapping.get("websocket")
    from django.core.handlers.asgi import ASGIHandler

    if isinstance(app, ASGIHandler):
        return None  # Django's own handler answers HTTP only
    inner = _inner(app)
    return UNKNOWN if inner is None else websocket_application(inner, depth + 1)


def _routes(app: Any) -> Iterator[Any]:
    """The applications a URLRouter (or an include() inside one) can hand a connection to."""
    for route in getattr(app, "routes", None) or getattr(app, "url_patterns", None) or []:
        if hasattr(route, "url_patterns"):  # a URLResolver: include(...)
            yield from _routes(route)
        else:
            yield getattr(route, "callback", route)


def reaches_stream_consumer(app: Any, depth: int = 0) -> bool | None:
    """Whether a websocket application hands some connection to StreamConsumer (None: cannot tell)."""
    from .transports.websocket import StreamConsumer

    if depth > MAX_DEPTH:
        return None
    consumer = getattr(app, "consumer_class", None)  # what Consumer.as_asgi() returns
    if isinstance(consumer, type):
        return issubclass(consumer, StreamConsumer)
    if isinstance(app, type):
        return issubclass(app, StreamConsumer)
    if hasattr(app, "routes"):  # channels.routing.URLRouter
        verdicts = [reaches_stream_consumer(route, depth + 1) for route in _routes(app)]
        if any(v is True for v in verdicts):
            return True
        return None if any(v is None for v in verdicts) else False
    inner = _inner(app)
    return None if inner is None else reaches_stream_consumer(inner, depth + 1)
