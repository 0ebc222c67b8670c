from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("streams/", include("streaming_app.urls")),
    path("demo/", include("project.demo.urls")),
]
