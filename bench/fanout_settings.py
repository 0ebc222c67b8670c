"""Settings for bench/fanout.py: the example project's, with the channel layer picked by BENCH_LAYER.

``core`` (channels_redis's RedisChannelLayer, what most projects use) or
``pubsub`` (RedisPubSubChannelLayer), both on REDIS_URL; topic history on
with BENCH_HISTORY=1; the interpreter's garbage-collector thresholds left alone
with BENCH_DEFAULT_GC=1.
"""

import os

from project.settings import *  # noqa: F403

_layer = os.environ.get("BENCH_LAYER", "core")
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": {
            "core": "channels_redis.core.RedisChannelLayer",
            "pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
        }[_layer],
        "CONFIG": {"hosts": [os.environ["REDIS_URL"]]},
    }
}
# BENCH_HISTORY=1: the topic keeps history (what resuming costs while nobody resumes).
HISTORY = {"interop.*": {"size": 10_000, "ttl": 3600}} if os.environ.get("BENCH_HISTORY") == "1" else {}
STREAMING = {
    "BROKER": os.environ["REDIS_URL"],
    "HEARTBEAT_INTERVAL": 300,
    "HEARTBEAT_TIMEOUT": 600,
    "TOPIC_HISTORY": HISTORY,
    "GC_GEN0_THRESHOLD": 10_000,  # opt-in since the default became None; BENCH_DEFAULT_GC=1 turns it off
    # Metrics on, as in the example project; DJANGO_STREAMING_METRICS=0 measures without them.
    "METRICS": os.environ.get("DJANGO_STREAMING_METRICS", "1") != "0",
}
if os.environ.get("BENCH_DEFAULT_GC") == "1":
    STREAMING["GC_GEN0_THRESHOLD"] = None
