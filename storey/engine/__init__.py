"""The engine: the flow graph (`Flow`, `build_flow`), the `Context`, and the runtime that feeds
batches through a flow, inline or on its event loop."""
