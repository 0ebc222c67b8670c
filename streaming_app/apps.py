from __future__ import annotations

from django.apps import AppConfig


class StreamingAppConfig(AppConfig):
    name = "streaming_app"
    verbose_name = "Streaming"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
        from . import wiring  # noqa: F401  (registers the wiring's system checks)
        from .admin_streams import StreamingAdminStreams
        from .conf import streaming_settings
        from .registry import registry
        from .revocation import connect_signals

        registry.register(StreamingAdminStreams)  # the admin's live page (permission-guarded)
        registry.autodiscover(streaming_settings.STREAMS_MODULE)
        connect_signals()  # revoked credentials close their connections (streaming_app.revocation)
        self.ready_operations()

    def ready_operations(self) -> None:
        """Metrics and drain (docs/operations.md): register the collector, take over SIGTERM under daphne."""
        from . import drain
        from .conf import streaming_settings
        from .metrics import register_collector

        if streaming_settings.METRICS:
            register_collector()
        drain.install()
