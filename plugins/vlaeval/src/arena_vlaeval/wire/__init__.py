"""vla-eval's wire protocol (WebSocket + msgpack), importing nothing from arena but the kit's free modules."""
