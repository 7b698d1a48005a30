"""Progress of long work: a tqdm bar on a terminal, nothing when output goes elsewhere or --quiet.

`CountRows` is a pass-through step that counts the events of each batch it sees (`batch.n`) and
reports them to a `Progress`; it never looks at the events themselves, so columnar batches stay
columnar.
"""

import sys

from storey.flow import Flow


def on_terminal(stream=None):
    stream = sys.stderr if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A progress bar of `total` units (None: unknown) labelled `desc`, shown only when `enabled`.

    Thread-safe enough for one updater: flows read in a background thread update it.
    """

    def __init__(self, desc, total=None, unit="rows", enabled=True):
        self.count = 0
        self.desc = desc
        self.total = total
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=f" {unit}",
                unit_scale=True,
                dynamic_ncols=True,
                smoothing=0.1,
                file=sys.stderr,
            )

    def update(self, n):
        self.count += n
        if self._bar is not None:
            if self._bar.total is not None and self.count > self._bar.total:
                # an estimated total (CSV) was too small
                self._bar.total = self.count
            self._bar.update(n)

    def close(self):
        if self._bar is not None:
            if self._bar.total is not None and self._bar.total != self.count:
                self._bar.total = self.count
                self._bar.refresh()
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CountRows(Flow):
    """Passes events on unchanged, adding the number of events of each batch to `progress`."""

    def __init__(self, progress, **kwargs):
        kwargs.setdefault("name", "CountRows")
        super().__init__(**kwargs)
        self._progress = progress

    async def _do(self, batch):
        self._progress.update(batch.n)
        await self._emit(batch)
