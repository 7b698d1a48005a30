"""ParquetTarget writes the same file for the same events whatever batches bring them, when their
times mix naive (UTC) and aware ones of different zones."""

import datetime as dt

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from storey import ParquetTarget, SyncEmitSource, build_flow

ZONES = [None, dt.UTC, dt.timezone(dt.timedelta(hours=2)), dt.timezone(dt.timedelta(hours=-5))]
T0 = dt.datetime(2024, 3, 1, 12, 0)


def write(path, events, buffer_size):
    controller = build_flow(
        [SyncEmitSource(buffer_size=buffer_size), ParquetTarget(path, columns=["v", "t=$time"])]
    )
    controller = controller.run()
    for body, when in events:
        controller.emit(body, key="k", event_time=when)
    controller.terminate()
    controller.await_termination()
    return pq.read_table(path)


def instant(when):
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(ZONES), st.integers(0, 10_000)), min_size=2, max_size=8), st.data())
def test_mixed_time_zones_give_one_file_whatever_the_batches(tmp_path_factory, zones_and_minutes, data):
    events = []
    for v, (zone, minutes) in enumerate(zones_and_minutes):
        wall = T0 + dt.timedelta(minutes=minutes)
        events.append(({"v": v}, wall if zone is None else wall.replace(tzinfo=zone)))
    folder = tmp_path_factory.mktemp("times")
    whole = write(str(folder / "whole.parquet"), events, buffer_size=len(events))
    buffer_size = data.draw(st.integers(1, len(events) - 1))
    parts = write(str(folder / "parts.parquet"), events, buffer_size=buffer_size)
    assert parts.schema.equals(whole.schema, check_metadata=False)
    assert parts.to_pylist() == whole.to_pylist()
    # each time is the event's instant, naive times being UTC
    written = [instant(t) for t in whole.column("t").to_pylist()]
    assert written == [instant(when) for _, when in events]
