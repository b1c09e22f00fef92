"""``DaskExecutor``: each stage a task on a ``dask.distributed`` worker (``nb2pkg run --executor dask``).

The runner still decides what runs (order, skipping, resuming, the state file): this executor
only moves the execution of a stage onto a worker process, where ``executor.run_stage`` runs the
notebook with papermill on a fresh kernel, exactly as the local executor does -- same kernel
start (``cwd``, ``PYTHONPATH``), same cell-level failure. A task starts when the runner submits
it, that is when the stages it needs have finished, so dependencies follow the DAG without
handing the graph to Dask (whose own graph would have to repeat the skipping logic).

Storage: every path of a job is absolute, and workers read and write them directly. The project
(stage notebooks, ``src/`` with the package, data, ``artifacts/``, ``runs/``) must be on storage
every worker sees at the same path: the local disk for a ``LocalCluster``, a shared file system
(NFS, a cluster's home or scratch) for a real one. Object storage (fsspec URLs) is not supported:
stage notebooks load their inputs with plain file operations. A worker that cannot see the
project gets a one-line failure naming the worker and the path. The generated package reaches
the kernels through ``PYTHONPATH`` (the pipeline's ``python_path``), on that shared storage:
workers need nb2pkg, papermill, ipykernel and the notebooks' libraries installed, not the
package itself (``check`` asks every worker before anything is sent).

Cancelling (Ctrl-C, ``close``): a Dask task cannot be interrupted from outside, so each task
runs the stage in a thread of its own and watches a ``distributed.Event`` named after the task;
``close`` sets the events of running tasks and the tasks kill their kernels.

A worker that dies mid-stage (killed, out of memory) makes the scheduler run the task again on
another worker (``distributed.scheduler.allowed-failures`` times); the retry starts from an empty
artifact folder. After that the stage fails with ``KilledWorker``, and the next run starts again
at that stage, like any failure.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import Future
from typing import Any

from ..errors import PipelineError
from .executor import Progress, StageFailure, StageJob, StageOutcome, kill_kernel, run_stage
from .registry import ExecutorOptions, missing_extra

POLL_SECONDS = 0.5  # how often a task looks at its cancel event
LOCAL_WORKERS = 2
SHARED_STORAGE = ("the project must be on storage every worker sees at the same path "
                  "(docs/pipeline.md, Dask)")


def make_executor(options: ExecutorOptions) -> "DaskExecutor":
    """The ``dask`` entry of the executor registry."""
    return DaskExecutor(scheduler=options.scheduler, workers=options.jobs or LOCAL_WORKERS,
                        progress=options.progress)


class DaskExecutor:
    """Stages as tasks of a ``dask.distributed`` cluster: the one at ``scheduler``, or a
    ``LocalCluster`` of ``workers`` processes (one thread each) on the loopback interface."""

    def __init__(self, *, scheduler: str | None = None, workers: int = LOCAL_WORKERS,
                 startup_timeout: int = 60, connect_timeout: float = 30,
                 progress: Progress | None = None) -> None:
        try:
            import cloudpickle
            import distributed
        except ImportError as exc:
            raise missing_extra("the dask executor", "dask", exc) from None
        from . import _dask_probe

        # The probe runs on workers that may lack nb2pkg: it travels by value.
        cloudpickle.register_pickle_by_value(_dask_probe)
        self.progress = progress or (lambda message: None)
        self.startup_timeout = startup_timeout
        self._cluster: Any = None
        self._lock = threading.Lock()
        self._running: dict[str, tuple[Any, Future[StageOutcome], StageJob]] = {}
        try:
            if scheduler is None:
                # Processes, not threads: kernels and papermill keep per-process state. The
                # library never prints: distributed's own logs only for errors. Everything on
                # the loopback interface (the dashboard on a free port: 8787 may be taken).
                self._cluster = distributed.LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address="127.0.0.1:0", silence_logs=logging.ERROR)
                self.client = distributed.Client(self._cluster, set_as_default=False)
            else:
                self.client = distributed.Client(scheduler, timeout=connect_timeout,
                                                 set_as_default=False)
        except OSError as exc:  # no scheduler there, or it did not answer in time
            self._close_cluster()
            raise PipelineError(f"cannot reach the Dask scheduler at {scheduler}: "
                                f"{_first_line(exc)}",
                                hint="start it (dask scheduler) or check --scheduler") from None
        # One stage per worker thread at a time: what `--jobs` defaults to.
        self.slots = max(1, sum(self.client.nthreads().values()))

    def check(self, kernel: str) -> None:
        from . import _dask_probe
        from .. import __version__

        answers = self.client.run(_dask_probe.probe, kernel)
        if not answers:
            raise PipelineError("the Dask cluster has no worker",
                                hint="start workers (dask worker ADDRESS) and run again")
        for worker, info in sorted(answers.items()):
            problem = hint = None
            missing = [name for name in ("nb2pkg", "papermill", "ipykernel") if not info[name]]
            if missing:
                problem = f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} " \
                          "not installed"
                hint = "pip install 'nb2pkg[dask]' in the workers' environment"
            elif info["nb2pkg"] != __version__:
                problem = f"it has nb2pkg {info['nb2pkg']}, this is {__version__}"
                hint = "install the same nb2pkg version on every worker"
            elif not info["kernel"]:
                problem = f"it has no Jupyter kernel named {kernel!r}"
                hint = f"python -m ipykernel install --user --name {kernel} on the workers"
            if problem:
                raise PipelineError(f"Dask worker {worker} ({info['python']}) cannot run "
                                    f"stages: {problem}", hint=hint)

    def prepare(self, job: StageJob) -> bool:
        return False  # kernels start on the workers, when the task runs

    def release(self, stage: str) -> None:
        pass

    def submit(self, job: StageJob) -> "Future[StageOutcome]":
        result: Future[StageOutcome] = Future()
        key = f"nb2pkg-{job.stage}-{uuid.uuid4().hex[:12]}"
        try:
            remote = self.client.submit(_run_on_worker, job, key, self.startup_timeout,
                                        key=key, pure=False)
        except Exception as exc:  # the scheduler went away
            result.set_result(_failed(job, f"{type(exc).__name__}: {_first_line(exc)}",
                                      hint="the Dask scheduler did not take the task"))
            return result
        with self._lock:
            self._running[key] = (remote, result, job)
        remote.add_done_callback(lambda done: self._finished(key, done))
        return result

    def close(self) -> None:
        import distributed

        with self._lock:
            running = list(self._running.items())
            self._running.clear()
        for key, (remote, result, job) in running:
            try:
                distributed.Event(key, client=self.client).set()
                remote.cancel()
            except Exception:  # the cluster is going away anyway
                pass
            if not result.done():
                result.set_result(_failed(job, "cancelled"))
        if running and self._cluster is None:
            # A remote cluster outlives us: give the tasks time to see their event and kill
            # their kernels before the client goes (the events live on the scheduler).
            time.sleep(2 * POLL_SECONDS)
        try:
            self.client.close()
        except Exception:  # pragma: no cover - already closed
            pass
        self._close_cluster()

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            try:
                self._cluster.close()
            except Exception:  # pragma: no cover
                pass
            self._cluster = None

    def _finished(self, key: str, remote: Any) -> None:
        with self._lock:
            entry = self._running.pop(key, None)
        if entry is None:
            return  # closed meanwhile; already answered
        _, result, job = entry
        try:
            outcome = remote.result()
        except BaseException as exc:
            name = type(exc).__name__
            hint = None
            if name == "KilledWorker":
                hint = ("the workers running it died (out of memory? killed?); run again: "
                        "finished stages are kept")
            outcome = _failed(job, f"{name}: {_first_line(exc)}", hint=hint)
        if not result.done():
            result.set_result(outcome)


def _run_on_worker(job: StageJob, key: str, startup_timeout: int) -> StageOutcome:
    """The task: run ``job`` on this worker, in a thread, killing its kernel when the event
    ``key`` is set."""
    import distributed

    worker = distributed.get_worker().address
    for path in (job.notebook, job.cwd):
        if not os.path.exists(path):
            return _failed(job, f"Dask worker {worker} does not see {path}", hint=SHARED_STORAGE)
    outputs = job.parameters.get("nb2pkg_outputs")
    if isinstance(outputs, str):
        # After a killed worker the scheduler runs the task again: from an empty folder, as the
        # runner gave the first attempt.
        shutil.rmtree(outputs, ignore_errors=True)
    kernels: list[Any] = []
    outcome: list[StageOutcome] = []
    thread = threading.Thread(target=lambda: outcome.append(run_stage(
        job, startup_timeout=startup_timeout, on_kernel=kernels.append)),
        name=f"nb2pkg-{job.stage}", daemon=True)
    thread.start()
    event = distributed.Event(key)
    cancelled = False
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        if thread.is_alive() and not cancelled:
            try:
                cancelled = event.is_set()
            except Exception:  # the scheduler is unreachable: let the stage finish
                pass
        if cancelled and kernels:
            kill_kernel(kernels[0])
    if cancelled:
        return _failed(job, "cancelled")
    return outcome[0] if outcome else _failed(job, "the stage's thread ended without a result")


def _failed(job: StageJob, error: str, hint: str | None = None) -> StageOutcome:
    return StageOutcome(job.stage, False, 0.0, str(job.output),
                        StageFailure(job.stage, str(job.output), error, hint=hint))


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""
