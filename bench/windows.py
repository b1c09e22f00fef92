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
    for index, source in enumerate(sources):
        cell = parse_cell(source, 0, index)
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


def measure(path: Path) -> dict:
    notebook = read_notebook(path)
    before = [c.source for c in notebook.cells if c.is_code]
    plan = plan_package(analyze([notebook]), PlanOptions(name="bench_windows"))
    extracted = frozenset(e.function for e in plan.extractions)
    node = plan.notebooks[0].node
    after = [c.source for c in node.cells if c.cell_type == "code"
             and not c.metadata.get("nb2pkg", {}).get("generated")]
    return {"notebook": str(path), "before": repeated(windows(before)),
            "after": repeated(windows(after, extracted)),
            "functions": [e.function for e in plan.extractions],
            "refused": [(r.group, r.reason) for r in plan.refusals]}


def default_notebooks() -> list[Path]:
    paths = sorted((REPO / "examples" / "notebooks").glob("*.ipynb"))
    if REALNB.is_dir():
        paths += sorted(p for p in REALNB.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [measure(p) for p in (args.notebooks or default_notebooks())]
    if args.json:
        for r in results:
            print(json.dumps(r))
        return 0
    width = max(len(Path(r["notebook"]).name) for r in results)
    for r in results:
        print(f"{Path(r['notebook']).name:<{width}}  before {r['before']:4}  after {r['after']:4}"
              f"  functions {len(r['functions'])}  refused {len(r['refused'])}")
    before = sum(r["before"] for r in results)
    after = sum(r["after"] for r in results)
    print(f"{'total':<{width}}  before {before:4}  after {after:4}"
          f"  ({after / before:.0%} left)" if before else "no repeated windows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
