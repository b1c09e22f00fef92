"""Findings carry notebook, cell and line, and a hint."""

from pathlib import Path

from helpers import EXAMPLES, write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook


def findings_of(path: Path):
    return analyze([read_notebook(path)]).notebooks[0].findings


def codes(path: Path) -> dict[str, list]:
    found: dict[str, list] = {}
    for f in findings_of(path):
        found.setdefault(f.code, []).append((f.cell, f.line))
    return found


def test_messy_notebook(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "messy.ipynb", [
        "n = 10\nlabel = 'x'",                                  # 0 untagged parameters
        "!pip install -q requests\nimport os\nimport numpy as np",  # 1 pip, unused os
        "print(later)",                                           # 2 used before defined
        "later = np.random.rand(n)",                              # 3 unseeded randomness
        "df = open('/home/alice/data.csv')",                      # 4 user path
        "def f():\n    return 1",                                 # 5
        "def f():\n    return 2",                                 # 6 redefined
        "x = (1,",                                                # 7 syntax error
    ])
    found = codes(path)
    assert found["untagged-parameters"] == [(0, None)]
    assert found["pip-install"] == [(1, 1)]
    assert found["unused-import"] == [(1, 2)]
    assert found["use-before-define"] == [(2, 1)]
    assert found["unseeded-random"] == [(3, 1)]
    assert found["absolute-path"] == [(4, 1)]
    assert found["redefined"] == [(6, None)]
    assert found["unparseable-cell"] == [(7, None)]


def test_seeded_randomness_is_fine(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "seeded.ipynb", [
        "import numpy as np\nnp.random.seed(0)\nx = np.random.rand(3)\nrng = np.random.default_rng(1)\nprint(x, rng)"])
    assert "unseeded-random" not in codes(path)


def test_hidden_state_from_execution_counts() -> None:
    found = codes(EXAMPLES / "sales_report.ipynb")
    assert found["hidden-state"] == [(11, None)]


def test_loop_variable_used_after_loop_is_not_undefined(tmp_path: Path) -> None:
    path = write_notebook(tmp_path / "loop.ipynb", ["for i in range(3):\n    pass\nprint(i)"])
    assert "use-before-define" not in codes(path)
