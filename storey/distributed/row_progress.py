"""Rows done of rows total while the tasks run on the workers.

Each task counts the rows its flow has passed (`RowReporter`, fed by the `CountRows` step) and
sends the count, every half second, as a Dask event on the run's topic (`Worker.log_event`).
The client (`RowBars`) adds up the latest count of each task into a progress bar per phase, and
the exact count when the task's result arrives. When Dask runs a task again after its worker
died, the new attempt's counts replace the dead one's instead of adding to them.
"""

import threading
import time

from storey.cli.progress import Progress

# seconds between two reports of one task
_EVERY = 0.5


class RowReporter:
    """Counts a task's rows and reports them on `topic` (None: counts only)."""

    def __init__(self, topic, phase, task):
        self.rows = 0
        self._topic = topic
        self._phase = phase
        self._task = task
        self._sent = 0.0
        self._worker = None
        if topic is not None:
            from distributed import get_worker

            self._worker = get_worker()

    def update(self, n):
        """Adds n rows (as a `Progress` bar is updated, so that `CountRows` feeds either)."""
        self.rows += n
        if self._worker is not None and time.monotonic() - self._sent >= _EVERY:
            self.send()

    def send(self):
        if self._worker is not None:
            self._sent = time.monotonic()
            self._worker.log_event(self._topic, (self._phase, self._task, self.rows))


class RowBars:
    """The client's progress bars, one per phase, fed by the tasks' reports on `topic` (None: no
    bars)."""

    def __init__(self, client, topic):
        self._client = client
        self._topic = topic
        self._enabled = topic is not None
        self._lock = threading.Lock()
        self._phase = None
        self._bar = None
        self._counts = {}
        if self._enabled:
            client.subscribe_topic(topic, self._on_report)

    def start(self, phase, total):
        self.finish()
        with self._lock:
            self._phase = phase
            self._counts = {}
            self._bar = Progress(phase, total=total, enabled=self._enabled)

    def done(self, task, rows):
        """Task `task` of the phase ended, having passed `rows` rows: its count is final."""
        self._set(task, rows, final=True)

    def finish(self):
        with self._lock:
            if self._bar is not None:
                self._bar.close()
            self._bar = None
            self._phase = None

    def close(self):
        self.finish()
        if self._enabled:
            self._client.unsubscribe_topic(self._topic)

    def _on_report(self, event):
        _, (phase, task, rows) = event
        if phase == self._phase:
            self._set(task, rows, final=False)

    def _set(self, task, rows, final):
        with self._lock:
            if self._bar is None:
                return
            held, was_final = self._counts.get(task, (0, False))
            if was_final:
                return
            self._counts[task] = (rows, final)
            self._bar.update(rows - held)
