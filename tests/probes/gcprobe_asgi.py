"""The example project plus ``GET /gcprobe``: the server process's garbage-collector thresholds.

A test sees from outside whether serving a stream changed them
(streaming_app.gc_tuning); every other request goes to the project as usual.
"""

import gc
import json

from project.asgi import application as project_application  # noqa: F401  (sets Django up)


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/gcprobe":
        body = json.dumps({"threshold": list(gc.get_threshold()), "enabled": gc.isenabled()}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await project_application(scope, receive, send)
