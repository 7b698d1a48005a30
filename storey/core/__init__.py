"""The batch layer: `EventBatch` and its columns, event times, value kinds, storage paths and the
parameter checks steps share. It imports nothing of the engine, the steps or IO."""
