"""The DCRF peer serves WebSocket only."""

urlpatterns: list = []
