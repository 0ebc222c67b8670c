"""Settings of bench/model_fanout.py's ``legacy`` variant: the example project's, serving ``legacy_notes.*``.

Everything of ``project.settings`` (REDIS_URL, DATABASE_URL, authentication),
with ``bench`` installed as an app and ``STREAMS_MODULE`` naming
``legacy_notes``: autodiscovery then registers only ``bench.legacy_notes``
(the old per-watcher re-read) and not the demo's ``notes.*``, so neither these
servers nor the writer process run any of the new model-stream code.
"""

from project.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench"]  # noqa: F405
STREAMING = {**STREAMING, "STREAMS_MODULE": "legacy_notes"}  # noqa: F405
