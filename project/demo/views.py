from django.urls import reverse
from django.views.generic import TemplateView


class SSEDemoView(TemplateView):
    """``/demo/sse/``: a browser EventSource on ``interop.count`` (``?n=5&interval_ms=200`` starts it)."""

    template_name = "demo/sse.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["stream_url"] = reverse("streaming_app:call", args=["interop.count"])
        return context
