"""What DEBUG pages and error reports of the example project leave out.

Django's :class:`~django.views.debug.SafeExceptionReporterFilter` hides
settings and request values whose names contain API, AUTH, TOKEN, KEY,
SECRET, PASS or SIGNATURE. A deployment's URLs carry passwords too
(``DATABASE_URL``, ``REDIS_URL``, and the Redis hosts inside ``CHANNEL_LAYERS``),
so they are hidden as well, in settings and in the environment a WSGI
server copies into ``request.META``.
"""

from __future__ import annotations

import re

from django.views.debug import SafeExceptionReporterFilter


class SafeReporterFilter(SafeExceptionReporterFilter):
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|_URL$|^URL$|DSN|CHANNEL_LAYERS|LOCATION",
        flags=re.IGNORECASE,
    )
