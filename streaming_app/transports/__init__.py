"""The two ways a call reaches its handler: one multiplexed WebSocket, or plain HTTP.

:mod:`.websocket` is the Channels consumer; :mod:`.http` the Django view that
answers unary calls as JSON and server streams as SSE or NDJSON. Each only
writes items, ``ready`` and the terminal frame in its own framing and reads
the client's half; :mod:`streaming_app.runner` runs the call itself.
"""
