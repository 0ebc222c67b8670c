"""The example project's settings without ``GC_GEN0_THRESHOLD``: by default the collector is left alone.

``DJANGO_SETTINGS_MODULE=probes.gcuntouched_settings`` with ``tests/`` on PYTHONPATH.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {key: value for key, value in STREAMING.items() if key != "GC_GEN0_THRESHOLD"}
