"""Content hashes, and the state file that lets ``nb2pkg run`` skip stages that have not changed.

Like make (but with content, not times) and DVC: a stage is up to date when its notebook's code,
its parameter values, the input artifacts it loads, the pipeline's ``deps`` and its kernel hash to
what they were at its last successful run, and its outputs are still what that run wrote.

The state lives next to the pipeline file (``pipeline.yaml`` -> ``pipeline.state.json``). It is
written after every finished stage, atomically, so an interrupted or failed run resumes from the
stages that did not finish. A file hash is reused while the file's size and modification time are
unchanged, so large artifacts are not read again on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .artifacts import INDEX
from .spec import Pipeline, Stage

STATE_VERSION = 1
IGNORED_PARTS = frozenset({"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".git"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".partial")


def state_path(pipeline: Pipeline) -> Path:
    return pipeline.path.with_name(f"{pipeline.path.stem}.state.json")


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
    deps: str
    kernel: str

    def as_dict(self) -> dict[str, Any]:
        return {"notebook": self.notebook, "parameters": self.parameters,
                "inputs": dict(self.inputs), "deps": self.deps, "kernel": self.kernel}


class State:
    """The state file: per stage, the fingerprint and the output hash of its last successful run."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.path = state_path(pipeline)
        self._lock = threading.Lock()
        self._files: dict[str, list[Any]] = {}  # relative path -> [size, mtime_ns, sha256]
        self._stages: dict[str, dict[str, Any]] = {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        if data.get("version") == STATE_VERSION:
            self._stages = dict(data.get("stages", {}))
            self._files = dict(data.get("files", {}))
        self._deps: str | None = None

    # -- hashing --------------------------------------------------------------------------------
    def file_hash(self, path: Path) -> str | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        key = self._relative(path)
        with self._lock:
            cached = self._files.get(key)
        if cached and cached[0] == stat.st_size and cached[1] == stat.st_mtime_ns:
            return cached[2]
        sha = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                sha.update(block)
        value = sha.hexdigest()
        with self._lock:
            self._files[key] = [stat.st_size, stat.st_mtime_ns, value]
        return value

    def tree_hash(self, path: Path) -> str:
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
        return Fingerprint(notebook, digest(parameters), inputs, self.deps_hash(),
                           self.pipeline.kernel)

    def outputs_hash(self, stage: str) -> str:
        return self.tree_hash(self.pipeline.artifact_dir(stage))

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
        if recorded.get("outputs") != self.outputs_hash(stage.name):
            return "outputs changed or missing"
        return None

    # -- recording ------------------------------------------------------------------------------
    def record(self, stage: str, fingerprint: Fingerprint, seconds: float) -> None:
        entry = {"fingerprint": fingerprint.as_dict(), "outputs": self.outputs_hash(stage),
                 "seconds": round(seconds, 3)}
        with self._lock:
            self._stages[stage] = entry
        self.save()

    def forget(self, stage: str) -> None:
        with self._lock:
            self._stages.pop(stage, None)
        self.save()

    def seconds(self, stage: str) -> float | None:
        value = self._stages.get(stage, {}).get("seconds")
        return float(value) if isinstance(value, (int, float)) else None

    def save(self) -> None:
        with self._lock:
            live = {k for k in self._files if (self.pipeline.root / k).exists()}
            data = {"version": STATE_VERSION, "pipeline": self.pipeline.name,
                    "stages": dict(sorted(self._stages.items())),
                    "files": {k: self._files[k] for k in sorted(live)}}
            text = json.dumps(data, indent=1) + "\n"
            partial = self.path.with_name(self.path.name + ".partial")
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, self.path)


def load_index(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
