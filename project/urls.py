from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from streaming_app.metrics import MetricsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("streams/", include("streaming_app.urls")),
    # Prometheus metrics of this process: loopback clients without credentials,
    # staff users otherwise (STREAMING["METRICS_PERMISSION_CLASSES"]).
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("", include("project.demo.urls")),  # the live demo page (the admin's "View site")
]

# daphne, unlike runserver, serves no static files; with DEBUG on, Django does
# (the demo page imports streaming_app/client.js from them).
urlpatterns += staticfiles_urlpatterns()
