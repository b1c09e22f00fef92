"""`nb2pkg analyze` on the real third-party notebooks of ../shared/realnb and on the bundled
examples, against the findings and clone groups reviewed by hand
(tests/data/realnb_findings.json, issue 10 item 8): a false positive coming back and a true
finding going away both fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import DATA, ROOT
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook

REALNB = ROOT.parent / "shared" / "realnb"
REVIEWED = json.loads((DATA / "realnb_findings.json").read_text())
CASES = [(REALNB / "cases" / name, review) for name, review in sorted(REVIEWED["realnb"].items())]
CASES += [(ROOT / name, review) for name, review in sorted(REVIEWED["examples"].items())]


def _overlap(a, b) -> bool:
    """Two occurrences share a statement (same list and overlapping ranges, or one nested in the
    other's statements)."""
    if (a.notebook, a.cell) != (b.notebook, b.cell):
        return False
    if a.path == b.path:
        return a.start < b.stop and b.start < a.stop
    for outer, inner in ((a, b), (b, a)):
        depth = len(outer.path)
        if len(inner.path) > depth and inner.path[:depth] == outer.path:
            return outer.start <= inner.path[depth][0] < outer.stop
    return False


@pytest.mark.parametrize("path,review", CASES, ids=[p.name for p, _ in CASES])
def test_reviewed_findings_and_clones(path: Path, review: dict) -> None:
    if REALNB in path.parents and not REALNB.exists():
        pytest.skip(f"real-notebook corpus not found at {REALNB} (expected beside the repo)")
    analysis = analyze([read_notebook(path)])
    findings = [f"{f.code} {f.cell}:{'-' if f.line is None else f.line} {f.message}"
                for f in analysis.notebooks[0].findings]
    clones = [" ".join([g.kind, str(g.statements)]
                       + [f"{o.cell}:{o.first_line}-{o.last_line}" for o in g.occurrences])
              for g in analysis.clones]
    assert findings == review["findings"]
    assert clones == review["clones"]
    # One repeated pattern, one group: no statement belongs to two reported groups.
    occurrences = sorted(((o.cell, o.path, o.start), o, g.id) for g in analysis.clones
                         for o in g.occurrences)
    for index, (_, a, group_a) in enumerate(occurrences):
        for _, b, group_b in occurrences[index + 1:]:
            assert group_a == group_b or not _overlap(a, b), (group_a, a, group_b, b)


def test_every_case_of_the_corpus_is_reviewed() -> None:
    if not REALNB.exists():
        pytest.skip(f"real-notebook corpus not found at {REALNB} (expected beside the repo)")
    present = {str(p.relative_to(REALNB / "cases")) for p in (REALNB / "cases").rglob("*.ipynb")}
    assert present == set(REVIEWED["realnb"])
    assert {f"examples/notebooks/{p.name}" for p in (ROOT / "examples" / "notebooks").glob("*.ipynb")} \
        == set(REVIEWED["examples"])
