"""Repeated statement runs: exact copies, copies with renamed names or changed literals, and the
shared run of near-copies, within a cell, across cells and across notebooks.

Linear in the input: every statement gets a fingerprint of its normalized shape (names and
literals abstracted, attributes, keywords and operators kept), then runs of equal fingerprints are
grown by partition refinement, so a statement is only revisited for as long as it is part of a
shared run. Candidates are then confirmed on the concrete leaves (the renaming must be consistent).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Iterator

from ..magics import is_placeholder_name
from .parse import ParsedCell
from .scope import block_io

# A path to a statement list inside a cell: steps of (statement index, field), e.g.
# ((2, "body"),) is the body of the cell's third top-level statement. () is the cell itself.
Path = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Occurrence:
    notebook: int  # position of the notebook in the analysed list
    cell: int  # cell index in the notebook
    path: Path  # which statement list of the cell
    start: int  # first statement index in that list
    stop: int  # one past the last statement
    first_line: int  # 1-based line range in the cell source
    last_line: int


@dataclass(frozen=True)
class CloneGroup:
    id: str
    kind: str  # "exact", "renamed" (names or literals differ consistently) or "near" (shared run)
    statements: int  # statements per occurrence, nested ones included
    lines: int  # lines of the first occurrence
    occurrences: tuple[Occurrence, ...]
    consistent: bool  # False: a name maps to different names in different copies


@dataclass(frozen=True)
class Leaf:
    """A name or literal at a place that may differ between copies."""

    kind: str  # "name", "literal" or "fstring" (a text part of an f-string)
    value: object  # the identifier, the literal's value, or the f-string text part
    node: ast.AST  # the Name/Constant node, or the JoinedStr for "fstring"
    part: int = -1  # index of the text part in JoinedStr.values, for "fstring"


@dataclass
class _Stmt:
    cell: ParsedCell
    path: Path
    index: int
    node: ast.stmt
    key: int  # fingerprint
    weight: int  # statements inside, this one included


def statement_list(tree: ast.Module, path: Path) -> list[ast.stmt]:
    """The statement list at ``path`` inside ``tree``."""
    body: list[ast.stmt] = tree.body
    for index, field in path:
        node: object = body[index]
        for part in field.split("."):
            node = node[int(part)] if part.isdigit() else getattr(node, part)  # type: ignore[index]
        body = node  # type: ignore[assignment]
    return body


def _nested_lists(statement: ast.stmt) -> Iterator[tuple[str, list[ast.stmt]]]:
    # Only bodies that run in the notebook's global scope: never inside def/class.
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return
    for field in ("body", "orelse", "finalbody"):
        value = getattr(statement, field, None)
        if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
            yield field, value
    for i, handler in enumerate(getattr(statement, "handlers", ()) or ()):
        yield f"handlers.{i}.body", handler.body
    for i, case in enumerate(getattr(statement, "cases", ()) or ()):
        yield f"cases.{i}.body", case.body


def _statement_lists(tree: ast.Module) -> Iterator[tuple[Path, list[ast.stmt]]]:
    stack: list[tuple[Path, list[ast.stmt]]] = [((), tree.body)]
    while stack:
        path, body = stack.pop()
        yield path, body
        for index, statement in enumerate(body):
            for field, nested in _nested_lists(statement):
                stack.append(((*path, (index, field)), nested))


class _Shape:
    """Normalized token stream of a statement, and its leaves in the same order."""

    __slots__ = ("tokens", "leaves", "weight")

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.leaves: list[Leaf] = []
        self.weight = 0

    def visit(self, node: ast.AST) -> None:
        kind = type(node)
        tokens = self.tokens
        if kind is ast.Name:
            tokens.append("N")
            self.leaves.append(Leaf("name", node.id, node))  # type: ignore[attr-defined]
            return
        if kind is ast.Constant:
            value = node.value  # type: ignore[attr-defined]
            if isinstance(value, (str, bytes)) or (isinstance(value, (int, float, complex))
                                                    and not isinstance(value, bool)):
                tokens.append("L" + type(value).__name__[0])
                self.leaves.append(Leaf("literal", value, node))
            else:
                tokens.append(repr(value))
            return
        if kind is ast.JoinedStr:
            tokens.append("F(")
            for i, part in enumerate(node.values):  # type: ignore[attr-defined]
                if type(part) is ast.Constant:
                    tokens.append("s")
                    self.leaves.append(Leaf("fstring", part.value, node, i))
                else:
                    tokens.append(f"{{{part.conversion}")
                    self.visit(part.value)
                    if part.format_spec is not None:  # format specs stay concrete
                        tokens.append(ast.dump(part.format_spec))
            tokens.append(")")
            return
        if isinstance(node, ast.stmt):
            self.weight += 1
        tokens.append(kind.__name__)
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, ast.AST):
                self.visit(value)
            elif isinstance(value, list):
                tokens.append("[")
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
                    else:
                        tokens.append(repr(item))
                tokens.append("]")
            else:  # attribute names, keyword names, flags: concrete
                tokens.append(repr(value))


def shape(statements: list[ast.stmt]) -> _Shape:
    result = _Shape()
    for statement in statements:
        result.visit(statement)
    return result


def _is_call_to(statement: ast.stmt, names: frozenset[str]) -> bool:
    value = getattr(statement, "value", None)
    return (isinstance(statement, (ast.Expr, ast.Assign)) and isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name) and value.func.id in names)


def _fingerprint(cell: ParsedCell, statement: ast.stmt) -> tuple[int, int]:
    # Definitions and imports are moved to modules by the hoister, never extracted as clones:
    # give each a unique key so no run crosses them.
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import,
                              ast.ImportFrom)):
        return hash(("unique", id(statement))), 1
    found = _Shape()
    try:
        found.visit(statement)
    except RecursionError:  # nested too deeply to compare (parse_cell keeps such cells opaque)
        return hash(("unique", id(statement))), 1
    # Magic placeholders compare by the magic they stand for, so copies with magics are found
    # (and then refused with that reason) rather than silently missed.
    for leaf in found.leaves:
        if leaf.kind == "name" and is_placeholder_name(str(leaf.value)):
            found.tokens.append(_magic_text(cell, str(leaf.value)))
    return hash("\x00".join(found.tokens)), found.weight


def _magic_text(cell: ParsedCell, placeholder: str) -> str:
    for masked, original in cell.masked.replacements:
        if placeholder in masked:
            return original
    return placeholder


def find_clones(cells: list[ParsedCell] | tuple[ParsedCell, ...], min_statements: int = 3,
                min_lines: int = 3, extracted: frozenset[str] = frozenset()) -> list[CloneGroup]:
    """Clone groups among ``cells`` (of one or many notebooks), largest first.

    ``extracted`` names functions nb2pkg already extracted: a call to one counts for nothing in
    a block's size, so converting a converted notebook again finds nothing new to extract.
    """
    lists: list[list[_Stmt]] = []
    for cell in cells:
        if cell.tree is None:
            continue
        for path, body in _statement_lists(cell.tree):
            entries = []
            for index, statement in enumerate(body):
                key, weight = _fingerprint(cell, statement)
                if extracted and _is_call_to(statement, extracted):
                    weight = 0
                entries.append(_Stmt(cell, path, index, statement, key, weight))
            lists.append(entries)

    buckets: dict[int, list[tuple[int, int]]] = {}
    for list_id, entries in enumerate(lists):
        for index, entry in enumerate(entries):
            buckets.setdefault(entry.key, []).append((list_id, index))

    raw: list[tuple[list[tuple[int, int]], int]] = []  # (members (list, start), length)
    pending = [(members, 1) for members in buckets.values() if len(members) > 1]
    while pending:
        members, length = pending.pop()
        following: dict[int, list[tuple[int, int]]] = {}
        ended = 0
        for list_id, start in members:
            entries = lists[list_id]
            if start + length < len(entries):
                following.setdefault(entries[start + length].key, []).append((list_id, start))
            else:
                ended += 1
        if not ended and len(following) == 1:  # every member continues alike: not maximal yet
            pending.append((members, length + 1))
            continue
        raw.append((members, length))
        pending += [(group, length + 1) for group in following.values() if len(group) > 1]

    candidates: list[tuple[CloneGroup, list[tuple[int, int]], int]] = []
    for members, length in raw:
        members = _left_maximal(lists, members)
        if members is None:
            continue
        members = _without_overlaps(members, length)
        if len(members) < 2:
            continue
        group = _group(lists, members, length, min_statements, min_lines)
        if group is not None:
            candidates.append((group, members, length))
    # Groups that extraction cannot take go last, so they never hide a smaller group it can.
    candidates.sort(key=lambda c: (_surely_refused(lists, c[1], c[2], min_statements),
                                   _priority(c[0])))
    groups = _merge_overlapping(lists, candidates, min_statements, min_lines)
    groups.sort(key=_priority)
    return [CloneGroup(f"C{i}", g.kind, g.statements, g.lines, g.occurrences, g.consistent)
            for i, g in enumerate(groups, 1)]


def _priority(group: CloneGroup) -> tuple[int, int, int, int, int]:
    # Most copied statements first (what extracting it removes), then more copies: of a block
    # repeated twice in each of two cells, the block itself (4 copies) beats the pair (2 copies).
    first = group.occurrences[0]
    return (-group.statements * len(group.occurrences), -len(group.occurrences), first.notebook,
            first.cell, first.first_line)


def _displays(statement: ast.stmt) -> bool:
    """Would IPython display the value of this statement if it ended its cell?

    The same rule as ``refactor.extract._displayed`` (which also knows when ``print`` is
    redefined): any expression statement but a ``print(...)`` call.
    """
    value = getattr(statement, "value", None)
    return isinstance(statement, ast.Expr) and not (
        isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print")


def _surely_refused(lists: list[list[_Stmt]], members: list[tuple[int, int]], length: int,
                    min_statements: int) -> bool:
    """Would ``refactor.extract`` refuse this group for what it is, whatever else is extracted?

    Mirrors its first checks: a displayed expression ending a cell stays there (in every copy),
    and what is left must still be big enough, safe to move (no break/return/global/del/
    locals()...), free of magics and of definitions, and renamed consistently.
    """
    blocks = [lists[l][s:s + length] for l, s in members]
    if any(b[0].path == () and s + length == len(lists[l]) and _displays(b[-1].node)
           for (l, s), b in zip(members, blocks)):
        blocks = [b[:-1] for b in blocks]
    if not blocks[0] or sum(e.weight for e in blocks[0]) < min_statements:
        return True
    first = [e.node for e in blocks[0]]
    if block_io(first).unsafe_reasons:
        return True
    if any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
           for statement in first for n in ast.walk(statement)):
        return True
    leaves = [shape([e.node for e in b]).leaves for b in blocks]
    if any(leaf.kind == "name" and is_placeholder_name(str(leaf.value)) for leaf in leaves[0]):
        return True
    return not consistent_renaming(leaves)


def _merge_overlapping(lists: list[list[_Stmt]],
                       candidates: list[tuple[CloneGroup, list[tuple[int, int]], int]],
                       min_statements: int, min_lines: int) -> list[CloneGroup]:
    """One group per repeated pattern: no statement is in two reported groups.

    Maximal repeats of one pattern overlap (a block pasted in several cells, each copy extended
    differently, yields the shared run plus every longer run shared by fewer copies). Candidates
    come in priority order (groups extraction would refuse last); each keeps the copies that
    overlap no copy of a group kept before it, and is dropped when fewer than two copies are
    left. That is the choice ``plan`` makes when extracting, so the report shows what would be
    extracted, once. Linear: every statement of every candidate copy is looked at once, plus
    the depth of its statement list.
    """
    claimed: set[tuple[int, Path, int]] = set()  # (cell key, statement list, index) kept
    enclosing: set[tuple[int, Path, int]] = set()  # statements with a kept copy nested inside
    cell_keys: dict[tuple[int, int], int] = {}
    kept_groups: list[CloneGroup] = []
    for group, members, length in candidates:
        kept: list[tuple[int, int]] = []
        for list_id, start in members:
            entry = lists[list_id][start]
            cell = cell_keys.setdefault((entry.cell.notebook, entry.cell.cell), len(cell_keys))
            path = entry.path
            if any((cell, path, i) in claimed or (cell, path, i) in enclosing
                   for i in range(start, start + length)):
                continue
            if any((cell, path[:depth], path[depth][0]) in claimed for depth in range(len(path))):
                continue
            kept.append((list_id, start))
        if len(kept) < 2:
            continue
        if len(kept) < len(members):
            trimmed = _group(lists, kept, length, min_statements, min_lines)
            if trimmed is None:
                continue
            group = trimmed
        for list_id, start in kept:
            entry = lists[list_id][start]
            cell = cell_keys[(entry.cell.notebook, entry.cell.cell)]
            path = entry.path
            claimed.update((cell, path, i) for i in range(start, start + length))
            enclosing.update((cell, path[:depth], path[depth][0]) for depth in range(len(path)))
        kept_groups.append(group)
    return kept_groups


def _left_maximal(lists: list[list[_Stmt]], members: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
    # If every member is preceded by the same statement, a longer group starting earlier covers it.
    previous = {lists[l][s - 1].key if s > 0 else None for l, s in members}
    if len(previous) == 1 and None not in previous:
        return None
    return members


def _without_overlaps(members: list[tuple[int, int]], length: int) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    last_end: dict[int, int] = {}
    for list_id, start in sorted(members):
        if start >= last_end.get(list_id, -1):
            kept.append((list_id, start))
            last_end[list_id] = start + length
    return kept


def _group(lists: list[list[_Stmt]], members: list[tuple[int, int]], length: int,
           min_statements: int, min_lines: int) -> CloneGroup | None:
    first = lists[members[0][0]][members[0][1]:members[0][1] + length]
    weight = sum(e.weight for e in first)
    lines = (first[-1].node.end_lineno or first[-1].node.lineno) - first[0].node.lineno + 1
    if weight < min_statements or lines < min_lines:
        return None
    if all(isinstance(e.node, (ast.Pass, ast.Expr)) and _is_trivial(e.node) for e in first):
        return None
    occurrences = []
    leaf_lists = []
    for list_id, start in members:
        entries = lists[list_id][start:start + length]
        cell = entries[0].cell
        occurrences.append(Occurrence(cell.notebook, cell.cell, entries[0].path, start,
                                      start + length, entries[0].node.lineno,
                                      entries[-1].node.end_lineno or entries[-1].node.lineno))
        leaf_lists.append(shape([e.node for e in entries]).leaves)
    occurrences_sorted = sorted(zip(occurrences, leaf_lists), key=lambda p: (
        p[0].notebook, p[0].cell, p[0].path, p[0].start))
    occurrences = [o for o, _ in occurrences_sorted]
    leaf_lists = [l for _, l in occurrences_sorted]
    values = [[leaf.value for leaf in leaves] for leaves in leaf_lists]
    exact = all(v == values[0] for v in values)
    consistent = consistent_renaming(leaf_lists)
    ends_early = sum(1 for l, s in members if s + length < len(lists[l]))
    kind = "exact" if exact else "renamed"
    if ends_early >= 2:
        kind = "near"
    return CloneGroup("", kind, weight, lines, tuple(occurrences), consistent)


def _is_trivial(node: ast.stmt) -> bool:
    return isinstance(node, ast.Pass) or (isinstance(node, ast.Expr)
                                          and isinstance(node.value, ast.Constant))


def consistent_renaming(leaf_lists: list[list[Leaf]]) -> bool:
    """True when every name position maps one-to-one between the first copy and each other copy."""
    first = [leaf.value for leaf in leaf_lists[0] if leaf.kind == "name"]
    for leaves in leaf_lists[1:]:
        other = [leaf.value for leaf in leaves if leaf.kind == "name"]
        forward: dict[object, object] = {}
        backward: dict[object, object] = {}
        for a, b in zip(first, other):
            if forward.setdefault(a, b) != b or backward.setdefault(b, a) != a:
                return False
    return True
