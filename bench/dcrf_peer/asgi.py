"""ASGI application of the DCRF peer: ``/ws/`` is :class:`~bench.dcrf_peer.consumers.NoteConsumer`.

    DJANGO_SETTINGS_MODULE=bench.dcrf_peer.settings python -m daphne -b 127.0.0.1 -p PORT bench.dcrf_peer.asgi:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.dcrf_peer.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from .consumers import BearerTokenAuthMiddleware, NoteConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": BearerTokenAuthMiddleware(URLRouter([path("ws/", NoteConsumer.as_asgi())])),
    }
)
