"""The generated projects on their own: convert real notebooks, then run what their CI runs.

For each notebook given (or every ``.ipynb`` under a folder given), its folder is copied into a
scratch folder of its own (data files and helper modules come along), ``nb2pkg convert`` writes
the project (``--verify`` by default), and the steps of the project's GitHub workflow
(`.github/workflows/pipeline.yml`) run as a runner would run them, in one virtual environment
that has this environment's packages but not nb2pkg: install, pytest, ``dvc repro``, ...
(``tests/helpers.py``: the same environment as ``tests/realnb/test_realnb.py``).

Each notebook lands in one class:

- ``passed``: every step of the workflow passed;
- ``step failed``: the conversion succeeded and a workflow step failed (the step is named): a
  bug of the generated project unless the original itself cannot run on its own;
- ``different``: verification found different outputs (exit 1): a bug of the refactoring
  unless the notebook varies in a way the comparison cannot see;
- ``not converted``: ``nb2pkg convert`` refused (exit 2, its reason), often because the
  original cannot run here (a missing package, data file or network);
- ``crash``, ``timeout``: a bug or a notebook too slow for ``--timeout``.

Not a timing: ``python bench/standalone_sweep.py [--no-verify] [--timeout S] [--keep DIR]
[--root DIR] NOTEBOOK_OR_FOLDER ...`` (``--root``: copy that folder for the notebooks below it,
when they read files beside their own folder, ``../assets/...``). Run it from an environment
with the libraries the notebooks import (statsmodels, ...). One JSON line per notebook goes to
``bench/results/standalone-sweep-*.jsonl``; exit status 1 when a step failed, outputs differed or
nb2pkg crashed.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from _common import REPO, RESULTS, sorted_counts

sys.path.insert(0, str(REPO / "tests"))
from helpers import venv_without_nb2pkg, workflow_bash  # noqa: E402

# A notebook's folder is copied with it unless it is larger than this (then the notebook alone).
MAX_FOLDER_BYTES = 200 * 1024 * 1024


def notebooks_in(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        found += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
    return [p for p in found if ".ipynb_checkpoints" not in p.parts]


def _folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _copy_input(notebook: Path, into: Path, root: Path | None = None) -> Path:
    """The notebook in a copy of its folder (the original run may write beside it), or of
    ``root`` when it lies below it (notebooks reading ``../assets/...``)."""
    notebook = notebook.resolve()
    root = root.resolve() if root is not None else None
    folder = root if root in notebook.parents else notebook.parent
    if _folder_bytes(folder) <= MAX_FOLDER_BYTES:
        shutil.copytree(folder, into, symlinks=True,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        return into / notebook.relative_to(folder)
    into.mkdir(parents=True)
    shutil.copyfile(notebook, into / notebook.name)
    return into / notebook.name


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def sweep_one(notebook: Path, scratch: Path, python: Path, home: Path, verify: bool,
              timeout: float, root: Path | None = None) -> dict:
    """Convert ``notebook`` in ``scratch`` and run its project's workflow steps."""
    copy = _copy_input(notebook, scratch / "input", root)
    project = scratch / "project"
    command = [sys.executable, "-m", "nb2pkg", "convert", str(copy), "-o", str(project),
               *(["--verify"] if verify else [])]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=copy.parent,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"class": "timeout", "step": "convert"}
    if done.returncode == 1:  # verification found different outputs: a bug to look at
        return {"class": "different", "output": _tail(done.stdout, 40)}
    if done.returncode == 2:
        return {"class": "not converted", "reason": _tail(done.stderr, 1)}
    if done.returncode != 0:
        return {"class": "crash", "step": "convert", "output": _tail(done.stderr, 30)}
    workflow = yaml.safe_load((project / ".github" / "workflows" / "pipeline.yml").read_text())
    (job,) = workflow["jobs"].values()
    passed = []
    for step in (s for s in job["steps"] if "run" in s):  # `uses:` steps are GitHub's own
        try:
            result = workflow_bash(step["run"], project, python, home, timeout=int(timeout),
                                   GITHUB_STEP_SUMMARY=str(scratch / "summary.md"),
                                   RUNNER_TEMP=str(scratch))
        except subprocess.TimeoutExpired:
            return {"class": "timeout", "step": step["name"], "passed": passed}
        if result.returncode != 0:
            return {"class": "step failed", "step": step["name"], "passed": passed,
                    "output": _tail(result.stdout + "\n" + result.stderr, 30)}
        passed.append(step["name"])
    return {"class": "passed", "passed": passed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="notebooks, or folders of them")
    parser.add_argument("--no-verify", dest="verify", action="store_false",
                        help="convert without executing the notebooks first")
    parser.add_argument("--timeout", type=float, default=1200,
                        help="seconds for the conversion and for each workflow step")
    parser.add_argument("--root", type=Path,
                        help="copy this folder, not each notebook's own, for the notebooks below "
                             "it (for notebooks reading files beside their folder: ../assets)")
    parser.add_argument("--keep", type=Path,
                        help="work in this folder and keep each project (default: a temporary one)")
    args = parser.parse_args()
    notebooks = notebooks_in(args.paths)
    if not notebooks:
        print("no notebooks found in " + ", ".join(map(str, args.paths)), file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="nb2pkg-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    home.mkdir(exist_ok=True)
    print(f"making a virtual environment without nb2pkg in {work / 'venv'}", flush=True)
    python = venv_without_nb2pkg(work / "venv", home)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"standalone-sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}.jsonl"
    counts: collections.Counter = collections.Counter()
    try:
        with out.open("w", encoding="utf-8") as sink:
            for index, notebook in enumerate(notebooks, 1):
                scratch = work / f"{index:03d}"
                shutil.rmtree(scratch, ignore_errors=True)
                result = {"notebook": str(notebook),
                          **sweep_one(notebook, scratch, python, home, args.verify,
                                      args.timeout, args.root)}
                sink.write(json.dumps(result) + "\n")
                sink.flush()
                counts[result["class"]] += 1
                detail = result.get("step") or result.get("reason") or ""
                print(f"[{index}/{len(notebooks)}] {result['class']:14} {notebook}  {detail}",
                      flush=True)
                if not args.keep:
                    shutil.rmtree(scratch, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return sorted_counts(counts, out, ["step failed", "different", "crash"])


if __name__ == "__main__":
    sys.exit(main())
