"""The example project plus ``GET /registryprobe``: the sizes of the server process's per-process registries.

Every map that holds per-connection or per-call state, and the live objects
of the classes that hold a connection's or a call's state, counted after a
full collection, for tests/e2e/test_e2e_registries.py: open and close
connections and calls of every kind, and each must be back to its size. Every
other request goes to the project as usual.
"""

import asyncio
import gc
import json
from collections import Counter

from project.asgi import application as project_application  # noqa: F401  (sets Django up)

# Classes whose live instances are a connection's or a call's state.
WATCHED = {
    "StreamConsumer", "CallRunner", "CallContext", "HttpStream", "GuardedStream", "OpenCall",
    "Subscription", "Member", "ServerConnection", "SendBuffer", "Credential",
}


def sizes() -> dict[str, int]:
    from streaming_app import hub, presence
    from streaming_app.connection_limits import admissions
    from streaming_app.metrics import metrics
    from streaming_app.monitor import monitor
    from streaming_app.revocation import guard
    from streaming_app.runner import CallRunner
    from streaming_app.transports.websocket import StreamConsumer

    loop = asyncio.get_running_loop()
    found = {
        "guard._by_user": len(guard._by_user),
        "guard._generations": len(guard._generations),
        "admissions._held": len(admissions._held),
        "monitor.calls": len(monitor.calls),
        "metrics.open_calls": len(metrics.open_calls),
        "metrics.methods": len(metrics.methods),
        "StreamConsumer.instances": len(StreamConsumer.instances),
        "StreamConsumer.open_connections": StreamConsumer.open_connections,
        "CallRunner.running": len(CallRunner.running),
    }
    loop_hub = hub._hubs.get(loop)
    found["hub.topics"] = len(loop_hub.topics) if loop_hub is not None else 0
    tracker = presence._trackers.get(loop)
    found["presence.local"] = len(tracker.local) if tracker is not None else 0
    found["presence._pending"] = len(tracker._pending) if tracker is not None else 0
    gc.collect()
    live = Counter(type(o).__name__ for o in gc.get_objects() if type(o).__name__ in WATCHED)
    found.update({f"live {name}": live.get(name, 0) for name in sorted(WATCHED)})
    found["tasks"] = len(asyncio.all_tasks(loop))
    return found


async def application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/registryprobe":
        body = json.dumps(sizes()).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    await project_application(scope, receive, send)
