"""The example project's settings with DRAIN_TIMEOUT from ``OPS_PROBE_DRAIN_TIMEOUT`` (seconds), for drain tests.

``DJANGO_SETTINGS_MODULE=probes.opsprobe_settings`` with ``tests/`` on PYTHONPATH.
Served with ``probes.httpprobe_asgi:application``, it has the ``httpprobe.sleep``
unary method, a call that runs as long as a test asks.
"""

import os

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {
    **STREAMING,
    "DRAIN_TIMEOUT": float(os.environ.get("OPS_PROBE_DRAIN_TIMEOUT", STREAMING.get("DRAIN_TIMEOUT", 10.0))),
}
