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


def _facts(code: str, section: str | None = None, comment: str | None = None):
    import ast

    from nb2pkg.refactor.describe import Facts

    return Facts(block=ast.parse(code).body, comment=comment, section=section,
                 varying=frozenset(), returns=(), returns_display=False, params=(),
                 mutated=frozenset())


LABELS = 'plt.title("Low polarization")\nplt.xlabel("Income")\nplt.ylabel("Frequency")\n'


@pytest.mark.parametrize("section, expected", [
    # The title of the notebook's setup cells (inequality's Wolfson notebook) is no name for
    # the plots that follow it: the code names them.
    ("Imports & input data", "label_plot"),
    ("Installation", "label_plot"),
    ("Income distribution", "plot_income_distribution"),
])
def test_a_setup_section_names_nothing(section: str, expected: str) -> None:
    from nb2pkg.refactor.describe import function_names

    assert function_names(_facts(LABELS, section=section))[0] == expected


@pytest.mark.parametrize("call, clock", [
    ("time.time", True), ("time.perf_counter", True), ("perf_counter", True),
    ("datetime.datetime.now", True), ("dt.datetime.now", True), ("timeit.default_timer", True),
    ("pd.Timestamp.now", False), ("model.time", False), ("np.random.seed", False),
])
def test_clock_reads(call: str, clock: bool) -> None:
    from nb2pkg.refactor.describe import _clock

    assert _clock(call) is clock


@pytest.mark.parametrize("name, canvas", [
    ("fig", True), ("ax", True), ("ax_q3", True), ("axes2", True), ("ax1", True), ("leg", True),
    ("axis_data", False), ("figures_path", False), ("forecasts", False), ("g", True),
])
def test_canvases(name: str, canvas: bool) -> None:
    from nb2pkg.refactor.describe import _canvas

    assert _canvas(name) is canvas


@pytest.mark.parametrize("code, expected", [
    # pointpats' centrography guide: the section simulated the points long before this block
    ("mc = mean_center(pp.points)\nmm = manhattan_median(pp.points)\n", "compute_mean_center"),
    ("rng = np.random.default_rng(1)\npoints = rng.uniform(0, 1, (10, 2))\n",
     "simulate_dataset_within_virginia"),
])
def test_a_title_saying_simulate_names_only_a_block_that_draws(code: str, expected: str) -> None:
    from dataclasses import replace

    from nb2pkg.refactor.describe import function_names

    facts = replace(_facts(code, section="Simulate a dataset within Virginia"),
                    returns=("mc", "mm"))
    assert function_names(facts)[0] == expected


def test_a_title_cut_short_does_not_end_on_a_joining_word() -> None:
    # inequality's Wolfson notebook: "Income Distribution in 1960 vs. 2000" (the years are
    # not words) named plot_income_distribution_vs, documented as "Income distribution vs."
    from nb2pkg.refactor.describe import docstring, function_names

    facts = _facts('plt.xlim(lo, hi)\nplt.ylabel("Frequency")\nplt.hist(values)\n',
                   section="Income Distribution in 1960 vs. 2000")
    assert function_names(facts)[0] == "plot_income_distribution"
    assert docstring(facts, "plot_income_distribution").startswith('"""Income distribution.')


@pytest.mark.parametrize("returns, expected", [
    # MAPIE's ts-changepoint example: compute_demand_train and compute_x_train, before
    (("demand_train", "demand_val", "demand_test"), "split_demand"),
    (("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"), "split_data"),
    (("X_train", "X_test", "y_train", "y_test", "scaler"), "split_data"),
    (("train_scores", "test_scores"), "compute_train_scores"),  # not parts of one split
    (("model_train",), "compute_model_train"),
])
def test_parts_of_a_split_name_it(returns: tuple[str, ...], expected: str) -> None:
    from dataclasses import replace

    from nb2pkg.refactor.describe import function_names

    code = "\n".join(f"{r} = make({i})" for i, r in enumerate(returns))
    facts = replace(_facts(code), returns=returns)
    assert function_names(facts)[0] == expected
    # Given parts of a split already, a block making more of them prepares them.
    given = (("demand_train", ("demand_train",), "demand_train"),
             ("demand_test", ("demand_test",), "demand_test"))
    if expected.startswith("split_"):
        assert function_names(replace(facts, params=given))[0] == \
            expected.replace("split_", "prepare_")


@pytest.mark.parametrize("code, returns, expected", [
    # MAPIE's ts-changepoint example: compute_hour (its loop variable), before
    ('n_lags = 5\nfor hour in range(1, n_lags):\n'
     '    demand_df[f"Lag_{hour}"] = demand_df["Demand"].shift(hour)\n',
     ("n_lags",), "add_lag_columns"),
    ('demand_df["Weekend"] = demand_df.index.dayofweek >= 5\n', (), "add_weekend_column"),
    # something computed is still what names it
    ('total = demand_df["Demand"].sum()\ndemand_df["Share"] = demand_df["Demand"] / total\n',
     ("total",), "compute_total"),
    # a frame made in the block is not one passed in (quiet_last_line_moves: update_entry)
    ('entry = dict(step=1)\nentry["done"] = True\ndemand_df.append(entry)\n', (),
     "update_entry"),
])
def test_a_block_adding_columns_is_named_for_them(code: str, returns: tuple[str, ...],
                                                  expected: str) -> None:
    from dataclasses import replace

    from nb2pkg.refactor.describe import function_names

    facts = replace(_facts(code), returns=returns, mutated=frozenset({"demand_df", "entry"}),
                    params=(("demand_df", ("demand_df",), "demand_df"),))
    assert function_names(facts)[0] == expected
