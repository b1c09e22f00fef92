"""The command as users run it: help, errors as one line and exit codes, output safety, JSON."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import DATA, EXAMPLES, ROOT, write_notebook

SALES = EXAMPLES / "sales_report.ipynb"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_help_explains_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("analyze", "convert", "verify"):
        assert command in result.stdout
    convert_help = run("convert", "--help").stdout
    for option in ("--output", "--force", "--dry-run", "--no-extract", "--verify", "--names"):
        assert option in convert_help


def test_help_and_convert_do_not_import_heavy_modules() -> None:
    code = ("import sys, nb2pkg.cli as c; c.build_parser();"
            "import nb2pkg.api, nb2pkg.plan, nb2pkg.generate;"
            "print(sorted(m for m in ('papermill', 'jupyter_server', 'nbclient') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


@pytest.mark.parametrize("name, fragment", [
    ("malformed.ipynb", "malformed JSON"),
    ("r_kernel.ipynb", "not Python"),
    ("missing.ipynb", "no such file"),
])
def test_bad_input_exits_2_with_one_line(name: str, fragment: str, tmp_path: Path) -> None:
    for args in (("analyze", str(DATA / "read" / name)),
                 ("convert", str(DATA / "read" / name), "-o", str(tmp_path / "out"))):
        result = run(*args)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr
        assert not (tmp_path / "out").exists()


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused = run("convert", str(SALES), "-o", str(out))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (out / "keep.txt").read_text() == "mine"
    forced = run("convert", str(SALES), "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists() and (out / "pyproject.toml").exists()


def test_output_inside_the_notebooks_folder_is_refused(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    result = run("convert", str(notebook), "-o", str(tmp_path), "--force")
    assert result.returncode == 2 and "contains the input notebook" in result.stderr
    assert notebook.exists()


def test_dry_run_writes_nothing_and_input_is_untouched(tmp_path: Path) -> None:
    before = digest(SALES)
    result = run("convert", str(SALES), "-o", str(tmp_path / "out"), "--dry-run")
    assert result.returncode == 0
    assert "Would write" in result.stdout and "src/sales_report/core.py" in result.stdout
    assert not (tmp_path / "out").exists()
    run("convert", str(SALES), "-o", str(tmp_path / "real"))
    assert digest(SALES) == before


def test_analyze_json_is_one_document(tmp_path: Path) -> None:
    result = run("analyze", "--json", *map(str, sorted(EXAMPLES.glob("*.ipynb"))))
    data = json.loads(result.stdout)
    assert data["version"] == 1 and len(data["notebooks"]) == 4
    sales = next(n for n in data["notebooks"] if n["path"].endswith("sales_report.ipynb"))
    assert sales["parameters_cell"] == 2
    cell6 = next(c for c in sales["code"] if c["cell"] == 6)
    assert {"name": "csv_path", "line": 1, "from_cell": 5} in cell6["uses"]
    assert any(len({o["notebook"] for o in g["occurrences"]}) == 2 for g in data["clones"])


def test_convert_json_and_names_override(tmp_path: Path) -> None:
    names = tmp_path / "names.yaml"
    names.write_text("C1:\n  name: summarize_region\n  params:\n    label: heading\n")
    result = run("convert", str(SALES), "-o", str(tmp_path / "out"), "--names", str(names), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (extracted,) = [e for e in data["extracted"] if e["group"] == "C1"]
    assert extracted["function"] == "summarize_region"
    assert "heading" in extracted["parameters"] and "label" not in extracted["parameters"]
    module = (tmp_path / "out" / "src" / "sales_report" / "core.py").read_text()
    assert "def summarize_region(" in module


def test_no_extract_keeps_copies(tmp_path: Path) -> None:
    result = run("convert", str(SALES), "-o", str(tmp_path / "out"), "--no-extract", "--json")
    assert json.loads(result.stdout)["extracted"] == []


def test_output_under_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run("convert", str(SALES), "-o", str(blocker / "out"))
    assert result.returncode == 2
    assert f"{blocker} is a file" in result.stderr and "analysing" not in result.stderr


def test_an_empty_folder_is_named_in_the_error(tmp_path: Path) -> None:
    result = run("analyze", str(tmp_path))
    assert result.returncode == 2 and f"no notebooks found in {tmp_path}" in result.stderr
