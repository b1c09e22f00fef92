"""``nb2pkg export airflow``: the DAG file, and a real Airflow executing it (``airflow dags test``).

Airflow lives in a virtual environment of its own (its pins would break nb2pkg's), made once
and kept under the temporary folder; the module is skipped, saying why, when it cannot be
installed. The DAG's tasks run papermill with this test's Python, as a user's Airflow would run
them with the project's.
"""

from __future__ import annotations

import ast
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import EXAMPLES

from nb2pkg.errors import OutputExistsError
from nb2pkg.pipeline.airflow import write_airflow
from nb2pkg.pipeline.runner import run_pipeline
from nb2pkg.pipeline.spec import load_pipeline

AIRFLOW_VENV = Path(tempfile.gettempdir()) / (
    f"nb2pkg-airflow-venv-py{sys.version_info[0]}{sys.version_info[1]}")

pytestmark = pytest.mark.xdist_group("airflow")  # one Airflow home and database

HOSTILE = "{{ 7 * 7 }}\"'; import os #{% raw %}"


def _airflow() -> Path:
    """The ``airflow`` command of the cached environment, installed on first use."""
    airflow = AIRFLOW_VENV / "bin" / "airflow"
    installed = AIRFLOW_VENV / "nb2pkg-installed-in-seconds"
    with open(f"{AIRFLOW_VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        if installed.exists():
            return airflow
        # Built in place (a venv's scripts name its path), marked complete at the end.
        shutil.rmtree(AIRFLOW_VENV, ignore_errors=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "venv", str(AIRFLOW_VENV)], check=True)
        done = subprocess.run([str(AIRFLOW_VENV / "bin" / "pip"), "install", "-q",
                               "apache-airflow"], capture_output=True, text=True, timeout=1200)
        if done.returncode != 0 or not airflow.exists():
            shutil.rmtree(AIRFLOW_VENV, ignore_errors=True)
            last = (done.stderr.strip().splitlines() or ["?"])[-1]
            pytest.skip(f"Apache Airflow could not be installed in a venv of its own "
                        f"(pip install apache-airflow: {last}): the exported DAG is not executed")
        installed.write_text(f"{time.perf_counter() - started:.0f}\n")
        return airflow


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    """Run ``airflow ARGS`` with a home (SQLite) and DAG folder of this module's own."""
    command = _airflow()
    home = tmp_path_factory.mktemp("airflow-home")
    dags = home / "dags"
    dags.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               AIRFLOW__CORE__LOAD_EXAMPLES="False")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(command), *args], capture_output=True, text=True, env=env,
                              cwd=str(home), timeout=600)

    migrated = run("db", "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    run.dags = dags  # type: ignore[attr-defined]
    return run


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.kernel
@pytest.mark.slow
def test_airflow_runs_the_dag_and_writes_what_nb2pkg_run_writes(airflow, tmp_path):
    from nb2pkg.api import ConvertOptions, convert

    convert([EXAMPLES / "sales_report.ipynb"], tmp_path / "airflow", ConvertOptions())
    shutil.copytree(tmp_path / "airflow", tmp_path / "nb2pkg")
    shutil.copytree(tmp_path / "airflow", tmp_path / "nb2pkg-again")
    dag = write_airflow(tmp_path / "airflow" / "pipeline.yaml", airflow.dags,
                        python=sys.executable)
    # A DAG param set for the run, as `nb2pkg run -p` sets it.
    done = airflow("dags", "test", "sales_report", "-c", json.dumps({"seed": 8}))
    log = done.stdout + done.stderr
    assert done.returncode == 0 and "state=success" in log, log[-3000:]
    for copy in ("nb2pkg", "nb2pkg-again"):
        assert run_pipeline(tmp_path / copy / "pipeline.yaml", overrides=[("seed", "8")]).ok
    theirs = _files(tmp_path / "airflow" / "artifacts")
    mine = _files(tmp_path / "nb2pkg" / "artifacts")
    again = _files(tmp_path / "nb2pkg-again" / "artifacts")
    # nb2pkg run also writes per-stage metrics files; the values are what must match. A value
    # that differs between two runs of nb2pkg itself (a temporary folder's name) says nothing.
    mine = {k: v for k, v in mine.items() if not k.endswith(".metrics.json")}
    varying = {k for k in mine if again.get(k) != mine[k]}
    assert set(theirs) == set(mine)
    assert {k: v for k, v in theirs.items() if k not in varying} == {
        k: v for k, v in mine.items() if k not in varying}
    assert len(varying) <= 1
    assert len(list((tmp_path / "airflow" / "runs").glob("*.ipynb"))) == 8
    assert dag.name == "sales_report_dag.py"


@pytest.mark.kernel
@pytest.mark.slow
def test_notebook_text_is_never_templated_and_a_failure_names_the_stage(airflow, project,
                                                                         tmp_path):
    out = project([("markdown", "# {{ title }}"), ("code", f"label = {HOSTILE!r}", ["parameters"]),
                   ("markdown", "## {{ dag_run.conf }}"), "text = label + '!'",
                   ("markdown", "## Boom"), "raise ValueError(text)"], name="hostile")
    write_airflow(out / "pipeline.yaml", airflow.dags, python=sys.executable)
    done = airflow("dags", "test", "hostile")
    log = done.stdout + done.stderr
    assert "state=failed" in log or done.returncode != 0, log[-3000:]
    from nb2pkg.pipeline.artifacts import load_inputs

    pipeline = load_pipeline(out / "pipeline.yaml")
    first = pipeline.stages[0].name
    values: dict = {}
    load_inputs({"text": str(pipeline.artifact_dir(first))}, values)
    assert values["text"] == HOSTILE + "!"
    assert f"stage {pipeline.stages[1].name} failed" in log


def test_the_dag_file_has_one_task_per_stage_and_the_pipeline_edges(project, tmp_path):
    out = project([("markdown", "# T"), ("code", "n = 3\nname = " + repr(HOSTILE), ["parameters"]),
                   ("markdown", "## A"), "x = n", ("markdown", "## B"), "y = x + 1",
                   ("markdown", "## C"), "print(x, y, name)"])
    path = write_airflow(out / "pipeline.yaml", tmp_path / "dags", python="/opt/py/bin/python")
    text = path.read_text()
    tree = ast.parse(text)
    constants = {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                 and node.targets[0].id in ("STAGES", "PARAMS", "PYTHON", "ROOT")}
    pipeline = load_pipeline(out / "pipeline.yaml")
    assert list(constants["STAGES"]) == [s.name for s in pipeline.stages]
    for stage in pipeline.stages:
        assert constants["STAGES"][stage.name]["upstream"] == list(stage.upstream)
    assert constants["PARAMS"]["name"]["default"] == HOSTILE
    assert constants["PARAMS"]["n"] == {"default": 3, "type": "integer", "description": None}
    assert constants["PYTHON"] == "/opt/py/bin/python"
    assert constants["ROOT"] == str(out.resolve())
    with pytest.raises(OutputExistsError):
        write_airflow(out / "pipeline.yaml", tmp_path / "dags")
    assert write_airflow(out / "pipeline.yaml", tmp_path / "dags", force=True) == path


def test_export_airflow_on_the_command_line(project, tmp_path, capsys):
    from nb2pkg.cli import main

    out = project(["x = 1"], single_stage=True)
    assert main(["export", "airflow", str(out / "pipeline.yaml"), "-o", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "nb_dag.py").is_file()
    assert main(["export", "airflow", str(out / "pipeline.yaml"), "--check"]) == 2
    assert "has no --check" in capsys.readouterr().err
