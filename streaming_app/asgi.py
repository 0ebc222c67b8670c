"""Django's ASGI application for the ``"http"`` route, stopping a request when its client leaves.

From Django 5.0 on, Django's own handler listens for ``http.disconnect`` while a view
runs and cancels it, so an HTTP stream whose reader left runs its ``finally`` and
stops. Django 4.2's handler does not: a server stream over SSE or NDJSON whose client
left would run until it ends by itself (for ``interop.forever``, never), and a unary
handler would finish its work for nobody. :func:`get_asgi_application` returns
Django's application unchanged on 5.0 and later, and on 4.2 wraps it in
:class:`CancelOnDisconnect`, which does what 5.0 does. Use it in ``asgi.py`` in place
of ``django.core.asgi.get_asgi_application`` (check ``streaming_app.W059`` says so on 4.2)::

    from streaming_app.asgi import get_asgi_application

    django_asgi_app = get_asgi_application()
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import django
from django.core.asgi import get_asgi_application as django_asgi_application

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]  # Django's handler types its arguments as Mappings

# The first Django release whose ASGI handler cancels a request when its client leaves.
HANDLES_DISCONNECT = (5, 0)


class CancelOnDisconnect:
    """Runs an HTTP request as a task and cancels it on ``http.disconnect``, as Django 5.0 does.

    The server's messages are relayed to the application through a queue, so the
    request body reaches it as before; after the body, the relay keeps listening, and
    a disconnect cancels the request's task (the view sees ``CancelledError`` at its
    next ``await``, and a streaming body's ``finally`` runs).
    """

    def __init__(self, application: ASGIApp) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.application(scope, receive, send)
            return
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

        async def relay() -> None:
            while True:
                message = await receive()
                messages.put_nowait(message)
                if message["type"] == "http.disconnect":
                    return

        async def handle() -> None:
            await self.application(scope, messages.get, send)

        relaying = asyncio.create_task(relay())
        handling = asyncio.create_task(handle())
        cancelled_here = False
        try:
            await asyncio.wait({relaying, handling}, return_when=asyncio.FIRST_COMPLETED)
            if not handling.done():  # the client left while the request ran
                handling.cancel()
                cancelled_here = True
            try:
                await handling
            except asyncio.CancelledError:
                if not cancelled_here:
                    raise
        finally:
            for task in (handling, relaying):
                if not task.done():
                    task.cancel()
            await asyncio.gather(relaying, return_exceptions=True)


def get_asgi_application() -> Any:
    """Django's ASGI application; on Django before 5.0, one that stops requests whose client left."""
    application = django_asgi_application()
    if django.VERSION < HANDLES_DISCONNECT:
        return CancelOnDisconnect(application)
    return application
