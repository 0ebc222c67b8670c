"""ASGI entry point: HTTP through Django, WebSocket through streaming_app."""

import os

from streaming_app.asgi import get_asgi_application  # Django's; on 4.2 it also stops HTTP streams whose client left

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
django_asgi_app = get_asgi_application()  # sets Django up before consumers are imported

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from streaming_app import drain  # noqa: E402
from streaming_app.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": URLRouter(websocket_urlpatterns),
        # uvicorn: drain on SIGTERM (docs/operations.md); daphne has no lifespan and drains anyway.
        "lifespan": drain.lifespan,
    }
)
