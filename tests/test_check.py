"""`nb2pkg check`: out of date with the notebooks, findings at or above a severity; the
pre-commit hook (`pre-commit try-repo`, pre-commit installed from PyPI into a venv of its own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nb2pkg.cli import main
from test_update import converted_repository, git, notebook

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return converted_repository(tmp_path)


def test_a_fresh_conversion_is_up_to_date(repo: Path, capsys) -> None:
    assert main(["check", str(repo / "proj")]) == 0
    assert "up to date" in capsys.readouterr().out


def test_a_changed_notebook_makes_it_stale_and_says_what_differs(repo: Path, capsys) -> None:
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", "--diff", str(repo / "proj")]) == 1
    out = capsys.readouterr().out
    assert "out of date" in out and "nb2pkg update" in out
    assert "changed  src/demo/core.py" in out
    assert "+def report_spread(" in out  # --diff
    assert main(["update", str(repo / "proj")]) == 0
    assert main(["check", str(repo / "proj")]) == 0


def test_hand_edits_and_outputs_only_changes_are_not_stale(repo: Path, capsys) -> None:
    proj = repo / "proj"
    (proj / "src/demo/core.py").write_text("# mine\n", encoding="utf-8")
    node = nbformat.reads((repo / "demo.ipynb").read_text(), as_version=4)
    node.cells[4].outputs = [nbformat.v4.new_output("stream", name="stdout", text="5 6\n")]
    node.cells[4].execution_count = 3
    (repo / "demo.ipynb").write_text(nbformat.writes(node), encoding="utf-8")
    assert main(["check", str(proj), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["projects"][0]
    assert report["stale_notebooks"] and report["up_to_date"] and not report["differences"]


def test_findings_at_or_above_the_severity_fail(repo: Path, capsys) -> None:
    source = nbformat.reads(notebook(), as_version=4)
    source.cells.append(nbformat.v4.new_code_cell("print(defined_later)"))
    source.cells.append(nbformat.v4.new_code_cell("defined_later = 1"))
    (repo / "demo.ipynb").write_text(nbformat.writes(source), encoding="utf-8")
    assert main(["update", str(repo / "proj")]) == 0
    assert main(["check", str(repo / "proj")]) == 0  # no severity asked: findings ignored
    assert main(["check", "--severity", "error", str(repo / "proj")]) == 1
    assert "use-before-define" in capsys.readouterr().out


def test_without_a_folder_every_project_below_is_checked(repo: Path, monkeypatch,
                                                         capsys) -> None:
    monkeypatch.chdir(repo)
    assert main(["check"]) == 0
    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    assert main(["check"]) == 1
    monkeypatch.chdir(repo / "proj" / "src")
    assert main(["check"]) == 2  # no project below: an error, not a silent pass
    assert "no project converted by nb2pkg here" in capsys.readouterr().err


def test_a_project_without_a_record_is_an_error(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path)]) == 2
    assert "no .nb2pkg/manifest.json" in capsys.readouterr().err


def test_the_generated_workflow_mentions_the_check_but_needs_no_nb2pkg(repo: Path) -> None:
    workflow = (repo / "proj/.github/workflows/pipeline.yml").read_text()
    assert "#   run: python -m pip install nb2pkg && nb2pkg check ." in workflow
    active = [line for line in workflow.splitlines() if not line.lstrip().startswith("#")]
    assert not any("nb2pkg" in line for line in active)


def test_the_hook_definition(tmp_path: Path) -> None:
    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks["nb2pkg-check"]
    assert (hook["entry"], hook["language"], hook["pass_filenames"]) == (
        "nb2pkg check", "python", False)


# -- pre-commit ----------------------------------------------------------------------------------


def _hook_repository(target: Path) -> Path:
    """This checkout's files (as they are now) in a git repository of their own, as pre-commit
    clones it. The JupyterLab extension's build is skipped (stub files its build hook accepts
    as built): installing the hook needs no Node."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for relative in listed:
        source = ROOT / relative
        if source.is_file():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / relative)
    for stub in ("nb2pkg/labextension/static/style.js", "nb2pkg/labextension/package.json"):
        (target / stub).parent.mkdir(parents=True, exist_ok=True)
        (target / stub).write_text("{}\n")
    (target / ".gitignore").write_text("")  # the stubs are committed
    git(target, "init", "-q")
    git(target, "add", "-A")
    git(target, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "hook")
    return target


@pytest.mark.slow
def test_pre_commit_try_repo_fails_on_a_stale_project_and_passes_after_update(
        repo: Path, tmp_path_factory) -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of nb2pkg")
    work = tmp_path_factory.mktemp("pre-commit")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "-q",
                                "pre-commit"], capture_output=True, text=True)
    if installed.returncode != 0:
        pytest.skip(f"pre-commit could not be installed from PyPI: {installed.stderr[-300:]}")
    hooks = _hook_repository(work / "hooks")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PRE_COMMIT_HOME=str(work / "cache"), PATH=f"{venv / 'bin'}:{env['PATH']}")

    def try_repo() -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin/pre-commit"), "try-repo", str(hooks),
                               "nb2pkg-check", "--all-files", "--color", "never"], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=1800)

    (repo / "demo.ipynb").write_text(notebook(changed=True), encoding="utf-8")
    git(repo, "commit", "-qam", "the notebook changes")
    stale = try_repo()
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "out of date" in stale.stdout and "src/demo/core.py" in stale.stdout, stale.stdout
    assert main(["update", str(repo / "proj")]) == 0
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "nb2pkg update")
    fresh = try_repo()
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr
    assert "Passed" in fresh.stdout
