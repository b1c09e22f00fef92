"""Scheduling a pipeline run: dependency order, skipping unchanged stages, resuming after failures.

``run_pipeline`` decides what runs; an ``Executor`` (``executor.LocalExecutor`` unless another is
given) runs it. Stages start as soon as the stages they need have finished, up to ``jobs`` at a
time. A stage is skipped when the state file says it is up to date (``state``). A failed stage
stops the stages that need it; independent stages go on. The outputs of finished stages stay and
the state records them, so the next run starts again at the failed stage. One run of a pipeline
at a time: a second one is refused (or waits, ``wait=True``) while the first holds the lock.

Progress goes to the ``progress`` callback, from the calling thread and from executor threads
(calls are serialized). Nothing here prints.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from ..errors import PipelineError
from .executor import Executor, StageFailure, StageJob, StageOutcome
from .spec import Pipeline, Stage, load_pipeline, resolve_parameters, stage_parameters
from .state import Fingerprint, RunLock, State, code_stamp, load_index, read_cache, template_file

if TYPE_CHECKING:
    from concurrent.futures import Future

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StageRun:
    name: str
    status: str  # "ran", "skipped", "failed" or "not run"
    reason: str  # why it ran, or why not
    seconds: float | None = None  # this run's time (ran/failed), else the last recorded one
    notebook: str | None = None  # the executed notebook
    failure: StageFailure | None = None
    metrics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunResult:
    pipeline: Pipeline = field(repr=False)
    stages: tuple[StageRun, ...]
    parameters: Mapping[str, Any]
    seconds: float
    metrics_path: str | None = None
    report_path: str | None = None
    warnings: tuple[str, ...] = ()  # one line each, e.g. a dvc.yaml that pipeline.yaml no longer makes

    @property
    def ok(self) -> bool:
        return all(s.status in ("ran", "skipped") for s in self.stages)

    @property
    def failures(self) -> tuple[StageFailure, ...]:
        return tuple(s.failure for s in self.stages if s.failure is not None)

    def count(self, status: str) -> int:
        return sum(1 for s in self.stages if s.status == status)

    def to_dict(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline.name, "path": str(self.pipeline.path), "ok": self.ok,
                "seconds": round(self.seconds, 3), "parameters": dict(self.parameters),
                "metrics": self.metrics_path, "report": self.report_path,
                "warnings": list(self.warnings),
                "stages": [{"name": s.name, "status": s.status, "reason": s.reason,
                            "seconds": s.seconds, "notebook": s.notebook,
                            "error": str(s.failure) if s.failure else None,
                            "metrics": dict(s.metrics)} for s in self.stages]}


def select_stages(pipeline: Pipeline, names: Iterable[str]) -> list[str]:
    """Stage names from ``--stage`` values: a stage name, or a notebook name for all its stages."""
    chosen: list[str] = []
    for name in names:
        matches = [s.name for s in pipeline.stages if s.name == name] or [
            s.name for s in pipeline.stages
            if s.name.startswith(f"{name}-") or Path(s.notebook).parent.name == name]
        if not matches:
            raise PipelineError(f"no stage named {name!r}", path=pipeline.path,
                                hint="stages: " + ", ".join(s.name for s in pipeline.stages))
        chosen += [m for m in matches if m not in chosen]
    return chosen


def run_pipeline(path: Path | str, *, overrides: Sequence[tuple[str, str]] = (),
                 parameter_files: Sequence[Path | str] = (), stages: Sequence[str] = (),
                 only: bool = False, jobs: int | None = None, force: bool = False,
                 baseline: Path | str | None = None, metrics: Path | str | None = None,
                 report: Path | str | None = None, executor: Executor | str | None = None,
                 scheduler: str | None = None, prestart: int | None = None,
                 shared_kernel: bool = False, wait: bool = False,
                 progress: Progress | None = None) -> RunResult:
    """Run the pipeline at ``path``; see ``nb2pkg run --help`` and docs/pipeline.md.

    ``stages`` selects stages (or notebooks) and, unless ``only``, the stages they need;
    ``force`` runs the selected stages even when up to date. ``executor`` is an ``Executor``
    (left open) or the name of one in the registry (``"local"``, the default, ``"dask"``, or a
    plugin's; made here with ``scheduler`` and closed at the end). ``jobs``: stages at a time
    (default: the executor's ``slots``, else 1). ``prestart`` is how many kernels the local
    executor may start ahead of time (default ``jobs + 2``; 0 turns it off). ``shared_kernel``:
    the local executor runs a stage on the kernel of the stage before it (docs/pipeline.md).
    ``wait``: when another run of this pipeline holds its lock, wait for it instead of raising.
    Raises ``PipelineError`` for bad input; a failing stage is reported in the result.

    A run with nothing to do imports no kernel machinery, jsonschema or Jinja: the executor is
    made (and the kernel checked) when a stage first has to run, and the answers that cost
    most are remembered in the state file's cache under digests of what they depend on.
    """
    started = time.perf_counter()
    lock = threading.Lock()
    user_progress = progress or (lambda message: None)

    def say(message: str) -> None:
        with lock:
            user_progress(message)

    if jobs is not None and jobs < 1:
        raise PipelineError("--jobs must be at least 1")
    if shared_kernel and not (executor is None or executor == "local"):
        raise PipelineError("--shared-kernel is an option of the local executor",
                            hint="drop --shared-kernel, or --executor")
    cache = read_cache(path)
    pipeline = load_pipeline(path, valid=cache.get(VALID_KEY))
    learned = {VALID_KEY: pipeline.digest}  # it passed: the next run need not check the schema
    values = resolve_parameters(pipeline, overrides, parameter_files)
    targets = select_stages(pipeline, stages) if stages else [s.name for s in pipeline.stages]
    selected = set(targets) if only else pipeline.upstream_closure(targets)
    forced = set(targets) if force else set()
    if only:
        for name in targets:
            for upstream in pipeline.stage(name).upstream:
                if upstream not in selected and not _has_outputs(pipeline, upstream):
                    raise PipelineError(f"stage {name} needs {upstream}, which has not run",
                                        path=pipeline.path, hint="run without --only first")
    _check_data(pipeline, selected)
    # dvc.yaml is made from pipeline.yaml: one that differs runs something else under `dvc repro`.
    warnings = tuple(w for w in [_dvc_mismatch(pipeline, cache, learned)] if w)
    if executor is not None and not isinstance(executor, str) and scheduler is not None:
        raise PipelineError("a scheduler address goes with an executor name, not an Executor")
    engine = _Engine(executor, pipeline.kernel, jobs, scheduler, prestart, shared_kernel, say)
    from .report import write_outputs

    try:
        with RunLock(pipeline, wait=wait, progress=say):
            state = State(pipeline, verify=force)
            state.cache.update(learned)
            (pipeline.root / pipeline.runs).mkdir(parents=True, exist_ok=True)
            runs = _Scheduler(pipeline, values, state, engine, selected, forced, say).run()
            result = RunResult(pipeline, tuple(runs), values, time.perf_counter() - started,
                               warnings=warnings)
            result = write_outputs(result, baseline=baseline, metrics=metrics, report=report,
                                   cache=state.cache)
            state.save_if_changed()
            return result
    finally:
        engine.close()


VALID_KEY = "schema"  # cache: the digest of the pipeline text that last passed the JSON Schema
DVC_KEY = "dvc"  # cache: the digest of what made the dvc.yaml comparison find no difference


def _dvc_mismatch(pipeline: Pipeline, cache: Mapping[str, Any],
                  learned: dict[str, Any]) -> str | None:
    """``export.dvc_mismatch``, skipped when the pipeline text, dvc.yaml and the code that
    renders it are those of a comparison that found them matching (rendering dvc.yaml needs
    Jinja)."""
    import hashlib
    import os

    dvc = pipeline.root / "dvc.yaml"
    if not os.path.lexists(dvc):
        return None
    key: str | None = None
    here = Path(__file__).parent
    try:
        stamp = code_stamp(here / "export.py", here / "spec.py", here.parent / "templating.py",
                           template_file("pipeline/dvc.yaml.j2"),
                           template_file("pipeline/params.yaml.j2"))
        if stamp and pipeline.digest and dvc.is_file():  # (never read a FIFO)
            key = hashlib.sha256("\0".join([stamp, pipeline.digest, str(pipeline.root),
                                             hashlib.sha256(dvc.read_bytes()).hexdigest()])
                                 .encode()).hexdigest()
    except OSError:
        key = None
    if key is not None and cache.get(DVC_KEY) == key:
        return None
    from .export import dvc_mismatch

    problem = dvc_mismatch(pipeline)
    if problem is None and key is not None:
        learned[DVC_KEY] = key
    return problem


class _Engine:
    """The executor of a run, made when a stage first has to run (a run with nothing to do
    imports no kernel machinery, and a missing kernel matters only then). Owns what it makes."""

    def __init__(self, executor: Executor | str | None, kernel: str, jobs: int | None,
                 scheduler: str | None, prestart: int | None, shared_kernel: bool,
                 say: Progress) -> None:
        self.given = executor if executor is not None and not isinstance(executor, str) else None
        self.name = executor if isinstance(executor, str) else "local"
        self.kernel = kernel
        self.requested_jobs = jobs
        self.scheduler = scheduler
        self.prestart = prestart
        self.shared_kernel = shared_kernel
        self.say = say
        self._engine: Executor | None = None
        self._jobs: int | None = None

    def get(self) -> Executor:
        if self._engine is None:
            if self.given is not None:
                engine = self.given
            else:
                from .registry import EXECUTORS, ExecutorOptions, load

                factory = load(EXECUTORS, self.name)
                engine = factory(ExecutorOptions(
                    jobs=self.requested_jobs, scheduler=self.scheduler, prestart=self.prestart,
                    progress=self.say, shared_kernel=self.shared_kernel))
            self._engine = engine
            engine.check(self.kernel)
        return self._engine

    @property
    def jobs(self) -> int:
        if self._jobs is None:
            self._jobs = (self.requested_jobs if self.requested_jobs is not None
                          else max(1, int(getattr(self.get(), "slots", 1))))
        return self._jobs

    def close(self) -> None:
        """Close the executor made here (one given by the caller stays open)."""
        if self._engine is not None and self.given is None:
            self._engine.close()

    def stop(self) -> None:
        """Close the executor, also one given by the caller (the run is being abandoned)."""
        if self._engine is not None:
            self._engine.close()


def _check_data(pipeline: Pipeline, selected: set[str]) -> None:
    """Refuse to start when a data file a selected stage reads is missing and no stage of this
    run writes it: better now, naming stage and file, than as a FileNotFoundError in a kernel."""
    for dep in pipeline.deps:
        if not (pipeline.root / dep).exists():
            raise PipelineError(f"deps: {dep} does not exist", path=pipeline.path,
                                hint="create it, or remove it from the pipeline's deps")
    for stage in pipeline.stages:
        if stage.name not in selected:
            continue
        for dep in stage.deps:
            if (pipeline.root / dep).exists():
                continue
            producer = pipeline.producer(dep)
            if producer is None:
                raise PipelineError(
                    f"stage {stage.name} reads {dep}, which does not exist", path=pipeline.path,
                    hint="create it, or remove it from the stage's deps")
            if producer.name not in selected:
                raise PipelineError(
                    f"stage {stage.name} reads {dep}, which does not exist: stage "
                    f"{producer.name} writes it and is not part of this run",
                    path=pipeline.path, hint=f"run {producer.name} first (without --only)")


def _has_outputs(pipeline: Pipeline, stage: str) -> bool:
    return (pipeline.artifact_dir(stage) / "index.json").is_file()


class _Scheduler:
    def __init__(self, pipeline: Pipeline, values: Mapping[str, Any], state: State,
                 engine: _Engine, selected: set[str], forced: set[str], say: Progress) -> None:
        self.pipeline = pipeline
        self.values = values
        self.state = state
        self.engine = engine
        self.selected = selected
        self.forced = forced
        self.say = say
        self.status: dict[str, StageRun] = {}
        self.running: dict[Future, tuple[Stage, Fingerprint, str]] = {}
        self.prepared: set[str] = set()
        self.old_values: dict[str, Mapping[str, Any]] = {}  # a stage's outputs at its last run

    @property
    def jobs(self) -> int:
        return self.engine.jobs

    def run(self) -> list[StageRun]:
        pending = [s for s in self.pipeline.stages if s.name in self.selected]
        try:
            while pending or self.running:
                for stage in list(pending):
                    if self._dispatch(stage):
                        pending.remove(stage)
                self._prepare(pending)
                if self.running:
                    from concurrent.futures import FIRST_COMPLETED, wait

                    done, _ = wait(list(self.running), return_when=FIRST_COMPLETED)
                    for future in done:
                        self._finish(future)
                elif pending:  # nothing runs and nothing can start: cannot happen when valid
                    raise PipelineError(f"stage {pending[0].name} cannot start",
                                        path=self.pipeline.path)
        except BaseException:
            self.engine.stop()  # Ctrl-C, an error: no kernel outlives the run
            raise
        return [self.status[s.name] for s in self.pipeline.stages if s.name in self.status]

    def _upstream_state(self, stage: Stage) -> str:
        """"ready", "waiting" or "blocked" (an upstream stage failed or will not run)."""
        result = "ready"
        for name in stage.upstream:
            if name not in self.selected:
                continue  # --only: it ran before
            run = self.status.get(name)
            if run is None:
                result = "waiting"
            elif run.status in ("failed", "not run"):
                return "blocked"
        return result

    def _dispatch(self, stage: Stage) -> bool:
        """Start, skip or block ``stage`` if it can be decided now; True when decided."""
        upstream = self._upstream_state(stage)
        if upstream == "blocked":
            failed = [u for u in stage.upstream if u in self.status
                      and self.status[u].status in ("failed", "not run")]
            self._release(stage)
            self.status[stage.name] = StageRun(stage.name, "not run",
                                               f"{failed[0]} did not finish")
            return True
        if upstream == "waiting":
            return False
        parameters = stage_parameters(stage, self.values)
        fingerprint = self.state.fingerprint(stage, parameters)
        reason = "forced" if stage.name in self.forced else self.state.why_run(stage, fingerprint)
        if reason is None:
            self._release(stage)
            self.status[stage.name] = StageRun(
                stage.name, "skipped", "up to date", self.state.seconds(stage.name),
                _existing(self.pipeline.executed_notebook(stage.name)), None,
                _metrics(self.pipeline, stage.name))
            self.say(f"{stage.name}: up to date, skipped")
            return True
        if len(self.running) >= self.jobs:
            return False
        executor = self.engine.get()  # before anything changes: a missing kernel stops the run
        folder = self.pipeline.artifact_dir(stage.name)
        import shutil

        self.old_values[stage.name] = (load_index(folder) or {}).get("values", {})
        shutil.rmtree(folder, ignore_errors=True)  # no stale outputs survive a new run
        _ignore_in_git(folder.parent)
        self.state.forget(stage.name)
        job = self._job(stage)
        self.prepared.discard(stage.name)
        future = executor.submit(job)
        self.running[future] = (stage, fingerprint, reason)
        self.say(f"{stage.name}: running ({reason})")
        return True

    def _prepare(self, pending: list[Stage]) -> None:
        # Start kernels ahead for the stages that will probably run next: those that wait only
        # for stages running now or started ahead themselves (or for a free job slot). The
        # executor says how many it takes.
        ahead = {stage.name for stage, _, _ in self.running.values()} | self.prepared
        done = {name for name, run in self.status.items() if run.status in ("ran", "skipped")}
        for stage in pending:
            if stage.name in self.prepared:
                continue
            ups = [u for u in stage.upstream if u in self.selected]
            if not all(u in ahead or u in done for u in ups):
                continue
            if all(u in done for u in ups) and len(self.running) < self.jobs:
                continue  # it is decided right away (run or skipped) at the next dispatch
            if not self.engine.get().prepare(self._job(stage)):
                return
            self.prepared.add(stage.name)
            ahead.add(stage.name)

    def _release(self, stage: Stage) -> None:
        if stage.name in self.prepared:
            self.engine.get().release(stage.name)
            self.prepared.discard(stage.name)

    def _job(self, stage: Stage) -> StageJob:
        pipeline = self.pipeline
        parameters = dict(stage_parameters(stage, self.values))
        parameters["nb2pkg_stage"] = stage.name
        parameters["nb2pkg_inputs"] = {name: str(pipeline.artifact_dir(provider))
                                       for name, provider in stage.inputs}
        parameters["nb2pkg_outputs"] = str(pipeline.artifact_dir(stage.name))
        runs = pipeline.root / pipeline.runs
        return StageJob(
            stage=stage.name, notebook=pipeline.root / stage.notebook,
            output=pipeline.executed_notebook(stage.name), parameters=parameters,
            cwd=(pipeline.root / pipeline.workdir).resolve(),
            python_path=tuple((pipeline.root / p).resolve() for p in pipeline.python_path),
            kernel=pipeline.kernel,
            timeout=stage.timeout or pipeline.timeout, log=runs / "logs" / f"{stage.name}.log",
            upstream=tuple(u for u in stage.upstream if u in self.selected),
            warm=self._input_modules(stage))

    def _input_modules(self, stage: Stage) -> tuple[str, ...]:
        """The packages loading the stage's inputs imports, as the providers' indexes say (or
        said, for a provider running now): a hint for kernels started ahead."""
        modules: list[str] = []
        for name, provider in stage.inputs:
            index = load_index(self.pipeline.artifact_dir(provider))
            values = index.get("values", {}) if index else self.old_values.get(provider, {})
            entry = values.get(name)
            if not isinstance(entry, dict):
                continue
            # "pandas.DataFrame"; a builtin type has no dot; a module value names itself
            dotted = entry.get("type")
            if entry.get("format") == "module":
                dotted = f"{entry.get('module')}."
            top = dotted.split(".")[0] if isinstance(dotted, str) and "." in dotted else None
            if top and top.isidentifier() and top != "__main__" and top not in modules:
                modules.append(top)
        return tuple(modules)

    def _finish(self, future: Future) -> None:
        stage, fingerprint, reason = self.running.pop(future)
        outcome: StageOutcome = future.result()
        missing = self.state.missing_outs(stage) if outcome.ok else []
        if missing:
            # Recorded as a success, the stage would run again every time, and the stages
            # reading the file would fail later with a less helpful error.
            outcome = StageOutcome(stage.name, False, outcome.seconds, outcome.output, StageFailure(
                stage.name, outcome.output, f"it did not write {', '.join(missing)} (listed in "
                "its outs)", hint="write it in the stage, or remove it from outs in "
                f"{self.pipeline.path.name}"))
        if outcome.ok:
            metrics = _metrics(self.pipeline, stage.name)
            _write_stage_metrics(self.pipeline, stage, metrics)
            self.state.record(stage, fingerprint, outcome.seconds)
            self.status[stage.name] = StageRun(stage.name, "ran", reason, outcome.seconds,
                                               outcome.output, None, metrics)
            self.say(f"{stage.name}: done in {outcome.seconds:.1f} s")
        else:
            self.status[stage.name] = StageRun(stage.name, "failed", reason, outcome.seconds,
                                               outcome.output, outcome.failure, {})
            self.say(f"{stage.name}: FAILED: {outcome.failure}")


def _existing(path: Path) -> str | None:
    return str(path) if path.exists() else None


def _metrics(pipeline: Pipeline, stage: str) -> dict[str, Any]:
    index = load_index(pipeline.artifact_dir(stage)) or {}
    metrics = index.get("metrics")
    return dict(metrics) if isinstance(metrics, dict) else {}


def stage_metrics_path(pipeline: Pipeline, stage: str) -> Path:
    return pipeline.root / pipeline.artifacts / f"{stage}.metrics.json"


def _write_stage_metrics(pipeline: Pipeline, stage: Stage, metrics: Mapping[str, Any]) -> None:
    # One file per stage that declares or records metrics: what `dvc metrics` reads.
    import json

    from ..atomic import write_atomic

    path = stage_metrics_path(pipeline, stage.name)
    if metrics or stage.metrics:
        write_atomic(path, json.dumps(dict(metrics), indent=1, sort_keys=True) + "\n")
    elif path.exists():
        path.unlink()


def _ignore_in_git(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# values passed between pipeline stages (nb2pkg run)\n*\n",
                          encoding="utf-8")
