"""Moving definitions into modules never changes what runs: definitions that see their module's
namespace (eval/exec without namespaces, globals(), frames, __name__) stay in the notebook."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from nb2pkg.api import ConvertOptions, convert

CASES = yaml.safe_load((Path(__file__).parents[1] / "data" / "hoist" / "namespace.yaml").read_text())


def _write(folder: Path, cells: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    path = folder / "book.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_namespace_dependent_definitions_stay(tmp_path: Path, case: dict) -> None:
    report = convert([_write(tmp_path / "in", [case["code"]])], tmp_path / "out",
                     ConvertOptions(pipeline=False))
    kept = {k.name: k.reason for k in report.plan.kept}
    moved = {h.name for h in report.plan.hoisted}
    if case["kept"] is None:
        assert "thing" in moved
    else:
        assert "thing" not in moved
        assert case["kept"] in kept["thing"]


@pytest.mark.kernel
def test_repr_that_evals_still_displays_after_conversion(tmp_path: Path) -> None:
    code = next(c["code"] for c in CASES if c["id"] == "repr-evals-names")
    notebook = _write(tmp_path / "in", [code.replace("class thing", "class display_all"),
                                        "a = 1\nb = [2, 3]\ndisplay_all('a', 'b')"])
    report = convert([notebook], tmp_path / "out",
                     ConvertOptions(verify=True, pipeline=False, isolated_run=False))
    assert report.verification is not None and report.verification.equivalent


@pytest.mark.kernel
def test_a_class_shown_with_pythons_own_repr_stays_and_verifies(tmp_path: Path) -> None:
    """nbconvert's rst_output notebook (corpus): `Note("Testing testing")` displayed
    `<__main__.Note at 0x…>`; with Note moved it displayed the package's module instead."""
    notebook = _write(tmp_path / "in", [
        "class Note:\n    def __init__(self, text):\n        self.text = text\n\n"
        "    def _repr_html_(self):\n        return f'<b>{self.text}</b>'",
        "Note('Testing testing')"])
    report = convert([notebook], tmp_path / "out",
                     ConvertOptions(verify=True, pipeline=False, isolated_run=False))
    assert "Note" in {k.name for k in report.plan.kept}
    assert report.verification is not None and report.verification.equivalent


def test_a_module_loads_the_submodules_the_notebook_loaded(tmp_path: Path) -> None:
    # spaghetti's `plot_k` calls `matplotlib.pyplot.subplots` after `import matplotlib`: the
    # notebook's `%matplotlib inline` had loaded pyplot. Moved into a module that imported
    # `matplotlib` alone, it failed in a pipeline stage (no attribute 'pyplot').
    report = convert([_write(tmp_path / "in", [
        "import matplotlib\nimport scalebar as sb\nfrom scalebar.bars.kinds import Bar\n"
        "import numpy as np\n%matplotlib inline",
        "def plot(values):\n    fig, ax = matplotlib.pyplot.subplots()\n"
        "    return sb.bars.kinds.Bar(np.mean(values)), fig",
        "plot([1, 2])"])], tmp_path / "out", ConvertOptions(pipeline=False))
    (module,) = report.plan.modules
    assert module.imports == ("import matplotlib", "import matplotlib.pyplot", "import numpy as np",
                              "import scalebar as sb", "import scalebar.bars.kinds")


def test_a_module_imports_what_a_formula_string_uses(tmp_path: Path) -> None:
    # patsy evaluates "y ~ np.log(x)" in the calling function's module: moved there, the
    # function needs `np` although no code of it names it.
    report = convert([_write(tmp_path / "in", [
        "import numpy as np\nimport pandas as pd\nfrom statsmodels.formula.api import ols",
        "def fit(data):\n    return ols('y ~ np.log(x) + pd.x', data).fit()",
        "print('done')"])], tmp_path / "out", ConvertOptions(pipeline=False))
    (module,) = report.plan.modules
    assert "import numpy as np" in module.imports and "import pandas as pd" in module.imports
