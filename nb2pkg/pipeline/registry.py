"""Executors and exporters by name: the built-in ones, and plugins found through entry points.

As papermill finds its engines, a distribution adds an executor (a Slurm queue through
dask-jobqueue, Kubernetes, ...) or an exporter without forking nb2pkg, by declaring::

    [project.entry-points."nb2pkg.executors"]
    slurm = "nb2pkg_slurm:make_executor"        # (ExecutorOptions) -> Executor

    [project.entry-points."nb2pkg.exporters"]
    argo = "nb2pkg_argo:export"                 # (Path, ExportOptions) -> list[Path]

``nb2pkg run --executor slurm`` and ``nb2pkg export argo`` then find them. A built-in name wins
over a plugin of the same name. Nothing is imported until a name is looked up: ``nb2pkg run``
with the local executor reads no entry point and imports no optional dependency.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import PipelineError

EXECUTORS = "nb2pkg.executors"
EXPORTERS = "nb2pkg.exporters"

# "module:attribute" of the built-in ones, imported only when chosen.
BUILTIN: dict[str, dict[str, str]] = {
    EXECUTORS: {"local": "nb2pkg.pipeline.executor:make_local_executor",
                "dask": "nb2pkg.pipeline.dask_executor:make_executor"},
    EXPORTERS: {"dvc": "nb2pkg.pipeline.export:export_dvc",
                "airflow": "nb2pkg.pipeline.airflow:export_airflow"},
}
_KIND = {EXECUTORS: "executor", EXPORTERS: "exporter"}


@dataclass(frozen=True)
class ExecutorOptions:
    """What ``nb2pkg run`` tells an executor's factory."""

    jobs: int | None = None  # --jobs; None: the executor chooses (``Executor.slots`` if it has it)
    scheduler: str | None = None  # --scheduler: the address of an engine already running
    prestart: int | None = None  # kernels the local executor may start ahead
    progress: Callable[[str], None] | None = None
    shared_kernel: bool = False  # --shared-kernel (the local executor's; refused for others)


@dataclass(frozen=True)
class ExportOptions:
    """What ``nb2pkg export`` tells an exporter."""

    output: Path | None = None  # -o DIR; None: the pipeline's folder
    force: bool = False  # replace existing files
    python: str | None = None  # --python: the interpreter that runs papermill, where it applies


def names(group: str) -> list[str]:
    """The names available in ``group`` (``EXECUTORS`` or ``EXPORTERS``), built-in ones first."""
    found = list(BUILTIN[group])
    found += sorted(ep.name for ep in _entry_points(group) if ep.name not in found)
    return found


def load(group: str, name: str) -> Callable[..., Any]:
    """The factory (executors) or export function (exporters) called ``name``."""
    target = BUILTIN[group].get(name)
    if target is not None:
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)
    for entry in _entry_points(group):
        if entry.name == name:
            try:
                return entry.load()
            except Exception as exc:  # a broken plugin must not look like a bug of nb2pkg
                raise PipelineError(f"the {_KIND[group]} {name!r} ({entry.value}) cannot be "
                                    f"loaded: {type(exc).__name__}: {exc}",
                                    hint="reinstall the distribution that provides it") from None
    raise PipelineError(f"no {_KIND[group]} named {name!r} (available: {', '.join(names(group))})",
                        hint=f"install the plugin that declares it in the {group!r} entry points")


def _entry_points(group: str) -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def missing_extra(what: str, extra: str, exc: ImportError) -> PipelineError:
    """The one-line error of an optional dependency that is not installed."""
    module = getattr(exc, "name", None) or str(exc)
    return PipelineError(f"{what} needs {module}, which is not installed",
                         hint=f"pip install 'nb2pkg[{extra}]'")
