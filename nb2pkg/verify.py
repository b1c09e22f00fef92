"""Prove that refactored notebooks print what the originals print, on a real Jupyter kernel.

Normalization, comparison and execution live in ``nb2pkg.runtime.notebook_outputs`` (pure
functions apart from execution; the rules are in its docstring), which every generated project
carries as ``tests/_notebook_outputs.py``: its notebook test and ``nb2pkg verify`` apply the
same rules. This module adds what only nb2pkg does: nb2pkg's errors, recording the package calls
for regression tests, verifying a planned project before it is written, and naming the
extractions that may have caused a difference.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .errors import VerificationError
from .runtime import notebook_outputs
from .runtime.notebook_outputs import (  # noqa: F401 - nb2pkg.verify's public names
    RAISES_TAG, Comparison, Output, cell_agrees, compare, diff_lines, error_name,
    first_unexpected_error, normalize_text, outputs_of, raising_cells, source_cells,
    split_stderr)

Progress = Callable[[str], None]


class EnvironmentProblem(VerificationError):
    """The original notebook fails here (missing package, data file, ...): nothing to compare."""


@contextmanager
def _as_verification_errors(hint_for_setup: str | None = None) -> Iterator[None]:
    """The runtime's errors as nb2pkg's (one-line messages, exit codes)."""
    try:
        yield
    except notebook_outputs.OriginalFails as exc:
        raise EnvironmentProblem(exc.message, path=exc.path, cell=exc.cell,
                                 hint=exc.hint) from None
    except notebook_outputs.ExecutionStopped as exc:
        raise VerificationError(exc.message, path=exc.path,
                                hint="raise --timeout, or check the notebook runs on its own") from None
    except notebook_outputs.SetupFailed as exc:
        raise VerificationError(exc.message, path=exc.path, hint=hint_for_setup) from None
    except notebook_outputs.NotebookRunError as exc:
        raise VerificationError(exc.message, path=exc.path, cell=exc.cell, hint=exc.hint) from None


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True)
class NotebookVerification:
    original: str
    refactored: str
    equivalent: bool
    expected: tuple[Output, ...] = field(repr=False)
    actual: tuple[Output, ...] = field(repr=False)
    first_difference_cell: int | None = None
    suspects: tuple[str, ...] = ()  # extractions or moved definitions that may have caused it
    varying: tuple[int, ...] = ()  # cells whose outputs differ between two runs of the original
    calls: tuple[Any, ...] = field(default=(), repr=False)  # record.RecordedCall, when recording
    comparison: Comparison = field(default=Comparison(), repr=False)
    python: str | None = None  # the Python the recording kernel ran, when recording
    # Run again where only the project's dependencies can be imported (nb2pkg.isolation):
    # the dependencies.Dependency records it needed beyond them, and what still failed there.
    needs: tuple[Any, ...] = ()
    alone: str | None = None
    # Files below the original's folder the refactored notebook read while it ran, as
    # (path relative to that folder, POSIX; the original's cell, when known): with names built
    # at run time, static analysis does not see them all (``runtime/opened.py``).
    opened: tuple[tuple[str, int | None], ...] = ()
    # Values the pipeline could not save between two stages, as (the stage after the
    # boundary, variable, type, error): ``runtime/crossing.py``.
    uncrossable: tuple[tuple[str, str, str, str], ...] = ()
    # Errors the refactored notebook shows and runs on past, as (position of the cell in
    # the refactored notebook, "Name: message"): a cell tagged to raise, or a display
    # formatter that raised. papermill fails a whole run on any error output.
    errors_run_past: tuple[tuple[int, str], ...] = ()

    def describe(self, limit: int = 40) -> str:
        return notebook_outputs.describe(self.comparison, self.expected, self.actual,
                                         original=self.original, refactored=self.refactored,
                                         likely_causes=self.suspects, limit=limit)

    def diff(self) -> list[str]:
        return [] if self.equivalent else diff_lines(self.expected, self.actual, self.comparison)

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"original": self.original, "refactored": self.refactored,
                "equivalent": self.equivalent,
                "outputs_compared": c.compared,
                "first_difference_cell": self.first_difference_cell,
                "suspects": list(self.suspects), "varying_cells": sorted(set(self.varying)),
                "differing_cells": list(c.differing), "missing_warnings": list(c.missing_warnings),
                "added_warnings": list(c.added_warnings),
                "varying_warnings": list(c.varying_warnings), "diff": self.diff(),
                "dependencies_needed": [d.name for d in self.needs],
                "fails_with_only_its_dependencies": self.alone,
                "uncrossable": [{"stage": stage, "variable": name, "type": kind, "error": error}
                                for stage, name, kind, error in self.uncrossable]}


@dataclass(frozen=True)
class Verification:
    notebooks: tuple[NotebookVerification, ...]
    recorded_functions: tuple[str, ...] = ()  # the package functions whose calls were recorded

    @property
    def equivalent(self) -> bool:
        return all(n.equivalent for n in self.notebooks)

    def describe(self) -> str:
        return "\n".join(n.describe() for n in self.notebooks)

    def standalone_problems(self) -> list[str]:
        """For a written project (``nb2pkg verify``): what its refactored notebooks need beyond
        the dependencies its pyproject.toml lists, one line each (empty when they run alone)."""
        lines = []
        for n in self.notebooks:
            for needed in n.needs:
                lines.append(f"{n.refactored} needs `{needed.requirement}` when it runs (a library "
                             "it uses imports it), which pyproject.toml does not list: add it to "
                             "[project] dependencies")
            if n.alone:
                lines.append(f"{n.refactored}: with only the dependencies pyproject.toml lists "
                             f"installed, {n.alone}")
        return lines

    @property
    def calls(self) -> tuple[Any, ...]:
        return tuple(call for n in self.notebooks for call in n.calls)

    def to_dict(self) -> dict[str, Any]:
        return {"equivalent": self.equivalent, "notebooks": [n.to_dict() for n in self.notebooks],
                "recorded_calls": len(self.calls),
                "irreproducible_calls": [
                    {"function": c.function, "notebook": c.notebook, "cell": c.cell,
                     "reason": c.irreproducible}
                    for c in self.calls if c.irreproducible is not None]}


# ---------------------------------------------------------------------------------------------
# Execution on a real kernel


def read(path: Path) -> Any:
    """The notebook node as saved (with its saved outputs)."""
    with _as_verification_errors():
        return notebook_outputs.read(path)


def execute(path: Path, *, cwd: Path | None = None, python_path: Sequence[Path] = (),
            timeout: int = 600, setup: str | None = None) -> Any:
    """Execute a notebook on a real kernel (errors recorded, not raised); return the node.

    ``setup`` is code run first in the same kernel, in a cell removed again afterwards.
    """
    with _as_verification_errors():
        return notebook_outputs.execute(path, cwd=cwd, python_path=python_path,
                                        timeout=timeout, setup=setup)


def verify_notebook(original: Path, refactored: Path, *, python_path: Sequence[Path] = (),
                    timeout: int = 600, cwd: Path | None = None, progress: Progress | None = None,
                    label: str | None = None, refactored_label: str | None = None,
                    record: Sequence[str] = (),
                    boundaries: Mapping[int, tuple[str, tuple[str, ...]]] = {}
                    ) -> NotebookVerification:
    """Execute both notebooks and compare their normalized outputs.

    Raises ``EnvironmentProblem`` when the original itself fails here (see
    ``nb2pkg.runtime.notebook_outputs``). Relative paths are taken from the current working
    directory. ``record``: dotted names of package functions whose calls are recorded.
    ``boundaries``: where the refactored notebook's pipeline stages meet
    (``pipeline.stages.boundaries``), whose values are tried for ``uncrossable``.
    """
    from .record import runtime_call, setup_code

    python_path = [Path(p).absolute() for p in python_path]
    folder = Path(cwd or Path(original).parent).absolute()
    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-record-"))
    opened_file = scratch / "opened.txt"
    setup = runtime_call("opened", f"install({str(folder)!r}, {str(opened_file)!r})")
    recording = scratch / "calls" if record else None
    if recording is not None:
        recording.mkdir()
        setup += setup_code(record, recording)
    crossing_file = scratch / "crossing.txt"
    if boundaries:
        names = {ordinal: list(names) for ordinal, (_, names) in boundaries.items()}
        setup += runtime_call("crossing", f"install({str(crossing_file)!r}, {names!r})")
    try:
        with _as_verification_errors(hint_for_setup="rerun with --no-record"):
            result = notebook_outputs.compare_notebooks(
                original, refactored, cwd=cwd, python_path=python_path, timeout=timeout,
                setup=setup, progress=progress, original_label=label,
                refactored_label=refactored_label)
        calls: tuple = ()
        python = None
        if recording is not None:
            from .record import interpreter, load

            calls = tuple(load(recording, result.executed, Path(refactored).name))
            python = interpreter(recording)
        opened = _opened(opened_file, folder, result.executed,
                         exclude=[Path(original), Path(refactored), *python_path])
        uncrossable = _uncrossable(crossing_file, boundaries)
        errors_run_past = _errors_run_past(result.executed)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    comparison = result.comparison
    return NotebookVerification(result.original, result.refactored, comparison.equivalent,
                                result.expected, result.actual, comparison.first_difference_cell,
                                varying=comparison.varying, calls=calls, comparison=comparison,
                                python=python, opened=opened, uncrossable=uncrossable,
                                errors_run_past=errors_run_past)


def _errors_run_past(executed: Any) -> tuple[tuple[int, str], ...]:
    """Error outputs of cells the run went on after (a later code cell ran)."""
    found: list[tuple[int, str]] = []
    ran_after = False
    for position in range(len(executed.cells) - 1, -1, -1):
        cell = executed.cells[position]
        if cell.get("cell_type") != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if errors and ran_after:
            text = f"{errors[0].get('ename')}: {errors[0].get('evalue')}"
            found.append((position, "".join(c if c.isprintable() else " " for c in text)))
        ran_after = ran_after or cell.get("execution_count") is not None
    return tuple(reversed(found))


def _uncrossable(record: Path, boundaries: Mapping[int, tuple[str, tuple[str, ...]]]
                 ) -> tuple[tuple[str, str, str, str], ...]:
    """What ``runtime/crossing.py`` noted in ``record``, with the stage after each boundary."""
    try:
        lines = record.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ()
    found = []
    for line in lines:
        # The type and error come from the notebook's objects: printable text only.
        line = "".join(c if c.isprintable() or c == "\t" else "?" for c in line)
        ordinal, name, kind, error = (line.split("\t", 3) + ["", "", ""])[:4]
        if ordinal.isdigit() and int(ordinal) in boundaries:
            found.append((boundaries[int(ordinal)][0], name, kind, error))
    return tuple(found)


# Code, not data: imports the notebook makes, which nb2pkg.assets finds as local modules.
_CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pyd", ".ipynb")


def _opened(record: Path, folder: Path, executed: Any, *,
            exclude: Sequence[Path]) -> tuple[tuple[str, int | None], ...]:
    """What ``runtime/opened.py`` noted in ``record``: data files below ``folder``, relative
    to it, with the original's cell that read each (by execution count in ``executed``, the
    refactored node: nb2pkg.source_cell). Hidden files, code and ``exclude`` are left out."""
    import os

    try:
        lines = record.read_text(encoding="utf-8", errors="surrogateescape").splitlines()
    except OSError:
        return ()
    code = [c for c in executed.cells if c.get("cell_type") == "code"]
    cells = {c.get("execution_count"): c.get("metadata", {}).get("nb2pkg", {}).get("source_cell")
             for c in code}
    # The setup cell ran just before the first cell: what its count was then calibrates.
    first = min((c for c in cells if isinstance(c, int)), default=None)
    setup = lines.pop(0).partition("\t")[2] if lines and lines[0].startswith("setup\t") else ""
    offset = int(setup) - (first - 1) if setup.isdigit() and first is not None else 0
    real = os.path.realpath(folder)
    skipped = [os.path.realpath(p) for p in exclude]
    found: dict[str, int | None] = {}
    for line in lines:
        count, _, path = line.partition("\t")
        relative = os.path.relpath(path, real)
        parts = relative.split(os.sep)
        if relative.startswith("..") or any(p.startswith(".") for p in parts) \
                or path.endswith(_CODE_SUFFIXES) \
                or any(path == s or path.startswith(os.path.join(s, "")) for s in skipped):
            continue
        cell = cells.get(int(count) - offset) if count.isdigit() else None
        found.setdefault("/".join(parts), cell if isinstance(cell, int) else None)
    return tuple(found.items())


def package_functions(src: Path) -> list[str]:
    """Dotted names of the public top-level functions of the public modules under ``src``
    (not ``_stage_io.py``, which the stage notebooks use, not the notebooks)."""
    import ast

    found = []
    for module in sorted(Path(src).glob("*/*.py")):
        if module.name.startswith("_"):
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        found += [f"{module.parent.name}.{module.stem}.{node.name}" for node in tree.body
                  if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")]
    return found


def verify_paths(originals: Sequence[Path], project: Path, *, timeout: int = 600,
                 progress: Progress | None = None, record: bool = False,
                 alone: bool = True) -> Verification:
    """``nb2pkg verify``: originals against PROJECT/notebooks/<same file name>. With ``alone``,
    a refactored notebook that prints what its original prints runs once more where only the
    dependencies PROJECT/pyproject.toml lists can be imported (``run_alone``)."""
    project = Path(project)
    if not (project / "notebooks").is_dir():
        raise VerificationError("not a project generated by nb2pkg (no notebooks/ folder)",
                                path=project, hint="pass the folder given to `nb2pkg convert -o`")
    requirements = project_requirements(project) if alone else ()
    functions = tuple(package_functions(project / "src")) if record else ()
    results = []
    for original in originals:
        refactored = project / "notebooks" / Path(original).name
        if not refactored.exists():
            raise VerificationError(f"no refactored notebook {refactored.name} in {project}/notebooks",
                                    path=original, hint="pass the notebooks given to convert")
        result = verify_notebook(Path(original), refactored, python_path=[project / "src"],
                                 timeout=timeout, progress=progress, record=functions)
        if alone and result.equivalent:
            result = _alone_checked(result, refactored, str(refactored), requirements,
                                    cwd=Path(original).absolute().parent,
                                    python_path=[(project / "src").absolute()], timeout=timeout,
                                    progress=progress)
        results.append(result)
    return keep_reproducible(Verification(tuple(results), functions), project, timeout=timeout)


def project_requirements(project: Path) -> tuple[str, ...]:
    """The ``[project] dependencies`` of PROJECT/pyproject.toml (what installing it installs)."""
    import tomllib

    path = Path(project) / "pyproject.toml"
    try:
        with path.open("rb") as file:
            listed = tomllib.load(file).get("project", {}).get("dependencies", [])
    except FileNotFoundError:
        raise VerificationError("not a project generated by nb2pkg (no pyproject.toml)", path=project,
                                hint="pass the folder given to `nb2pkg convert -o`") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise VerificationError(f"cannot read pyproject.toml ({exc})", path=path,
                                hint="fix the file, or rerun with --no-isolated-run") from None
    if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
        raise VerificationError("[project] dependencies is not a list of requirement strings",
                                path=path, hint="fix the file, or rerun with --no-isolated-run")
    return tuple(listed)


def verify_project(plan: Any, files: Mapping[str, str | bytes], *, timeout: int = 600,
                   progress: Progress | None = None, record: bool = True,
                   cwd: Path | str | None = None, alone: bool = True) -> Verification:
    """Verify a planned project before it is written: render it to a scratch folder and run.
    Both notebooks run from ``cwd``, by default the original's own folder. With ``alone``, a
    refactored notebook that prints what its original prints runs once more where only the
    project's dependencies can be imported (``run_alone``)."""
    from .pipeline.stages import boundaries

    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-verify-"))
    try:
        for relative, content in files.items():
            target = scratch / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        functions = tuple(package_functions(scratch / "src")) if record else ()
        results = []
        splits = plan.pipeline.splits if plan.pipeline is not None else [None] * len(plan.notebooks)
        for notebook, split in zip(plan.notebooks, splits):
            result = verify_notebook(Path(notebook.original), scratch / "notebooks" / notebook.filename,
                                     python_path=[scratch / "src"], timeout=timeout,
                                     cwd=Path(cwd or Path(notebook.original).parent),
                                     progress=progress,
                                     refactored_label=f"notebooks/{notebook.filename}",
                                     record=functions,
                                     boundaries={} if split is None else boundaries(split, notebook.node))
            if not result.equivalent:
                result = _with_suspects(plan, notebook, result)
            elif alone:
                result = _alone_checked(result, scratch / "notebooks" / notebook.filename,
                                        f"notebooks/{notebook.filename}",
                                        [d.requirement for d in plan.dependencies],
                                        cwd=Path(cwd or Path(notebook.original).parent),
                                        python_path=[scratch / "src"], timeout=timeout,
                                        progress=progress)
            results.append(result)
        return keep_reproducible(Verification(tuple(results), functions), scratch,
                                 timeout=timeout)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _alone_checked(result: NotebookVerification, refactored: Path, label: str,
                   requirements: Sequence[str], *, cwd: Path, python_path: Sequence[Path],
                   timeout: int, progress: Progress | None) -> NotebookVerification:
    """``result`` with what ``run_alone`` found: the dependencies it added, and what still
    fails where only those and ``requirements`` are installed."""
    if progress is not None:
        progress(f"executing {label} with only the project's dependencies installed")
    needs, problem = run_alone(refactored, result.actual, requirements, cwd=cwd,
                               python_path=python_path, timeout=timeout,
                               varying=result.comparison)
    return replace(result, needs=needs, alone=problem)


# How many dependencies running alone may add before it gives up (each costs a run).
MAX_NEEDED = 5


def run_alone(refactored: Path, shown: Sequence[Output], requirements: Sequence[str], *,
              cwd: Path, python_path: Sequence[Path], timeout: int = 600,
              varying: Comparison = Comparison()) -> tuple[tuple[Any, ...], str | None]:
    """Run the refactored notebook where only what ``requirements`` install (with ipykernel)
    can be imported, as in a fresh environment with the project installed (see
    ``nb2pkg.isolation``). An error it did not show in ``shown`` (its outputs here) that names
    an installed module outside them, or an output it did not show that asks for one (a
    library's warning about an optional package), adds that module's distribution, and it
    runs again.

    Returns the dependencies added (``dependencies.Dependency``) and, when it still fails
    there, what fails (None when it runs). ``varying``: the verification's comparison, whose
    cells and warnings that vary between runs of the original are not blamed on this run.
    """
    from . import isolation
    from .dependencies import needed_at_run_time
    from .runtime.notebook_outputs import package_warnings_setup

    added: list[Any] = []
    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-alone-"))
    try:
        while True:
            attempt = len(added)
            found = isolation.closure([*requirements, *(d.requirement for d in added)])
            site = scratch / f"site-{attempt}"
            try:
                unlinked = isolation.link_distributions(site, found.distributions)
                node = notebook_outputs.execute(
                    refactored, cwd=cwd, timeout=timeout,
                    setup=package_warnings_setup(python_path),
                    kernel_manager=isolation.kernel_manager(site, python_path))
            except Exception as exc:  # no links (Windows), a kernel that does not start there
                return tuple(added), f"it did not run ({(str(exc).splitlines() or [repr(exc)])[0]})"
            outputs = outputs_of(node)
            error = first_unexpected_error(outputs, shown)
            # The module an error names; without one, a library may still say what it lacks
            # (a warning about an optional package) and carry on differently.
            module = (_asked_for(shown, outputs, found.outside) if error is None
                      else isolation.named_module(error.text, found.outside))
            needed = needed_at_run_time(module) if module else None
            if needed is not None and attempt < MAX_NEEDED:
                added.append(needed)
                continue
            if error is None:
                return tuple(added), _prints_differently(refactored, shown, outputs, varying,
                                                         cwd=cwd, python_path=python_path,
                                                         timeout=timeout)
            # A dependency installed in a way this run cannot reproduce (an editable
            # install) is the likelier cause than the project: say so.
            why = (f" ({', '.join(unlinked)}: installed here in a way this run cannot "
                   "copy, such as an editable install)" if unlinked else "")
            return tuple(added), f"cell {error.cell} raises {error.text}{why}"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _asked_for(shown: Sequence[Output], alone: Sequence[Output],
               outside: frozenset[str]) -> str | None:
    """A module outside the closure that an output only the isolated run printed asks for
    (``isolation.asked_for``): a warning or line the run with everything installed lacks."""
    from . import isolation

    printed = Counter((o.cell, o.kind, o.text) for o in shown)
    for output in alone:
        key = (output.cell, output.kind, output.text)
        if printed[key]:
            printed[key] -= 1
            continue
        module = isolation.asked_for(output.text, outside)
        if module is not None:
            return module
    return None


def _prints_differently(refactored: Path, shown: Sequence[Output], alone: Sequence[Output],
                        varying: Comparison, *, cwd: Path, python_path: Sequence[Path],
                        timeout: int) -> str | None:
    """What the run with only the project's dependencies printed differently from ``shown``
    without raising (a library that prints another way without an optional package), or None.
    What varies from run to run (unseeded randomness, clocks) is not blamed on the missing
    packages: cells and warnings already seen to vary (``varying``) are passed over, and any
    other difference is checked against one more run where everything is installed."""
    from .runtime.notebook_outputs import package_warnings_setup

    plain = compare(shown, alone)
    if plain.equivalent or (set(plain.differing) <= set(varying.varying) and
                            set(plain.missing_warnings) | set(plain.added_warnings)
                            <= set(varying.varying_warnings)):
        return None
    again = outputs_of(notebook_outputs.execute(refactored, cwd=cwd, python_path=python_path,
                                                timeout=timeout,
                                                setup=package_warnings_setup(python_path)))
    comparison = compare(shown, alone, again)
    if comparison.equivalent:
        return None
    diff = diff_lines(shown, alone, comparison)

    def first(sign: str) -> str:
        # The output is the notebook's: quoted as text (REPORT.md escapes it), never as code.
        line = next((line[1:] for line in diff if line[:1] == sign and line[:3] != sign * 3), "")
        return re.sub(r"^\[cell \d+ \w+\] ", "", line).strip()[:80].replace("`", "'")

    return (f"cell {comparison.first_difference_cell} prints differently (where everything is "
            f"installed: {first('-') or 'nothing'}; with only its dependencies: "
            f"{first('+') or 'nothing'})")


def keep_reproducible(verification: Verification, project: Path, *,
                      timeout: int = 600) -> Verification:
    """The verification with each recorded call that does not reproduce from its arguments
    alone marked ``irreproducible`` (it gets no test; REPORT.md says why).

    The calls are stored as the project will store them and replayed, all in one fresh
    process of the kernel's Python, run from ``project`` with its ``src`` on the path, as the
    generated tests run (``nb2pkg.runtime.recording.replay``: the generated test's own check).
    A result derived from state the arguments do not carry (matplotlib's current figure, a
    module-level counter) was right in the notebook and is not a regression test.
    """
    import json
    import os
    import subprocess
    import sys

    from .record import replay_code, stored_calls

    stored = stored_calls(verification.calls)
    if not stored or not verification.equivalent:  # no tests are written from a difference
        return verification
    python = next((n.python for n in verification.notebooks if n.python), None) or sys.executable
    folder = Path(tempfile.mkdtemp(prefix="nb2pkg-replay-"))
    try:
        for _, relative, files in stored:
            for name, content in files.items():
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths = sorted(str(folder / relative) for _, relative, _ in stored)  # the tests' order
        (folder / "paths.json").write_text(json.dumps(paths), encoding="utf-8")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            # Absolute: the replay runs from ``project``, so a relative DIR would name nothing.
            [os.path.abspath(Path(project) / "src"),
             *filter(None, [os.environ.get("PYTHONPATH")])]),
            "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            done = subprocess.run([python, "-c", replay_code(folder / "paths.json",
                                                             folder / "failures.json")],
                                  cwd=project, env=env, capture_output=True, text=True,
                                  timeout=timeout)
            failures = (json.loads((folder / "failures.json").read_text(encoding="utf-8"))
                        if done.returncode == 0 else None)
            crash = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        except subprocess.TimeoutExpired:
            failures, crash = None, f"the replay ran over {timeout} s"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    why = {}
    for call, relative, _ in stored:
        reason = (f"the replay process failed ({crash[:100]})" if failures is None
                  else failures.get(str(folder / relative)))
        if reason is not None:
            why[id(call)] = reason
    return replace(verification, notebooks=tuple(
        replace(n, calls=tuple(replace(c, irreproducible=why[id(c)]) if id(c) in why else c
                               for c in n.calls))
        for n in verification.notebooks))


def _with_suspects(plan: Any, notebook: Any, result: NotebookVerification) -> NotebookVerification:
    position = next(i for i, n in enumerate(plan.notebooks) if n is notebook)
    cell = result.first_difference_cell if result.first_difference_cell is not None else 10**9
    suspects = []
    for e in plan.extractions:
        cells = [c.occurrence.cell for c in e.calls if c.occurrence.notebook == position]
        if any(c <= cell for c in cells):
            suspects.append((max(c for c in cells if c <= cell),
                             f"extraction {e.group} → {e.function}() (called in cells {cells})"))
    for h in plan.hoisted:
        if h.notebook == position and h.cell <= cell:
            suspects.append((h.cell, f"{h.kind} `{h.name}` moved to {plan.name}.{h.module}"))
    for loop in plan.loops:
        if loop.notebook == position and loop.cell <= cell:
            where = f"in {plan.name}.{loop.function}" if loop.function else f"cell {loop.cell}"
            suspects.append((loop.cell, f"loop {loop.id} over {', '.join(loop.variables)} ({where})"))
    suspects.sort(key=lambda s: -s[0])
    return replace(result, suspects=tuple(text for _, text in suspects[:3]))
