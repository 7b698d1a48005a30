"""JoinWithTable: joins events with the static attributes a Table holds for their key.

Every test here also covers reference defect 15: the reference's JoinWithTable crashes on Python
>= 3.10 (an asyncio change it predates); ours runs.
"""

import pytest

from storey import Context, JoinWithTable, Map, NoopDriver, Table
from storey.dtypes import Event
from storey.targets import NoSqlTarget
from tests.support.conformance import assert_matches, encode_event, input_events, load_case
from tests.support.engine import Capture, make_events, run_steps
from tests.support.step_runs import KINDS, run_collected


def _profiles_table(case, columns=None, **table_kwargs):
    """A table filled from a case's 'profiles' by a first flow: NoSqlTarget(table, columns)."""
    table = Table("conf_table", NoopDriver(), **table_kwargs)
    profiles = [Event(body, key=key, time=time) for body, key, time in input_events(case, "profiles")]
    run_collected("sync", [NoSqlTarget(table, columns=columns)], profiles)
    return table


def _lookups(case, fields):
    return [
        Event({f: body[f] for f in fields}, key=key, time=time)
        for body, key, time in input_events(case, "lookups")
    ]


def _encoded(events):
    return [encode_event(e) for e in events]


@pytest.mark.parametrize("source", KINDS)
def test_conformance_nosql_then_join(source):
    case = load_case("nosql_then_join")
    table = _profiles_table(case, columns=["name", "tier", "years=age"])
    lookups = _lookups(case, ["uid", "x"])
    left = run_collected(source, [JoinWithTable(table, "uid")], lookups, full_event=True)
    assert_matches(case["expected"]["left"], _encoded(left))
    inner = run_collected(
        source, [JoinWithTable(table, "uid", inner_join=True)], _lookups(case, ["uid", "x"]), full_event=True
    )
    assert_matches(case["expected"]["inner"], _encoded(inner))
    # the later profile event of user1 replaced its tier
    assert table._get_static("user1") == {"name": "Name1", "tier": "platinum", "years": 99}


@pytest.mark.parametrize("source", KINDS)
def test_conformance_custom_join_function_full_event(source):
    case = load_case("join_custom_function_full_event")
    table = _profiles_table(case)

    def join(event, attributes):
        if "name" not in attributes:
            return None
        event.body = {
            "who": event.body["who"],
            "greeting": "hi " + attributes["name"],
            "n_attrs": len(attributes),
        }
        return event

    step = JoinWithTable(
        table, key_extractor=lambda event: event.body["who"], join_function=join, full_event=True
    )
    out = run_collected(source, [step], _lookups(case, ["who"]), full_event=True)
    assert_matches(case["expected"]["events"], _encoded(out))


@pytest.mark.parametrize("source", KINDS)
def test_only_listed_attributes_are_joined(source):
    # reference defect 10: the reference joins every attribute the table already holds
    case = load_case("join_attributes_subset")
    table = _profiles_table(case, columns=["name", "tier", "age"])
    out = run_collected(source, [JoinWithTable(table, "uid", attributes=["name"])], _lookups(case, ["uid"]))
    assert out == [
        {"uid": "user0", "name": "Name0"},
        {"uid": "user1", "name": "Name1"},
        {"uid": "user2", "name": "Name2"},
        {"uid": "user3"},
    ]


def test_attributes_as_comma_separated_string():
    table = Table("t", NoopDriver())
    table._set_static("k", {"a": 1, "b": 2, "c": 3})
    out = run_collected("sync", [JoinWithTable(table, "id", attributes="a, c")], [{"id": "k"}])
    assert out == [{"id": "k", "a": 1, "c": 3}]


@pytest.mark.parametrize("everything", ["*", ["*"], []])
def test_star_or_no_attribute_names_join_every_attribute(everything):
    table = Table("t", NoopDriver())
    table._set_static("k", {"a": 1, "b": 2})
    out = run_collected("sync", [JoinWithTable(table, "id", attributes=everything)], [{"id": "k"}])
    assert out == [{"id": "k", "a": 1, "b": 2}]


def test_inner_join_drops_keys_without_any_listed_attribute():
    table = Table("t", NoopDriver())
    table._set_static("k", {"a": 1})
    out = run_collected(
        "sync", [JoinWithTable(table, "id", attributes=["b"], inner_join=True)], [{"id": "k"}]
    )
    assert out == []


@pytest.mark.parametrize("source", KINDS)
def test_writes_without_flush_interval_are_visible(source):
    # reference defect 11: with flush_interval_secs=None the reference's NoSqlTarget writes never
    # reach the table's memory, so its join finds nothing
    case = load_case("table_no_flush_interval")
    table = _profiles_table(case, columns=["name"], flush_interval_secs=None)
    out = run_collected(source, [JoinWithTable(table, "uid")], _lookups(case, ["uid"]))
    assert out == [
        {"uid": "user0", "name": "Name0"},
        {"uid": "user1", "name": "Name1"},
        {"uid": "user2", "name": "Name2"},
        {"uid": "user3"},
    ]


@pytest.mark.parametrize("source", KINDS)
@pytest.mark.parametrize("buffer_size", [1, 8])
def test_join_after_write_in_one_flow_sees_each_event_in_turn(source, buffer_size):
    table = Table("t", NoopDriver())
    items = [({"a": i, "other": key}, key) for i, key in enumerate(["k1", "k1", "k2", "k1", "k2"])]
    steps = [
        NoSqlTarget(table, columns=["a"]),
        Map(lambda body: {"other": body["other"]}),
        JoinWithTable(table, "other"),
    ]
    out = run_collected(source, steps, items, buffer_size=buffer_size)
    assert out == [
        {"other": "k1", "a": 0},
        {"other": "k1", "a": 1},
        {"other": "k2", "a": 2},
        {"other": "k1", "a": 3},
        {"other": "k2", "a": 4},
    ]


@pytest.mark.parametrize("source", KINDS)
def test_join_before_write_in_one_flow_sees_earlier_events_only(source):
    table = Table("t", NoopDriver())
    items = [({"v": i, "id": "k"}, "k") for i in range(3)]
    steps = [
        JoinWithTable(table, "id", join_function=lambda b, a: {**b, "prev": a.get("v")}),
        NoSqlTarget(table, columns=["v"]),
    ]
    out = run_collected(source, steps, items)
    assert [body["prev"] for body in out] == [None, 0, 1]


def _filled_table():
    table = Table("t", NoopDriver())
    table._set_static("u1", {"name": "N1", "age": 5})
    table._set_static("u2", {"name": "N2", "age": 7})
    return table


@pytest.mark.parametrize("source", KINDS)
def test_default_join_updates_body_and_unknown_keys_pass(source):
    out = run_collected(
        source,
        [JoinWithTable(_filled_table(), "uid")],
        [{"uid": "u1", "x": 1}, {"uid": "u3"}, {"uid": "u2", "name": "mine"}, {"uid": None}],
    )
    assert out == [
        {"uid": "u1", "x": 1, "name": "N1", "age": 5},
        {"uid": "u3"},
        {"uid": "u2", "name": "N2", "age": 7},
        {"uid": None},
    ]


@pytest.mark.parametrize("source", KINDS)
def test_default_join_with_full_event(source):
    step = JoinWithTable(_filled_table(), key_extractor=lambda event: event.key, full_event=True)
    out = run_collected(source, [step], [({"x": 1}, "u1"), ({"x": 2}, "zz")], full_event=True)
    assert [(e.body, e.key) for e in out] == [({"x": 1, "name": "N1", "age": 5}, "u1"), ({"x": 2}, "zz")]


@pytest.mark.parametrize("source", KINDS)
def test_field_key_extractor_with_full_event_reads_the_body(source):
    step = JoinWithTable(_filled_table(), "uid", full_event=True)
    out = run_collected(source, [step], [({"uid": "u2"}, "u1")])
    assert out == [{"uid": "u2", "name": "N2", "age": 7}]


@pytest.mark.parametrize("source", KINDS)
def test_join_function_gets_empty_attributes_for_unknown_keys(source):
    step = JoinWithTable(
        _filled_table(), lambda body: body["uid"], join_function=lambda b, a: {"b": b, "a": a}
    )
    out = run_collected(source, [step], [{"uid": "u1"}, {"uid": "u3"}])
    assert out == [{"b": {"uid": "u1"}, "a": {"name": "N1", "age": 5}}, {"b": {"uid": "u3"}, "a": {}}]


def test_inner_join_does_not_call_join_function_for_unknown_keys():
    calls = []
    step = JoinWithTable(
        _filled_table(), "uid", inner_join=True, join_function=lambda b, a: calls.append(b["uid"]) or b
    )
    out = run_collected("sync", [step], [{"uid": "u1"}, {"uid": "u3"}, {"uid": "u2"}])
    assert out == [{"uid": "u1"}, {"uid": "u2"}]
    assert calls == ["u1", "u2"]


def test_join_function_returning_none_drops_the_event():
    step = JoinWithTable(_filled_table(), "uid", join_function=lambda b, a: b if a else None)
    assert run_collected("sync", [step], [{"uid": "u3"}, {"uid": "u1"}]) == [{"uid": "u1"}]


def test_list_keys_match_their_stored_form():
    table = Table("t", NoopDriver())
    run_collected("sync", [NoSqlTarget(table, columns=["a"])], [({"a": 1}, ["x", 2])])
    out = run_collected("sync", [JoinWithTable(table, "k")], [{"k": ["x", 2]}, {"k": "x.2"}])
    assert out == [{"k": ["x", 2], "a": 1}, {"k": "x.2", "a": 1}]


def test_table_by_name_from_context():
    context = Context(initial_tables={"profiles": _filled_table()})
    out = run_collected("sync", [JoinWithTable("profiles", "uid", context=context)], [{"uid": "u1"}])
    assert out == [{"uid": "u1", "name": "N1", "age": 5}]


@pytest.mark.parametrize("source", KINDS)
def test_missing_key_field_fails_after_passing_earlier_events(source):
    seen = []
    steps = [JoinWithTable(_filled_table(), "uid"), Map(lambda b: seen.append(dict(b)) or b)]
    with pytest.raises(KeyError):
        run_collected(source, steps, [{"uid": "u1"}, {"x": 1}, {"uid": "u2"}])
    assert seen == [{"uid": "u1", "name": "N1", "age": 5}]


@pytest.mark.parametrize("source", KINDS)
def test_raising_join_function_fails_after_passing_earlier_events(source):
    seen = []

    def join(body, attributes):
        if body["uid"] == "u2":
            raise RuntimeError("bad join")
        return body

    steps = [JoinWithTable(_filled_table(), "uid", join_function=join), Map(lambda b: seen.append(b) or b)]
    with pytest.raises(RuntimeError, match="bad join"):
        run_collected(source, steps, [{"uid": "u1"}, {"uid": "u2"}, {"uid": "u3"}])
    assert seen == [{"uid": "u1"}]


def test_bad_parameters():
    table = _filled_table()
    with pytest.raises(TypeError, match="JoinWithTable: key_extractor"):
        JoinWithTable(table, 5)
    with pytest.raises(TypeError, match="JoinWithTable: key_extractor"):
        JoinWithTable(table, None)
    with pytest.raises(TypeError, match="join_function"):
        JoinWithTable(table, "k", join_function=5)
    with pytest.raises(TypeError, match="JoinWithTable: attributes"):
        JoinWithTable(table, "k", attributes=[1])
    with pytest.raises(TypeError, match="JoinWithTable.*context"):
        JoinWithTable("profiles", "k")
    with pytest.raises(ValueError, match="JoinWithTable.*'zz'"):
        JoinWithTable("zz", "k", context=Context())
    with pytest.raises(TypeError, match="JoinWithTable: table"):
        JoinWithTable(5, "k")


def _joined(sizes, column_bodies, **kwargs):
    table = Table("t", NoopDriver())
    table._set_static("k1", {"name": "N1", "score": 1.5})
    table._set_static("k2", {"name": "N2"})
    bodies = [{"uid": key, "v": i} for i, key in enumerate(["k1", "k3", "k2", "k1", "k3", "k2"])]
    captures, _ = run_steps(
        [JoinWithTable(table, "uid", **kwargs), Capture()],
        make_events(bodies),
        sizes=sizes,
        columns=column_bodies,
    )
    return captures[0]


@pytest.mark.parametrize("kwargs", [{}, {"inner_join": True}, {"attributes": ["score"]}])
def test_column_bodies_and_batch_splits_join_the_same(kwargs):
    expected = _joined(None, False, **kwargs)
    assert expected[0][0] == {
        "uid": "k1",
        "v": 0,
        **({"score": 1.5} if "attributes" in kwargs else {"name": "N1", "score": 1.5}),
    }
    for sizes in ([1] * 6, [2, 4], [5]):
        for column_bodies in (False, True):
            assert _joined(sizes, column_bodies, **kwargs) == expected


def test_column_bodies_whose_fields_are_replaced_by_attributes():
    table = Table("t", NoopDriver())
    table._set_static("k1", {"v": "stored"})
    bodies = [{"uid": "k1", "v": 0}, {"uid": "k2", "v": 1}]
    captures, _ = run_steps([JoinWithTable(table, "uid"), Capture()], make_events(bodies), columns=True)
    assert [c[0] for c in captures[0]] == [{"uid": "k1", "v": "stored"}, {"uid": "k2", "v": 1}]


@pytest.mark.parametrize("source", KINDS)
def test_conformance_mapwithstate_by_key_table(source):
    from storey import MapWithState

    case = load_case("mapwithstate_by_key_table")
    table = Table("conf_table", NoopDriver())

    def count(body, state):
        total = state.get("sum", 0) + body["v"]
        return {"v": body["v"], "prev_count": state.get("count", 0), "sum": total}, {
            "count": state.get("count", 0) + 1,
            "sum": total,
        }

    events = [Event(body, key=key, time=time) for body, key, time in input_events(case)]
    out = run_collected(source, [MapWithState(table, count, group_by_key=True)], events, full_event=True)
    assert_matches(case["expected"]["events"], _encoded(out))
    lookups = [Event(body, key=key) for body, key, _ in input_events(case, "lookups")]
    final = run_collected(source, [JoinWithTable(table, "who")], lookups, full_event=True)
    assert_matches(case["expected"]["final_state"], [encode_event(e, time=False) for e in final])
