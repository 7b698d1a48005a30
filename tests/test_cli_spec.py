"""The SPEC grammar of `storey backfill --features`."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storey.cli.feature_spec import AGGREGATIONS, FeatureSpec, SpecError, parse_spec, parse_specs


def test_sliding_windows_with_period():
    spec = parse_spec("amount:sum,avg,max@1h,24h/10m")
    assert spec == FeatureSpec("amount", "amount", ("sum", "avg", "max"), ("1h", "24h"), "10m", False)
    assert spec.feature_names() == [
        "amount_sum_1h",
        "amount_sum_24h",
        "amount_avg_1h",
        "amount_avg_24h",
        "amount_max_1h",
        "amount_max_24h",
    ]


def test_sliding_windows_without_period():
    spec = parse_spec("amount:count@30s")
    assert (spec.windows, spec.period, spec.fixed) == (("30s",), None, False)


def test_fixed_windows_are_spelled_fixed():
    spec = parse_spec("amount:count,min@fixed:1h,1d")
    assert (spec.windows, spec.period, spec.fixed) == (("1h", "1d"), None, True)


def test_name_differs_from_field():
    spec = parse_spec("today=amount:sum@fixed:1d")
    assert (spec.name, spec.field) == ("today", "amount")
    assert spec.feature_names() == ["today_sum_1d"]


def test_spaces_around_parts_are_ignored():
    assert parse_spec(" amount : sum , avg @ 1h , 24h / 10m ") == parse_spec("amount:sum,avg@1h,24h/10m")


def test_several_specs_by_semicolon_and_by_repeating():
    specs = parse_specs(["a:sum@1h; b:max@2h;", "c:count@fixed:1d"])
    assert [s.field for s in specs] == ["a", "b", "c"]


def test_every_aggregation_is_accepted():
    assert parse_spec(f"v:{','.join(AGGREGATIONS)}@1h").aggregations == AGGREGATIONS


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("amount", "missing '@'"),
        ("amount@1h", "missing ':'"),
        (":sum@1h", "no field"),
        ("=amount:sum@1h", "no name"),
        ("amount:@1h", "empty aggregation"),
        ("amount:median@1h", "unknown aggregation 'median'"),
        ("amount:sttdev@1h", "unknown aggregation 'sttdev'"),
        ("amount:sum,sum@1h", "listed twice"),
        ("amount:sum@", "empty window"),
        ("amount:sum@1w", "window '1w' is not a duration"),
        ("amount:sum@h", "window 'h' is not a duration"),
        ("amount:sum@0h", "window '0h' is empty"),
        ("amount:sum@1h,60m", "window is listed twice"),
        ("amount:sum@1h/7m", "period 7m does not divide window 1h"),
        ("amount:sum@1h/x", "period 'x' is not a duration"),
        ("amount:sum@1h/0s", "period '0s' is empty"),
        ("amount:sum@fixed:1h/10m", "fixed windows take no period"),
        ("my amount:sum@1h", "may not contain spaces"),
    ],
)
def test_bad_spec_names_the_spec_and_the_problem(text, reason):
    with pytest.raises(SpecError) as info:
        parse_specs([text])
    message = str(info.value)
    assert reason in message
    assert repr(text) in message
    assert "\n" not in message


def test_no_spec_at_all():
    with pytest.raises(SpecError, match="no SPEC given"):
        parse_specs([" ; "])


def test_two_specs_with_one_name_must_be_named_apart():
    with pytest.raises(SpecError, match="both named 'amount'"):
        parse_specs(["amount:sum@1h;amount:count@fixed:1d"])
    assert len(parse_specs(["amount:sum@1h;today=amount:count@fixed:1d"])) == 2


def test_python_form_builds_the_same_aggregator():
    import storey

    for text in ["amount:sum,avg@1h,24h/10m", "today=amount:count@fixed:1d", "v:max@90s"]:
        spec = parse_spec(text)
        namespace = {
            name: getattr(storey, name) for name in ("FieldAggregator", "SlidingWindows", "FixedWindows")
        }
        built = eval(spec.to_python(), namespace)  # noqa: S307
        direct = spec.to_aggregator()
        assert type(built) is type(direct)
        assert (built.name, built.field, list(built.aggregations)) == (
            spec.name,
            spec.field,
            list(spec.aggregations),
        )
        assert type(built.windows) is type(direct.windows)
        assert built.windows.windows == direct.windows.windows
        assert built.windows.period_millis == direct.windows.period_millis


_durations = st.builds(lambda n, u: f"{n}{u}", st.integers(1, 500), st.sampled_from("smhd"))
_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,8}", fullmatch=True)


@st.composite
def _specs(draw):
    fixed = draw(st.booleans())
    windows = draw(st.lists(_durations, min_size=1, max_size=4, unique_by=lambda w: _seconds(w)))
    period = None
    if not fixed and draw(st.booleans()):
        period = draw(
            st.sampled_from(
                ["1s"] + [w for w in windows if all(_seconds(x) % _seconds(w) == 0 for x in windows)]
            )
        )
    field = draw(_names)
    name = draw(st.one_of(st.just(field), _names))
    aggrs = draw(st.lists(st.sampled_from(AGGREGATIONS), min_size=1, max_size=5, unique=True))
    return FeatureSpec(name, field, tuple(aggrs), tuple(windows), period, fixed)


def _seconds(w):
    return int(w[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[w[-1]]


@given(_specs())
def test_text_form_parses_back_to_the_same_spec_when_storey_accepts_it(spec):
    try:
        spec.to_aggregator()
    except ValueError as ex:
        with pytest.raises(SpecError) as info:
            parse_spec(spec.to_text())
        assert str(ex).splitlines()[0] in str(info.value)
    else:
        assert parse_spec(spec.to_text()) == spec
