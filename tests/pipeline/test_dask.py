"""``nb2pkg run --executor dask`` on a real ``LocalCluster`` of 2 worker processes.

The examples run on the cluster print what they print with the local executor; a second run
executes nothing; a failing stage reports the same cell as locally; a worker killed mid-stage
makes the stage run again elsewhere, or fail clearly and resume on the next run; Ctrl-C
(``close``) kills the kernels of running tasks; a worker without nb2pkg is refused by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed "
                                  "(pip install 'nb2pkg[dask]')")

from helpers import venv_with_this_environment  # noqa: E402
from test_pipeline_examples import EXAMPLES, NOTEBOOKS, stage_outputs  # noqa: E402

from nb2pkg.errors import PipelineError  # noqa: E402
from nb2pkg.pipeline.runner import run_pipeline  # noqa: E402

pytestmark = [pytest.mark.kernel, pytest.mark.slow, pytest.mark.xdist_group("dask")]  # one cluster


@pytest.fixture(scope="module")
def cluster():
    """The scheduler address of a LocalCluster with 2 worker processes, shared by the module."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address="127.0.0.1:0") as local:
        yield local


@pytest.fixture(scope="module")
def examples(cluster, tmp_path_factory):
    from nb2pkg.api import ConvertOptions, convert

    base = tmp_path_factory.mktemp("dask-examples")
    convert(sorted(EXAMPLES.glob("*.ipynb")), base / "local",
            ConvertOptions(name="examples_nb", pipeline=True))
    shutil.copytree(base / "local", base / "dask")
    local = run_pipeline(base / "local" / "pipeline.yaml", jobs=2)
    first = run_pipeline(base / "dask" / "pipeline.yaml", executor="dask",
                         scheduler=cluster.scheduler_address)
    second = run_pipeline(base / "dask" / "pipeline.yaml", executor="dask",
                          scheduler=cluster.scheduler_address)
    return base, local, first, second


def test_the_examples_run_on_the_cluster(examples, cluster):
    base, local, first, _ = examples
    assert local.ok and first.ok, "\n".join(str(f) for f in first.failures)
    assert first.count("ran") == len(first.stages) == len(local.stages)
    # The generated package is installed nowhere: the kernels on the workers get it from the
    # shared project folder (PYTHONPATH), as local kernels do.
    with distributed.Client(cluster, set_as_default=False) as client:
        found = client.run(lambda: __import__("importlib.util").util.find_spec("examples_nb"))
    assert set(found.values()) == {None}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_same_outputs_as_the_local_executor(examples, notebook):
    base, local, first, _ = examples
    expected = stage_outputs(base / "local", notebook)
    actual = stage_outputs(base / "dask", notebook)
    assert len(expected) == len(actual) > 5
    # Plots with unseeded jitter differ from run to run on any executor; text does not.
    text = [(a, b) for a, b in zip(expected, actual) if "image/png" not in str(a)]
    assert [a for a, _ in text] == [b for _, b in text]


def test_same_artifacts_as_the_local_executor(examples):
    base = examples[0]
    local = sorted(p.relative_to(base / "local") for p in (base / "local" / "artifacts").rglob("*"))
    dask = sorted(p.relative_to(base / "dask") for p in (base / "dask" / "artifacts").rglob("*"))
    assert local == dask


def test_a_second_run_executes_nothing(examples):
    _, _, first, second = examples
    assert second.ok
    assert second.count("ran") == 0 and second.count("skipped") == len(first.stages)


def _failing_cells():
    return [("markdown", "# T"), ("markdown", "## Load"), "x = 1", ("markdown", "## Boom"),
            "y = x + 1", "raise KeyError('units')", ("markdown", "## After"), "z = y"]


def test_a_failing_stage_reports_its_cell_as_locally(project, cluster, tmp_path):
    out = project(_failing_cells())
    shutil.copytree(out, tmp_path / "copy")
    local = run_pipeline(tmp_path / "copy" / "pipeline.yaml")
    remote = run_pipeline(out / "pipeline.yaml", executor="dask",
                          scheduler=cluster.scheduler_address)
    assert not remote.ok and not local.ok
    [mine], [theirs] = remote.failures, local.failures
    assert (mine.stage, mine.cell, mine.source_cell, mine.error) == (
        theirs.stage, theirs.cell, theirs.source_cell, theirs.error)
    assert mine.error == "KeyError: 'units'" and mine.source_cell is not None
    assert [s.status for s in remote.stages] == ["ran", "failed", "not run"]
    assert Path(mine.notebook).is_file()


# A stage that, on its first attempt, tells the test which worker runs it (the kernel's parent)
# and then waits to be killed with it; a later attempt finds the marker and goes on.
KILLABLE = """\
import os, time
marker = os.path.join(%r, "worker.pid")
if not os.path.exists(marker):
    with open(marker + ".tmp", "w") as f:
        f.write(str(os.getppid()))
    os.replace(marker + ".tmp", marker)
    time.sleep(120)
y = x + 1"""


def _kill_the_worker_when_known(folder: Path) -> threading.Thread:
    def kill() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if (folder / "worker.pid").exists():
                os.kill(int((folder / "worker.pid").read_text()), signal.SIGKILL)
                return
            time.sleep(0.1)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def _killable_project(project, tmp_path):
    return project([("markdown", "# T"), ("markdown", "## Load"), "x = 1",
                    ("markdown", "## Slow"), KILLABLE % str(tmp_path), ("markdown", "## After"),
                    "print(y)"])


def test_a_killed_worker_mid_stage_is_retried_elsewhere(project, tmp_path):
    out = _killable_project(project, tmp_path)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as local:
        killer = _kill_the_worker_when_known(tmp_path)
        result = run_pipeline(out / "pipeline.yaml", executor="dask",
                              scheduler=local.scheduler_address)
        killer.join()
    assert result.ok, "\n".join(str(f) for f in result.failures)
    assert [s.status for s in result.stages] == ["ran", "ran", "ran"]


def test_a_killed_worker_fails_clearly_and_the_next_run_resumes(project, tmp_path, cluster):
    import dask

    out = _killable_project(project, tmp_path)
    # The scheduler gives up at the first lost worker: the stage fails with KilledWorker.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                      dashboard_address="127.0.0.1:0") as local:
            killer = _kill_the_worker_when_known(tmp_path)
            failed = run_pipeline(out / "pipeline.yaml", executor="dask",
                                  scheduler=local.scheduler_address)
            killer.join()
    assert [s.status for s in failed.stages] == ["ran", "failed", "not run"]
    assert "KilledWorker" in str(failed.failures[0]) and "run again" in str(failed.failures[0])
    resumed = run_pipeline(out / "pipeline.yaml", executor="dask",
                           scheduler=cluster.scheduler_address)
    assert resumed.ok
    assert [s.status for s in resumed.stages] == ["skipped", "ran", "ran"]


def test_close_kills_the_kernel_of_a_running_stage(project, cluster, tmp_path):
    from nb2pkg.pipeline.dask_executor import DaskExecutor
    from nb2pkg.pipeline.executor import StageJob

    out = project(["import os, time\nopen(%r, 'w').write(str(os.getpid()))\ntime.sleep(120)"
                   % str(tmp_path / "kernel.pid")], single_stage=True)
    notebook = next((out / "stages").rglob("*.ipynb"))
    job = StageJob(stage="nb", notebook=notebook, output=out / "runs" / "nb.ipynb",
                   parameters={"nb2pkg_stage": "nb", "nb2pkg_inputs": {},
                               "nb2pkg_outputs": str(out / "artifacts" / "nb")},
                   cwd=out / "notebooks", python_path=(out / "src",))
    executor = DaskExecutor(scheduler=cluster.scheduler_address)
    future = executor.submit(job)
    deadline = time.monotonic() + 60
    while not (tmp_path / "kernel.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    pid = int((tmp_path / "kernel.pid").read_text())
    executor.close()
    assert future.result(timeout=5).failure.error == "cancelled"
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (dead, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_a_worker_without_nb2pkg_is_refused_by_name(project, tmp_path):
    out = project(["x = 1"], single_stage=True)
    python = venv_with_this_environment(tmp_path / "venv")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with distributed.LocalCluster(n_workers=0, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0") as local:
        worker = subprocess.Popen(
            [str(python), "-m", "distributed.cli.dask_worker", local.scheduler_address,
             "--nthreads", "1", "--no-nanny", "--no-dashboard"],
            cwd=str(tmp_path), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with distributed.Client(local, set_as_default=False) as client:
                client.wait_for_workers(1, timeout=60)
            with pytest.raises(PipelineError) as caught:
                run_pipeline(out / "pipeline.yaml", executor="dask",
                             scheduler=local.scheduler_address)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
    message = str(caught.value)
    assert "cannot run stages: nb2pkg is not installed" in message
    assert "nb2pkg[dask]" in message and "\n" not in message


def test_a_worker_that_does_not_see_the_project_says_so(tmp_path, cluster):
    from nb2pkg.pipeline.dask_executor import _run_on_worker
    from nb2pkg.pipeline.executor import StageJob

    job = StageJob(stage="s", notebook=tmp_path / "elsewhere" / "s.ipynb",
                   output=tmp_path / "s.ipynb", cwd=tmp_path)
    with distributed.Client(cluster, set_as_default=False) as client:
        outcome = client.submit(_run_on_worker, job, "k-not-set", 10, pure=False).result()
    assert not outcome.ok
    assert "does not see" in outcome.failure.error and "same path" in str(outcome.failure)


def test_the_command_line_runs_on_a_local_cluster(project):
    out = project([("markdown", "# T"), ("markdown", "## A"), "x = 1",
                   ("markdown", "## B"), "print(x + 1)"])
    done = subprocess.run([sys.executable, "-m", "nb2pkg", "run", str(out / "pipeline.yaml"),
                           "--executor", "dask", "-j", "2"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(2 ran, 0 up to date" in done.stdout
    # Progress lines only: distributed's own logs stay quiet.
    assert all(line.startswith("…") for line in done.stderr.splitlines()), done.stderr
