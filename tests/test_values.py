"""Recorded values: a readable JSON encoding that round-trips, and type-aware comparisons."""

from __future__ import annotations

import argparse
import json
import statistics
import string

import numpy as np
import pandas as pd
import pytest

from nb2pkg.values import Unrecordable, assert_same, decode, encode


@pytest.mark.parametrize("value", [
    1, 2.5, "text", None, True, [1, (2, "3")], {"a": [1.5]}, {1: "x"}, {1, 2}, float("nan"),
    np.arange(6).reshape(2, 3), np.float64(0.25), pd.DataFrame({"a": [1, 2], "b": ["x", None]}),
    pd.Series([1.5, 2.5], name="s"), statistics.mean, argparse.Namespace(a=1, b=[2.0]),
    string.Template("$who"),
])
def test_round_trip(value) -> None:
    data = encode(value)
    json.dumps(data)  # plain JSON
    assert_same(decode(data), value)


def test_floats_are_compared_with_a_tolerance_integers_exactly() -> None:
    assert_same(0.1 + 0.2, 0.3)
    with pytest.raises(AssertionError):
        assert_same(3, 4)
    with pytest.raises(AssertionError):
        assert_same(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.1]}))


def test_objects_compare_by_class_and_attributes() -> None:
    one, other = string.Template("$a"), string.Template("$b")  # no __eq__ of their own
    with pytest.raises(AssertionError):
        assert_same(decode(encode(one)), other)


def test_unrecordable_values_say_why() -> None:
    with pytest.raises(Unrecordable, match="generator"):
        encode(x for x in [1])
    with pytest.raises(Unrecordable, match="larger than"):
        encode(list(range(10_000)), limit=1_000)
    local = lambda x: x  # noqa: E731 - not importable by name, so not replayable
    with pytest.raises(Unrecordable):
        encode(local)
