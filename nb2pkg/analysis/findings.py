"""Hygiene findings a reviewer wants before a notebook becomes software. Each names cell and line."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from ..notebook import Notebook
from .dataflow import BUILTIN_NAMES, DataFlow
from .parse import ParsedCell, dotted_name


@dataclass(frozen=True)
class Finding:
    code: str  # stable identifier, e.g. "hidden-state"; documented in docs/json.md
    message: str
    notebook: str
    cell: int | None = None  # cell index (0-based, as in the notebook JSON)
    line: int | None = None  # 1-based line in the cell
    hint: str | None = None


# How much a finding matters, for `nb2pkg check --severity`: "error" is code that fails or
# cannot be converted, "warning" a result that differs elsewhere (another machine, another
# run), "info" tidiness. Codes not listed (new ones) count as warnings.
SEVERITY = {
    "unparseable-cell": "error", "use-before-define": "error", "error-in-stage": "error",
    "hidden-state": "warning", "absolute-path": "warning", "unseeded-random": "warning",
    "unknown-import": "warning", "pip-install-unparsed": "warning", "needs-more": "warning",
    "unused-import": "info", "redefined": "info", "untagged-parameters": "info",
    "pip-install": "info", "kernel-replaced": "info", "package-renamed": "info",
    "run-dependency": "info",
}


def severity_of(code: str) -> str:
    return SEVERITY.get(code, "warning")


# Sampling functions whose results change from run to run unless a seed is set first.
_NUMPY_RANDOM = {"rand", "randn", "randint", "random", "random_sample", "choice", "shuffle",
                 "permutation", "normal", "uniform", "binomial", "poisson", "exponential", "beta",
                 "gamma", "multinomial", "standard_normal", "integers"}
_PY_RANDOM = {"random", "randint", "choice", "choices", "shuffle", "sample", "uniform", "gauss",
              "randrange", "normalvariate"}
_NEEDS_RANDOM_STATE = {"train_test_split", "KMeans", "RandomForestClassifier",
                       "RandomForestRegressor", "GradientBoostingClassifier",
                       "GradientBoostingRegressor", "ShuffleSplit", "StratifiedShuffleSplit",
                       "MLPClassifier", "MLPRegressor", "TSNE", "ExtraTreesClassifier",
                       "ExtraTreesRegressor", "DecisionTreeClassifier", "DecisionTreeRegressor"}
_USER_PATH = re.compile(r"^(?:/(?:home|Users|mnt|media|root)/|[A-Za-z]:[\\/]|~[/\\]|/content/drive)")


def findings(notebook: Notebook, cells: tuple[ParsedCell, ...], flow: DataFlow) -> list[Finding]:
    """All findings of one notebook, in cell order within each kind."""
    name = str(notebook.path)
    found: list[Finding] = []
    found += _hidden_state(notebook, name)
    found += _parameters(notebook, cells, name)
    for cell in cells:
        if cell.opaque:
            found.append(Finding("unparseable-cell", f"cell does not parse ({cell.error}); it is "
                                 "kept verbatim and nothing in it is refactored", name, cell.cell,
                                 hint="fix the syntax error to let nb2pkg refactor it"))
        for magic in cell.masked.magics:
            if magic.name == "pip" and " install" in magic.text:
                packages = [w for w in magic.text.split("install", 1)[1].split()
                            if not w.startswith("-")]
                found.append(Finding("pip-install", f"`{magic.text.strip()}` installs packages at "
                                     "run time", name, cell.cell, magic.line,
                                     hint="declare " + (", ".join(packages) or "them")
                                     + " as dependencies (the generated pyproject.toml does)"))
    found += _use_before_define(flow, cells, name)
    walked = {cell.cell: _walk(cell.nodes) for cell in cells if cell.tree is not None}
    found += _randomness(cells, walked, name)
    found += _paths(cells, walked, name)
    found += _unused_imports(cells, flow, walked, name)
    found += _redefinitions(cells, name)
    return found


def _hidden_state(notebook: Notebook, name: str) -> list[Finding]:
    counts = [(c.index, c.execution_count) for c in notebook.code_cells if c.source.strip()]
    executed = [(i, n) for i, n in counts if n is not None]
    if not executed:
        return []
    result = []
    for (_, previous), (index, count) in zip(executed, executed[1:]):
        if count <= previous:
            result.append(Finding("hidden-state", f"cells were run out of order (execution count "
                                  f"{count} after {previous})", name, index,
                                  hint="restart the kernel and run all cells before converting"))
            break
    missing = [i for i, n in counts if n is None]
    if missing:
        result.append(Finding("hidden-state", f"{len(missing)} code cell(s) have never been run "
                              "while others have", name, missing[0],
                              hint="saved outputs may not match the code; run all cells"))
    return result


def _parameters(notebook: Notebook, cells: tuple[ParsedCell, ...], name: str) -> list[Finding]:
    if notebook.parameters_cell is not None:
        return []
    for cell in cells[:5]:
        tree = cell.tree
        if tree is None or not tree.body:
            continue
        if all(isinstance(s, ast.Assign) and len(s.targets) == 1
               and isinstance(s.targets[0], ast.Name) and _is_literal(s.value) for s in tree.body):
            return [Finding("untagged-parameters", "this cell looks like a parameters cell but is "
                            "not tagged `parameters`", name, cell.cell,
                            hint="add the cell tag `parameters` so papermill and nb2pkg pipelines "
                            "can set these values")]
    return []


def _is_literal(node: ast.expr) -> bool:
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


# Statements and magics that bind names the analysis cannot list: `from x import *`, `%run
# script.py` (the script's globals), `%store -r` (stored variables), exec() and globals()[...].
_UNSEEN_BINDINGS = frozenset({"`import *`", "`exec()`", "`globals()`"})
_UNSEEN_MAGICS = re.compile(r"^%{1,2}(?:run\b|store\s+-r\b)")


def _binds_unseen_names(cell: ParsedCell) -> bool:
    return (cell.io is not None and any(d in _UNSEEN_BINDINGS for d in cell.io.dynamic)) or any(
        _UNSEEN_MAGICS.match(m.text.lstrip()) for m in cell.masked.magics)


def _use_before_define(flow: DataFlow, cells: tuple[ParsedCell, ...], name: str) -> list[Finding]:
    result = []
    unseen = False  # some cell so far may have bound any name
    for cell in cells:
        unseen = unseen or _binds_unseen_names(cell)
        if unseen:
            continue  # a missing name may come from there: nothing to claim
        for use in flow.inputs.get(cell.cell, ()):
            if use.provider is not None:
                continue
            later = [c for c in flow.defined_in.get(use.name, ()) if c > cell.cell]
            if later:
                message = f"`{use.name}` is used before the cell that defines it (cell {later[0]})"
                hint = "move the definition up; this only worked because cells ran out of order"
            else:
                message = f"`{use.name}` is never defined in this notebook"
                hint = "define it, or import it; running top to bottom raises NameError"
            result.append(Finding("use-before-define", message, name, cell.cell, use.line, hint))
    return result


@dataclass
class _Walked:
    """What the node-level findings need from one cell, gathered in a single walk of its tree."""

    calls: list[ast.Call]  # in ast.walk order
    strings: list[ast.Constant]  # string constants
    last_load: dict[str, tuple[int, int]]  # name -> (line, column) of its last read


def _walk(nodes: list[ast.AST]) -> _Walked:
    """``nodes``: the cell's (``ParsedCell.nodes``)."""
    walked = _Walked([], [], {})
    last_load = walked.last_load
    for node in nodes:
        kind = type(node)
        if kind is ast.Name:
            if type(node.ctx) is ast.Load:  # type: ignore[attr-defined]
                at = (node.lineno, node.col_offset)  # type: ignore[attr-defined]
                if at > last_load.get(node.id, (0, 0)):  # type: ignore[attr-defined]
                    last_load[node.id] = at  # type: ignore[attr-defined]
        elif kind is ast.Call:
            walked.calls.append(node)  # type: ignore[arg-type]
        elif kind is ast.Constant and isinstance(node.value, str):  # type: ignore[attr-defined]
            walked.strings.append(node)  # type: ignore[arg-type]
    return walked


def _randomness(cells: tuple[ParsedCell, ...], walked: dict[int, _Walked],
                name: str) -> list[Finding]:
    seeded = False
    result = []
    for cell in cells:
        if cell.tree is None:
            continue
        for node in walked[cell.cell].calls:
            dotted = dotted_name(node.func)
            head, _, last = dotted.rpartition(".")
            if last == "seed" or last == "manual_seed":
                seeded = True
                continue
            keywords = {k.arg for k in node.keywords}
            unseeded = (
                (head in {"np.random", "numpy.random"} and last in _NUMPY_RANDOM and not seeded)
                or (head == "random" and last in _PY_RANDOM and not seeded)
                or (last == "default_rng" and not node.args and not node.keywords)
                or (last in _NEEDS_RANDOM_STATE and "random_state" not in keywords
                    and not _no_shuffle(node))
            )
            if unseeded:
                result.append(Finding("unseeded-random", f"`{dotted}(...)` gives different results "
                                      "on every run", name, cell.cell, node.lineno,
                                      hint="set a seed (np.random.default_rng(seed), random_state="
                                      "seed) so runs can be compared and tests recorded"))
    return result


def _no_shuffle(call: ast.Call) -> bool:
    # train_test_split(..., shuffle=False) splits rows in order: nothing random to seed.
    return any(k.arg == "shuffle" and isinstance(k.value, ast.Constant) and k.value.value is False
               for k in call.keywords)


def _paths(cells: tuple[ParsedCell, ...], walked: dict[int, _Walked], name: str) -> list[Finding]:
    result = []
    for cell in cells:
        if cell.tree is None:
            continue
        for node in walked[cell.cell].strings:
            if isinstance(node.value, str) and _USER_PATH.match(node.value) \
                    and "\n" not in node.value:
                result.append(Finding("absolute-path", f"path {node.value!r} only exists on one "
                                      "machine", name, cell.cell, node.lineno,
                                      hint="make it a parameter or a path relative to the project"))
    return result


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _unused_imports(cells: tuple[ParsedCell, ...], flow: DataFlow, walked: dict[int, _Walked],
                    name: str) -> list[Finding]:
    """Top-level imports whose binding no read can reach, running the cells top to bottom.

    A binding is read when the same cell reads the name after the import statement, or a later
    cell reads it before binding it itself (the scope's free reads) while no cell in between
    surely rebinds it. Reads that may happen at any time count for every import of the name:
    function bodies (they run when called), magics (`%timeit np.zeros(3)` reads `np` as text)
    and reads in earlier cells that nothing provides (the notebook ran out of order; that is
    reported as use-before-define, and removing the import would only make it worse).
    """
    anytime: set[str] = set()
    for cell in cells:
        if cell.io is not None:
            anytime |= cell.io.deferred_reads
        for magic in cell.masked.magics:
            anytime.update(_WORD.findall(magic.text))
    for uses in flow.inputs.values():
        anytime.update(use.name for use in uses if use.provider is None)

    # (cell, line, bound name) of imports whose binding may still be read, per name
    reaching: dict[str, list[tuple[int, int, str]]] = {}
    used: set[tuple[int, int, str]] = set()
    rebound: dict[tuple[int, int, str], int] = {}  # import -> the cell that surely rebinds it
    candidates: list[tuple[int, int, str]] = []
    for cell in cells:
        if cell.tree is None or cell.io is None:
            continue
        for read in cell.io.reads:
            for site in reaching.pop(read, ()):
                used.add(site)
        last_load = walked[cell.cell].last_load
        sites: dict[str, list[tuple[int, int, str]]] = {}
        for node in cell.tree.body:
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue  # a compiler directive for the cell, not a name to read
            end = (node.end_lineno or node.lineno, node.end_col_offset or 0)
            for alias in node.names:
                # `import a.b` binds `a`; reading `a.b.c` reads `a`.
                bound = alias.asname or alias.name.split(".")[0]
                if alias.name == "*":
                    continue
                site = (cell.cell, node.lineno, bound)
                candidates.append(site)
                if bound in anytime or last_load.get(bound, (0, 0)) > end:
                    used.add(site)
                else:
                    sites.setdefault(bound, []).append(site)
        for written in cell.io.writes:
            if written in cell.io.definite_writes:
                # Surely rebound: earlier imports no longer reach any read.
                for site in reaching.pop(written, ()):
                    rebound[site] = cell.cell
            if written in sites:
                reaching.setdefault(written, []).extend(sites[written])
    result = []
    for site in candidates:
        if site in used:
            continue
        index, line, bound = site
        later = f" (cell {rebound[site]} binds it again first)" if site in rebound else ""
        result.append(Finding("unused-import", f"`{bound}` is imported but never used{later}",
                              name, index, line, hint="remove the import"))
    return result


def _redefinitions(cells: tuple[ParsedCell, ...], name: str) -> list[Finding]:
    first: dict[str, int] = {}
    result = []
    for cell in cells:
        if cell.io is None:
            continue
        for defined in cell.io.defines:
            if defined in first and first[defined] != cell.cell:
                result.append(Finding("redefined", f"`{defined}` is defined again (first in cell "
                                      f"{first[defined]})", name, cell.cell,
                                      hint="keep one definition; which one runs depends on the "
                                      "order cells were executed"))
            first.setdefault(defined, cell.cell)
    return result


__all__ = ["Finding", "findings", "BUILTIN_NAMES"]
