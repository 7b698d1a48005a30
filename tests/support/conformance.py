"""The reference's recorded outputs (tests/data/conformance/*.json) and the encoding they use.

Each case file holds a flow's inputs and what storey 1.0.6 produced. Our tests rebuild the flow
from the case's inputs, encode what our flow produced with `encode`, and compare with
`assert_matches`. Floats are kept to 9 significant digits; ints and floats stay distinct.
"""

import datetime as dt
import json
import math
import pathlib
import re

import numpy as np
import pandas as pd

CASES = pathlib.Path(__file__).parent.parent / "data" / "conformance"


def load_case(name, folder=CASES):
    """The recorded case `name` (tests/data/conformance/, or `folder`)."""
    with open(folder / f"{name}.json") as f:
        return json.load(f)


def _float(x):
    x = float(x)
    if math.isnan(x):
        return "<NaN>"
    if math.isinf(x):
        return "<inf>" if x > 0 else "<-inf>"
    if x == 0:
        return 0.0
    return float(f"{x:.9g}")


def _dtype_name(dtype):
    # the datetime resolution depends on the pandas version, not on the implementation; so does
    # the type of text columns (pandas 3 names its text dtype 'str', older pandas held 'object')
    name = str(dtype)
    for unit in ("ns", "us", "ms", "s"):
        name = name.replace(f"datetime64[{unit}, ", "datetime64[").replace(
            f"datetime64[{unit}]", "datetime64"
        )
    return "object" if name == "str" else name


def frame_rows(frame):
    """The rows of a DataFrame; a missing text value is None, as older pandas held it (pandas 3's
    text columns hold NaN)."""
    text = [isinstance(t, pd.StringDtype) for t in frame.dtypes]
    return [
        [
            None if is_text and v is not None and pd.isna(v) else v
            for v, is_text in zip(row, text, strict=True)
        ]
        for row in frame.itertuples(index=False, name=None)
    ]


def encode(x):
    """`x` in the cases' encoding (datetimes as '<datetime ISO>', NaN as '<NaN>', ...)."""
    if x is None or isinstance(x, bool | str):
        return x
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating | float):
        return _float(x)
    if isinstance(x, int):
        return x
    if x is pd.NaT:
        return "<NaT>"
    if isinstance(x, np.datetime64):
        return "<NaT>" if np.isnat(x) else encode(pd.Timestamp(x))
    if isinstance(x, np.ndarray):
        return [encode(v) for v in x.tolist()]
    if isinstance(x, pd.DataFrame):
        return {
            "<DataFrame>": {
                "columns": [encode(c) for c in x.columns],
                "dtypes": [_dtype_name(t) for t in x.dtypes],
                "index_names": [encode(n) for n in x.index.names],
                "index": [encode(v) for v in x.index.tolist()],
                "rows": [[encode(v) for v in row] for row in frame_rows(x)],
            }
        }
    if isinstance(x, dt.datetime):
        return f"<datetime {x.isoformat()}>"
    if isinstance(x, dt.date):
        return f"<date {x.isoformat()}>"
    if isinstance(x, dt.timedelta):
        return f"<timedelta {_float(x.total_seconds())}>"
    if isinstance(x, dict):
        return {
            (k if isinstance(k, str) else f"<{type(k).__name__} {encode(k)}>"): encode(v)
            for k, v in x.items()
        }
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return {f"<namedtuple {type(x).__name__}>": {f: encode(getattr(x, f)) for f in x._fields}}
    if isinstance(x, list | tuple):
        return [encode(v) for v in x]
    if type(x).__name__ == "Event":
        return {"<Event>": encode_event(x)}
    return f"<object {type(x).__name__}>"


def encode_event(event, body=True, key=True, time=True, id=False):
    out = {}
    if body:
        out["body"] = encode(event.body)
    if key:
        out["key"] = encode(event.key)
    if time:
        out["time"] = encode(event.time)
    if id:
        out["id"] = encode(event.id)
    return out


def decode_time(text):
    """The datetime written as '<datetime ISO>' in a case's inputs."""
    assert text.startswith("<datetime ") and text.endswith(">"), text
    return dt.datetime.fromisoformat(text[len("<datetime ") : -1])


def decode(x):
    """Inputs back into Python values: '<datetime ...>' strings become datetimes."""
    if isinstance(x, str) and x.startswith("<datetime "):
        return decode_time(x)
    if isinstance(x, list):
        return [decode(v) for v in x]
    if isinstance(x, dict):
        return {k: decode(v) for k, v in x.items()}
    return x


def input_events(case, label="events"):
    """(body, key, time) of each input event of a case; key/time None when not given."""
    return [
        (decode(e["body"]), e.get("key"), decode_time(e["time"]) if "time" in e else None)
        for e in case["inputs"][label]
    ]


def _close(a, b, path, ignore):
    if isinstance(a, dict) and isinstance(b, dict):
        keys = {k for k in set(a) | set(b) if not (ignore and re.search(ignore, k))}
        for k in sorted(keys):
            assert k in a and k in b, f"{path}: key {k!r} only in {'expected' if k in a else 'actual'}"
            _close(a[k], b[k], f"{path}.{k}", ignore)
        return
    if isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} expected items, got {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]", ignore)
        return
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-8, abs_tol=1e-12), f"{path}: expected {a!r}, got {b!r}"
        return
    assert type(a) is type(b) and a == b, f"{path}: expected {a!r}, got {b!r}"


def assert_matches(expected, actual, ignore_keys=None):
    """Asserts our encoded output equals the reference's; `ignore_keys` is a regex of dict keys to skip."""
    _close(expected, actual, "$", ignore_keys)
