"""Real third-party notebooks, end to end (../shared/realnb: notebooks by others, with their data).

For each notebook, as a new user would, converted once (a module-scoped fixture shared by the
checks below): `nb2pkg convert --verify` from a copy of the notebook's folder into a folder
outside it; the refactored notebook prints what the original prints (leaving out what varies
between two runs of the original), the original's files are byte-identical afterwards, and the
calls recorded as regression tests are those that reproduced from their arguments.

Then, each on its own copy of the project:

- `nb2pkg run` runs the pipeline, a second run executes nothing, and after a data file changes
  the next run executes the stages that read it (and what depends on them) and no other;
- the generated project stands alone (issue 11): in a virtual environment that sees this
  environment's packages but not nb2pkg (DVC comes from PyPI into it), every ``run:`` step of
  the generated GitHub workflow runs as written, in order: the install from constraints.txt,
  the project's own pytest, ``dvc repro`` (every stage runs). A second ``dvc repro`` runs
  nothing, a changed data file re-runs the stages that read it (and, when their outputs
  change, those after them), and each stage notebook runs alone with plain ``papermill``, with
  the command and parameters dvc.yaml gives it, from a clean slate, in order.

Each case appends its measurements to ``$NB2PKG_REALNB_REPORT`` (JSON lines, one per check)
when set: the per-notebook table of the closing note comes from there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import dvc_ran_stages, venv_without_nb2pkg, workflow_bash

REALNB = Path(__file__).resolve().parents[3] / "shared" / "realnb"
MANIFEST = REALNB / "MANIFEST.tsv"
pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def _cases() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


CASES = _cases()
needs_realnb = pytest.mark.skipif(not CASES, reason=f"no real notebooks: {REALNB} is absent "
                                  "(it ships beside the repository as ../shared/realnb)")


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _nb2pkg(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def _report(case: str, **measured: object) -> None:
    out = os.environ.get("NB2PKG_REALNB_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"case": case, **measured}) + "\n")


@dataclass(frozen=True)
class Converted:
    case: str
    project: Path  # as converted: each check works on a copy of its own
    report: dict  # `convert --json`
    inputs_before: dict[str, str]  # digest of the notebook's folder before converting
    inputs: Path  # the copy of the notebook's folder the conversion read and ran


# One worker converts a case and runs all its checks (pytest-xdist, --dist loadgroup).
@pytest.fixture(scope="module", params=[pytest.param(c, id=c["case"], marks=pytest.mark.xdist_group(c["case"]))
                                       for c in CASES])
def converted(request, tmp_path_factory) -> Converted:
    """`nb2pkg convert --verify` of one real notebook, from a copy of its folder (running the
    original may write files beside it: images, `%%file`)."""
    case = request.param["case"]
    base = tmp_path_factory.mktemp(case)
    inputs = base / "input"
    shutil.copytree(REALNB / "cases" / case, inputs)
    notebook = next(p for p in sorted(inputs.rglob("*.ipynb"))
                    if ".ipynb_checkpoints" not in p.parts)
    before = _tree_digest(inputs)
    done = _nb2pkg("convert", str(notebook), "-o", str(base / "project"), "--verify", "--json",
                   cwd=base)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return Converted(case, base / "project", json.loads(done.stdout), before, inputs)


def _copy(converted: Converted, tmp_path: Path) -> Path:
    project = tmp_path / converted.project.name
    shutil.copytree(converted.project, project)
    return project


def _pipeline_stages(project: Path) -> list[dict]:
    return yaml.safe_load((project / "pipeline.yaml").read_text())["stages"]


def _downstream(stages: list[dict], names: set[str]) -> set[str]:
    found = set(names)
    for stage in stages:  # in dependency order
        upstream = set(stage.get("needs", [])) | set((stage.get("inputs") or {}).values())
        if upstream & found:
            found.add(stage["name"])
    return found


def _appendable_csv(deps: dict[str, list[str]]) -> str | None:
    """A CSV file some stage reads (its path relative to the project), or None."""
    return next(iter(sorted({d for ds in deps.values() for d in ds if d.endswith(".csv")})), None)


def _append_blank_line(path: Path) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n")  # a blank line: same data for most readers, different bytes


# --- convert --verify ----------------------------------------------------------------------


@needs_realnb
def test_convert_verify(converted: Converted) -> None:
    verification = converted.report["verification"]
    assert verification["equivalent"], verification
    # Only what running the original wrote is new; what was there is untouched.
    after = _tree_digest(converted.inputs)
    assert {k: after.get(k) for k in converted.inputs_before} == converted.inputs_before
    recorded = converted.project / "tests" / "data" / "recorded"
    kept = sorted(p.parent.name for p in recorded.glob("*/*.json"))
    dropped = verification["irreproducible_calls"]
    assert len(kept) + len(dropped) <= verification["recorded_calls"]
    # Every call left out is named in REPORT.md with its reason.
    report = (converted.project / "REPORT.md").read_text()
    for call in dropped:
        line = next(line for line in report.splitlines()
                    if line.startswith(f"- `{call['function']}`"))
        assert "not reproducible from its arguments" in line, line
    # Run again where only the project's dependencies can be imported, each runs: what a
    # library needed there (homl3: pandas) was added, nothing fails.
    (alone,) = verification["notebooks"]
    assert alone["fails_with_only_its_dependencies"] is None, alone
    pyproject = (converted.project / "pyproject.toml").read_text()
    assert all(f'"{name}>=' in pyproject for name in alone["dependencies_needed"]), pyproject
    _report(converted.case, extracted=[e["function"] for e in converted.report["extracted"]],
            moved=len(converted.report["hoisted"]), verified=True,
            dependencies_needed=alone["dependencies_needed"],
            written_by_the_notebook=sorted(set(after) - set(converted.inputs_before)),
            recorded_kept=len(kept), recorded_kept_by_function=_counts(kept),
            recorded_dropped=[{"function": c["function"].rpartition(".")[2], "cell": c["cell"],
                               "reason": c["reason"]} for c in dropped])


def _counts(names: list[str]) -> dict[str, int]:
    return {name: names.count(name) for name in sorted(set(names))}


# --- nb2pkg run ----------------------------------------------------------------------------


def _run(project: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`nb2pkg run --json` in the project, and the names of the stages it executed."""
    result = _nb2pkg("run", "--json", cwd=project)
    try:
        stages = json.loads(result.stdout)["stages"]
    except (ValueError, KeyError):
        return result, set()
    return result, {s["name"] for s in stages if s["status"] in ("ran", "failed")}


@needs_realnb
def test_nb2pkg_run(converted: Converted, tmp_path: Path) -> None:
    project = _copy(converted, tmp_path)
    first, ran = _run(project)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    stages = _pipeline_stages(project)
    assert ran == {s["name"] for s in stages}
    again, ran = _run(project)
    assert again.returncode == 0 and ran == set(), again.stdout[-2000:]

    readers = {s["name"]: s.get("deps", []) for s in stages}
    changed = _appendable_csv(readers)
    if changed is not None:
        _append_blank_line(project / changed)
        third, ran = _run(project)
        assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-2000:]
        direct = {name for name, deps in readers.items() if changed in deps}
        assert direct <= ran <= _downstream(stages, direct), (changed, ran, direct)
    _report(converted.case, stages=len(stages), nb2pkg_run=True,
            nb2pkg_run_data_change=sorted(ran) if changed else "no csv input")


# --- the project on its own: workflow, pytest, dvc repro, papermill --------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A HOME of its own: the workflow registers a kernel with `--user`."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def python(tmp_path_factory, home) -> Path:
    """A virtual environment with this environment's packages but not nb2pkg, with the
    workflow's commands on PATH. The first project's install brings DVC from PyPI into it; the
    others find it there."""
    return venv_without_nb2pkg(tmp_path_factory.mktemp("venv-realnb"), home)


def _failed(step: str, result: subprocess.CompletedProcess) -> str:
    return f"{step}:\n{result.stdout[-4000:]}\n{result.stderr[-3000:]}"


@needs_realnb
@pytest.mark.timeout(2400)
def test_the_project_stands_alone(converted: Converted, python: Path, home: Path,
                                  tmp_path: Path) -> None:
    project = _copy(converted, tmp_path)
    workflow = yaml.safe_load((project / ".github" / "workflows" / "pipeline.yml").read_text())
    (job,) = workflow["jobs"].values()
    steps = [s for s in job["steps"] if "run" in s]  # `uses:` steps are GitHub's own
    # The README's install command is the workflow's.
    install = next(s["run"] for s in steps if s["name"].startswith("Install"))
    assert f"```bash\n{install.replace('python -m pip', 'pip')}\n" in (project / "README.md").read_text()
    summary = tmp_path / "summary.md"
    done: dict[str, subprocess.CompletedProcess] = {}
    for step in steps:
        result = workflow_bash(step["run"], project, python, home,
                               GITHUB_STEP_SUMMARY=str(summary), RUNNER_TEMP=str(tmp_path))
        done[step["name"]] = result
        if result.returncode != 0 and step["name"].startswith("Install") and "dvc" not in \
                subprocess.run([str(python), "-m", "pip", "list"], text=True,
                               capture_output=True).stdout:
            pytest.skip("DVC could not be installed from PyPI into the test environment: "
                        + (result.stderr.strip().splitlines() or ["?"])[-1])
        assert result.returncode == 0, _failed(step["name"], result)

    # The project's own tests: the notebook test, the package's names, the recorded calls kept.
    tested = next(done[s["name"]] for s in steps if "pytest" in s["run"])
    passed = int(re.search(r"(\d+) passed", tested.stdout).group(1))
    assert not re.search(r"\d+ (failed|error)", tested.stdout), tested.stdout[-3000:]
    kept = len(list((project / "tests" / "data" / "recorded").glob("*/*.json")))
    assert passed >= kept + 1, tested.stdout[-3000:]

    dvc = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    repro = next(done[s["name"]] for s in steps if "dvc repro" in s["run"])
    assert sorted(dvc_ran_stages(repro.stdout)) == sorted(dvc), repro.stdout[-3000:]
    again = workflow_bash("dvc repro", project, python, home)
    assert again.returncode == 0 and dvc_ran_stages(again.stdout) == [], _failed("again", again)
    # The job summary's graph is this pipeline's, once: DVC reads no other dvc.yaml (nb2pkg
    # keeps a copy in .nb2pkg/base/, which .dvcignore leaves out).
    nodes = re.findall(r'node\d+\["([^"]+)"\]', summary.read_text())
    assert sorted(nodes) == sorted(dvc), summary.read_text()[:3000]

    readers = {name: [d for d in stage.get("deps", []) if isinstance(d, str)]
               for name, stage in dvc.items()}
    changed = _appendable_csv(readers)
    rerun: object = "no csv input"
    if changed is not None:
        original = (project / changed).read_bytes()
        _append_blank_line(project / changed)
        third = workflow_bash("dvc repro", project, python, home)
        assert third.returncode == 0, _failed("after a data change", third)
        rerun = dvc_ran_stages(third.stdout)
        direct = {name for name, deps in readers.items() if changed in deps}
        assert direct <= set(rerun) <= _downstream(_pipeline_stages(project), direct), \
            (changed, rerun, direct)
        (project / changed).write_bytes(original)

    # Each stage alone, by hand, with plain papermill: the command dvc.yaml gives it (its
    # parameters file and values included), from a clean slate, in order.
    shutil.rmtree(project / "artifacts")
    for executed in (project / "runs").glob("*.ipynb"):
        executed.unlink()
    for name, stage in dvc.items():
        assert stage["cmd"].startswith("python -m papermill "), stage["cmd"]
        alone = workflow_bash(stage["cmd"], project, python, home)
        assert alone.returncode == 0, _failed(f"papermill {name}", alone)
        assert (project / "runs" / f"{name}.ipynb").is_file()
    _report(converted.case, pytest_passed=passed, dvc_stages=len(dvc),
            dvc_second_repro_ran=[], dvc_data_change=rerun, papermill_stages=len(dvc))
