"""Data files and local modules travel with the notebook, so the project runs from its own folder;
nothing outside the notebook's folder tree is ever carried (not even through a symbolic link)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nbformat

from nb2pkg.api import ConvertOptions, convert

CELLS = [
    "import pandas as pd\nimport helpers\nimport sys\nsys.path.append('../lib')\nimport mylib",
    "frame = pd.read_csv('data/values.csv')\nshared = open('../shared/notes.txt').read()",
    "secret = open('data/secret.txt').read()",  # a link leading out of the tree
    "big = open('data/big.bin', 'rb').read()",
    "frame.to_csv('out/result.csv')",
    "print(helpers.twice(len(frame)), mylib.VALUE, shared.strip())",
]


def make_repository(root: Path) -> Path:
    """repo/analysis/nb.ipynb with data beside it, repo/shared, repo/lib/mylib, and a link out."""
    analysis = root / "repo" / "analysis"
    (analysis / "data").mkdir(parents=True)
    (analysis / "data" / "values.csv").write_text("a,b\n1,2\n3,4\n")
    (analysis / "data" / "big.bin").write_bytes(b"x" * 2048)
    (root / "private").mkdir()
    (root / "private" / "id_rsa").write_text("SECRET KEY")
    os.symlink(root / "private" / "id_rsa", analysis / "data" / "secret.txt")
    (analysis / "helpers.py").write_text("import numpy\n\n\ndef twice(x):\n    return 2 * x\n")
    (root / "repo" / "shared").mkdir()
    (root / "repo" / "shared" / "notes.txt").write_text("shared notes\n")
    (root / "repo" / "lib" / "mylib").mkdir(parents=True)
    (root / "repo" / "lib" / "mylib" / "__init__.py").write_text("import yaml\nVALUE = 7\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, str(analysis / "nb.ipynb"))
    return analysis / "nb.ipynb"


def test_data_and_local_code_are_carried(tmp_path: Path) -> None:
    notebook = make_repository(tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file()}
    report = convert([notebook], tmp_path / "out", ConvertOptions(max_data_bytes=1024))
    project = tmp_path / "out"

    assert (project / "notebooks" / "data" / "values.csv").read_text() == "a,b\n1,2\n3,4\n"
    assert (project / "shared" / "notes.txt").read_text() == "shared notes\n"  # '../shared'
    assert (project / "notebooks" / "helpers.py").is_file()
    assert (project / "notebooks" / "mylib" / "__init__.py").is_file()  # from sys.path '../lib'
    assert not (project / "notebooks" / "data" / "big.bin").exists()  # over the limit
    assert not any("SECRET" in p.read_text(errors="ignore")
                   for p in project.rglob("*") if p.is_file())

    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [d.split("=")[0].split(">")[0].lower() for d in dependencies]
    assert "helpers" not in names and "mylib" not in names
    assert {"numpy", "pandas", "pyyaml"} <= set(names)  # what the local modules import counts

    carried = {d.target: d for d in report.plan.assets.data}
    assert carried["notebooks/data/big.bin"].copied is False
    assert carried["notebooks/out/result.csv"].written_by == ((0, 4),)
    assert "data/secret.txt" in report.plan.assets.outside
    text = (project / "REPORT.md").read_text()
    assert "not copied" in text and "not carried" in text
    # The input folder is byte-identical afterwards.
    assert before == {p: p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file()}
