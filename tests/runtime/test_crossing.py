"""``runtime/crossing.py``: which values the pipeline cannot save between stages, tried in a
real IPython shell (the kernel's, in process) after the cells that end a stage."""

from __future__ import annotations

import io
import threading

import pytest

from nb2pkg.runtime.crossing import install, unsaveable


class Model:
    def __init__(self) -> None:
        self.link = lambda x: x  # as statsmodels' KDEUnivariate holds its kernel


@pytest.mark.parametrize("value, kind", [
    ((n for n in range(3)), "generator"),
    (Model(), f"{Model.__module__}.Model"),
    (threading.Lock(), "_thread.lock"),
    (io.StringIO("text"), None),  # picklable: saved like any value
    ({"rows": [1, 2], "mean": 1.5}, None),
    (io, None),  # a module is saved by name
])
def test_what_cannot_be_saved_and_why(value, kind):
    problem = unsaveable(value)
    if kind is None:
        assert problem is None
    else:
        assert problem is not None and problem[0] == kind
        assert problem[1].split(":")[0] in {"TypeError", "PicklingError", "AttributeError"}


def test_large_numpy_arrays_can_be_saved():
    # HoloViews' introduction: a dict of arrays was "unsaveable" (protocol 5 hands a large
    # array's data to the file as a PickleBuffer) and the stages after it were joined.
    numpy = pytest.importorskip("numpy")
    assert unsaveable({"pickups": numpy.zeros((300, 300)), "n": 3}) is None


class Layout(dict):
    """Stands for HoloViews' Layout: pickles without an error (as a dict)."""


def test_objects_of_a_library_pickle_does_not_keep_cannot_be_saved():
    # HoloViews' getting-started guide: a Layout pickled at the end of one stage came back
    # with its parts nested again in the next, and drawing it raised.
    assert unsaveable(Layout(a=1)) is None
    holoviews_like = type("Layout", (Layout,), {"__module__": "holoviews.core.layout"})
    assert unsaveable(holoviews_like(a=1)) == (
        "holoviews.core.layout.Layout", "pickled HoloViews objects come back otherwise")
    subclass = type("Overlay", (holoviews_like,), {"__module__": "geoviews.element"})
    assert unsaveable(subclass())[0] == "geoviews.element.Overlay"


def test_values_are_tried_after_the_cells_that_end_a_stage(tmp_path):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        record = tmp_path / "crossing.txt"
        # The setup cell installs it; cells count from the next one.
        shell.run_cell(f"from nb2pkg.runtime.crossing import install\n"
                       f"install({str(record)!r}, {{1: ['gen', 'rows', 'gone'], 3: ['gen']}})",
                       store_history=True)
        shell.run_cell("rows = [1, 2]\ngen = (r for r in rows)", store_history=True)  # 1
        shell.run_cell("gen = None", store_history=True)  # 2: not a boundary
        shell.run_cell("gen = map(lambda r: r, rows)", store_history=True)  # 3: fails again
        shell.run_cell("x = 1", store_history=True)
        lines = [line.split("\t") for line in record.read_text().splitlines()]
        assert [(o, name, kind) for o, name, kind, _ in lines] == [
            ("1", "gen", "generator"), ("3", "gen", "map")]
        assert shell.user_ns["x"] == 1  # the notebook ran on
    finally:
        InteractiveShell.clear_instance()


def test_without_ipython_it_does_nothing(tmp_path):
    record = tmp_path / "crossing.txt"
    install(str(record), {1: ["x"]})
    assert not record.exists()
