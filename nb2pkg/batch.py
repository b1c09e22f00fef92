"""Many notebooks at once: folders expanded, work spread over processes, one result per notebook.

A notebook that cannot be read is a result ("failed" with the error, or "refused" with the
reason), never the end of the run. Results keep the order of the inputs whatever the order in
which workers finish.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import Nb2pkgError, UnsupportedNotebook

Progress = Callable[[str], None]
STATUS_ORDER = ("converted", "analyzed", "refused", "failed")  # best to worst


@dataclass(frozen=True)
class NotebookResult:
    path: str
    status: str  # "analyzed", "converted", "refused" (not a notebook nb2pkg handles), "failed"
    reason: str | None = None
    output: str | None = None  # the package folder, for `convert --each`

    def to_dict(self) -> dict:
        return {"path": self.path, "status": self.status, "reason": self.reason,
                "output": self.output}


# Folders whose notebooks are never the user's own: tools' copies and caches, installed packages.
_NOT_SEARCHED = {"site-packages", "node_modules", "__pycache__"}


def expand(paths: Iterable[Path | str]) -> list[Path]:
    """Notebook paths, with folders replaced by the notebooks under them (sorted).

    A folder search leaves out hidden folders (``.ipynb_checkpoints``, ``.git``, ``.venv``),
    installed packages and generated projects (a folder holding ``.nb2pkg/``: converting the
    folder again must not take in the notebooks of its own earlier output).
    """
    found: list[Path] = []
    for text in paths:
        if not str(text).strip():
            raise Nb2pkgError("an empty path was given", hint="pass .ipynb files or folders "
                              "holding them (`.` for the current folder)")
        path = Path(text)
        if path.is_dir():
            inside = sorted(_notebooks_under(path))
            # A folder named x.ipynb holding no notebooks was meant as one: reading says it is a
            # folder, rather than "no notebooks found".
            found += inside or ([path] if path.suffix == ".ipynb" else [])
        else:
            found.append(path)
    return list(dict.fromkeys(found))


def _notebooks_under(folder: Path) -> Iterator[Path]:
    # Anything named *.ipynb that is not a folder is kept, so that a FIFO, a symlink loop or a
    # dangling link is reported as a failed notebook instead of vanishing (reading refuses them
    # without blocking). Linked folders are not followed.
    for parent, folders, files in os.walk(folder):
        if ".nb2pkg" in folders and parent != str(folder):
            folders.clear()  # a generated project inside the folder searched
            continue
        folders[:] = [f for f in folders if not f.startswith(".") and f not in _NOT_SEARCHED]
        yield from (Path(parent, name) for name in files if name.endswith(".ipynb"))


def failure(path: Path | str, error: Exception) -> NotebookResult:
    status = "refused" if isinstance(error, UnsupportedNotebook) else "failed"
    return NotebookResult(str(path), status, str(error))


def worst(results: Sequence[NotebookResult]) -> str:
    return max((r.status for r in results), key=STATUS_ORDER.index, default="converted")


def run_parallel(function: Callable, items: Sequence, jobs: int, progress: Progress | None,
                 label: Callable[[Any], str]) -> list:
    """``function`` over ``items`` in ``jobs`` processes (in this process when 1), in order."""
    say = progress or (lambda message: None)
    total = len(items)
    if jobs <= 1 or total <= 1:
        results = []
        for done, item in enumerate(items, 1):
            results.append(function(item))
            say(f"[{done}/{total}] {label(item)}")
        return results
    # Here, not at the top: multiprocessing's import is ~0.01 s of every single conversion.
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=min(jobs, total, os.cpu_count() or 1)) as pool:
        futures = [pool.submit(function, item) for item in items]
        for done, (item, future) in enumerate(zip(items, futures), 1):
            future.result()
            say(f"[{done}/{total}] {label(item)}")
        return [f.result() for f in futures]


def _read_and_analyze(path: Path):
    from .analysis import analyze_notebook
    from .notebook import read_notebook

    try:
        return analyze_notebook(read_notebook(path))
    except Nb2pkgError as error:
        return failure(path, error)


def analyze_many(paths: Sequence[Path], jobs: int = 1, progress: Progress | None = None):
    """Per-notebook analyses (position renumbered) and the failures, in input order."""
    outcomes = run_parallel(_read_and_analyze, list(paths), jobs, progress, str)
    analyses: list[Any] = []
    failures: list[NotebookResult] = []
    for outcome in outcomes:
        if isinstance(outcome, NotebookResult):
            failures.append(outcome)
        else:
            analyses.append(_renumber(outcome, len(analyses)))
    return analyses, failures


def _renumber(result, position: int):
    # Each worker numbered its notebook 0; clone groups and plans need the final position.
    if position == 0:
        return result
    return replace(result, cells=tuple(replace(c, notebook=position) for c in result.cells))
