"""The example project with the opt-in per-IP connection limit (3) and 20 calls a second per connection.

For tests/e2e/test_e2e_limits.py: ``DJANGO_SETTINGS_MODULE=probes.limits_settings`` with ``tests/`` on PYTHONPATH.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {**STREAMING, "MAX_CONNECTIONS_PER_IP": 3, "MAX_CALLS_PER_SECOND": 20}
