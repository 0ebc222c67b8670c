"""The example project's settings with no topic history, for what a server does without one.

``DJANGO_SETTINGS_MODULE=probes.nohistory_settings`` with ``tests/`` on PYTHONPATH.
"""

from project.settings import *  # noqa: F401,F403
from project.settings import STREAMING

STREAMING = {**STREAMING, "TOPIC_HISTORY": {}}
