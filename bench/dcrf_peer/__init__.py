"""A small djangochannelsrestframework (DCRF) 1.3 project over the demo's ``Note`` model, for bench/model_fanout.py.

What a Django team writes with DCRF today for a live notes list: a consumer
with a ``@model_observer(Note, serializer_class=...)``, per-user groups
(public notes to everyone's group, a private note to its owner's group), and
DRF-token authentication from an ``Authorization: Bearer`` header. It shares
the example project's database (``DATABASE_URL``) and Redis (``REDIS_URL``,
channels_redis's core layer, as the example project), but not its code:
streaming_app is not installed here, so the writer process of the ``dcrf``
variant publishes only DCRF's group messages. Benchmark-only: DCRF comes from
the ``bench`` extra of pyproject.toml.
"""
