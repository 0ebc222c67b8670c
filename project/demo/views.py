"""Demo pages: the JavaScript client as a static ES module (no bundler), and a plain EventSource."""

from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.generic import TemplateView


@ensure_csrf_cookie  # the page's client may POST for a ticket or to the HTTP transport
def index(request):
    return render(request, "demo/index.html", {"ws_path": "/ws/"})


class SSEDemoView(TemplateView):
    """``/demo/sse/``: a browser EventSource on ``interop.count`` (``?n=5&interval_ms=200`` starts it)."""

    template_name = "demo/sse.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["stream_url"] = reverse("streaming_app:call", args=["interop.count"])
        return context
