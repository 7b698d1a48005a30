"""Steps that move event metadata into bodies and rename fields: ReifyMetadata, Rename."""

__all__ = []
