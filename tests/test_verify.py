"""Verification on a real kernel: equivalent refactorings pass, wrong ones are caught."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, write_notebook
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.verify import normalize_text, outputs_of, verify_paths

pytestmark = pytest.mark.kernel

CELLS = [
    ("code", "factor = 3", ["parameters"]),
    "data = [1, 2, 3, 4]",
    "# first half\npart = data[0:2]\nscaled = [v * factor for v in part]\nprint('first', sum(scaled))",
    "# second half\npart = data[2:4]\nscaled = [v * factor for v in part]\nprint('second', sum(scaled))",
    "scaled",
]


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path]:
    original = write_notebook(tmp_path / "halves.ipynb", CELLS)
    convert([original], tmp_path / "out", ConvertOptions())
    return original, tmp_path / "out"


def test_equivalent_refactoring_verifies(project) -> None:
    original, out = project
    result = verify_paths([original], out)
    assert result.equivalent, result.describe()
    assert len(result.notebooks[0].expected) == 3  # two prints and the displayed value


def test_a_wrong_extraction_is_caught(project) -> None:
    original, out = project
    module = out / "src" / "halves" / "halves.py"
    source = module.read_text()
    assert "v * factor" in source
    module.write_text(source.replace("v * factor", "v * 2"))  # as if `factor` had been dropped
    result = subprocess.run([sys.executable, "-m", "nb2pkg", "verify", str(original), str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DIFFERENT" in result.stdout and "first difference at cell 2" in result.stdout
    assert "-[cell 2 stdout] first 9" in result.stdout and "+[cell 2 stdout] first 6" in result.stdout


def test_convert_verify_refuses_to_write_a_package_that_prints_something_else(
        tmp_path: Path, monkeypatch) -> None:
    import nb2pkg.refactor.extract as extract

    original = write_notebook(tmp_path / "halves.ipynb", CELLS)
    real = extract._extract

    def broken(group, ctx):  # a deliberately wrong extraction: the `factor` parameter is ignored
        result = real(group, ctx)
        assert "v * factor" in result.source
        return type(result)(**{**result.__dict__, "source": result.source.replace("v * factor", "v * 2")})

    monkeypatch.setattr(extract, "_extract", broken)
    report = convert([original], tmp_path / "out", ConvertOptions(verify=True))
    assert report.verification is not None and not report.verification.equivalent
    assert report.files == () and not (tmp_path / "out").exists()
    assert "extraction C1" in report.verification.describe()


def test_normalization_of_what_legitimately_varies() -> None:
    text = "<pkg.mod.Thing object at 0x7f3a2b1c>\nCPU times: user 1 ms\n<class 'pkg.mod.Thing'>"
    assert normalize_text(text) == "<Thing object at 0x…>\n<timing>\n<class 'Thing'>"


def test_stream_chunks_are_joined() -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("print(1)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="a"),
                    nbformat.v4.new_output("stream", name="stdout", text="b\n")]
    nb.cells.append(cell)
    (output,) = outputs_of(nb)
    assert output.text == "ab\n"
