"""`nb2pkg update`: convert, edit both sides, update, in a real git repository.

The scenario: a project converted from a notebook is edited by hand (a function body, a
parameter default, params.yaml, an added test) while the notebook changes (a new cell, a
changed section, a new repeated block). After `nb2pkg update` every hand edit and every
notebook change is there; the generated tests pass and `nb2pkg verify` passes (kernel).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from nb2pkg.cli import main
from nb2pkg.update import PREVIOUS, conflict_copy, read_manifest

ROOT = Path(__file__).resolve().parent.parent


def notebook(changed: bool = False, **replace: str) -> str:
    """The demo notebook; ``changed``: the notebook's side of the scenario."""
    cells = [
        new_markdown_cell("# Demo"),
        new_code_cell("threshold = 3\nscale = 2.0", metadata={"tags": ["parameters"]}),
        new_markdown_cell("## Load"),
        new_code_cell(replace.get("defs", "def double(x):\n    return x * 2\n\n\n"
                                          "def fmt(x, digits=2):\n    return round(x, digits)")),
        new_code_cell("values = [1, 5, 2, 8, 3]\nothers = [4, 9, 7]\n"
                      "print(len(values), double(threshold))"),
        new_markdown_cell("## Totals" if changed else "## Summaries"),
        new_code_cell("part = values[:2]\ntotal = sum(part) * scale\ncount = len(part)\n"
                      "print('first', fmt(total, 1), count)"),
        new_code_cell("part = values[2:]\ntotal = sum(part) * scale\ncount = len(part)\n"
                      "print('rest', fmt(total, 1), count)" + ("\nprint('done')" if changed else "")),
    ]
    if changed:
        cells += [new_markdown_cell("## Spread"),
                  new_code_cell("big = max(values)\nsmall = min(values)\nwidth = big - small\n"
                                "print('spread', width * scale)"),
                  new_code_cell("big = max(others)\nsmall = min(others)\nwidth = big - small\n"
                                "print('spread', width * scale)"),
                  new_code_cell("print(double(10))")]
    node = new_notebook(cells=cells, metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}})
    for position, cell in enumerate(node.cells):  # stable ids: the same cell in both versions
        cell["id"] = f"cell-{position}"
    return nbformat.writes(node)


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return converted_repository(tmp_path)


def converted_repository(tmp_path: Path) -> Path:
    """A git repository holding demo.ipynb and its conversion in proj/, committed."""
    git(tmp_path, "init", "-q")
    git(tmp_path, "config", "user.email", "t@example.com")
    git(tmp_path, "config", "user.name", "t")
    (tmp_path / "demo.ipynb").write_text(notebook(), encoding="utf-8")
    assert main(["convert", str(tmp_path / "demo.ipynb"), "-o", str(tmp_path / "proj")]) == 0
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "convert")
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def hand_edits(proj: Path) -> None:
    core = proj / "src/demo/core.py"
    edit(core, "    return x * 2", "    # doubled by hand\n    return 2 * x")
    edit(core, "def fmt(x, digits=2):", "def fmt(x, digits=3):")
    edit(proj / "params.yaml", "threshold: 3", "threshold: 4")
    edit(proj / "README.md", "## Use", "Maintained by hand from now on.\n\n## Use")
    (proj / "tests/test_mine.py").write_text(
        "from demo.core import double\n\n\ndef test_double():\n    assert double(4) == 8\n")


def tree(folder: Path, skip: str = ".nb2pkg") -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.relative_to(folder).as_posix().startswith(skip)}


@pytest.mark.parametrize("use_git", [True, False], ids=["git-merge-file", "python-diff3"])
def test_hand_edits_and_notebook_changes_both_survive_an_update(repo: Path, use_git: bool,
                                                                capsys) -> None:
    proj = repo / "proj"
    hand_edits(proj)
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    before = tree(proj)
    args = ["update", str(proj)] + ([] if use_git else ["--no-git"])
    assert main(args) == 0, capsys.readouterr()
    core = (proj / "src/demo/core.py").read_text()
    # hand edits
    assert "# doubled by hand\n    return 2 * x" in core
    assert "def fmt(x, digits=3):" in core
    assert "threshold: 4" in (proj / "params.yaml").read_text()
    assert "Maintained by hand from now on." in (proj / "README.md").read_text()
    assert (proj / "tests/test_mine.py").exists()
    # the notebook's changes: the renamed section, the new repeated block as a function, the
    # new cell in the refactored notebook, the stages
    assert "def report_totals(" in core and "def report_spread(" in core, core
    assert "report_summaries" not in core
    refactored = (proj / "notebooks/demo.ipynb").read_text()
    assert "print(double(10))" in refactored and "report_spread(" in refactored
    assert (proj / "stages/demo/03_spread.ipynb").exists()
    assert not (proj / "stages/demo/02_summaries.ipynb").exists()
    assert "<<<<<<<" not in core
    # nothing lost: the project as it was is in .nb2pkg/previous, byte for byte
    assert tree(proj / PREVIOUS) == before
    status = git(repo, "status", "--short")
    assert ".nb2pkg/previous" not in status  # a local backup, ignored by git
    # the next check says up to date; the base is now the new conversion
    assert main(["check", str(proj)]) == 0
    assert "report_spread" in (proj / ".nb2pkg/base/src/demo/core.py").read_text()


@pytest.mark.kernel
def test_updated_project_passes_its_tests_and_verify(repo: Path, capsys) -> None:
    proj = repo / "proj"
    hand_edits(proj)
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    assert main(["update", str(proj)]) == 0
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(proj / "src"), str(ROOT)])}
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                            cwd=proj, env=env, capture_output=True, text=True)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "test_mine.py" in tested.stdout or "passed" in tested.stdout
    assert main(["verify", "--no-record", str(repo / "demo.ipynb"), str(proj)]) == 0, \
        capsys.readouterr().out


@pytest.mark.parametrize("use_git", [True, False], ids=["git-merge-file", "python-diff3"])
def test_a_conflict_is_marked_listed_and_exits_1_losing_nothing(repo: Path, use_git: bool,
                                                                capsys) -> None:
    proj = repo / "proj"
    edit(proj / "src/demo/core.py", "    return x * 2", "    return x + x  # by hand")
    (repo / "demo.ipynb").write_text(
        notebook(defs="def double(x):\n    return x * 2.0\n\n\n"
                      "def fmt(x, digits=2):\n    return round(x, digits)"), encoding="utf-8")
    before = tree(proj)
    status = main(["update", str(proj), "--json"] + ([] if use_git else ["--no-git"]))
    assert status == 1
    report = json.loads(capsys.readouterr().out)
    assert "src/demo/core.py" in report["conflicts"]
    core = (proj / "src/demo/core.py").read_text()
    assert "<<<<<<< project\n    return x + x  # by hand\n" in core
    assert "=======\n    return x * 2.0\n>>>>>>> notebook\n" in core
    assert "||||||| previous conversion\n    return x * 2\n" in core
    assert tree(proj / PREVIOUS) == before


def test_renamed_and_moved_functions_and_added_tests_survive(repo: Path) -> None:
    proj = repo / "proj"
    core = proj / "src/demo/core.py"
    # `fmt` renamed to `fmt_number`, `double` moved into a module of the user's own
    edit(core, "def fmt(x, digits=2):", "def fmt_number(x, digits=2):")
    edit(core, "def double(x):\n    return x * 2\n", "from .maths import double\n")
    (proj / "src/demo/maths.py").write_text("def double(x):\n    return x * 2\n")
    edit(proj / "tests/test_package.py", "def test_module_provides_names",
         "def test_added_by_hand():\n    assert True\n\n\ndef test_module_provides_names")
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    assert main(["update", str(proj)]) == 0
    text = core.read_text()
    assert "def fmt_number(x, digits=2):" in text and "def fmt(" not in text
    assert "from .maths import double" in text and "def double" not in text
    assert (proj / "src/demo/maths.py").read_text() == "def double(x):\n    return x * 2\n"
    tests = (proj / "tests/test_package.py").read_text()
    assert "def test_added_by_hand" in tests and "report_spread" in tests


def test_recorded_data_the_user_refreshed_survives(repo: Path) -> None:
    proj = repo / "proj"
    recorded = proj / "tests/data/recorded/demo.core.double/demo-cell4-1.json"
    recorded.parent.mkdir(parents=True)
    recorded.write_text('{"args": [3], "result": 6}\n')
    (proj / "tests/data/recorded/demo.core.double/demo-cell4-1.result.npy").write_bytes(
        b"\x93NUMPY refreshed")
    # REPORT.md's section on them, as `verify` writes it: update runs nothing, so it stays too.
    section = "\n## Recorded-value tests\n\n- `demo.core.double`: 1 call(s) checked by value\n\n"
    report = proj / "REPORT.md"
    assert "## Recorded-value tests" not in report.read_text()
    # As `convert --verify` writes it: in the project and in the base of the next merge alike
    # (a merge alone would then take the new conversion's REPORT.md, which has no such section).
    for copy in (report, proj / ".nb2pkg/base/REPORT.md"):
        copy.write_text(copy.read_text() + section)
    manifest = json.loads((proj / ".nb2pkg/manifest.json").read_text())
    manifest["files"]["REPORT.md"]["sha256"] = hashlib.sha256(report.read_bytes()).hexdigest()
    (proj / ".nb2pkg/manifest.json").write_text(json.dumps(manifest))
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    assert main(["update", str(proj)]) == 0
    assert report.read_text().endswith(section) and "report_spread" in report.read_text()
    assert recorded.read_text() == '{"args": [3], "result": 6}\n'
    assert (recorded.parent / "demo-cell4-1.result.npy").read_bytes() == b"\x93NUMPY refreshed"


def test_untouched_files_are_regenerated_and_deleted_ones_stay_deleted(repo: Path,
                                                                       capsys) -> None:
    proj = repo / "proj"
    (proj / "tests/test_notebooks.py").unlink()  # the user does not want notebook tests
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    assert main(["update", str(proj), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    actions = {f["path"]: f["action"] for f in report["files"]}
    assert actions["tests/test_notebooks.py"] == "deleted"
    assert not (proj / "tests/test_notebooks.py").exists()
    generated = (proj / ".nb2pkg/base/pipeline.yaml").read_bytes()
    assert (proj / "pipeline.yaml").read_bytes() == generated


def test_binary_and_notebook_conflicts_keep_both_versions(repo: Path, capsys) -> None:
    proj = repo / "proj"
    refactored = proj / "notebooks/demo.ipynb"
    node = nbformat.reads(refactored.read_text(), as_version=4)
    node.metadata["kernelspec"]["display_name"] = "Mine"  # notebook-level: no cell merge
    refactored.write_text(nbformat.writes(node))
    source = nbformat.reads(notebook(changed=True), as_version=4)
    source.metadata["kernelspec"]["display_name"] = "Theirs"
    (repo / "demo.ipynb").write_text(nbformat.writes(source))
    assert main(["update", str(proj), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert "notebooks/demo.ipynb" in report["conflicts"]
    copy = proj / conflict_copy("notebooks/demo.ipynb")
    assert copy.name == "demo.nb2pkg-new.ipynb"
    assert "Mine" in refactored.read_text() and "Theirs" in copy.read_text()


def test_a_cell_run_by_hand_and_changed_by_the_notebook_merges(repo: Path) -> None:
    proj = repo / "proj"
    refactored = proj / "notebooks/demo.ipynb"
    node = json.loads(refactored.read_text())
    code = [c for c in node["cells"] if c["cell_type"] == "code"]
    code[-1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["rest 36.0 3\n"]}]
    code[-1]["execution_count"] = 7
    refactored.write_text(json.dumps(node, indent=1))
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    assert main(["update", str(proj)]) == 0
    merged = json.loads(refactored.read_text())
    assert any(c.get("execution_count") == 7 for c in merged["cells"])
    assert "print(double(10))" in refactored.read_text()


def test_update_without_a_previous_conversion_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "proj").mkdir()
    assert main(["update", str(tmp_path / "proj")]) == 2
    assert "no .nb2pkg/manifest.json" in capsys.readouterr().err


def test_dry_run_writes_nothing(repo: Path, capsys) -> None:
    proj = repo / "proj"
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    before = tree(proj, skip="\0")
    assert main(["update", str(proj), "--dry-run"]) == 0
    assert "would update" in capsys.readouterr().out
    assert tree(proj, skip="\0") == before


def test_the_manifest_names_the_notebook_relative_to_the_project(repo: Path) -> None:
    manifest = read_manifest(repo / "proj")
    assert manifest.notebooks == ("../demo.ipynb",)
    assert manifest.options["name"] == "demo"
    assert "src/demo/core.py" in manifest.based


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_files_the_project_holds_besides_are_carried_without_copying_when_possible(
        repo: Path, links: bool, monkeypatch, capsys) -> None:
    """A .venv or a DVC cache inside the project must not be copied on every update: carried
    files share their storage with the project as it was (.nb2pkg/previous); where the file
    system has no hard links they are copied, and nothing differs but the storage."""
    import errno
    import os

    from nb2pkg import write

    proj = repo / "proj"
    big = proj / ".venv" / "lib" / "big.bin"
    big.parent.mkdir(parents=True)
    big.write_bytes(os.urandom(1 << 20))
    os.chmod(big, 0o640)
    if not links:
        def no_links(*args, **kwargs):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        monkeypatch.setattr(write.os, "link", no_links)
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    before = tree(proj)
    assert main(["update", str(proj)]) == 0, capsys.readouterr()
    kept = proj / PREVIOUS / ".venv" / "lib" / "big.bin"
    assert big.read_bytes() == kept.read_bytes() == before[".venv/lib/big.bin"]
    assert (os.stat(big).st_ino == os.stat(kept).st_ino) is links
    assert oct(os.stat(big).st_mode & 0o777) == oct(0o640)
    assert tree(proj / PREVIOUS) == before
