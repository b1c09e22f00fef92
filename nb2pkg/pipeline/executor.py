"""Executing stages: the ``Executor`` protocol and ``LocalExecutor`` (papermill, local kernels).

The runner decides *what* runs and when (dependency order, skipping, resuming); an executor only
runs the stage notebooks it is given and reports how each went. Another engine (a cluster, a job
queue) implements the same five methods; ``prepare`` and ``release`` may do nothing.

``LocalExecutor`` runs each stage with papermill on a fresh local kernel, one thread per stage.
Kernel start-up (about a second) and imports dominate short stages, so ``prepare`` starts the
kernel of a stage that is about to become ready -- while the stages it waits for still run -- and
runs the import lines of its setup cell there, silently. When the stage is submitted, papermill
executes the notebook on that kernel; the setup cell's imports are then already loaded.

papermill has no way to pass an environment to the kernel (its extra arguments reach nbclient's
constructor, not ``start_kernel``), so the executor starts the kernel itself, with ``cwd`` and
``PYTHONPATH`` set, and hands the kernel manager to papermill (``km=``). On POSIX the kernels talk
over Unix sockets rather than TCP ports: with many kernels starting at once, a port chosen for
one kernel can be taken by another process before the kernel binds it (a kernel that dies while
starting is started again, for the TCP case).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from ..errors import PipelineError

if TYPE_CHECKING:  # imported where used: a run with nothing to do loads none of this
    from concurrent.futures import Future

Progress = Callable[[str], None]
CELL_PROGRESS_EVERY = 3.0  # seconds between "stage X: cell N" messages
START_ATTEMPTS = 3


@dataclass(frozen=True)
class StageJob:
    stage: str
    notebook: Path  # the stage notebook
    output: Path  # where the executed notebook goes (kept when the stage fails)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    cwd: Path = Path(".")
    python_path: tuple[Path, ...] = ()
    kernel: str = "python3"
    timeout: int | None = None  # seconds per cell
    log: Path | None = None  # the kernel's own stdout/stderr
    # Stages of this run that must finish first: with a shared kernel, the local executor runs
    # this stage on the kernel of one of them (docs/pipeline.md); other executors ignore it.
    upstream: tuple[str, ...] = ()
    # Modules that loading its inputs will import (pandas for a DataFrame, as the providers'
    # artifact indexes say): a kernel started ahead imports them too. A hint only, so it does
    # not count when a prepared kernel is matched with the job submitted.
    warm: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class StageFailure:
    stage: str
    notebook: str  # the executed notebook, kept with the error in it
    error: str  # "KeyError: 'units'"
    cell: int | None = None  # index of the failing cell in the stage notebook (from 0)
    source_cell: int | None = None  # that cell's index in the original notebook
    role: str | None = None  # for a generated cell: "parameters", "setup", "load" or "save"
    hint: str | None = None

    def __str__(self) -> str:
        where = f"stage {self.stage}"
        if self.cell is not None:
            where += f", cell {self.cell}"
            if self.source_cell is not None:
                where += f" (cell {self.source_cell} of the original notebook)"
            elif self.role:
                where += f" (the generated {self.role} cell)"
        text = f"{where}: {self.error}; executed notebook kept at {self.notebook}"
        return f"{text} ({self.hint})" if self.hint else text


@dataclass(frozen=True)
class StageOutcome:
    stage: str
    ok: bool
    seconds: float
    output: str
    failure: StageFailure | None = None


class Executor(Protocol):
    """Runs stage notebooks. Methods are called from the runner's thread only."""

    def check(self, kernel: str) -> None:
        """Raise ``PipelineError`` when ``kernel`` cannot run here."""

    def prepare(self, job: StageJob) -> bool:
        """Hint: ``job`` will probably be submitted soon. Start resources now and return True,
        or return False (no capacity, or nothing to prepare): the runner asks again later."""

    def release(self, stage: str) -> None:
        """``stage`` will not be submitted after all (it was up to date, or upstream failed)."""

    def submit(self, job: StageJob) -> "Future[StageOutcome]":
        """Run ``job``; the future never raises, failures are in ``StageOutcome.failure``."""

    def close(self) -> None:
        """Stop everything still running or prepared."""


def make_local_executor(options: Any) -> "LocalExecutor":
    """The ``local`` entry of the executor registry (``registry.ExecutorOptions``)."""
    if options.scheduler is not None:
        raise PipelineError("--scheduler names the scheduler of a cluster; the local executor "
                            "has none", hint="add --executor dask, or drop --scheduler")
    prestart = options.prestart if options.prestart is not None else (options.jobs or 1) + 2
    return LocalExecutor(prestart=prestart, progress=options.progress,
                         shared_kernel=getattr(options, "shared_kernel", False))


class LocalExecutor:
    """papermill on local kernels, one thread per stage; kernels started ahead by ``prepare``.

    ``shared_kernel=True``: a stage runs on the kernel of a stage it follows (``job.upstream``)
    once that one finished successfully, after the kernel's variables were deleted (IPython's
    ``reset``), its figures closed and its working directory set back. Imports stay loaded, so
    the stage skips the kernel start and most of its setup cell. A failed stage's kernel is
    stopped. Stages still load their inputs from the artifacts and save their outputs there, so
    a later run that resumes at any stage, on a fresh kernel, starts from the values this one
    saved (what else a shared kernel carries over: docs/pipeline.md).
    """

    def __init__(self, *, prestart: int = 1, startup_timeout: int = 60,
                 progress: Progress | None = None, shared_kernel: bool = False) -> None:
        import logging

        self.prestart = prestart
        self.startup_timeout = startup_timeout
        self.progress = progress or (lambda message: None)
        self.shared_kernel = shared_kernel
        self._slots: dict[str, _Slot] = {}
        self._lock = threading.Lock()
        self._parked: dict[str, _Slot] = {}  # finished stage -> its kernel, idle (shared only)
        self._claims: dict[str, str] = {}  # parked or running stage -> stage that will take it
        # papermill logs warnings (e.g. about black); with no handler configured, Python's
        # last-resort handler would print them. The library never prints.
        logging.getLogger("papermill").addHandler(logging.NullHandler())

    def check(self, kernel: str) -> None:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        manager = KernelSpecManager()
        try:
            manager.get_kernel_spec(kernel)
        except NoSuchKernel:
            available = ", ".join(sorted(manager.find_kernel_specs())) or "none"
            raise PipelineError(f"no Jupyter kernel named {kernel!r} (available: {available})",
                                hint=f"python -m ipykernel install --user --name {kernel}, or "
                                     "set `kernel:` in pipeline.yaml") from None

    def prepare(self, job: StageJob) -> bool:
        if job.stage in self._slots or job.stage in self._claims.values():
            return True
        if self.shared_kernel:
            # It will run on the kernel of the stage it follows (one that has a kernel, or will
            # take one the same way): nothing to start.
            takers = set(self._claims.values())
            for upstream in job.upstream:
                if upstream in self._claims:
                    continue
                slot = self._parked.get(upstream) or self._slots.get(upstream)
                if upstream in takers or (slot is not None and slot.alive and slot.fits(job)
                                          and slot.job.stage == upstream):
                    self._claims[upstream] = job.stage
                    return True
        waiting = sum(1 for slot in self._slots.values() if not slot.submitted and slot.alive)
        if waiting >= self.prestart:
            return False
        self._slots[job.stage] = _Slot(job, self)
        return True

    def submit(self, job: StageJob) -> "Future[StageOutcome]":
        slot = self._slots.get(job.stage)
        if slot is not None and (slot.job != job or slot.submitted):
            slot.cancel()
            slot = None
        if slot is None and self.shared_kernel:
            slot = self._take_parked(job)
        if slot is None:
            slot = self._slots[job.stage] = _Slot(job, self, ahead=False)
        slot.go()
        return slot.future

    def _take_parked(self, job: StageJob) -> "_Slot | None":
        with self._lock:
            for upstream in job.upstream:
                slot = self._parked.get(upstream)
                if (slot is None or not slot.fits(job)
                        or self._claims.get(upstream, job.stage) != job.stage):
                    continue
                del self._parked[upstream]
                self._claims.pop(upstream, None)
                slot.take(job)
                self._slots[job.stage] = slot
                return slot
        return None

    def _park(self, slot: "_Slot") -> None:
        """Called from ``slot``'s thread: its stage succeeded and the kernel waits for the next."""
        evicted = []
        with self._lock:
            self._parked[slot.job.stage] = slot
            # An idle kernel holds memory: keep as many as could start ahead, the newest.
            while len(self._parked) > max(1, self.prestart):
                oldest = next(iter(self._parked))
                evicted.append(self._parked.pop(oldest))
                self._claims.pop(oldest, None)
        for other in evicted:
            other.cancel()

    def release(self, stage: str) -> None:
        for upstream, taker in list(self._claims.items()):
            if taker == stage:
                del self._claims[upstream]
        slot = self._slots.get(stage)
        if slot is not None and not slot.submitted:
            slot.cancel()
            del self._slots[stage]

    def close(self) -> None:
        with self._lock:
            slots = list({id(s): s for s in [*self._slots.values(), *self._parked.values()]}
                         .values())
            self._parked.clear()
            self._claims.clear()
        for slot in slots:
            slot.cancel()
        for slot in slots:
            slot.thread.join(timeout=10)
        self._slots.clear()


def _kernel_manager_class() -> type:
    from jupyter_client import AsyncKernelManager

    class TrackingKernelManager(AsyncKernelManager):
        """Remembers the clients made for it, to close their channels with the kernel
        (papermill does not close the client of a kernel manager it was given)."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.nb2pkg_clients: list[Any] = []
            self.nb2pkg_folder: str | None = None

        def client(self, **kwargs: Any) -> Any:
            client = super().client(**kwargs)
            self.nb2pkg_clients.append(client)
            return client

    return TrackingKernelManager


class _Slot:
    """One kernel in its own thread (its own event loop: kernel manager, warm-up client and
    papermill's client all live in that loop), running one stage, or with a shared kernel one
    stage after another (``take``)."""

    def __init__(self, job: StageJob, owner: LocalExecutor, ahead: bool = True) -> None:
        from concurrent.futures import Future

        self.job = job
        self.owner = owner
        self.ahead = ahead
        self.future: Future[StageOutcome] = Future()
        self.submitted = False
        self.alive = True
        self._go = threading.Event()
        self._has_job = False
        self._cancelled = False
        self._km: Any = None
        self.thread = threading.Thread(target=self._run, name=f"nb2pkg-{job.stage}", daemon=True)
        self.thread.start()

    def fits(self, job: StageJob) -> bool:
        """Whether ``job`` may run on this slot's kernel (same kernel, folder and path)."""
        return (job.kernel, job.cwd, job.python_path) == (
            self.job.kernel, self.job.cwd, self.job.python_path)

    def go(self) -> None:
        self.submitted = True
        self._has_job = True
        self._go.set()

    def take(self, job: StageJob) -> None:
        """Run ``job`` next on this (parked) kernel."""
        from concurrent.futures import Future

        self.job = job
        self.future = Future()
        self.go()

    def cancel(self) -> None:
        self._cancelled = True
        self._go.set()
        km = self._km
        if km is not None and self.submitted and not self.future.done():
            _kill(km)  # interrupting a running stage: its thread then reports and cleans up

    def _run(self) -> None:
        km = None
        startup_error: BaseException | None = None
        try:
            km = self._km = _ready_kernel(self.job, self.owner.startup_timeout,
                                          warm=lambda: self.ahead and not self._go.is_set())
        except Exception as exc:  # reported when the stage is submitted
            startup_error = exc
        reused = False
        try:
            while True:
                self._go.wait()
                self._go.clear()
                if not self._has_job:
                    return  # cancelled while waiting (prepared, or parked)
                self._has_job = False
                job, future = self.job, self.future
                try:
                    started = time.perf_counter()
                    if startup_error is not None:
                        outcome = _failed(job, started, f"{type(startup_error).__name__}: "
                                          f"{_first_line(startup_error)}",
                                          hint="the kernel did not start; see " + str(job.log))
                    else:
                        if reused:
                            km = self._km = _reset_kernel(km, job, self.owner.startup_timeout)
                        outcome = _execute(km, job, self.owner.startup_timeout,
                                           self.owner.progress, started)
                except BaseException as exc:  # never leave the runner waiting
                    outcome = _failed(job, time.perf_counter(),
                                      f"{type(exc).__name__}: {_first_line(exc)}")
                park = self.owner.shared_kernel and outcome.ok and not self._cancelled
                if park:  # before the result: the runner submits the next stage right after
                    self.owner._park(self)
                    reused = True
                future.set_result(outcome)
                if not park:
                    return
        finally:
            self.alive = False
            if not self.future.done():
                self.future.set_result(_failed(self.job, time.perf_counter(), "the kernel was "
                                               "stopped before the stage ran"))
            _stop_kernel(km)
            _close_event_loop()


def _reset_source(cwd: Path) -> str:
    # What a fresh kernel would not have: the variables of the stage before (IPython's reset,
    # which keeps imported modules loaded), its open figures, a changed working directory.
    return ("import os, sys\n"
            f"os.chdir({str(cwd)!r})\n"
            "if 'matplotlib.pyplot' in sys.modules:\n"
            "    sys.modules['matplotlib.pyplot'].close('all')\n"
            "get_ipython().reset(new_session=True)\n")


def _reset_kernel(km: Any, job: StageJob, timeout: int) -> Any:
    """The kernel of the stage before, reset for ``job``; a fresh one if it died meanwhile."""
    from jupyter_core.utils import run_sync

    # papermill leaves the channels of its client open (it did not make the kernel manager):
    # closed here, or they would queue every message the kernel sends from now on.
    for old in km.nb2pkg_clients:
        old.stop_channels()
    km.nb2pkg_clients.clear()
    client = km.client()
    client.start_channels()
    try:
        if run_sync(km.is_alive)():
            reply = run_sync(client.execute_interactive)(
                _reset_source(job.cwd), silent=True, store_history=False, timeout=timeout,
                output_hook=lambda msg: None)
            if reply.get("content", {}).get("status") == "ok":
                return km
    except Exception:  # a kernel that does not answer is replaced
        pass
    finally:
        client.stop_channels()
    _stop_kernel(km)
    return _ready_kernel(job, timeout, warm=lambda: False)


def _ready_kernel(job: StageJob, timeout: int, warm: Callable[[], bool]) -> Any:
    """A started kernel that answered, with the stage's imports loaded when ``warm()`` says so.

    A kernel that dies while starting is started again: with TCP, another process can take one
    of the ports jupyter_client chose before the kernel binds it.
    """
    from jupyter_core.utils import run_sync

    for attempt in range(START_ATTEMPTS):
        km = _start_kernel(job, append_log=attempt > 0)
        import papermill  # noqa: F401 - loads (once) while the kernel boots

        client = km.client()
        client.start_channels()
        try:
            try:
                run_sync(client.wait_for_ready)(timeout=timeout)
            except RuntimeError:  # "Kernel died before replying to kernel_info"
                _stop_kernel(km)
                if attempt + 1 == START_ATTEMPTS:
                    raise
                continue
            code = (warmup_source(job.notebook) + "".join(
                f"\ntry:\n    __import__({module!r})\nexcept Exception:\n    pass"
                for module in job.warm if module.isidentifier())) if warm() else ""
            if code:
                try:
                    run_sync(client.execute_interactive)(code, silent=True, store_history=False,
                                                         timeout=timeout,
                                                         output_hook=lambda msg: None)
                except Exception:  # the real run reports any problem, in the notebook
                    pass
            return km
        finally:
            client.stop_channels()
    raise AssertionError("unreachable")  # pragma: no cover


def _start_kernel(job: StageJob, append_log: bool = False) -> Any:
    from jupyter_core.utils import run_sync

    env = dict(os.environ)
    paths = [str(p) for p in job.python_path] + [p for p in [env.get("PYTHONPATH")] if p]
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    import tempfile

    options: dict[str, Any] = {}
    folder = None
    if os.name == "posix":
        # Unix sockets in a private folder instead of TCP ports: no port another process can
        # take between jupyter_client choosing it and the kernel binding it.
        folder = tempfile.mkdtemp(prefix="nb2pkg-kernel-")
        options = {"transport": "ipc", "ip": os.path.join(folder, "k")}
    km = _kernel_manager_class()(kernel_name=job.kernel, **options)
    km.nb2pkg_folder = folder
    log = None
    if job.log is not None:
        job.log.parent.mkdir(parents=True, exist_ok=True)
        log = job.log.open("ab" if append_log else "wb")
    try:
        # The kernel's own output (start-up warnings, crashes) goes to the log, not to our
        # terminal: the library never prints. As nbclient does for kernels it starts, IPython
        # history stays in memory, not in the SQLite file that parallel kernels would share.
        run_sync(km.start_kernel)(cwd=str(job.cwd), env=env, stdout=log, stderr=log,
                                  extra_arguments=["--HistoryManager.hist_file=:memory:"])
    except BaseException:
        _stop_kernel(km)
        raise
    finally:
        if log is not None:
            log.close()  # the kernel process holds its own handle
    return km


def _stop_kernel(km: Any) -> None:
    if km is None:
        return
    from jupyter_core.utils import run_sync

    try:
        for client in km.nb2pkg_clients:
            client.stop_channels()
        if km.has_kernel:
            run_sync(km.shutdown_kernel)(now=True)
    except Exception:  # pragma: no cover - the process is gone already
        pass
    if km.nb2pkg_folder:
        import shutil

        shutil.rmtree(km.nb2pkg_folder, ignore_errors=True)


def warmup_source(notebook: Path) -> str:
    """Import statements and session magics of the notebook's generated setup cell."""
    import ast
    import json

    from ..magics import mask, unmask

    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    for cell in data.get("cells", []):
        if cell.get("metadata", {}).get("nb2pkg", {}).get("pipeline") != "setup":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        masked = mask(source)
        try:
            tree = ast.parse(masked.code)
        except SyntaxError:
            return ""
        keep = [ast.get_source_segment(masked.code, s) or "" for s in tree.body
                if isinstance(s, (ast.Import, ast.ImportFrom)) or (
                    isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)
                    and isinstance(s.value.func, ast.Name) and s.value.func.id.startswith("__nb2pkg_m"))]
        return unmask("\n".join(keep), masked.replacements)
    return ""


def run_stage(job: StageJob, *, startup_timeout: int = 60, progress: Progress | None = None,
              on_kernel: Callable[[Any], None] | None = None) -> StageOutcome:
    """Run ``job`` to the end on a fresh kernel, in the calling thread; never raises.

    What executors that run stages elsewhere call there (``dask_executor`` on a worker): the
    kernel start, papermill and the cell-level failure report are the local executor's own.
    ``on_kernel(km)`` gets the kernel manager once the kernel runs, so that another thread can
    stop the stage with ``kill_kernel(km)``.
    """
    started = time.perf_counter()
    km = None
    try:
        try:
            km = _ready_kernel(job, startup_timeout, warm=lambda: False)
        except Exception as exc:
            return _failed(job, started, f"{type(exc).__name__}: {_first_line(exc)}",
                           hint="the kernel did not start; see " + str(job.log))
        if on_kernel is not None:
            on_kernel(km)
        return _execute(km, job, startup_timeout, progress or (lambda message: None), started)
    except BaseException as exc:  # the caller is waiting for an outcome
        return _failed(job, started, f"{type(exc).__name__}: {_first_line(exc)}")
    finally:
        _stop_kernel(km)
        _close_event_loop()


def kill_kernel(km: Any) -> None:
    """Kill the kernel of a running stage (from another thread): its ``run_stage`` then
    reports a dead kernel and returns."""
    _kill(km)


def _execute(km: Any, job: StageJob, startup_timeout: int, say: Progress,
             started: float) -> StageOutcome:
    import papermill
    from papermill.exceptions import PapermillExecutionError

    job.output.parent.mkdir(parents=True, exist_ok=True)
    last = [started]

    def on_cell_start(cell: Any = None, cell_index: int = 0, **_: Any) -> None:
        now = time.perf_counter()
        if now - last[0] >= CELL_PROGRESS_EVERY:
            last[0] = now
            say(f"{job.stage}: cell {cell_index} ({now - started:.0f} s)")

    try:
        papermill.execute_notebook(
            str(job.notebook), str(job.output), parameters=dict(job.parameters),
            kernel_name=job.kernel, progress_bar=False, log_output=False, km=km,
            start_timeout=startup_timeout, execution_timeout=job.timeout,
            on_cell_start=on_cell_start)
    except PapermillExecutionError as exc:
        return _cell_failure(job, started, exc)
    except Exception as exc:  # dead kernel, cell timeout, unreadable notebook, ...
        name = type(exc).__name__
        hint = None
        if name == "DeadKernelError":
            hint = f"the kernel died (out of memory?); its log: {job.log}"
        elif name == "CellTimeoutError":
            hint = "raise `timeout:` in pipeline.yaml"
        return _failed(job, started, f"{name}: {_first_line(exc)}", hint=hint)
    return StageOutcome(job.stage, True, time.perf_counter() - started, str(job.output))


def _cell_failure(job: StageJob, started: float, exc: Any) -> StageOutcome:
    import nbformat

    # papermill adds an injected-parameters cell and error banners to the executed notebook;
    # the cell is reported by its index in the stage notebook, which has neither.
    index = role = source_cell = None
    hint = None
    try:
        node = nbformat.read(str(job.output), as_version=4)
        cells = [c for c in node.cells if not {"injected-parameters", "papermill-error-cell-tag"}
                 & set(c.get("metadata", {}).get("tags", []))]
        for position, cell in enumerate(cells):
            if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
                meta = cell.get("metadata", {}).get("nb2pkg", {})
                index, role, source_cell = position, meta.get("pipeline"), meta.get("source_cell")
                break
    except Exception:  # the executed notebook is still the best reference
        pass
    evalue = str(exc.evalue).strip().splitlines()[0] if str(exc.evalue).strip() else ""
    if exc.ename == "ModuleNotFoundError":
        hint = ("install the missing module where the kernel runs (for the project's own "
                "package: pip install -e .)")
    failure = StageFailure(job.stage, str(job.output), f"{exc.ename}: {evalue}".rstrip(": "),
                           index, source_cell if isinstance(source_cell, int) else None, role,
                           hint)
    return StageOutcome(job.stage, False, time.perf_counter() - started, str(job.output), failure)


def _failed(job: StageJob, started: float, error: str, hint: str | None = None) -> StageOutcome:
    failure = StageFailure(job.stage, str(job.output), error, hint=hint)
    return StageOutcome(job.stage, False, time.perf_counter() - started, str(job.output), failure)


def _close_event_loop() -> None:
    """Close the event loop jupyter_core made for this thread (the thread ends here)."""
    from jupyter_core.utils import ensure_event_loop

    loop = ensure_event_loop()
    if not loop.is_running():
        loop.close()


def _kill(km: Any) -> None:
    process = getattr(getattr(km, "provisioner", None), "process", None)
    if process is not None:
        try:
            process.kill()
        except OSError:  # pragma: no cover - already gone
            pass


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""
