"""Each refactored notebook runs on a real kernel and prints what the original printed.

The originals are kept under tests/originals/. Both run from the notebooks/ folder, so relative
paths resolve the same way; outputs are compared in order after normalizing what legitimately
varies between runs (execution counts, memory addresses, timings).
"""

from pathlib import Path

import pytest

from nb2pkg.verify import verify_notebook

HERE = Path(__file__).parent
PROJECT = HERE.parent


@pytest.mark.parametrize("name", ["magics.ipynb"])
def test_notebook_prints_what_the_original_printed(name):
    result = verify_notebook(
        HERE / "originals" / name,
        PROJECT / "notebooks" / name,
        python_path=[PROJECT / "src"],
    )
    assert result.equivalent, result.describe()
