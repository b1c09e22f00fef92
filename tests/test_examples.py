"""Acceptance on every bundled example: `convert --verify` succeeds, then `pip install -e DIR`
and `pytest DIR` pass, and the refactored notebooks hold no unexplained repeated blocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from helpers import EXAMPLES, ROOT
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook

pytestmark = pytest.mark.kernel
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    """A virtual environment that sees this one's packages, so installs are quick and offline."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, system_site_packages=True, with_pip=True)
    return home / "bin" / "python"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_example_converts_verifies_installs_and_tests(notebook: Path, tmp_path: Path,
                                                      python: Path) -> None:
    out = tmp_path / notebook.stem
    converted = subprocess.run(
        [sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o", str(out), "--verify",
         "--json"], capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert converted.returncode == 0, converted.stdout[-3000:] + converted.stderr[-3000:]
    report = json.loads(converted.stdout)
    assert report["verification"]["equivalent"]

    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                                "--no-build-isolation", "-e", str(out)],
                               capture_output=True, text=True, env=_env())
    assert installed.returncode == 0, installed.stderr
    tested = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                            capture_output=True, text=True, env=_env(), cwd=out)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert " passed" in tested.stdout

    # Whatever repeated code remains in the refactored notebook is explained by a refusal.
    remaining = analyze([read_notebook(out / "notebooks" / notebook.name)]).clones
    refused_lines = {(o["cell"], o["first_line"]) for r in report["refused"] for o in r["occurrences"]}
    for group in remaining:
        for o in group.occurrences:
            source_cell = _source_cell(out / "notebooks" / notebook.name, o.cell)
            assert any(cell == source_cell for cell, _ in refused_lines), (group, report["refused"])


def _source_cell(path: Path, index: int) -> int:
    cell = json.loads(path.read_text())["cells"][index]
    return cell["metadata"]["nb2pkg"]["source_cell"]
