"""The SPEC text form of window features, as `storey backfill --features` takes it.

    SPECS    := SPEC { ";" SPEC }
    SPEC     := [ NAME "=" ] FIELD ":" AGGRS "@" WINDOWS
    AGGRS    := AGGR { "," AGGR }       count sum sqr avg min max first last stddev stdvar
    WINDOWS  := DUR { "," DUR } [ "/" PERIOD ]   sliding windows, optionally with their period
              | "fixed:" DUR { "," DUR }         fixed windows (aligned to round times)
    DUR      := digits then s, m, h or d         e.g. 90s, 10m, 1h, 7d

Examples:

    amount:sum,avg,max@1h,24h/10m     sum, average and maximum of `amount` over the last hour and
                                      the last 24 hours, in 10-minute buckets
    amount:count@fixed:1h,1d          number of events in the current clock hour and day
    today=amount:sum@fixed:1d         features named today_sum_1d instead of amount_sum_1d

Each SPEC is one `FieldAggregator`; its features are named `NAME_AGGR_WINDOW` (NAME defaults to
FIELD), as AggregateByKey names them. Names must differ: name a second SPEC of the same field.
"""

import re
from dataclasses import dataclass

AGGREGATIONS = ("count", "sum", "sqr", "avg", "min", "max", "first", "last", "stddev", "stdvar")
_DURATION = re.compile(r"^([0-9]+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_NAME = re.compile(r"^[^\s:@;=,/]+$")
FIXED_PREFIX = "fixed:"
_GRAMMAR = "SPEC is [NAME=]FIELD:AGGRS@WINDOWS, e.g. amount:sum,avg@1h,24h/10m"


class SpecError(ValueError):
    """A --features text that does not follow the SPEC grammar."""


@dataclass(frozen=True)
class FeatureSpec:
    """One parsed SPEC: the parameters of one FieldAggregator."""

    name: str
    field: str
    aggregations: tuple
    windows: tuple
    period: str | None = None
    fixed: bool = False

    def feature_names(self):
        return [f"{self.name}_{aggr}_{window}" for aggr in self.aggregations for window in self.windows]

    def to_aggregator(self):
        """The `storey.dtypes.FieldAggregator` this SPEC stands for."""
        from storey.dtypes import FieldAggregator, FixedWindows, SlidingWindows

        if self.fixed:
            windows = FixedWindows(list(self.windows))
        else:
            windows = SlidingWindows(list(self.windows), self.period)
        return FieldAggregator(self.name, self.field, list(self.aggregations), windows)

    def to_python(self):
        """The Python expression building the same FieldAggregator."""
        from .backfill import literal

        windows = [literal(list(self.windows))]
        if self.period is not None:
            windows.append(literal(self.period))
        kind = "FixedWindows" if self.fixed else "SlidingWindows"
        args = [literal(self.name), literal(self.field), literal(list(self.aggregations))]
        return f"FieldAggregator({', '.join(args)}, {kind}({', '.join(windows)}))"

    def to_text(self):
        """This SPEC written back in the SPEC grammar."""
        prefix = "" if self.name == self.field else f"{self.name}="
        windows = ",".join(self.windows)
        if self.fixed:
            windows = FIXED_PREFIX + windows
        elif self.period is not None:
            windows += f"/{self.period}"
        return f"{prefix}{self.field}:{','.join(self.aggregations)}@{windows}"


def duration_seconds(text):
    match = _DURATION.match(text)
    if match is None:
        return None
    return int(match.group(1)) * _SECONDS[match.group(2)]


def parse_specs(texts):
    """The FeatureSpecs of one or more --features texts (each may hold ';'-separated SPECs).

    Raises SpecError naming the SPEC and what is wrong with it."""
    if isinstance(texts, str):
        texts = [texts]
    specs = []
    for text in texts:
        parts = [part.strip() for part in text.split(";")]
        for part in parts:
            if part:
                specs.append(parse_spec(part))
    if not specs:
        raise SpecError("--features: no SPEC given (e.g. amount:sum,avg@1h,24h)")
    seen = {}
    for spec in specs:
        if spec.name in seen:
            raise SpecError(
                f"--features: {seen[spec.name].to_text()!r} and {spec.to_text()!r} are both named "
                f"{spec.name!r}: name one of them (e.g. other={spec.to_text()})"
            )
        seen[spec.name] = spec
    return specs


def parse_spec(text):
    """The FeatureSpec of one SPEC (see the module docstring for the grammar)."""
    original = text
    text = text.strip()

    def fail(reason):
        return SpecError(f"--features {original!r}: {reason} ({_GRAMMAR})")

    head, at, windows_text = text.partition("@")
    if not at:
        raise fail("missing '@' before the windows")
    target, colon, aggr_text = head.partition(":")
    if not colon:
        raise fail("missing ':' between the field and the aggregations")
    name, eq, field = target.partition("=")
    if not eq:
        name, field = target, target
    name, field = name.strip(), field.strip()
    for what, value in (("field", field), ("name", name)):
        if not value:
            raise fail(f"no {what} given")
        if not _NAME.match(value):
            raise fail(f"{what} {value!r} may not contain spaces or any of : @ ; = , /")

    aggregations = tuple(a.strip() for a in aggr_text.split(","))
    for aggr in aggregations:
        if not aggr:
            raise fail("empty aggregation name")
        if aggr not in AGGREGATIONS:
            raise fail(f"unknown aggregation {aggr!r}; valid: {', '.join(AGGREGATIONS)}")
    if len(set(aggregations)) != len(aggregations):
        raise fail("an aggregation is listed twice")

    windows_text = windows_text.strip()
    fixed = windows_text.startswith(FIXED_PREFIX)
    if fixed:
        windows_text = windows_text[len(FIXED_PREFIX) :]
    windows_text, slash, period = windows_text.partition("/")
    period = period.strip() if slash else None
    if fixed and period is not None:
        raise fail("fixed windows take no period (each fixed window is its own bucket)")
    windows = tuple(w.strip() for w in windows_text.split(","))
    for window in windows:
        if not window:
            raise fail("empty window")
        seconds = duration_seconds(window)
        if seconds is None:
            raise fail(f"window {window!r} is not a duration (digits then s, m, h or d, e.g. 10m)")
        if seconds == 0:
            raise fail(f"window {window!r} is empty")
    if len({duration_seconds(w) for w in windows}) != len(windows):
        raise fail("a window is listed twice")
    if period is not None:
        period_seconds = duration_seconds(period)
        if period_seconds is None:
            raise fail(f"period {period!r} is not a duration (digits then s, m, h or d, e.g. 10m)")
        if period_seconds == 0:
            raise fail(f"period {period!r} is empty")
        for window in windows:
            if duration_seconds(window) % period_seconds:
                raise fail(f"period {period} does not divide window {window}")
    spec = FeatureSpec(name, field, aggregations, windows, period, fixed)
    try:
        spec.to_aggregator()
    except (TypeError, ValueError) as ex:
        # storey's own rules (default periods, ...) have the last word
        raise fail(str(ex).strip().splitlines()[0]) from ex
    return spec
