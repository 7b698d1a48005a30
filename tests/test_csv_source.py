"""CSVSource: CSV files typed from their first block, list or dict bodies, clear errors."""

import datetime as dt
import math

import fsspec
import pytest

import storey.sources.file_sources.csv_reading as csv_reading
from storey import CSVSource, CSVTarget, Flow, ReifyMetadata, build_flow
from storey.core.columns import Columns
from tests.support.conformance import assert_matches, load_case
from tests.support.replay_runs import MODES, BatchLog, encoded, run_flow

HEADER_DICT = {"header": True, "build_dict": True}


def _file(tmp_path, text, name="in.csv"):
    path = tmp_path / name
    path.write_text(text, newline="")
    return str(path)


@pytest.mark.parametrize("mode", MODES)
def test_conformance_header_dict(tmp_path, mode):
    case = load_case("csv_source_header_dict")
    source = CSVSource(
        _file(tmp_path, case["inputs"]["csv"]), key_field="name", time_field="ts", **HEADER_DICT
    )
    events, _ = run_flow(source, mode=mode)
    assert_matches(case["expected"]["events"], encoded(events))


@pytest.mark.parametrize("mode", MODES)
def test_conformance_no_inference(tmp_path, mode):
    case = load_case("csv_source_no_inference")
    path = _file(tmp_path, case["inputs"]["csv"])
    source = CSVSource(path, key_field="name", time_field="ts", type_inference=False, **HEADER_DICT)
    events, _ = run_flow(source, mode=mode)
    assert_matches(case["expected"]["events"], encoded(events))


def test_conformance_no_header_where_index_0_is_a_key(tmp_path):
    # reference defect 13: key_field=0 is ignored there (0 is falsy); it is the first field here
    case = load_case("csv_source_no_header")
    path = _file(tmp_path, case["inputs"]["csv"])
    events, _ = run_flow(CSVSource(path, key_field=0, time_field=1))
    expected = [{**e, "key": e["body"][0]} for e in case["expected"]["events"]]
    assert_matches(expected, encoded(events))
    events, _ = run_flow(CSVSource(path, key_field=[0, 2], time_field=1))
    assert_matches(case["expected"]["list_key"], encoded(events))


def test_conformance_timestamp_format(tmp_path):
    case = load_case("csv_source_timestamp_format")
    source = CSVSource(
        _file(tmp_path, case["inputs"]["csv"]),
        key_field="k",
        time_field="t",
        timestamp_format="%d/%m/%Y %H:%M:%S",
        id_field="k",
        **HEADER_DICT,
    )
    events, _ = run_flow(source, ReifyMetadata(["key", "time", "id"]))
    assert_matches(case["expected"]["events"], encoded(events, id=True))


def test_conformance_parse_dates_id(tmp_path):
    case = load_case("csv_source_parse_dates_id")
    path = _file(tmp_path, case["inputs"]["csv"])
    events, _ = run_flow(
        CSVSource(path, key_field="k", parse_dates=["d1", "d2"], id_field="rid", **HEADER_DICT)
    )
    assert_matches(case["expected"]["events"], encoded(events, id=True, time=False))


def test_types_are_inferred_over_the_first_block(tmp_path):
    # reference defect 12: the reference types a column from its first row and raises on '2.5'
    text = "a,b,c,d,e\n1,1,true,1,2020-01-01\n2.5,x,FaLsE,,2020-01-02\n"
    events, _ = run_flow(CSVSource(_file(tmp_path, text), **HEADER_DICT))
    assert [e.body for e in events[:1]] == [{"a": 1.0, "b": "1", "c": True, "d": 1, "e": "2020-01-01"}]
    assert events[1].body["c"] is False and math.isnan(events[1].body["d"]) and events[1].body["a"] == 2.5


def test_empty_fields_are_nan_in_number_columns_and_none_elsewhere(tmp_path):
    text = "i,f,b,s\n,,,\n1,1.5,true,x\n,,,\n"
    events, _ = run_flow(CSVSource(_file(tmp_path, text), **HEADER_DICT))
    # before a column's first value its empty fields stay None, as in the reference
    assert events[0].body == {"i": None, "f": None, "b": None, "s": None}
    assert events[1].body == {"i": 1, "f": 1.5, "b": True, "s": "x"}
    later = events[2].body
    assert math.isnan(later["i"]) and math.isnan(later["f"]) and later["b"] is None and later["s"] is None


def test_a_later_value_that_does_not_fit_names_file_row_and_field(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reading, "BLOCK_BYTES", 64)
    text = "a,b\n" + "".join(f"{i},x\n" for i in range(40)) + "2.5,y\n"
    path = _file(tmp_path, text)
    seen = []
    source = CSVSource(path, **HEADER_DICT)
    with pytest.raises(ValueError, match=r"in\.csv, row 41 \(line 42\), field 'a': '2\.5' is not an integer"):
        run_flow(source, _Collect(seen))
    assert [body["a"] for body in seen] == list(range(40))


def test_a_column_empty_in_the_first_block_is_typed_by_its_first_values(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reading, "BLOCK_BYTES", 64)
    text = (
        "a,b\n" + "".join(f"{i},\n" for i in range(30)) + "30,7\n" + "".join(f"{i},\n" for i in range(31, 60))
    )
    text += "60,x\n"
    seen = []
    with pytest.raises(ValueError, match="row 61.*field 'b': 'x' is not an integer"):
        run_flow(CSVSource(_file(tmp_path, text), **HEADER_DICT), _Collect(seen))
    assert [body["a"] for body in seen] == list(range(60))
    text = "a,b\n" + "".join(f"{i},\n" for i in range(30)) + "30,7\n31,\n"
    events, _ = run_flow(CSVSource(_file(tmp_path, text), **HEADER_DICT))
    assert events[0].body["b"] is None and events[30].body["b"] == 7 and math.isnan(events[31].body["b"])


@pytest.mark.parametrize("text", ["a,b\n1,x\n2,y,z\n3,w\n", "a,b\n1,x\n2\n3,w\n"])
def test_a_row_with_the_wrong_number_of_fields_names_file_and_row(tmp_path, text):
    seen = []
    with pytest.raises(
        ValueError, match=r"in\.csv, row 2 \(line 3\) has \d fields where the header has 2"
    ) as raised:
        run_flow(CSVSource(_file(tmp_path, text), **HEADER_DICT), _Collect(seen))
    assert type(raised.value) is ValueError  # the type itself, as the reference's errors are
    # the rows before the bad one still went through the flow
    assert seen == [{"a": 1, "b": "x"}]


def test_an_unparseable_time_names_file_row_and_field(tmp_path):
    text = "t,v\n2020-07-21,1\nxx,2\n"
    with pytest.raises(ValueError, match=r"in\.csv, row 2, time_field 't': 'xx' is not an ISO-8601 time"):
        run_flow(CSVSource(_file(tmp_path, text), time_field="t", **HEADER_DICT))
    with pytest.raises(ValueError, match="row 1, parse_dates 'a'") as raised:
        run_flow(CSVSource(_file(tmp_path, "a\nfoo\n"), parse_dates=["a"], **HEADER_DICT))
    assert type(raised.value) is ValueError  # as the reference's (conformance compares type names)
    with pytest.raises(ValueError, match="row 1, time_field 't'.*format"):
        run_flow(
            CSVSource(
                _file(tmp_path, "t\n2020-01-01\n"), time_field="t", timestamp_format="%d/%m/%Y", **HEADER_DICT
            )
        )


def test_iso_times_keep_each_value_own_offset(tmp_path):
    text = (
        "t,v\n2020-07-21,1\n2020-07-21 21:40,2\n2020-07-21T21:40:00Z,3\n"
        "2020-07-21T21:40:00.123+02:00,4\n20200721T214000,5\n"
    )
    events, _ = run_flow(CSVSource(_file(tmp_path, text), time_field="t", **HEADER_DICT))
    times = [e.time for e in events]
    assert times[:2] == [dt.datetime(2020, 7, 21), dt.datetime(2020, 7, 21, 21, 40)]
    assert times[2] == dt.datetime(2020, 7, 21, 21, 40, tzinfo=dt.UTC) and times[2].tzinfo is dt.UTC
    assert times[3].utcoffset() == dt.timedelta(hours=2) and times[3].microsecond == 123000
    assert times[4] == dt.datetime(2020, 7, 21, 21, 40)
    assert [e.body["t"] for e in events[:2]] == times[:2]


def test_times_sharing_one_offset_or_format_are_parsed_as_a_column(tmp_path):
    log = BatchLog()
    text = "t\n2020-01-01T00:00:00+01:00\n2020-01-01T01:00:00+01:00\n"
    events, _ = run_flow(CSVSource(_file(tmp_path, text), time_field="t", **HEADER_DICT), log)
    assert [e.time.utcoffset() for e in events] == [dt.timedelta(hours=1)] * 2
    assert log.times[0].tolist() == [1577833200 * 10**9, 1577836800 * 10**9]
    text = "t\n15/02/2020 02:00:00.5 +0100\n"
    events, _ = run_flow(
        CSVSource(
            _file(tmp_path, text), time_field="t", timestamp_format="%d/%m/%Y %H:%M:%S.%f %z", **HEADER_DICT
        )
    )
    assert events[0].time == dt.datetime(
        2020, 2, 15, 2, 0, 0, 500000, tzinfo=dt.timezone(dt.timedelta(hours=1))
    )


def test_list_bodies_without_build_dict_or_header(tmp_path):
    path = _file(tmp_path, "k,t,v\nx,2020-01-01,1\n")
    events, _ = run_flow(CSVSource(path, header=True, key_field="k", time_field="t", id_field="v"))
    assert (events[0].body, events[0].key, events[0].id) == (["x", dt.datetime(2020, 1, 1), 1], "x", 1)
    # without a header the first line is data, and build_dict has nothing to name fields with
    events, _ = run_flow(CSVSource(path, build_dict=True))
    assert [e.body for e in events] == [["k", "t", "v"], ["x", "2020-01-01", "1"]]
    events, _ = run_flow(CSVSource(path, id_field=2, type_inference=False))
    assert [e.id for e in events] == ["v", "1"]


@pytest.mark.parametrize("mode", MODES)
def test_list_bodies_are_built_only_when_a_step_asks_for_rows(tmp_path, monkeypatch, mode):
    path = _file(tmp_path, "k,v\nx,1\ny,2\n")
    seen = []

    class Look(Flow):
        _takes_batches = True  # its _do takes EventBatches

        async def _do(self, batch):
            # the columns of list rows are not named fields: steps that read fields see rows
            seen.append((batch.columns, batch.stored_columns().list_rows, batch.field("c1").tolist()))
            await self._emit(batch)

    events, _ = run_flow(CSVSource(path, header=True, key_field="k"), Look(), mode=mode)
    assert [e.body for e in events] == [["x", 1], ["y", 2]]
    assert seen == [(None, True, [None, None])]

    def no_rows(self):
        raise AssertionError("rows were built")

    monkeypatch.setattr(Columns, "to_rows", no_rows)
    out = tmp_path / "out.csv"
    target = CSVTarget(str(out), columns=["k", "v"])
    build_flow([CSVSource(path, header=True, key_field="k"), target]).run().await_termination()
    assert out.read_text() == "x,1\ny,2\n"


def test_times_with_more_than_six_fraction_digits_drop_the_others(tmp_path):
    # as datetime.fromisoformat reads them (the reference's parser)
    text = "t,u\n2020-01-01 00:00:01.780093499+00:00,1969-12-31T23:59:59.9999999\n"
    events, _ = run_flow(CSVSource(_file(tmp_path, text), time_field="t", parse_dates=["u"], **HEADER_DICT))
    assert events[0].time == dt.datetime(2020, 1, 1, 0, 0, 1, 780093, tzinfo=dt.UTC)
    assert events[0].body == {
        "t": dt.datetime(2020, 1, 1, 0, 0, 1, 780093, tzinfo=dt.UTC),
        "u": dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    }


def test_times_with_more_than_six_fraction_digits_and_an_empty_cell(tmp_path):
    # the reference: the digits after the sixth dropped, the empty cell None (this crashed once)
    text = "k,t,v\na,2024-01-01T00:00:00.123456789,1\nb,,2\n"
    events, _ = run_flow(CSVSource(_file(tmp_path, text), key_field="k", parse_dates=["t"], **HEADER_DICT))
    assert [e.body["t"] for e in events] == [dt.datetime(2024, 1, 1, 0, 0, 0, 123456), None]


def test_first_field_index_is_a_valid_time_and_id_field(tmp_path):
    path = _file(tmp_path, "2020-01-01,x\n2020-01-02,y\n")
    events, _ = run_flow(CSVSource(path, time_field=0, id_field=1))
    assert [e.time for e in events] == [dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2)]
    assert [e.id for e in events] == ["x", "y"]


def test_without_time_field_events_get_the_current_time_naive_utc(tmp_path):
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    events, _ = run_flow(CSVSource(_file(tmp_path, "1\n")))
    assert events[0].time.tzinfo is None and before <= events[0].time <= dt.datetime.now(dt.UTC).replace(
        tzinfo=None
    )


def test_key_rules_skip_rows_whose_key_is_none(tmp_path):
    text = "k,j,v\n1,x,a\n,y,b\n3,,c\n4,z,d\n"
    path = _file(tmp_path, text)
    events, _ = run_flow(CSVSource(path, key_field="j", **HEADER_DICT))
    assert [e.key for e in events] == ["x", "y", "z"]
    # an empty int field is NaN, not None: the row stays
    events, _ = run_flow(CSVSource(path, key_field=["k", "j"], **HEADER_DICT))
    assert [e.body["v"] for e in events] == ["a", "b", "d"] and math.isnan(events[1].key[0])
    events, _ = run_flow(CSVSource(path, key_field="j", type_inference=False, **HEADER_DICT))
    assert [e.key for e in events] == ["x", "y", "", "z"]


def test_repeated_header_names_hold_the_last_field(tmp_path):
    events, _ = run_flow(CSVSource(_file(tmp_path, "a,b,a\n1,2,3\n"), **HEADER_DICT))
    assert list(events[0].body.items()) == [("a", 3), ("b", 2)]


def test_quoted_fields_and_crlf(tmp_path):
    text = 'a,b\r\n1,"x, ""y""\r\nz"\r\n'
    events, _ = run_flow(CSVSource(_file(tmp_path, text), **HEADER_DICT))
    assert events[0].body == {"a": 1, "b": 'x, "y"\r\nz'}


def test_empty_and_header_only_files_give_no_events(tmp_path):
    assert run_flow(CSVSource(_file(tmp_path, ""), **HEADER_DICT))[0] == []
    assert run_flow(CSVSource(_file(tmp_path, "a,b\n"), **HEADER_DICT))[0] == []


def test_several_paths_each_with_their_own_header(tmp_path):
    a = _file(tmp_path, "k,v\n1,x\n", "a.csv")
    b = _file(tmp_path, "j,w\n2.5,y\n", "b.csv")
    events, _ = run_flow(CSVSource([a, b], **HEADER_DICT))
    assert [e.body for e in events] == [{"k": 1, "v": "x"}, {"j": 2.5, "w": "y"}]


def test_missing_files_and_directories_are_errors_naming_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        run_flow(CSVSource(str(tmp_path / "nope.csv")))
    with pytest.raises(IsADirectoryError, match="is a directory"):
        run_flow(CSVSource(str(tmp_path)))


def test_fields_not_in_the_file_name_the_field_and_file(tmp_path):
    path = _file(tmp_path, "k,v\n1,x\n")
    with pytest.raises(KeyError, match="key_field 'zz'.*in.csv"):
        run_flow(CSVSource(path, key_field="zz", **HEADER_DICT))
    with pytest.raises(IndexError, match="time_field 5.*2 fields"):
        run_flow(CSVSource(path, time_field=5))


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"key_field": "k"}, ValueError),
        ({"time_field": "t"}, ValueError),
        ({"id_field": "i"}, ValueError),
        ({"key_field": [0, "k"]}, ValueError),
        ({"parse_dates": ["d"]}, ValueError),
        ({"header": True, "parse_dates": [0]}, ValueError),
        ({"header": True, "time_field": 0}, ValueError),
        ({"key_field": 1.5}, TypeError),
        ({"key_field": -1}, ValueError),
        ({"timestamp_format": 5}, TypeError),
        ({"paths": 5}, TypeError),
    ],
)
def test_bad_parameters_fail_at_construction(kwargs, error):
    kwargs.setdefault("paths", "in.csv")
    with pytest.raises(error, match="CSVSource"):
        CSVSource(**kwargs)


def test_paths_may_be_fsspec_urls():
    url = "memory://src-tests/in.csv"
    with fsspec.open(url, "w") as f:
        f.write("k,v\na,1\nb,2\n")
    events, _ = run_flow(CSVSource(url, key_field="k", **HEADER_DICT))
    assert [(e.key, e.body) for e in events] == [("a", {"k": "a", "v": 1}), ("b", {"k": "b", "v": 2})]


def test_a_flow_without_user_functions_keeps_bodies_columnar(tmp_path, monkeypatch):
    def no_rows(self):
        raise AssertionError("rows were built")

    monkeypatch.setattr(Columns, "to_rows", no_rows)
    text = "k,t,v\n" + "".join(
        f"{'' if i % 3 == 0 else 'k'},2020-01-01T00:00:{i % 60:02d},{i}\n" for i in range(30_000)
    )
    log = BatchLog()
    out = tmp_path / "out.csv"
    build_flow(
        [
            CSVSource(_file(tmp_path, text), key_field="k", time_field="t", **HEADER_DICT),
            log,
            CSVTarget(str(out)),
        ]
    ).run().await_termination()
    assert sum(log.sizes) == 20_000 and all(log.columnar)
    assert len(out.read_text().splitlines()) == 20_000


class _Collect(Flow):
    """Collects bodies that reach it."""

    _takes_batches = True  # its _do takes EventBatches

    def __init__(self, into, **kwargs):
        super().__init__(**kwargs)
        self.into = into

    async def _do(self, batch):
        self.into.extend(batch.bodies_to_read())
        await self._emit(batch)


def test_compressed_files_are_read_by_their_extension(tmp_path):
    import gzip

    path = tmp_path / "in.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write("k,v\na,1\nb,2,3\n")
    seen = []
    with pytest.raises(ValueError, match=r"row 2 \(line 3\)"):
        run_flow(CSVSource(str(path), key_field="k", **HEADER_DICT), _Collect(seen))
    assert seen == [{"k": "a", "v": 1}]
