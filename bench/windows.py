"""Repeated 3-statement windows before and after conversion: how much repetition extraction left.

A window is 3 consecutive statements of one statement list (a cell's top level, or a loop or
`if` body), each normalized like the clone fingerprints (names and literals abstracted). A
window is *repeated* when its normalized form occurs more than once in the notebook. Windows
holding a call to a function nb2pkg extracted are not counted: repeated calls with different
arguments are the point of the extraction. The refactored notebook is the one ``plan_package``
writes (the same as ``nb2pkg convert``). Not a timing: it takes a few seconds.

    python bench/windows.py                       # examples + ../shared/realnb
    python bench/windows.py a.ipynb b.ipynb       # those notebooks
    python bench/windows.py --json                # one JSON object per notebook
    python bench/windows.py --explain             # each window left, and why it is left

``--explain`` names, for every repeated window left, the clone group it lies in and why that
group was left alone (REPORT.md's reason), or that it is in no group: a run of statements of
one shape inside one list (the window matches itself shifted by one, no second copy), or
repetition too short or too different to be a clone group.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections import Counter
from pathlib import Path

from _common import REPO

from nb2pkg.analysis import analyze
from nb2pkg.analysis.clones import _fingerprint, _is_call_to, _statement_lists
from nb2pkg.analysis.parse import parse_cell
from nb2pkg.notebook import read_notebook
from nb2pkg.plan import PlanOptions, plan_package

WINDOW = 3
REALNB = REPO.parent / "shared" / "realnb" / "cases"


def windows(sources: list[str], extracted: frozenset[str] = frozenset()) -> list[tuple[int, ...]]:
    """The normalized 3-statement windows of ``sources`` (cell texts), one entry per position."""
    found = []
    # Kept alive until counted: a definition or import is fingerprinted by its id(), and a
    # freed cell's statements would hand their ids (and keys) to the next cell's.
    parsed = []
    for index, source in enumerate(sources):
        cell = parse_cell(source, 0, index)
        parsed.append(cell)
        if cell.tree is None:
            continue
        for _, body in _statement_lists(cell.tree):
            keys = [None if _is_call_to(s, extracted) else _fingerprint(cell, s)[0] for s in body]
            for start in range(len(keys) - WINDOW + 1):
                window = keys[start:start + WINDOW]
                if None not in window:
                    found.append(tuple(window))
    return found


def repeated(found: list[tuple[int, ...]]) -> int:
    """How many window positions have a normalized form seen more than once."""
    counts = Counter(found)
    return sum(1 for w in found if counts[w] > 1)


def measure(path: Path, explain: bool = False) -> dict:
    notebook = read_notebook(path)
    before = [c.source for c in notebook.cells if c.is_code]
    plan = plan_package(analyze([notebook]), PlanOptions(name="bench_windows"))
    extracted = frozenset(e.function for e in plan.extractions)
    node = plan.notebooks[0].node
    cells = [c for c in node.cells if c.cell_type == "code"
             and not c.metadata.get("nb2pkg", {}).get("generated")]
    after = [c.source for c in cells]
    result = {"notebook": str(path), "before": repeated(windows(before)),
              "after": repeated(windows(after, extracted)),
              "functions": [e.function for e in plan.extractions],
              "refused": [(r.group, r.reason) for r in plan.refusals]}
    if explain:
        result["left"] = _explain(notebook, plan, cells, extracted)
    return result


def _explain(notebook, plan, cells, extracted: frozenset[str]) -> list[dict]:
    """Every repeated window left: where (original cell, line), and why it is left."""
    # Statements of refused groups, by original cell and source text.
    refused: dict[tuple[int, str], str] = {}
    for refusal in plan.refusals:
        for o in refusal.occurrences:
            original = parse_cell(notebook.cells[o.cell].source, 0, o.cell)
            for _, body in _statement_lists(original.tree):
                for s in body:
                    if o.first_line <= s.lineno and (s.end_lineno or s.lineno) <= o.last_line:
                        refused.setdefault((o.cell, ast.dump(s)), f"{refusal.group}: {refusal.reason}")
    positions: list[tuple[tuple[int, ...], int, int, int, list[ast.stmt]]] = []
    alive = []
    for cell in cells:
        parsed = parse_cell(cell.source, 0, 0)
        alive.append(parsed)  # (as in windows(): ids stay unique while compared)
        if parsed.tree is None:
            continue
        for number, (_, body) in enumerate(_statement_lists(parsed.tree)):
            keys = [None if _is_call_to(s, extracted) else _fingerprint(parsed, s)[0] for s in body]
            for start in range(len(keys) - WINDOW + 1):
                window = keys[start:start + WINDOW]
                if None not in window:
                    positions.append((tuple(window), cell.metadata["nb2pkg"]["source_cell"],
                                      number, start, body[start:start + WINDOW]))
    counts = Counter(p[0] for p in positions)
    left = []
    for key, cell, number, start, statements in positions:
        if counts[key] < 2:
            continue
        why = next((refused[(cell, ast.dump(s))] for s in statements
                    if (cell, ast.dump(s)) in refused), None)
        if why is None:
            others = [(c, n, s) for k, c, n, s, _ in positions if k == key and (c, n, s) != (cell, number, start)]
            shifted = all(c == cell and n == number and abs(s - start) < WINDOW for c, n, s in others)
            why = ("a run of one shape in one statement list (it matches itself shifted, no "
                   "second copy)" if shifted else "in no clone group")
        left.append({"cell": cell, "line": statements[0].lineno,
                     "first": ast.unparse(statements[0])[:60], "why": why})
    return left


def default_notebooks() -> list[Path]:
    paths = sorted((REPO / "examples" / "notebooks").glob("*.ipynb"))
    if REALNB.is_dir():
        paths += sorted(p for p in REALNB.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--explain", action="store_true", help="why each window is left")
    args = parser.parse_args(argv)
    results = [measure(p, args.explain) for p in (args.notebooks or default_notebooks())]
    if args.json:
        for r in results:
            print(json.dumps(r))
        return 0
    width = max(len(Path(r["notebook"]).name) for r in results)
    for r in results:
        print(f"{Path(r['notebook']).name:<{width}}  before {r['before']:4}  after {r['after']:4}"
              f"  functions {len(r['functions'])}  refused {len(r['refused'])}")
        for item in r.get("left", ()):
            print(f"    cell {item['cell']} line {item['line']} `{item['first']}`: {item['why']}")
    before = sum(r["before"] for r in results)
    after = sum(r["after"] for r in results)
    print(f"{'total':<{width}}  before {before:4}  after {after:4}"
          f"  ({after / before:.0%} left)" if before else "no repeated windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
