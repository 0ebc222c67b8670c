"""The example project with the opt-in per-IP connection limit (3), 20 calls a second per connection,
and ``interop.publish`` allowed 100,000 bytes an hour per client.

For tests/e2e/test_e2e_limits.py: ``DJANGO_SETTINGS_MODULE=probes.limits_settings`` with ``tests/`` on PYTHONPATH.
Its throttle counters live under a cache prefix of this process's own, so each start counts from zero
(the suite's other servers publish from the same address within the same hour).
"""

import uuid

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {**STREAMING, "MAX_CONNECTIONS_PER_IP": 3, "MAX_CALLS_PER_SECOND": 20}
INTEROP_PUBLISH_BYTES_PER_HOUR = 100_000

if "CACHES" in globals():
    CACHES = {"default": {**CACHES["default"], "KEY_PREFIX": f"limits-{uuid.uuid4().hex}"}}  # noqa: F405
