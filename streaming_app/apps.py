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

        registry.register(StreamingAdminStreams)  # the admin's live page (permission-guarded)
        registry.autodiscover(streaming_settings.STREAMS_MODULE)
