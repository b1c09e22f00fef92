"""Three-way merges of one file: the previous conversion (base), the project (ours) and the new
conversion (theirs). Pure functions, apart from running ``git merge-file`` when git is there.

Text merges line by line (``git merge-file --diff3``, or ``merge_lines`` when git is missing:
the same rules, diff3 conflict markers). Notebooks merge as JSON, cell by cell, so a cell the
user ran (outputs) and a cell the notebook changed (source) combine; a conflict inside a cell's
source is written with markers into that cell, which keeps the file a valid notebook.
``nb2pkg.update`` decides which file gets which merge.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")

# Labels of the three sides in conflict markers: what a user sees between <<<<<<< and >>>>>>>.
OURS = "project"
BASE = "previous conversion"
THEIRS = "notebook"


@dataclass(frozen=True)
class Merged:
    content: str
    conflicts: int  # regions written with conflict markers (0: merged cleanly)


@dataclass(frozen=True)
class _Conflict:
    ours: list[Any]
    base: list[Any]
    theirs: list[Any]


def merge_sequences(base: Sequence[T], ours: Sequence[T], theirs: Sequence[T]
                    ) -> list[T | _Conflict]:
    """diff3 of three sequences: items, and a ``_Conflict`` where both sides changed one region
    differently. A region only one side changed takes that side; equal changes are taken once."""
    result: list[T | _Conflict] = []
    i_base = i_ours = i_theirs = 0
    for b_start, b_end, o_start, o_end, t_start, t_end in _sync_regions(base, ours, theirs):
        b, o, t = (list(base[i_base:b_start]), list(ours[i_ours:o_start]),
                   list(theirs[i_theirs:t_start]))
        if o == b:
            result += t
        elif t == b or o == t:
            result += o
        else:
            result.append(_Conflict(o, b, t))
        result += base[b_start:b_end]
        i_base, i_ours, i_theirs = b_end, o_end, t_end
    return result


def _sync_regions(base: Sequence[Any], ours: Sequence[Any], theirs: Sequence[Any]
                  ) -> list[tuple[int, int, int, int, int, int]]:
    """Runs of ``base`` that both sides kept unchanged, with where they are in each side; the
    last is the empty run at the ends (the classic diff3 synchronization)."""
    def blocks(other: Sequence[Any]) -> list[tuple[int, int, int]]:
        matcher = SequenceMatcher(None, base, other, autojunk=False)
        return [(m.a, m.b, m.size) for m in matcher.get_matching_blocks() if m.size]

    with_ours, with_theirs = blocks(ours), blocks(theirs)
    regions = []
    a = b = 0
    while a < len(with_ours) and b < len(with_theirs):
        a_base, a_at, a_size = with_ours[a]
        b_base, b_at, b_size = with_theirs[b]
        start, end = max(a_base, b_base), min(a_base + a_size, b_base + b_size)
        if start < end:
            regions.append((start, end, a_at + start - a_base, a_at + end - a_base,
                            b_at + start - b_base, b_at + end - b_base))
        if a_base + a_size < b_base + b_size:
            a += 1
        else:
            b += 1
    regions.append((len(base), len(base), len(ours), len(ours), len(theirs), len(theirs)))
    return regions


def merge_lines(base: str, ours: str, theirs: str) -> Merged:
    """Line merge in Python, with diff3 conflict markers (what ``git merge-file --diff3`` does)."""
    pieces: list[str] = []
    conflicts = 0
    for item in merge_sequences(base.splitlines(keepends=True), ours.splitlines(keepends=True),
                                theirs.splitlines(keepends=True)):
        if isinstance(item, _Conflict):
            conflicts += 1
            pieces.append(f"<<<<<<< {OURS}\n")
            pieces += _ended(item.ours)
            pieces.append(f"||||||| {BASE}\n")
            pieces += _ended(item.base)
            pieces.append("=======\n")
            pieces += _ended(item.theirs)
            pieces.append(f">>>>>>> {THEIRS}\n")
        else:
            pieces.append(item)
    return Merged("".join(pieces), conflicts)


def _ended(lines: list[str]) -> list[str]:
    # A last line without a line break inside a conflict would run into the marker after it.
    return lines[:-1] + [lines[-1] + "\n"] if lines and not lines[-1].endswith("\n") else lines


def git_available() -> bool:
    return shutil.which("git") is not None


def merge_with_git(base: str, ours: str, theirs: str) -> Merged:
    """``git merge-file -p --diff3``: git's line merge (its diff finds tighter hunks)."""
    with tempfile.TemporaryDirectory(prefix="nb2pkg-merge-") as folder:
        paths = []
        for name, text in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = os.path.join(folder, name)
            with open(path, "w", encoding="utf-8", newline="") as file:
                file.write(text)
            paths.append(path)
        done = subprocess.run(["git", "merge-file", "-p", "--diff3", "-L", OURS, "-L", BASE,
                               "-L", THEIRS, *paths], capture_output=True, check=False)
    if done.returncode < 0 or done.returncode > 127:  # killed, or git's own failure
        raise OSError(f"git merge-file failed: {done.stderr.decode(errors='replace').strip()}")
    # The exit status counts the conflicts (capped at 127).
    return Merged(done.stdout.decode("utf-8", errors="surrogateescape"), done.returncode)


def merge_text(base: str, ours: str, theirs: str, use_git: bool | None = None) -> Merged:
    """Three-way line merge: git's when git is installed (or ``use_git``), else ours."""
    if ours == base or ours == theirs:
        return Merged(theirs, 0)
    if theirs == base:
        return Merged(ours, 0)
    if use_git is None:
        use_git = git_available()
    if use_git:
        try:
            return merge_with_git(base, ours, theirs)
        except OSError:  # git vanished or failed: the Python merge gives the same kind of result
            pass
    return merge_lines(base, ours, theirs)


# -- notebooks ---------------------------------------------------------------------------------


def merge_notebook(base: str, ours: str, theirs: str, use_git: bool | None = None
                   ) -> Merged | None:
    """Merge three notebooks (nbformat JSON) cell by cell; None when they cannot be merged as
    notebooks (not JSON, or the notebook-level fields conflict): the caller keeps both files.

    Cells are compared whole; where both sides changed the same cells, cells paired one to one
    merge field by field (source as text, with conflict markers inside the source if needed);
    unpaired changes keep both sides' cells, between markdown cells carrying the markers.
    """
    try:
        nodes = [json.loads(text) for text in (base, ours, theirs)]
    except ValueError:
        return None
    if not all(isinstance(n, dict) and isinstance(n.get("cells"), list) for n in nodes):
        return None
    b, o, t = nodes
    top = _merge_fields({k: v for k, v in b.items() if k != "cells"},
                        {k: v for k, v in o.items() if k != "cells"},
                        {k: v for k, v in t.items() if k != "cells"}, use_git)
    if top is None:
        return None
    merged, conflicts = top, 0
    cells: list[Any] = []
    keyed = [[_Key(cell) for cell in n["cells"]] for n in nodes]
    for item in merge_sequences(*keyed):
        if not isinstance(item, _Conflict):
            cells.append(item.cell)
            continue
        by_id = _merge_by_id([k.cell for k in item.base], [k.cell for k in item.ours],
                             [k.cell for k in item.theirs], use_git)
        if by_id is not None:
            cells += by_id[0]
            conflicts += by_id[1]
            continue
        if len(item.ours) == len(item.theirs) == len(item.base):
            paired = [_merge_cell(x.cell, y.cell, z.cell, use_git)
                      for x, y, z in zip(item.base, item.ours, item.theirs)]
            if all(p is not None for p in paired):
                for cell, count in paired:  # type: ignore[misc]
                    cells.append(cell)
                    conflicts += count
                continue
        conflicts += 1
        cells.append(_marker_cell(f"<<<<<<< {OURS}: cells as in the project"))
        cells += [k.cell for k in item.ours]
        cells.append(_marker_cell(f"======= cells from the {THEIRS}"))
        cells += [k.cell for k in item.theirs]
        cells.append(_marker_cell(f">>>>>>> {THEIRS}"))
    merged["cells"] = cells
    return Merged(json.dumps(merged, indent=1, sort_keys=True, ensure_ascii=False) + "\n", conflicts)


class _Key:
    """A cell compared by its whole JSON (what diff3 aligns)."""

    def __init__(self, cell: Any) -> None:
        self.cell = cell
        self.text = json.dumps(cell, sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Key) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def _merge_by_id(base: list[Any], ours: list[Any], theirs: list[Any], use_git: bool | None
                 ) -> tuple[list[Any], int] | None:
    """Cells of a conflicting region paired by their ``id`` (nbformat 4.5): a cell the user ran
    and the notebook changed, with cells added around it, is still one cell. None when ids are
    missing or repeated, the order conflicts, or a side deleted a cell the other changed."""
    sides = (base, ours, theirs)
    if not all(isinstance(c, dict) for side in sides for c in side):
        return None
    ids = [[c.get("id") for c in side] for side in sides]
    if any(None in side or len(set(side)) != len(side) for side in ids):
        return None
    cells_of = [{c["id"]: c for c in side} for side in sides]
    order = merge_sequences(*ids)
    if any(isinstance(i, _Conflict) for i in order):
        return None
    kept = set(order)
    b_of, o_of, t_of = cells_of
    for gone in set(b_of) - kept:  # deleted on one side: the other must have left it alone
        other = t_of.get(gone) if gone not in o_of else o_of.get(gone)
        if other is not None and other != b_of[gone]:
            return None
    cells, conflicts = [], 0
    for cell_id in order:
        b, o, t = b_of.get(cell_id), o_of.get(cell_id), t_of.get(cell_id)
        if o is None or t is None or o == t:
            cells.append(o if o is not None else t)
            continue
        merged = _merge_cell(b, o, t, use_git) if b is not None else None
        if merged is None:
            return None
        cells.append(merged[0])
        conflicts += merged[1]
    return cells, conflicts


def _merge_cell(base: Any, ours: Any, theirs: Any, use_git: bool | None
                ) -> tuple[Any, int] | None:
    if not all(isinstance(c, dict) for c in (base, ours, theirs)):
        return None
    if not base.get("cell_type") == ours.get("cell_type") == theirs.get("cell_type"):
        return None
    conflicts = 0

    def source(b: Any, o: Any, t: Any) -> Any:
        nonlocal conflicts
        done = merge_text(_joined(b), _joined(o), _joined(t), use_git)
        conflicts += done.conflicts
        return done.content.splitlines(keepends=True)

    fields = _merge_fields(base, ours, theirs, use_git, {"source": source})
    return None if fields is None else (fields, conflicts)


def _merge_fields(base: dict[str, Any], ours: dict[str, Any], theirs: dict[str, Any],
                  use_git: bool | None,
                  special: dict[str, Callable[[Any, Any, Any], Any]] | None = None
                  ) -> dict[str, Any] | None:
    """Key by key: one side's change is taken; dicts merge recursively; None on a conflict."""
    merged: dict[str, Any] = {}
    missing = object()
    for key in list(dict.fromkeys([*ours, *theirs, *base])):
        b, o, t = base.get(key, missing), ours.get(key, missing), theirs.get(key, missing)
        if o == t or t == b:
            value = o
        elif o == b:
            value = t
        elif special and key in special and missing not in (b, o, t):
            value = special[key](b, o, t)
        elif all(isinstance(v, dict) for v in (b, o, t)):
            value = _merge_fields(b, o, t, use_git)
            if value is None:
                return None
        else:
            return None
        if value is not missing:
            merged[key] = value
    return merged


def _joined(source: Any) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def _marker_cell(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {"nb2pkg": {"conflict": True}}, "source": [text]}
