"""SendToHttp and the concurrent-job machinery it runs on."""

__all__ = []
