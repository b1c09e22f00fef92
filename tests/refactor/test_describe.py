"""Names of extracted functions, rule by rule, where an extraction case would say less."""

from __future__ import annotations

import pytest

from nb2pkg.refactor.describe import _interval


@pytest.mark.parametrize("returns, calls, expected", [
    (["iv_l", "iv_u"], ["res.get_prediction", "pred.summary_frame"], "prediction_interval"),
    (["price_lo", "price_hi"], ["np.quantile"], "price_interval"),
    (["conf_lower", "conf_upper"], [], "interval"),
    (["lower", "upper"], ["res.conf_int"], "conf_int"),
    (["iv_l", "iv_l2"], ["res.get_prediction"], None),  # no bounds: two of a kind
    (["low", "high", "mid"], [], None),  # more than an interval
])
def test_interval_from_bounds(returns: list[str], calls: list[str],
                              expected: str | None) -> None:
    assert _interval(returns, calls) == expected
