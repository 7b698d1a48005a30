"""`storey demo`'s comparison of live and bulk features (the demo itself runs in test_cli.py)."""

import math

from storey.cli.demo import _first_difference

NAMES = ["a_sum_1h", "a_max_1h"]


def test_identical_features_including_nan_and_absent():
    bulk = [{"a_sum_1h": 1.5, "a_max_1h": math.nan}, {}]
    live = [{"a_sum_1h": 1.5, "a_max_1h": float("nan"), "a": 1.5}, {"a": 2.0}]
    assert _first_difference(bulk, live, NAMES) is None


def test_a_different_value_is_reported():
    bulk = [{"a_sum_1h": 1.5, "a_max_1h": 1.0}, {"a_sum_1h": 3.0, "a_max_1h": 1.5}]
    live = [{"a_sum_1h": 1.5, "a_max_1h": 1.0}, {"a_sum_1h": 3.0000000000000004, "a_max_1h": 1.5}]
    assert _first_difference(bulk, live, NAMES) == (
        "live event 1: a_sum_1h is 3.0000000000000004 live but 3.0 in bulk"
    )


def test_nan_against_a_number_is_a_difference():
    assert "a_max_1h" in _first_difference(
        [{"a_sum_1h": 1.0, "a_max_1h": 1.0}], [{"a_sum_1h": 1.0, "a_max_1h": math.nan}], NAMES
    )


def test_a_feature_missing_on_one_side_is_a_difference():
    assert "is None live" in _first_difference([{"a_sum_1h": 1.0}], [{}], NAMES)
    assert "in bulk" in _first_difference([{}], [{"a_sum_1h": 1.0}], NAMES)


def test_row_counts_must_match():
    assert _first_difference([{}], [], NAMES) == "1 bulk rows but 0 live results"
