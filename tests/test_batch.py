"""Many notebooks: folders, a result per notebook, failures do not stop the run, exit status."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import DATA, EXAMPLES, ROOT


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True, text=True,
                          cwd=ROOT)


def mixed_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(EXAMPLES / "sales_report.ipynb", folder / "sales_report.ipynb")
    shutil.copy(EXAMPLES / "wine_exploration.ipynb", folder / "sub" / "wine_exploration.ipynb")
    shutil.copy(DATA / "read" / "malformed.ipynb", folder / "broken.ipynb")
    shutil.copy(DATA / "read" / "r_kernel.ipynb", folder / "sub" / "r_kernel.ipynb")
    (folder / ".ipynb_checkpoints").mkdir()
    shutil.copy(EXAMPLES / "churn_model.ipynb", folder / ".ipynb_checkpoints" / "x-checkpoint.ipynb")
    return folder


def test_analyze_a_folder_is_one_json_document(tmp_path: Path) -> None:
    result = run("analyze", "--json", "-j", "2", str(mixed_folder(tmp_path)))
    data = json.loads(result.stdout)
    assert sorted(Path(n["path"]).name for n in data["notebooks"]) == [
        "sales_report.ipynb", "wine_exploration.ipynb"]
    assert sorted((Path(s["path"]).name, s["status"]) for s in data["skipped"]) == [
        ("broken.ipynb", "failed"), ("r_kernel.ipynb", "refused")]
    assert result.returncode == 2  # the worst result: a notebook failed


def test_convert_each_continues_past_failures(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("convert", "--each", "-j", "2", "--json", str(mixed_folder(tmp_path)), "-o", str(out))
    results = {Path(r["path"]).name: r for r in json.loads(result.stdout)["results"]}
    assert results["sales_report.ipynb"]["status"] == "converted"
    assert results["wine_exploration.ipynb"]["status"] == "converted"
    assert results["broken.ipynb"]["status"] == "failed" and "malformed JSON" in results["broken.ipynb"]["reason"]
    assert results["r_kernel.ipynb"]["status"] == "refused" and "not Python" in results["r_kernel.ipynb"]["reason"]
    assert (out / "sales_report" / "pyproject.toml").exists()
    assert (out / "wine_exploration" / "src" / "wine_exploration").is_dir()
    assert result.returncode == 2


def test_one_package_from_a_folder_skips_what_it_cannot_read(tmp_path: Path) -> None:
    out = tmp_path / "pkg"
    result = run("convert", "--json", str(mixed_folder(tmp_path)), "-o", str(out), "--name", "mixed")
    data = json.loads(result.stdout)
    assert {Path(s["path"]).name for s in data["skipped"]} == {"broken.ipynb", "r_kernel.ipynb"}
    assert sorted(p.name for p in (out / "notebooks").iterdir()) == [
        "sales_report.ipynb", "wine_exploration.ipynb"]
    assert result.returncode == 2


def test_refused_only_exits_1(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(EXAMPLES / "sales_report.ipynb", folder)
    shutil.copy(DATA / "read" / "r_kernel.ipynb", folder)
    assert run("analyze", str(folder)).returncode == 1


def test_a_fifo_or_symlink_loop_in_a_folder_fails_alone(tmp_path: Path) -> None:
    # Before: they were left out without a word (and read directly, the FIFO hung the run).
    folder = tmp_path / "f"
    folder.mkdir()
    shutil.copy(EXAMPLES / "sales_report.ipynb", folder)
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "loop.ipynb").symlink_to(folder / "loop.ipynb")
    (folder / "gone.ipynb").symlink_to(folder / "nowhere.ipynb")
    (folder / "dir.ipynb").mkdir()  # a folder named like a notebook is only searched
    expected = {"pipe.ipynb": "is a FIFO", "loop.ipynb": "is a symbolic link loop",
                "gone.ipynb": "no such file"}
    for args in (("analyze", "--json", "-j", "2", str(folder)),
                 ("convert", "--each", "--json", str(folder), "-o", str(tmp_path / "out"))):
        result = subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True,
                                text=True, cwd=ROOT, timeout=300)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        data = json.loads(result.stdout)
        entries = data["skipped"] if args[0] == "analyze" else data["results"]
        status = {Path(e["path"]).name: (e["status"], e["reason"]) for e in entries}
        for name, fragment in expected.items():
            assert status[name][0] == "failed" and fragment in status[name][1], status
        if args[0] == "analyze":
            assert [Path(n["path"]).name for n in data["notebooks"]] == ["sales_report.ipynb"]
        else:
            assert status["sales_report.ipynb"][0] == "converted"
            assert (tmp_path / "out" / "sales_report" / "pyproject.toml").exists()


def test_a_folder_search_leaves_out_tools_copies_and_earlier_outputs(tmp_path: Path) -> None:
    """`nb2pkg convert .` in a project folder: the notebooks of .git, a virtualenv's installed
    packages and the package an earlier conversion wrote there are not the user's notebooks."""
    from nb2pkg.batch import expand

    folder = tmp_path / "work"
    own = [folder / "analysis.ipynb", folder / "sub" / "more.ipynb"]
    others = [folder / ".git" / "x.ipynb", folder / "venv" / "lib" / "site-packages" / "p" / "x.ipynb",
              folder / "node_modules" / "x.ipynb", folder / "analysis_pkg" / "notebooks" / "analysis.ipynb",
              folder / "analysis_pkg" / "stages" / "analysis" / "01_load.ipynb"]
    for path in own + others:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLES / "sales_report.ipynb", path)
    (folder / "analysis_pkg" / ".nb2pkg").mkdir()
    assert expand([folder]) == sorted(own)
    # The folder named is searched even when it is a generated project itself.
    assert expand([folder / "analysis_pkg"]) == sorted(others[3:])


def test_an_empty_path_is_bad_input_not_the_current_folder(tmp_path: Path) -> None:
    """Path("") is "." : a script passing an unset variable converted every notebook under the
    working folder (or, as -o "" with --force, would have replaced it)."""
    from nb2pkg.batch import expand
    from nb2pkg.errors import Nb2pkgError

    shutil.copy(EXAMPLES / "sales_report.ipynb", tmp_path / "mine.ipynb")
    for args in (["convert", "", "-o", "out"], ["convert", "mine.ipynb", "-o", "", "--force"],
                 ["analyze", ""], ["run", ""], ["update", ""]):
        result = subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True,
                                text=True, cwd=tmp_path, timeout=60)
        assert result.returncode == 2, (args, result)
        assert "an empty path was given" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.ipynb"]
    try:  # the library refuses it too
        expand([""])
    except Nb2pkgError as error:
        assert "an empty path" in str(error)
    else:
        raise AssertionError("expand('') searched the current folder")
