from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("demo/sse/", views.SSEDemoView.as_view(), name="sse"),
]
