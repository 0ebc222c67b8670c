"""The example project with Django's cache on a Redis port nothing listens on (the broker stays on REDIS_URL).

For tests/e2e/test_e2e_limits.py: what a throttle does when its cache is down.
"""

from project.settings import *  # noqa: F401,F403

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}}
