"""The example project's settings with a small per-interval history budget, for tests/e2e/test_admin_flood.py."""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {
    **STREAMING,
    "HISTORY_ROWS_PER_INTERVAL": 20,
    "MONITOR_INTERVAL": 0.5,
}
