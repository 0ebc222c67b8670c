"""The example project's settings with ``GC_GEN0_THRESHOLD = None``: the collector is left alone.

``DJANGO_SETTINGS_MODULE=gcuntouched_settings`` with ``tests/`` on PYTHONPATH.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {**STREAMING, "GC_GEN0_THRESHOLD": None}
