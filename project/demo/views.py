"""The live demo page: the JavaScript client imported as a static ES module, with no bundler."""

from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie


@ensure_csrf_cookie  # the page's client may POST for a ticket or to the HTTP transport
def index(request):
    return render(request, "demo/index.html", {"ws_path": "/ws/"})
