"""The example project's settings with a half-second heartbeat, for the client's liveness tests.

Used by ``tests/probes/closeprobe_asgi.py`` (``DJANGO_SETTINGS_MODULE=probes.closeprobe_settings``
with ``tests/`` on PYTHONPATH): the server announces ``heartbeat: 0.5`` in
``hello``, so a client's own heartbeat acts within a second or two.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {
    **STREAMING,
    "HEARTBEAT_INTERVAL": 0.5,
    "HEARTBEAT_TIMEOUT": 30.0,
}
