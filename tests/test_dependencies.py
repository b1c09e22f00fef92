"""Dependencies: only installed distributions that provide an import or that a `pip install`
names; requirement specifiers kept; local modules and unknown imports never listed."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from nb2pkg.api import ConvertOptions, convert

CASES = yaml.safe_load((Path(__file__).parent / "data" / "dependencies" / "cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_dependencies(tmp_path: Path, case: dict) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in case.get("files", {}).items():
        (folder / name).write_text(text)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in case["cells"]]
    nbformat.write(nb, str(folder / "deps.ipynb"))
    report = convert([folder / "deps.ipynb"], tmp_path / "out", ConvertOptions(pipeline=False))
    pyproject = tomllib.loads((tmp_path / "out" / "pyproject.toml").read_text())
    expected = [d.format(**{n: importlib.metadata.version(n) for n in
                            ("numpy", "PyYAML", "scikit-learn")}) for d in case["dependencies"]]
    assert pyproject["project"]["dependencies"] == expected
    codes = [f.code for f in report.plan.findings
             if f.code in ("unknown-import", "pip-install-unparsed")]
    assert codes == case["findings"]
