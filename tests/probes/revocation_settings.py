"""The example project with a 1 s credential re-validation and a 3 s connection age, for tests/e2e/test_e2e_revocation.py.

``DJANGO_SETTINGS_MODULE=probes.revocation_settings`` with ``tests/`` on PYTHONPATH.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {**STREAMING, "REVALIDATE_INTERVAL": 1.0, "MAX_CONNECTION_AGE": 3.0}
