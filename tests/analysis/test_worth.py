"""Data, not logic: which statements `worth.is_data` calls data."""

from __future__ import annotations

import ast

import pytest

from nb2pkg.analysis.worth import is_data

DATA = ["x = 3", "ratings[6] = 3", "t0, t1 = 5, 50", "sizes = [1, 2, -3]",
        'metrics = {"mae": mae, "rmse": rmse}', "models = [linear, forest]",
        'risks = [{"name": "precision", "risk": precision}]', "pair: tuple = (a, 1)"]
LOGIC = ["a, b = b, a", "x = y", "x = f(3)", "rows = [f(1), 2]", "x = [a + 1]",
         "total = {k: v for k, v in items}", "x.y.z = 3", "x += 1"]


@pytest.mark.parametrize("source", DATA)
def test_constants_and_tables_of_names_are_data(source: str) -> None:
    assert is_data(ast.parse(source).body[0])


@pytest.mark.parametrize("source", LOGIC)
def test_what_computes_or_unpacks_names_is_not(source: str) -> None:
    assert not is_data(ast.parse(source).body[0])
