"""The example project's settings for operations tests: ``OPS_PROBE_*`` environment variables tune them.

``DJANGO_SETTINGS_MODULE=probes.opsprobe_settings`` with ``tests/`` on PYTHONPATH:
``OPS_PROBE_METRICS=0`` turns metrics off; ``OPS_PROBE_DRAIN_TIMEOUT`` sets
DRAIN_TIMEOUT (seconds). Served with ``probes.httpprobe_asgi:application``, it has
the ``httpprobe.sleep`` unary method, a call that runs as long as a test asks.
"""

import os

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {
    **STREAMING,
    "METRICS": os.environ.get("OPS_PROBE_METRICS", "1") != "0",
    "DRAIN_TIMEOUT": float(os.environ.get("OPS_PROBE_DRAIN_TIMEOUT", STREAMING.get("DRAIN_TIMEOUT", 10.0))),
}
