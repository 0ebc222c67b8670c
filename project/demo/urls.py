from django.urls import path

from .views import SSEDemoView

urlpatterns = [
    path("sse/", SSEDemoView.as_view(), name="demo-sse"),
]
