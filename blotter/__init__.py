"""The live blotter: the page at ``/``, the WebSocket consumer at ``/ws/blotter/``, its
snapshot and the realtime event payloads (``docs/realtime.md``)."""
