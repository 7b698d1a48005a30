"""Window aggregation as storey 1.0.6's users meet it: counting a text field, several
AggregateByKey steps on one table, dict-form aggregates and emit policies, fixed windows of
uncommon lengths, sparse fields, a feature store's ingestion. Each scenario of
tests/support/aggregation_compat.py gives what the reference gave, as recorded in
tests/data/compat_aggregation/."""

import json
import pathlib

import pytest

from tests.support.aggregation_compat import SCENARIOS, run_scenario
from tests.support.conformance import assert_matches, encode, load_case

CASES = pathlib.Path(__file__).parent / "data" / "compat_aggregation"


def test_every_scenario_has_its_recorded_case():
    assert sorted(SCENARIOS) == sorted(p.stem for p in CASES.glob("*.json"))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_gives_what_the_reference_gave(name):
    case = load_case(name, CASES)
    _, inputs = SCENARIOS[name]
    # the case was recorded for these inputs
    assert case["inputs"] == json.loads(json.dumps(encode(inputs)))
    assert_matches(case["expected"], run_scenario(name))
