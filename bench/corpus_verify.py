"""Behaviour preservation on the corpus: `nb2pkg convert --verify` of every corpus notebook.

The corpus (``../shared/corpus/fetch.sh`` into ``.corpus``, or ``$NB2PKG_CORPUS``) is test data
that notebook tools ship in their sdists: notebooks by others, most of them short, some in other
languages, many needing files or packages that are not here. `tests/robustness/test_corpus.py`
converts each without executing anything; this script executes them: each notebook is copied
into a folder of its own and converted there with ``--verify`` (original and refactored run on
a real kernel, outputs compared), one process per notebook, with a time limit.

Each notebook lands in one class:

- ``equivalent``: verified, same outputs (``changed`` says whether the refactoring changed any
  code: an extraction, a moved definition, a loop, an import tidied; ``needed``, the
  distributions the isolated run added, ``alone``, what failed there: ``verify.run_alone``);
- ``different``: the refactored notebook printed something else. Every one is a bug to look at
  (nb2pkg then writes nothing, as a user would see);
- ``refused``: exit 2, one line saying why (not Python, unreadable, ...);
- ``environment``: the original itself cannot run here (missing module, file, network): the
  comparison proves nothing either way;
- ``timeout``, ``crash``: anything else (a crash is a bug too).

Not a timing. ``python bench/corpus_verify.py [--limit N] [--timeout S] [NOTEBOOK ...]``; the
table goes to stdout, one JSON line per notebook to ``bench/results/corpus-verify-*.jsonl``.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, RESULTS, sorted_counts

CORPUS = Path(os.environ.get("NB2PKG_CORPUS") or REPO / ".corpus")
# What REPORT.md's and the JSON's sections hold when the refactoring changed some code.
CHANGES = ("extracted", "hoisted", "loops")


def classify(done: subprocess.CompletedProcess | None) -> dict:
    """The class of one conversion (see the module docstring) and what explains it."""
    if done is None:
        return {"class": "timeout"}
    if "the original notebook fails here" in done.stderr:
        return {"class": "environment", "reason": _last_line(done.stderr)}
    if done.returncode == 2:
        return {"class": "refused", "reason": _last_line(done.stderr)}
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {"class": "crash", "stderr": done.stderr[-2000:]}
    verification = report.get("verification") or {}
    changed = any(report.get(section) for section in CHANGES)
    if verification.get("equivalent"):
        notebooks = verification["notebooks"]
        return {"class": "equivalent", "changed": changed,
                "compared": sum(n["outputs_compared"] for n in notebooks),
                # Run again with only the project's dependencies importable: what a library
                # needed there (added), and what still failed.
                "needed": [d for n in notebooks for d in n.get("dependencies_needed", [])],
                "alone": [n["fails_with_only_its_dependencies"] for n in notebooks
                          if n.get("fails_with_only_its_dependencies")]}
    if done.returncode not in (0, 1):
        return {"class": "crash", "stderr": done.stderr[-2000:]}
    return {"class": "different", "changed": changed, "reason": _last_line(done.stderr),
            "notebooks": [{k: n.get(k) for k in ("first_difference_cell", "differing_cells",
                                                  "suspects", "diff")}
                          for n in verification.get("notebooks", [])]}


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def verify_one(notebook: Path, timeout: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="nb2pkg-corpus-") as scratch:
        folder = Path(scratch) / "input"
        folder.mkdir()
        copy = folder / notebook.name
        shutil.copyfile(notebook, copy)
        command = [sys.executable, "-m", "nb2pkg", "convert", str(copy), "-o",
                   str(Path(scratch) / "project"), "--verify", "--json", "--no-pipeline"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, cwd=folder,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            done = None
    return {"notebook": notebook.name, **classify(done)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: the whole corpus")
    parser.add_argument("--limit", type=int, default=0, help="only the first N notebooks")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per notebook")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted((CORPUS / "notebooks").glob("*.ipynb"))
    if not notebooks:
        print(f"no corpus at {CORPUS}: run ../shared/corpus/fetch.sh {CORPUS}", file=sys.stderr)
        return 2
    if args.limit:
        notebooks = notebooks[:args.limit]
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"corpus-verify-{datetime.datetime.now():%Y%m%d-%H%M%S}.jsonl"
    counts: collections.Counter = collections.Counter()
    with out.open("w", encoding="utf-8") as sink:
        for index, notebook in enumerate(notebooks, 1):
            result = verify_one(notebook, args.timeout)
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            kind = result["class"] + ("+changed" if result.get("changed") else "")
            counts[kind] += 1
            alone = ""
            if result.get("needed"):
                counts["(dependency added)"] += 1
                alone += f"  needed {', '.join(result['needed'])}"
            if result.get("alone"):
                counts["(fails alone)"] += 1
                alone += f"  alone: {result['alone'][0]}"
            print(f"[{index}/{len(notebooks)}] {kind:20} {notebook.name}{alone}", flush=True)
    return sorted_counts(counts, out, ["different", "different+changed", "crash"])


if __name__ == "__main__":
    sys.exit(main())
