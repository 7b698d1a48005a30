"""The public Event object."""

import datetime as dt

import pytest

from storey import Event
from tests.support.conformance import assert_matches, encode, load_case

T = dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC)


def _fields(event):
    names = ["body", "key", "time", "id", "headers", "method", "path", "content_type"]
    return {name: encode(getattr(event, name)) for name in names}


def test_conformance_event_constructor():
    expected = load_case("event_constructor")["expected"]
    assert_matches(expected["minimal"], _fields(Event({"a": 1}, time=T)))
    full = Event(
        {"a": 1},
        key="k",
        time=T,
        id="x",
        headers={"h": "v"},
        method="POST",
        path="/p",
        content_type="application/json",
    )
    assert_matches(expected["full"], _fields(full))
    assert_matches(expected["iso_string_time"], _fields(Event({"a": 1}, time="2020-07-21T21:40:00.5+00:00")))
    # an int is epoch seconds, as a naive UTC datetime
    assert_matches(expected["int_time"], _fields(Event({"a": 1}, time=1595367600)))
    assert_matches(expected["list_key"], _fields(Event([1, 2], key=["a", "b"], time=T)))
    assert (
        Event({"a": 1}, key="k1", time=T, id="i") == Event({"a": 1}, key="k2", time=T, id="i")
    ) is expected["equal_different_keys"]
    assert (Event({"a": 1}, time=T, id="i1") == Event({"a": 1}, time=T, id="i2")) is expected[
        "equal_different_ids"
    ]
    assert (Event({"a": 1}, time=T) == {"a": 1}) is expected["equal_non_event"]
    with pytest.raises(TypeError):
        Event({"a": 1}, time=1.5)
    assert expected["float_time"] == "TypeError"


def test_a_bool_time_is_epoch_seconds_as_an_int():
    assert Event(1, time=True).time == dt.datetime(1970, 1, 1, 0, 0, 1)


def test_default_time_is_now_in_utc():
    before = dt.datetime.now(dt.UTC)
    event = Event("x")
    assert before <= event.time <= dt.datetime.now(dt.UTC)
    assert event.time.tzinfo is not None


def test_equality_covers_metadata_and_events_are_unhashable():
    assert Event(1, time=T, method="GET") != Event(1, time=T, method="POST")
    assert Event(1, time=T, path="/a") != Event(1, time=T, path="/b")
    assert Event(1, time=T) == Event(1, time=T)
    with pytest.raises(TypeError):
        hash(Event(1, time=T))


def test_str_shows_id_key_time_and_body():
    text = str(Event({"a": 1}, key="k", time=T, id="i"))
    assert text == f"Event(id=i, key=k, time={T}, body={{'a': 1}})"
    assert repr(Event(1, time=T)) == str(Event(1, time=T))


def test_error_starts_empty():
    assert Event(1).error is None
