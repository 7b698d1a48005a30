"""Running coroutines from synchronous code: drivers built on asyncio clients (and storey 1.0.6's
asynchronous driver hooks) run them on an event loop of their own, in a thread of their own."""

import asyncio
import threading

__all__ = ["AsyncBridge"]


class AsyncBridge:
    """An event loop in a daemon thread; `run(coro)` runs a coroutine there and returns its result
    (or raises its exception) in the calling thread."""

    def __init__(self, name):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self):
        """Stops the loop and its thread (after what runs on it has finished)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()
