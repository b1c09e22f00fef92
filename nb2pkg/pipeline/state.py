"""Content hashes, the state file that lets ``nb2pkg run`` skip stages that have not changed, and
the lock that keeps two runs of one pipeline apart.

Like make (but with content, not times) and DVC: a stage is up to date when its notebook's code,
its parameter values, the input artifacts it loads, the data files it reads (its ``deps`` and the
pipeline's) and its kernel hash to what they were at its last successful run, and its outputs
(artifacts and ``outs``) are still what that run wrote.

The state lives next to the pipeline file (``pipeline.yaml`` -> ``pipeline.state.json``). It is
written after every finished stage, atomically, so an interrupted or failed run resumes from the
stages that did not finish. A file's hash is reused while its size, modification time, change
time (``st_ctime``: set by the kernel on every write, including ``os.utime``, so a file rewritten
with the same size and a restored mtime is not mistaken for the old one) and inode are unchanged,
and only when the file had not changed for a while when it was hashed (a write in the same
timestamp tick as the hashing would not show, as git's "racy clean" entries). Where ``st_ctime``
is not a change time (Windows) every file is read again on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..atomic import write_atomic
from ..errors import PipelineError
from .spec import Pipeline, Stage

STATE_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 had no change times: its file hashes are not reused
# A file changed less than this before it was hashed may change again without its timestamps
# showing it (coarse file-system clocks): its hash is not reused.
RACY_NS = 2_000_000_000
STAT_CACHE = os.name != "nt"  # st_ctime is the creation time on Windows, not a change time
IGNORED_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".git"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".partial")
FIX = "delete it: every stage then runs again"
# ``artifacts.INDEX`` (a test checks they agree), not imported from there: that module is the
# stage notebooks' (pickle and all), and a run with nothing to do only reads the index.
INDEX = "index.json"

# The shape of the state file. Checked on load, so that a damaged or foreign file is a one-line
# error instead of a traceback deep in the runner.
_STAGE_ENTRY = {
    "type": "object", "required": ["fingerprint", "outputs"],
    "properties": {
        "fingerprint": {"type": "object", "properties": {
            "notebook": {"type": "string"}, "parameters": {"type": "string"},
            "inputs": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            "deps": {"type": "string"}, "kernel": {"type": "string"},
            "files": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "outputs": {"type": "string"},
        "outs": {"type": "object", "additionalProperties": {"type": "string"}},
        "seconds": {"type": ["number", "null"]}}}
_FILE_ENTRY = {"type": "array", "minItems": 6, "maxItems": 6,
               "prefixItems": [{"type": "integer"}] * 4 + [{"type": "string"}, {"type": "integer"}]}
STATE_SCHEMA = {
    "type": "object", "required": ["version", "stages"],
    "properties": {
        "version": {"enum": list(READABLE_VERSIONS)},
        "pipeline": {"type": "string"},
        "stages": {"type": "object", "additionalProperties": _STAGE_ENTRY},
        "files": {"type": "object"}}}


def state_path(pipeline: Pipeline | Path) -> Path:
    path = pipeline.path if isinstance(pipeline, Pipeline) else Path(pipeline).absolute()
    return path.with_name(f"{path.stem}.state.json")


def read_cache(pipeline_path: Path | str) -> dict[str, Any]:
    """The ``cache`` of the state file beside ``pipeline_path`` ({} when there is none, or it
    cannot be read): answers worked out by earlier runs, each stored under a key that is a digest
    of everything the answer depends on, so an entry can be trusted without the run lock and
    before the pipeline file is validated (``State.cache`` is the same, read under the lock)."""
    try:
        data = json.loads(state_path(Path(pipeline_path)).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    cache = data.get("cache") if isinstance(data, dict) else None
    return dict(cache) if isinstance(cache, dict) else {}


def code_stamp(*files: Path) -> str | None:
    """A digest of the files of nb2pkg whose code decides a cached answer (None when one is
    missing: then nothing is cached). Part of cache keys, so that another nb2pkg (or an edited
    checkout) never reuses an answer the old code gave."""
    sha = hashlib.sha256()
    for file in files:
        try:
            sha.update(file.read_bytes())
        except OSError:
            return None
        sha.update(b"\0")
    return sha.hexdigest()


def template_file(name: str) -> Path:
    """A file of nb2pkg's ``templates/`` (``templating.templates_dir()``, which this does not
    import: a run with nothing to do avoids ``importlib.resources`` and Jinja)."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "templates" / name
    return packaged if packaged.is_file() else package.parent / "templates" / name


def lock_path(pipeline: Pipeline) -> Path:
    return pipeline.path.with_name(f"{pipeline.path.stem}.run.lock")


def notebook_code(path: Path) -> list[Any]:
    """What of a notebook decides its results: cell types, sources and tags (not outputs)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for cell in data.get("cells", []):
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        cells.append([cell.get("cell_type"), source, sorted(cell.get("metadata", {}).get("tags", []))])
    return cells


def digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    """What a stage's results depend on, hashed part by part (to say what changed)."""

    notebook: str
    parameters: str
    inputs: Mapping[str, str | None]  # None: the provider has not saved it
    deps: str  # the pipeline's deps, together
    kernel: str
    files: Mapping[str, str] = field(default_factory=dict)  # the stage's own deps: path -> hash

    def as_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "parameters": self.parameters,
                "inputs": dict(self.inputs), "deps": self.deps, "kernel": self.kernel,
                "files": dict(self.files)}


class State:
    """The state file: per stage, the fingerprint and the output hashes of its last successful
    run; per file, its hash and the stat that lets the next run reuse it.

    ``verify=True`` (``nb2pkg run --force``) reads every file again instead of reusing hashes
    recorded by earlier runs. Raises ``PipelineError`` when the state file exists but is not one
    this version of nb2pkg can read.
    """

    def __init__(self, pipeline: Pipeline, *, verify: bool = False) -> None:
        self.pipeline = pipeline
        self.path = state_path(pipeline)
        self._lock = threading.Lock()
        self._files: dict[str, list[Any]] = {}  # relative path -> [size, mtime, ctime, inode,
        #                                           sha256, when hashed (ns)]
        self._stages: dict[str, dict[str, Any]] = {}
        self._deps: str | None = None
        # Answers of earlier runs by digest (``read_cache``): the pipeline file's validation, the
        # dvc.yaml comparison, the report of a run with nothing to do. Written by ``save``.
        self.cache: dict[str, Any] = {}
        self._saved_cache: dict[str, Any] = {}
        self._hashed = False  # a file was hashed since the state was read or saved
        data = self._read()
        if data is None:
            return
        self._stages = dict(data["stages"])
        cache = data.get("cache")
        if isinstance(cache, dict):
            self.cache = dict(cache)
            self._saved_cache = dict(cache)
        if data["version"] == STATE_VERSION and STAT_CACHE and not verify:
            self._files = {k: v for k, v in data.get("files", {}).items()
                           if _valid_file_entry(v)}

    def _read(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise PipelineError(f"cannot read the state file: "
                                f"{getattr(exc, 'strerror', None) or exc}", path=self.path,
                                hint=FIX) from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PipelineError(f"the state file is not valid JSON ({exc})", path=self.path,
                                hint=FIX) from None
        if _plainly_valid(data):
            return data  # the common case, without importing jsonschema (0.1-0.5 s)
        import jsonschema

        error = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(STATE_SCHEMA).iter_errors(data))
        if error is not None:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
            what = ("has a version this nb2pkg does not read" if list(error.path) == ["version"]
                    else "is not a state file of this nb2pkg")
            raise PipelineError(f"the state file {what}: {where.lstrip('.') or 'top level'}: "
                                f"{error.message}", path=self.path, hint=FIX)
        return data

    # -- hashing --------------------------------------------------------------------------------
    def file_hash(self, path: Path) -> str | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = self._relative(path)
        now = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
        with self._lock:
            cached = self._files.get(key)
        if cached and cached[:4] == now and cached[5] - max(now[1], now[2]) > RACY_NS:
            return cached[4]
        hashed_at = time.time_ns()
        sha = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(block)
        except OSError as exc:
            raise PipelineError(f"cannot read {key}: {exc.strerror or exc}",
                                path=self.pipeline.path) from None
        value = sha.hexdigest()
        if STAT_CACHE:
            with self._lock:
                self._files[key] = [*now, value, hashed_at]
                self._hashed = True
        return value

    def tree_hash(self, path: Path) -> str:
        """The content of a file, or of a folder (every file, sorted, with its relative name)."""
        if path.is_file():
            return self.file_hash(path) or "missing"
        if not path.is_dir():
            return "missing"
        entries = []
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d not in IGNORED_PARTS and not d.endswith(".egg-info"))
            for name in sorted(files):
                if name.endswith(IGNORED_SUFFIXES):
                    continue
                file = Path(root) / name
                entries.append([file.relative_to(path).as_posix(), self.file_hash(file)])
        return digest(entries)

    def _relative(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.pipeline.root.resolve()).as_posix()
        except ValueError:
            return str(path.resolve())

    # -- fingerprints ---------------------------------------------------------------------------
    def deps_hash(self) -> str:
        if self._deps is None:
            self._deps = digest([[d, self.tree_hash(self.pipeline.root / d)]
                                 for d in self.pipeline.deps])
        return self._deps

    def fingerprint(self, stage: Stage, parameters: Mapping[str, Any]) -> Fingerprint:
        notebook = digest(notebook_code(self.pipeline.root / stage.notebook))
        inputs: dict[str, str | None] = {}
        indexes: dict[str, Any] = {}
        for name, provider in stage.inputs:
            if provider not in indexes:
                indexes[provider] = load_index(self.pipeline.artifact_dir(provider))
            entry = (indexes[provider] or {}).get("values", {}).get(name)
            if entry is None:
                inputs[name] = None
            elif entry.get("absent"):
                inputs[name] = "absent"
            elif entry.get("format") == "module":
                inputs[name] = f"module:{entry['module']}"
            else:
                inputs[name] = self.file_hash(self.pipeline.artifact_dir(provider) / entry["file"])
        files = {dep: self.tree_hash(self.pipeline.root / dep) for dep in stage.deps}
        return Fingerprint(notebook, digest(parameters), inputs, self.deps_hash(),
                           self.pipeline.kernel, files)

    def outputs_hash(self, stage: str) -> str:
        return self.tree_hash(self.pipeline.artifact_dir(stage))

    def outs_hashes(self, stage: Stage) -> dict[str, str]:
        return {out: self.tree_hash(self.pipeline.root / out) for out in stage.outs}

    def missing_outs(self, stage: Stage) -> list[str]:
        return [out for out in stage.outs if not (self.pipeline.root / out).exists()]

    def why_run(self, stage: Stage, fingerprint: Fingerprint) -> str | None:
        """None when ``stage`` is up to date, else the reason to run it."""
        recorded = self._stages.get(stage.name)
        if recorded is None:
            return "no successful run recorded"
        if any(value is None for value in fingerprint.inputs.values()):
            return "inputs missing"
        old = recorded.get("fingerprint", {})
        new = fingerprint.as_dict()
        for part, label in (("notebook", "notebook changed"), ("parameters", "parameters changed"),
                            ("inputs", "inputs changed"), ("deps", "dependencies changed"),
                            ("kernel", "kernel changed")):
            if old.get(part) != new[part]:
                return label
        changed = [d for d in stage.deps if old.get("files", {}).get(d) != new["files"][d]]
        if changed or set(old.get("files", {})) != set(new["files"]):
            return f"data changed: {', '.join(changed) or 'deps'}"
        if recorded.get("outputs") != self.outputs_hash(stage.name):
            return "outputs changed or missing"
        missing = self.missing_outs(stage)
        if missing:
            return f"outs missing: {', '.join(missing)}"
        if recorded.get("outs", {}) != self.outs_hashes(stage):
            return "outs changed"
        return None

    # -- recording ------------------------------------------------------------------------------
    def record(self, stage: Stage, fingerprint: Fingerprint, seconds: float) -> None:
        entry = {"fingerprint": fingerprint.as_dict(), "outputs": self.outputs_hash(stage.name),
                 "outs": self.outs_hashes(stage), "seconds": round(seconds, 3)}
        with self._lock:
            self._stages[stage.name] = entry
        self.save()

    def forget(self, stage: str) -> None:
        with self._lock:
            self._stages.pop(stage, None)
        self.save()

    def seconds(self, stage: str) -> float | None:
        value = self._stages.get(stage, {}).get("seconds")
        return float(value) if isinstance(value, (int, float)) else None

    def save_if_changed(self) -> None:
        """Write the state file if ``cache`` changed, or a file was hashed, since it was read or
        saved. (A run with nothing to do that had to hash files -- the artifacts of the run
        before, written too shortly before they were hashed to be trusted then -- records the
        hashes, so that the next one reads no file again.)"""
        if self.cache != self._saved_cache or self._hashed:
            self.save()

    def save(self) -> None:
        with self._lock:
            live = {k for k in self._files if (self.pipeline.root / k).exists()}
            data = {"version": STATE_VERSION, "pipeline": self.pipeline.name,
                    "stages": dict(sorted(self._stages.items())),
                    "files": {k: self._files[k] for k in sorted(live)},
                    "cache": dict(sorted(self.cache.items()))}
            self._saved_cache = dict(self.cache)
            self._hashed = False
            text = json.dumps(data, indent=1) + "\n"
            try:
                write_atomic(self.path, text)
            except OSError as exc:
                raise PipelineError(f"cannot write the state file: {exc.strerror or exc}",
                                    path=self.path,
                                    hint="the pipeline's folder must be writable") from None


def _plainly_valid(data: Any) -> bool:
    """True only for data that ``STATE_SCHEMA`` accepts (checked by hand, as state files written
    by nb2pkg look). Anything else goes to jsonschema, which accepts it or says what is wrong."""

    def text(value: Any) -> bool:
        return isinstance(value, str)

    def mapping_of(value: Any, check: Callable[[Any], bool]) -> bool:
        return isinstance(value, dict) and all(check(v) for v in value.values())

    def entry(value: Any) -> bool:
        if not isinstance(value, dict) or not text(value.get("outputs")):
            return False
        fingerprint = value.get("fingerprint")
        if not isinstance(fingerprint, dict):
            return False
        for key in ("notebook", "parameters", "deps", "kernel"):
            if key in fingerprint and not text(fingerprint[key]):
                return False
        if "inputs" in fingerprint and not mapping_of(fingerprint["inputs"],
                                                      lambda v: v is None or text(v)):
            return False
        if "files" in fingerprint and not mapping_of(fingerprint["files"], text):
            return False
        if "outs" in value and not mapping_of(value["outs"], text):
            return False
        seconds = value.get("seconds")
        return seconds is None or (isinstance(seconds, (int, float))
                                   and not isinstance(seconds, bool))

    return (isinstance(data, dict) and type(data.get("version")) is int
            and data["version"] in READABLE_VERSIONS
            and ("pipeline" not in data or text(data["pipeline"]))
            and ("files" not in data or isinstance(data["files"], dict))
            and mapping_of(data.get("stages"), entry))


def _valid_file_entry(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 6 and isinstance(value[4], str)
            and all(isinstance(v, int) and not isinstance(v, bool) for i, v in enumerate(value)
                    if i != 4))


def load_index(folder: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("values", {}), dict) else None


# -- one run at a time --------------------------------------------------------------------------
class RunLock:
    """An exclusive lock on one pipeline (``pipeline.run.lock`` beside it) for a whole run.

    Two runs of one pipeline would write the same artifacts, executed notebooks and state file.
    The lock is the operating system's (``flock``; ``msvcrt.locking`` on Windows), so it goes away
    with the process that held it, even when that process is killed: there is never a stale lock
    to delete by hand. The file stays; it names the last holder (pid, start time) for the message.
    """

    def __init__(self, pipeline: Pipeline, *, wait: bool = False,
                 progress: Callable[[str], None] | None = None) -> None:
        self.pipeline = pipeline
        self.path = lock_path(pipeline)
        self.wait = wait
        self.progress = progress or (lambda message: None)
        self._handle: Any = None

    def __enter__(self) -> "RunLock":
        try:
            handle = open(self.path, "a+", encoding="utf-8")
        except OSError as exc:
            raise PipelineError(f"cannot create the lock file: {exc.strerror or exc}",
                                path=self.path,
                                hint="the pipeline's folder must be writable") from None
        try:
            if not _try_lock(handle):
                holder = _holder(self.path)
                if not self.wait:
                    raise PipelineError(
                        f"another `nb2pkg run` of this pipeline is running ({holder})",
                        path=self.pipeline.path,
                        hint="wait until it has finished, or pass --wait to queue behind it")
                self.progress(f"waiting for another run of this pipeline to finish ({holder})")
                while not _try_lock(handle):
                    time.sleep(0.2)
            handle.seek(0)
            handle.truncate()
            handle.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        return self

    def __exit__(self, *exc_info: Any) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            _unlock(handle)
            handle.close()


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:  # Windows: the locked region cannot be read
        text = ""
    return text or "pid unknown"


if os.name == "nt":  # pragma: no cover - not exercised on the POSIX test machines
    import msvcrt

    def _try_lock(handle: Any) -> bool:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True

    def _unlock(handle: Any) -> None:
        handle.seek(0)
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            pass
else:
    import fcntl

    def _try_lock(handle: Any) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(handle: Any) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
