"""Settings for bench/admin_overhead.py: the example project's, with bookkeeping on or off (BENCH_MONITOR)."""

import os

from project.settings import *  # noqa: F403

STREAMING = {
    **STREAMING,  # noqa: F405
    "MONITOR_CALLS": os.environ.get("BENCH_MONITOR", "1") == "1",
    "HEARTBEAT_INTERVAL": 300,
    "HEARTBEAT_TIMEOUT": 600,
}
