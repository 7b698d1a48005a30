"""Running a flow: its event loop, the events waiting to enter it, timers, termination and errors.

Events emitted into a flow wait in `pending` until someone drains them into one batch (up to
`buffer_size` of them). Who drains depends on the flow:

- **inline**: when no step can suspend, the emitting thread runs the batch through the steps
  itself, under the flow's processing lock, as soon as it wants a result or the buffer is full.
  A background event loop still drains stragglers (after a short linger) and runs timers.
- **loop**: when a step awaits I/O, every batch runs on the flow's event loop.

Whoever drains takes the processing lock first and then every pending event, so events enter
the flow in the order they were emitted, whatever the number of emitting threads.
"""

import asyncio
import inspect
import threading

from ..core.batch import EventBatch, IdSequence
from .graph import drive, init_graph

GENERATE_ID = object()
# What a synchronous controller submits to terminate the flow.
TERMINATE = object()
# How long the background loop lets fire-and-forget events gather before draining them itself.
LINGER_SECONDS = 0.002


def copy_error(ex):
    """An exception of the same type as `ex`, chained from it, to raise in another place."""
    try:
        copied = type(ex)(*ex.args)
    except Exception:
        return ex
    copied.__cause__ = ex
    return copied


class Timer:
    """A callback a step asked to run later; `cancel()` is safe from any thread."""

    __slots__ = ("fn", "cancelled")

    def __init__(self, fn):
        self.fn = fn
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class FlowRuntime:
    """One run of a flow: the graph from `source`, the pending events and the event loop."""

    def __init__(self, source, buffer_size=None, live=False):
        self.source = source
        self.buffer_size = buffer_size or 8
        self.steps = init_graph(source, self, live)
        self.inline = not any(step._may_suspend for step in self.steps)
        self.ids = IdSequence()
        # how long the loop lets fire-and-forget events gather before draining them itself
        self.linger = LINGER_SECONDS
        # every emitted event carries an awaitable result (the flow has a Complete step)
        self.results_expected = False
        self.error = None
        self.result = None
        self.terminating = False
        self.finished = False
        self.pending = []
        # coroutine functions steps left to run once the flow has terminated (a table's last
        # flush, written while the other steps finish): see run_at_end
        self.at_end = []
        # guards `pending`; `cond` (over the same lock) lets emitters wait for space in loop mode
        self.pending_lock = threading.Lock()
        self.cond = threading.Condition(self.pending_lock)
        self.lock = threading.Lock()
        self.owner = None
        self.loop = None
        self.loop_thread = None
        self.armed = False
        self._wakeup = None
        self._space = None
        self._graph_terminated = False
        self._done = threading.Event()
        self._task = None
        self._thread = None

    # ---- starting
    def start_thread(self, main=None):
        """Runs the flow's event loop in a background thread: the coroutine function `main` (a
        replay source's), or the loop that drains what synchronous emitters submit."""
        ready = threading.Event()

        def thread_main():
            async def amain():
                self._bind_loop()
                ready.set()
                await (main() if main is not None else self._drain_loop())

            try:
                asyncio.run(amain())
            finally:
                self._done.set()
                ready.set()

        thread = threading.Thread(target=thread_main, name=f"storey-{self.source.name}", daemon=True)
        self._thread = thread
        thread.start()
        ready.wait()

    def start_task(self):
        """Runs the flow's loop as a task of the running event loop (asynchronous emitters)."""
        # emitters on the same loop batch events by themselves until they yield to it: the
        # events are then processed at once, as the reference does
        self.linger = 0
        self._bind_loop()
        self._task = asyncio.get_running_loop().create_task(self._drain_loop())
        return self._task

    def bind_loop(self):
        """Runs the flow's timers and termination on the running event loop (a source that runs
        its flow there itself)."""
        self._bind_loop()

    def _bind_loop(self):
        self.loop = asyncio.get_running_loop()
        self.loop_thread = threading.get_ident()
        self._wakeup = asyncio.Event()
        self._space = asyncio.Event()

    def _wake(self):
        if threading.get_ident() == self.loop_thread:
            self._wakeup.set()
        else:
            try:
                self.loop.call_soon_threadsafe(self._wakeup.set)
            except RuntimeError:  # the loop has already closed
                pass

    # ---- emitting
    def raise_error(self):
        """Raises the flow's error where the flow's caller sees it: a copy chained from it, or, when
        the source's context is verbose, `Flow execution terminated` of its type, as storey does."""
        error = copy_error(self.error)
        terminated = None
        if self.source.verbose:
            try:
                terminated = type(self.error)("Flow execution terminated")
            except Exception:
                terminated = None
        if terminated is None:
            raise error
        raise terminated from error

    def check_open(self):
        if self.error is not None:
            self.raise_error()
        if self.terminating:
            raise ValueError("Cannot emit to a terminated flow")

    def submit(self, record, wants_result):
        """Queues one event (a record tuple) from a synchronous emitter, or terminates the flow
        when `record` is TERMINATE."""
        if record is TERMINATE:
            self.terminate()
            return
        with self.pending_lock:
            if self.error is not None or self.terminating:
                self.check_open()
            pending = self.pending
            pending.append(record)
            count = len(pending)
            if not self.inline:
                if count == 1:
                    self._wake()
                while len(self.pending) >= self.buffer_size and self.error is None and not self.finished:
                    self.cond.wait()
                return
            wake = count == 1 and not self.armed
            if wake:
                self.armed = True
        if (wants_result or count >= self.buffer_size) and self.owner != threading.get_ident():
            self.drain_inline()
        elif wake:
            self._wake()

    async def submit_async(self, record, wants_result):
        """Queues one event from an asynchronous emitter running on the flow's loop."""
        self.check_open()
        self.pending.append(record)
        count = len(self.pending)
        if self.inline:
            if wants_result or count >= self.buffer_size:
                self.drain_inline()
            elif count == 1:
                self._wakeup.set()
            return
        if count == 1:
            self._wakeup.set()
        while len(self.pending) >= self.buffer_size and self.error is None and not self.finished:
            self._space.clear()
            await self._space.wait()

    def _take_pending(self):
        with self.pending_lock:
            records = self.pending
            self.pending = []
            if not self.inline:
                # emitters wait for space only when the loop processes the events
                self.cond.notify_all()
        if not self.inline and self._space is not None and threading.get_ident() == self.loop_thread:
            self._space.set()
        return records

    def drain_inline(self):
        """Runs every pending event through the flow, in the calling thread."""
        with self.lock:
            self.owner = threading.get_ident()
            try:
                records = self._take_pending()
                if records and self.error is None:
                    self._run_inline(self.to_batch(records))
                elif records:
                    self._fail_records(records)
            finally:
                self.owner = None

    def _run_inline(self, batch):
        try:
            drive(self.source._emit(batch))
        except BaseException as ex:
            self.fail(ex, batch)
            if not isinstance(ex, Exception):
                raise

    def to_batch(self, records):
        """A batch of emitted records: (body, key, time, id, meta, awaitable) tuples."""
        n = len(records)
        if n == 1:
            body, key, time, id_, meta, awaitable = records[0]
            # positional: a live event's batch is made some 0.2 us sooner
            return EventBatch(
                1,
                [body],
                None,
                [key],
                None,
                [time],
                None,
                self.ids.reserve_one() if id_ is GENERATE_ID else [id_],
                None if awaitable is None else [awaitable],
                None if meta is None else [meta],
            )
        bodies, keys, times, ids, metas, awaitables = map(list, zip(*records, strict=True))
        generated = ids.count(GENERATE_ID)
        if generated == n:
            ids = self.ids.reserve(n)
        elif generated:
            ids = [self.ids.next_id() if i is GENERATE_ID else i for i in ids]
        return EventBatch(
            n,
            bodies=bodies,
            keys=keys,
            time_values=times,
            ids=ids,
            awaitables=None if awaitables.count(None) == n else awaitables,
            meta=None if metas.count(None) == n else metas,
        )

    # ---- failure
    def fail(self, ex, batch=None):
        """Records the flow's first error and fails every result still awaited."""
        if self.error is None:
            self.error = ex
        if batch is not None and batch.awaitables is not None:
            for awaitable in batch.awaitables:
                if awaitable is not None:
                    awaitable._set_error(ex)
        with self.cond:
            records = self.pending
            self.pending = []
            self.cond.notify_all()
        self._fail_records(records)
        if self.loop is not None:
            self._wake()

    def _fail_records(self, records):
        for record in records:
            awaitable = record[-1]
            if awaitable is not None:
                awaitable._set_error(self.error)

    # ---- timers
    def schedule(self, delay, fn):
        """Runs the coroutine function `fn` after `delay` seconds, unless cancelled first."""
        timer = Timer(fn)
        if threading.get_ident() == self.loop_thread:
            self.loop.call_later(delay, self._fire, timer)
        else:
            self.loop.call_soon_threadsafe(self.loop.call_later, delay, self._fire, timer)
        return timer

    def _fire(self, timer):
        if timer.cancelled or self.finished or self.error is not None or self._graph_terminated:
            return
        if self.inline:
            with self.lock:
                if timer.cancelled or self.error is not None or self._graph_terminated:
                    return
                self.owner = threading.get_ident()
                try:
                    drive(timer.fn())
                except Exception as ex:
                    self.fail(ex)
                finally:
                    self.owner = None
        else:
            self.loop.create_task(self._run_timer(timer))

    async def _run_timer(self, timer):
        if timer.cancelled or self.error is not None or self._graph_terminated:
            return
        try:
            await timer.fn()
        except Exception as ex:
            self.fail(ex)

    # ---- the loop
    async def _drain_loop(self):
        """The background loop of an emit source: drains stragglers, then terminates the flow."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.inline and self.linger and not self.terminating and self.error is None:
                await asyncio.sleep(self.linger)
            while self.error is None:
                if self.inline:
                    with self.cond:
                        if not self.pending:
                            # emitters wake the loop again from the next event on
                            self.armed = False
                            break
                    self.drain_inline()
                else:
                    records = self._take_pending()
                    if not records:
                        break
                    batch = self.to_batch(records)
                    try:
                        await self.source._emit(batch)
                    except BaseException as ex:
                        self.fail(ex, batch)
            with self.cond:
                done = self.error is not None or (self.terminating and not self.pending)
            if done:
                break
        await self.shutdown()

    async def terminate_graph(self):
        """Terminates the flow's steps (flushing them) now, for a source that says when its events
        end; returns the termination result."""
        self._graph_terminated = True
        return await self.source._terminate()

    async def shutdown(self):
        """Terminates the flow (flushing every step) and closes its steps, also after an error."""
        if not self._graph_terminated:
            self._graph_terminated = True
            try:
                if self.inline:
                    with self.lock:
                        result = drive(self.source._terminate())
                        drive(self.run_at_end())
                else:
                    result = await self.source._terminate()
                    await self.run_at_end()
                if self.error is None:
                    self.result = result
            except BaseException as ex:
                if self.error is None:
                    self.error = ex
        for step in self.steps:
            try:
                step._close()
                # what a step written against storey 1.0.6 asked to have closed
                for closeable in step._closeables:
                    closed = closeable.close()
                    if inspect.isawaitable(closed):
                        await closed
            except Exception as ex:
                if self.error is None:
                    self.error = ex
        with self.cond:
            records = self.pending
            self.pending = []
            self.finished = True
            self.cond.notify_all()
        if records:
            if self.error is None:
                self.error = RuntimeError("events were emitted after the flow terminated")
            self._fail_records(records)
        if self._space is not None:
            self._space.set()

    async def run_at_end(self):
        """Runs what the steps left to finish when the flow terminated, every one of them; then
        raises the first error."""
        error = None
        while self.at_end:
            try:
                await self.at_end.pop(0)()
            except Exception as ex:
                error = error or ex
        if error is not None:
            raise error

    # ---- termination
    def terminate(self):
        with self.cond:
            if self.terminating:
                return
            self.terminating = True
        self._wake()

    def await_termination(self):
        self._done.wait()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        if self.error is not None:
            self.raise_error()
        return self.result

    def await_termination_now(self):
        """The termination result of a flow that has finished (or its error)."""
        if self.error is not None:
            self.raise_error()
        return self.result

    async def await_termination_async(self):
        await self._task
        if self.error is not None:
            self.raise_error()
        return self.result
