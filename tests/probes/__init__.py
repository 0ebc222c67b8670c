"""Probe servers and settings: the example project plus what lets a test look inside a server process.

Not tests. Each ``*_asgi.py`` is an ASGI application a fixture starts as a
real daphne (or uvicorn) process, ``start_server(..., app="probes.httpprobe_asgi:application")``;
each ``*_settings.py`` is a ``DJANGO_SETTINGS_MODULE`` for such a process,
``"probes.httpprobe_settings"``. Server processes run with ``cwd`` at the
repository's root and ``tests/`` on ``PYTHONPATH``, so they import this
package as ``probes``. The probe stream views live in namespaces ending in
``probe`` (``httpprobe.sleep``, ``flowprobe.items``) so they never clash
with the example project's.
"""
