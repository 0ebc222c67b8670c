"""The example project's settings with short HTTP timings, for tests of the HTTP transport.

Used by the ``probe_server`` fixture (``DJANGO_SETTINGS_MODULE=probes.httpprobe_settings``
with ``tests/`` on PYTHONPATH): keepalives every 0.25 s, a 500 ms ``retry:``
hint, and deadlines capped at 30 s.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {
    **STREAMING,
    "HTTP_KEEPALIVE_INTERVAL": 0.25,
    "SSE_RETRY": 500,
    "MAX_TIMEOUT": 30,
}
