"""HTTP endpoints of streaming_app; include them under a prefix of your choice:
``path("streams/", include("streaming_app.urls"))``."""

from django.urls import path

from .tickets import ticket_view

app_name = "streaming_app"

urlpatterns = [
    path("_ticket", ticket_view, name="ticket"),
]
