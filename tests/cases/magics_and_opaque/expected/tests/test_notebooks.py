"""Each refactored notebook runs on a real kernel and prints what the original printed.

The originals are kept under tests/originals/. Both run from the notebooks/ folder, so relative
paths resolve the same way: put the data files the notebooks read there. Outputs are compared
cell by cell after normalizing what legitimately varies between runs (execution counts, memory
addresses, timings); warnings as one set per notebook. When the original itself fails here (a
data file or package missing), the test fails and says so: two failures never compare equal.
The rules are in tests/_notebook_outputs.py.
"""

from pathlib import Path

import pytest
from _notebook_outputs import OriginalFails, compare_notebooks

TESTS = Path(__file__).parent
PROJECT = TESTS.parent
# Cells seen printing differently in two runs of the original when the project was made
# (unseeded randomness): where this test's runs happen to agree, they still need only print
# outputs of the same kinds.
VARYING = {}


@pytest.mark.parametrize("name", ["magics.ipynb"])
def test_notebook_prints_what_the_original_printed(name):
    try:
        result = compare_notebooks(
            TESTS / "originals" / name,
            PROJECT / "notebooks" / name,
            cwd=PROJECT / "notebooks",
            python_path=[PROJECT / "src"],
            varying=VARYING.get(name, ()),
        )
    except OriginalFails as problem:
        pytest.fail(f"cannot compare here: {problem}", pytrace=False)
    assert result.equivalent, result.describe()
