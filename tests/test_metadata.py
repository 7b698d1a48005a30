"""ReifyMetadata (event metadata copied into dict bodies) and Rename (body fields renamed)."""

import datetime as dt

import pytest

from storey import Event, Reduce, ReifyMetadata, Rename, build_flow
from tests.support.conformance import assert_matches, decode, decode_time, load_case
from tests.support.engine import T0, make_events, run_steps
from tests.support.engine import Capture as EngineCapture
from tests.support.step_runs import KINDS, SOURCES, Capture, run, run_source


def _collect():
    return Reduce([], lambda acc, x: acc + [x])


def _case_events(case):
    return [
        Event(decode(e["body"]), key=e["key"], time=decode_time(e["time"]), id=e["id"])
        for e in case["inputs"]["events"]
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_conformance_reify_metadata(kind):
    case = load_case("reify_metadata")
    events, with_id = Capture(), Capture(id=True)
    source = SOURCES[kind]()
    build_flow([source, [ReifyMetadata(["key", "time"]), events], [ReifyMetadata(["id", "key"]), with_id]])
    run_source(kind, source, _case_events(case))
    assert_matches(case["expected"], {"events": events.seen, "with_id": with_id.seen})


@pytest.mark.parametrize("kind", KINDS)
def test_dict_mapping_names_the_body_entries(kind):
    # the reference fails here with ValueError (case reify_metadata_dict_raises): a documented
    # difference, the dict form works as the API document describes it
    case = load_case("reify_metadata_dict_raises")
    capture = Capture()
    (event,) = case["inputs"]["events"]
    run(kind, [ReifyMetadata({"key": "the_key"}), capture], [(decode(event["body"]), event["key"], None)])
    assert [e["body"] for e in capture.seen] == [{"v": 1, "the_key": "k"}]


@pytest.mark.parametrize("kind", KINDS)
def test_every_event_attribute_can_be_reified(kind):
    event = Event(
        {"v": 1},
        key="k",
        time=dt.datetime(2020, 1, 1),
        id="my-id",
        headers={"h": 1},
        method="POST",
        path="/p",
        content_type="json",
    )
    names = ["id", "key", "time", "headers", "method", "path", "content_type", "error"]
    (body,) = run(kind, [ReifyMetadata(names), _collect()], [event])
    assert body == {
        "v": 1,
        "id": "my-id",
        "key": "k",
        "time": dt.datetime(2020, 1, 1),
        "headers": {"h": 1},
        "method": "POST",
        "path": "/p",
        "content_type": "json",
        "error": None,
    }
    assert list(body) == ["v", *names]


@pytest.mark.parametrize("kind", KINDS)
def test_existing_fields_are_overwritten_in_place(kind):
    result = run(kind, [ReifyMetadata(["key"]), _collect()], [({"key": "old", "v": 1}, "new", None)])
    assert result == [{"key": "new", "v": 1}]
    assert list(result[0]) == ["key", "v"]


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
def test_reify_on_rows_and_on_columns_gives_the_same_bodies(columns):
    events = make_events([{"v": i, "key": -i} for i in range(5)], keys=["a", "b", ["c", 1], None, "e"])
    (seen,), _ = run_steps(
        [ReifyMetadata({"key": "key", "time": "t", "id": "the_id"}), EngineCapture()], events, [2, 3], columns
    )
    assert [r[0] for r in seen] == [
        {"v": i, "key": k, "t": T0 + dt.timedelta(seconds=i), "the_id": f"id-{i}"}
        for i, k in enumerate(["a", "b", ["c", 1], None, "e"])
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_reify_fails_the_flow_on_a_body_that_is_not_a_dict(kind):
    capture = Capture()
    with pytest.raises(TypeError):
        run(
            kind,
            [ReifyMetadata(["key"]), capture],
            [({"v": 1}, "k", None), (5, "k", None), ({"v": 2}, "k", None)],
        )
    assert [e["body"] for e in capture.seen] == [{"v": 1, "key": "k"}]


@pytest.mark.parametrize(
    "mapping, error",
    [
        ("key", TypeError),
        (None, TypeError),
        (5, TypeError),
        (["nonexistent"], ValueError),
        ({"kee": "k"}, ValueError),
    ],
)
def test_reify_bad_mapping_raises_at_construction(mapping, error):
    with pytest.raises(error, match="mapping") as info:
        ReifyMetadata(mapping, name="reifier")
    assert "reifier" in str(info.value)


RENAMES = [
    ({"a": "b"}, {"a": 1, "c": 2}, {"c": 2, "b": 1}),
    ({"a": "b"}, {"c": 2}, {"c": 2}),
    ({"a": "b", "b": "a"}, {"a": 1, "b": 2}, {"a": 1}),
    ({"a": "b", "b": "c"}, {"a": 1, "b": 2}, {"c": 1}),
    ({"a": "b"}, {"a": 1, "b": 2, "c": 3}, {"b": 1, "c": 3}),
    ({"a": "z"}, {"a": 1, "b": 2, "c": 3}, {"b": 2, "c": 3, "z": 1}),
    # as in the reference, renaming a field to itself removes it
    ({"a": "a"}, {"a": 1, "b": 2}, {"b": 2}),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mapping, body, expected", RENAMES)
def test_rename_applies_each_pair_in_order(kind, mapping, body, expected):
    (result,) = run(kind, [Rename(mapping), _collect()], [body])
    assert result == expected
    assert list(result) == list(expected)


@pytest.mark.parametrize("mapping, body, expected", RENAMES)
def test_rename_on_columns_gives_what_rows_give(mapping, body, expected):
    events = make_events([dict(body) for _ in range(3)])
    for columns in (False, True):
        (seen,), _ = run_steps([Rename(mapping), EngineCapture()], events, [2, 1], columns)
        assert [list(r[0].items()) for r in seen] == [list(expected.items())] * 3


@pytest.mark.parametrize("kind", KINDS)
def test_rename_passes_list_bodies_and_fails_on_numbers(kind):
    assert run(kind, [Rename({"a": "b"}), _collect()], [[1, 2]]) == [[1, 2]]
    capture = Capture()
    with pytest.raises(TypeError):
        run(kind, [Rename({"a": "b"}), capture], [{"a": 1}, 5])
    assert [e["body"] for e in capture.seen] == [{"b": 1}]


@pytest.mark.parametrize("mapping", [None, ["a"], "a", 5])
def test_rename_bad_mapping_raises_at_construction(mapping):
    with pytest.raises(TypeError, match="mapping") as info:
        Rename(mapping, name="renamer")
    assert "renamer" in str(info.value)
