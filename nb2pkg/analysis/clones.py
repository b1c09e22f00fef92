"""Repeated statement runs: exact copies, copies with renamed names or changed literals, and the
shared run of near-copies, within a cell, across cells and across notebooks.

Linear in the input: every statement gets a fingerprint of its normalized shape (names and
literals abstracted, attributes, keywords and operators kept), then runs of equal fingerprints are
grown by partition refinement, so a statement is only revisited for as long as it is part of a
shared run. Candidates are then confirmed on the concrete leaves (the renaming must be consistent).
"""

from __future__ import annotations

import ast
import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

from ..magics import is_placeholder_name
from .parse import ParsedCell, walk
from .scope import block_io
from .worth import data_only

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
    consistent: bool  # False: a name the block binds maps to different names in another copy


@dataclass(frozen=True)
class Leaf:
    """A name or literal at a place that may differ between copies."""

    kind: str  # "name", "literal" or "fstring" (a text part of an f-string)
    value: object  # the identifier, the literal's value, or the f-string text part
    node: ast.AST  # the Name/Constant node, or the JoinedStr for "fstring"
    part: int = -1  # index of the text part in JoinedStr.values, for "fstring"


@dataclass
class _Facts:
    """What clone search knows of one statement on its own (kept with its cell while
    ``reusing_fingerprints``)."""

    node: ast.stmt
    key: int  # fingerprint
    weight: int  # statements inside, this one included
    # The statement's leaves, kept from its fingerprint: a statement lies in many candidate
    # copies, each of which needs them (None: not visited, see ``_statement_facts``).
    shape_leaves: list[Leaf] | None
    _bound: frozenset[str] | None = None
    defines: bool = False  # is or holds a function or class definition

    @property
    def leaves(self) -> list[Leaf]:
        # Not kept when not visited: ``shape_leaves`` None also says ``weight`` is not the size.
        return self.shape_leaves if self.shape_leaves is not None else shape([self.node]).leaves

    @property
    def bound(self) -> frozenset[str]:
        """``bound_names([node])``, computed once (it is a union over statements)."""
        if self._bound is None:
            self._bound = bound_names([self.node])
        return self._bound


@dataclass
class _Stmt:
    cell: ParsedCell
    path: Path
    index: int
    node: ast.stmt
    key: int  # fingerprint
    weight: int  # statements inside, this one included (0: a call of an extracted function)
    facts: _Facts

    @property
    def leaves(self) -> list[Leaf]:
        return self.facts.leaves

    @property
    def bound(self) -> frozenset[str]:
        return self.facts.bound


# The statement facts of cells, by cell identity (the cell kept, so its id stays its own), while
# a conversion is planned: lifting searches clones again in notebooks most of whose cells it
# left as they were.
_kept_facts: ContextVar[dict[int, tuple[ParsedCell, list[tuple[Path, list[_Facts]]]]] | None] = \
    ContextVar("nb2pkg_clone_facts", default=None)
# The same facts by statement identity: extraction asks again for the leaves, size and bound
# names of the statements clone search visited (``block_shape``, ``block_bound``).
_kept_statements: ContextVar[dict[int, _Facts] | None] = \
    ContextVar("nb2pkg_statement_facts", default=None)


@contextlib.contextmanager
def reusing_fingerprints() -> Iterator[None]:
    """Within: ``find_clones`` fingerprints each cell once, however often it is called."""
    token = _kept_facts.set({})
    statements = _kept_statements.set({})
    try:
        yield
    finally:
        _kept_statements.reset(statements)
        _kept_facts.reset(token)


def _cell_facts(cell: ParsedCell) -> list[tuple[Path, list[_Facts]]]:
    kept = _kept_facts.get()
    found = kept.get(id(cell)) if kept is not None else None
    if found is not None and found[0] is cell:
        return found[1]
    assert cell.tree is not None
    facts = [(path, [_statement_facts(cell, statement) for statement in body])
             for path, body in _statement_lists(cell.tree)]
    if kept is not None:
        kept[id(cell)] = (cell, facts)
        by_statement = _kept_statements.get()
        if by_statement is not None:
            by_statement.update((id(f.node), f) for _, body in facts for f in body)
    return facts


def _leaves(entries: list[_Stmt]) -> list[Leaf]:
    """``shape([e.node for e in entries]).leaves``: a shape's leaves are its statements' leaves
    one after the other."""
    return [leaf for e in entries for leaf in e.leaves]


def _bound_names(entries: list[_Stmt]) -> frozenset[str]:
    """``bound_names([e.node for e in entries])``, from each statement's own."""
    if len(entries) == 1:
        return entries[0].bound
    return frozenset().union(*(e.bound for e in entries))


def statement_list(tree: ast.Module, path: Path) -> list[ast.stmt]:
    """The statement list at ``path`` inside ``tree``."""
    body: list[ast.stmt] = tree.body
    for index, field in path:
        body = nested_list(body[index], field)
    return body


def nested_list(statement: ast.stmt, field: str) -> list[ast.stmt]:
    """The statement list ``field`` of ``statement`` (one step of a :data:`Path`)."""
    node: object = statement
    for part in field.split("."):
        node = node[int(part)] if part.isdigit() else getattr(node, part)  # type: ignore[index]
    return node  # type: ignore[return-value]


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

    __slots__ = ("tokens", "leaves", "weight", "bound", "defines")

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.leaves: list[Leaf] = []
        self.weight = 0
        self.bound: set[str] = set()  # bound_names() of what was visited, found on the way
        self.defines = False  # a function or class definition was visited

    def visit(self, node: ast.AST) -> None:
        kind = type(node)
        tokens = self.tokens
        if kind is ast.Name:
            tokens.append("N")
            self.leaves.append(Leaf("name", node.id, node))  # type: ignore[attr-defined]
            if type(node.ctx) is not ast.Load:  # type: ignore[attr-defined]
                self.bound.add(node.id)  # type: ignore[attr-defined]
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
                        self.bound |= _bound_in(part.format_spec)
            tokens.append(")")
            return
        if isinstance(node, ast.stmt):
            self.weight += 1
            if kind in _DEFINITIONS:
                self.defines = True
        elif kind in _BINDERS:
            name = _binding(node)
            if name:
                self.bound.add(name)
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


@dataclass(frozen=True)
class BlockShape:
    leaves: list[Leaf]  # as ``shape(statements).leaves``
    weight: int  # as ``shape(statements).weight``
    defines: bool  # a function or class definition is or lies among the statements


def _kept(statement: ast.stmt) -> _Facts | None:
    """What clone search kept of ``statement`` (None: nothing, or it did not visit it)."""
    kept = _kept_statements.get()
    facts = kept.get(id(statement)) if kept else None
    # A kept statement stays alive, so no other object has its id; the leaves are None for
    # definitions and imports, whose weight is not their size either.
    if facts is None or facts.node is not statement or facts.shape_leaves is None:
        return None
    return facts


def block_shape(statements: list[ast.stmt]) -> BlockShape:
    """The leaves, weight and definitions of ``shape(statements)``, from what clone search kept
    of each statement where it can."""
    leaves: list[Leaf] = []
    weight = 0
    defines = False
    for statement in statements:
        found = _kept(statement) or shape([statement])
        leaves += found.leaves
        weight += found.weight
        defines = defines or found.defines
    return BlockShape(leaves, weight, defines)


def block_bound(statements: list[ast.stmt]) -> frozenset[str]:
    """``bound_names(statements)``, from what clone search kept of each statement where it
    can."""
    found: set[str] = set()
    for statement in statements:
        facts = _kept(statement)
        found |= bound_names([statement]) if facts is None else facts.bound
    return frozenset(found)


def _is_call_to(statement: ast.stmt, names: frozenset[str]) -> bool:
    """A call of one of ``names`` (``x = f(...)``), or ``if f(...): break`` (``continue``)."""
    value: object = None
    if isinstance(statement, ast.If) and not statement.orelse and len(statement.body) == 1 \
            and isinstance(statement.body[0], (ast.Break, ast.Continue)):
        value = statement.test
    elif isinstance(statement, (ast.Expr, ast.Assign)):
        value = statement.value
    return isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id in names


def _fingerprint(cell: ParsedCell, statement: ast.stmt) -> tuple[int, int]:
    facts = _statement_facts(cell, statement)
    return facts.key, facts.weight


def _statement_facts(cell: ParsedCell, statement: ast.stmt) -> _Facts:
    """The fingerprint, weight, leaves and bound names of ``statement`` (leaves None when it was
    not visited: it gets a unique key)."""
    # Definitions and imports are moved to modules by the hoister, never extracted as clones:
    # give each a unique key so no run crosses them. (Unique among statements alive at once:
    # whoever compares keys keeps the parsed cells alive, or a freed statement's id, and its
    # key, passes to a new one.)
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import,
                              ast.ImportFrom)):
        return _Facts(statement, hash(("unique", id(statement))), 1, None,
                      defines=isinstance(statement, _DEFINITIONS))
    found = _Shape()
    try:
        found.visit(statement)
    except RecursionError:  # nested too deeply to compare (parse_cell keeps such cells opaque)
        return _Facts(statement, hash(("unique", id(statement))), 1, None)
    # Magic placeholders compare by the magic they stand for, so copies with magics are found
    # (and then refused with that reason) rather than silently missed.
    for leaf in found.leaves:
        if leaf.kind == "name" and is_placeholder_name(str(leaf.value)):
            found.tokens.append(_magic_text(cell, str(leaf.value)))
    return _Facts(statement, hash("\x00".join(found.tokens)), found.weight, found.leaves,
                  frozenset(found.bound), found.defines)


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
        for path, body in _cell_facts(cell):
            entries = []
            for index, facts in enumerate(body):
                weight = facts.weight
                if extracted and _is_call_to(facts.node, extracted):
                    weight = 0
                entries.append(_Stmt(cell, path, index, facts.node, facts.key, weight, facts))
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

    candidates: list[_Candidate] = []
    for found, length in raw:
        maximal = _left_maximal(lists, found)
        if maximal is None:
            continue
        members = _without_overlaps(maximal, length)
        if len(members) < 2:
            continue
        candidate = _group(lists, members, length, min_statements, min_lines)
        if candidate is not None:
            candidates.append(candidate)
    # Groups that extraction cannot take go last, so they never hide a smaller group it can.
    # Of two as large, the one whose copies start where the notebook's paragraphs start (after
    # a blank or comment line, or first in their block) goes first: in `ax = axes[0];
    # ax.plot(..); ax.set(..)` repeated with blank lines between, each copy is a paragraph,
    # not `ax.set(..)` with the next paragraph's first two lines.
    candidates.sort(key=lambda c: (_surely_refused(lists, c, min_statements),
                                   _priority(c.group)[:2], c.midway, _priority(c.group)))
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


def displays(cell: ParsedCell, statement: ast.stmt) -> bool:
    """Would IPython display the value of this statement, the last of its cell?

    Any expression statement, unless a `;` ends the cell (IPython then stays quiet) or it is a
    ``print(...)`` call. ``refactor.extract._displayed`` adds what it knows of the notebook
    (``print`` redefined; ``plt.show()`` when ``plt`` is pyplot).
    """
    value = getattr(statement, "value", None)
    if not isinstance(statement, ast.Expr) or ends_quietly(cell, statement):
        return False
    return not (isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id == "print")


def ends_quietly(cell: ParsedCell, statement: ast.stmt) -> bool:
    """Does a `;` follow ``statement``, the last of its cell (IPython then displays nothing)?"""
    lines = cell.masked.code.encode().splitlines()
    end = statement.end_lineno or statement.lineno
    rest = lines[end - 1][statement.end_col_offset or 0:] if end <= len(lines) else b""
    return rest.lstrip().startswith(b";")


def _surely_refused(lists: list[list[_Stmt]], candidate: _Candidate, min_statements: int) -> bool:
    """Would ``refactor.extract`` refuse this group for what it is, whatever else is extracted?

    Mirrors its first checks on what surely moves (a displayed expression ending a cell may stay
    there): it must be safe to move (no break/return/global/del/locals()...), free of magics and
    of definitions, renamed consistently, and not only data (``worth.data_only``).
    """
    length = candidate.length
    list_id, start = candidate.copies[0].member
    first = lists[list_id][start:start + length]
    leaves = [c.leaves for c in candidate.copies]
    consistent = candidate.group.consistent
    last = [lists[c.member[0]][c.member[1] + length - 1] for c in candidate.copies]
    if any(not c.ends_early and c.occurrence.path == () and displays(e.cell, e.node)
           for c, e in zip(candidate.copies, last)):
        # The displayed expression stays in the cell, or (too few statements left and no
        # variable used later) the function returns it: check what is left, which either way
        # moves. Drop that statement's leaves (same count in all copies).
        dropped = len(first[-1].leaves)
        leaves = [l[:len(l) - dropped] for l in leaves]
        first = first[:-1]
        bound = [_bound_names(lists[c.member[0]][c.member[1]:c.member[1] + length - 1])
                 for c in candidate.copies]
        consistent = renaming_clash(leaves, bound) is None
        if sum(e.weight for e in first) < min_statements and any(
                c.ends_early and set(block_io([e.node for e in lists[c.member[0]][c.member[1] + length:]]).reads)
                & b for c, b in zip(candidate.copies, bound)):
            # Too small without the displayed expression, and the function could not return
            # it instead: a copy's own cell reads what the block assigns.
            return True
    if not first or not consistent:
        return True
    nodes = [e.node for e in first]
    reasons = block_io(nodes).unsafe_reasons
    # A `break` or `continue` alone becomes `if f(...): break` (refactor/extract.py).
    escapes_only = len(reasons) == 1 and reasons[0] in ("`break` leaves the block",
                                                        "`continue` leaves the block")
    if data_only(nodes) or (reasons and not escapes_only):
        return True
    if any(e.facts.defines for e in first):
        return True
    return any(leaf.kind == "name" and is_placeholder_name(str(leaf.value)) for leaf in leaves[0])


def _merge_overlapping(lists: list[list[_Stmt]], candidates: list[_Candidate],
                       min_statements: int = 3, min_lines: int = 3) -> list[CloneGroup]:
    """One group per repeated pattern: no statement is in two reported groups.

    Maximal repeats of one pattern overlap (a block pasted in several cells, each copy extended
    differently, yields the shared run plus every longer run shared by fewer copies). Candidates
    come in priority order (groups extraction would refuse last); each keeps the copies that
    overlap no copy of a group kept before it, and is dropped when fewer than two copies are
    left, unless the part of it that no kept group claims is still a group (a run of six
    statements pasted twice whose first three are a group of six copies: its last three).
    That is the choice ``plan`` makes when extracting, so the report shows what would be
    extracted, once. Linear: every statement of every candidate copy is looked at once, plus
    the depth of its statement list.
    """
    claimed: set[tuple[int, Path, int]] = set()  # (cell key, statement list, index) kept
    enclosing: set[tuple[int, Path, int]] = set()  # statements with a kept copy nested inside
    cell_keys: dict[tuple[int, int], int] = {}
    kept_groups: list[CloneGroup] = []

    def free(copy: _Copy, offsets: range) -> bool:
        list_id, start = copy.member
        entry = lists[list_id][start]
        cell = cell_keys.setdefault((entry.cell.notebook, entry.cell.cell), len(cell_keys))
        path = entry.path
        if any((cell, path, start + i) in claimed or (cell, path, start + i) in enclosing
               for i in offsets):
            return False
        return not any((cell, path[:depth], path[depth][0]) in claimed for depth in range(len(path)))

    for candidate in candidates:
        length = candidate.length
        kept = [copy for copy in candidate.copies if free(copy, range(length))]
        if len(kept) < 2:
            rest = _remainder(lists, candidate, free, min_statements, min_lines)
            if rest is None:
                continue
            candidate, length, kept = rest, rest.length, rest.copies
        group = candidate.group
        if len(kept) < len(candidate.copies):
            group = _make_group(candidate.weight, candidate.lines, kept)
        for copy in kept:
            list_id, start = copy.member
            entry = lists[list_id][start]
            cell = cell_keys[(entry.cell.notebook, entry.cell.cell)]
            path = entry.path
            claimed.update((cell, path, i) for i in range(start, start + length))
            enclosing.update((cell, path[:depth], path[depth][0]) for depth in range(len(path)))
        kept_groups.append(group)
    return kept_groups


def _remainder(lists: list[list[_Stmt]], candidate: _Candidate, free, min_statements: int,
               min_lines: int) -> _Candidate | None:
    """The longest run of ``candidate``'s statements that at least two of its copies still
    have unclaimed, as a candidate of those copies; None when it is too small or would be
    refused anyway (it must not take statements from a group extraction could use)."""
    runs: list[tuple[int, int, int]] = []  # (copy, first offset, end offset) of unclaimed runs
    for index, copy in enumerate(candidate.copies):
        if not free(copy, range(0)):  # nested in a claimed statement
            continue
        first = None
        for offset in range(candidate.length + 1):
            if offset < candidate.length and free(copy, range(offset, offset + 1)):
                first = offset if first is None else first
            elif first is not None:
                runs.append((index, first, offset))
                first = None
    best: tuple[int, int] | None = None
    for i, (copy_a, a0, a1) in enumerate(runs):  # the longest stretch two copies share
        for copy_b, b0, b1 in runs[i + 1:]:
            a, b = max(a0, b0), min(a1, b1)
            if copy_a != copy_b and b - a > (best[1] - best[0] if best else 0):
                best = (a, b)
    if best is None or best[1] - best[0] == candidate.length:
        return None
    a, b = best
    copies = [c for c in candidate.copies if free(c, range(a, b))]
    found = _group(lists, [(c.member[0], c.member[1] + a) for c in copies], b - a,
                   min_statements, min_lines)
    if found is None or _surely_refused(lists, found, min_statements):
        return None
    return found


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


@dataclass
class _Copy:
    member: tuple[int, int]  # (statement list, start)
    occurrence: Occurrence
    leaves: list[Leaf]
    ends_early: bool  # the statement list goes on after this copy
    bound: frozenset[str]  # names the copy binds (``bound_names``)


@dataclass
class _Candidate:
    weight: int
    lines: int
    length: int
    copies: list[_Copy]  # in the order of the raw members
    group: CloneGroup
    midway: int = 0  # copies that start in the middle of a paragraph (see find_clones)


def _group(lists: list[list[_Stmt]], members: list[tuple[int, int]], length: int,
           min_statements: int, min_lines: int) -> _Candidate | None:
    first = lists[members[0][0]][members[0][1]:members[0][1] + length]
    weight = sum(e.weight for e in first)
    lines = (first[-1].node.end_lineno or first[-1].node.lineno) - first[0].node.lineno + 1
    if weight < min_statements or lines < min_lines:
        return None
    if all(isinstance(e.node, (ast.Pass, ast.Expr)) and _is_trivial(e.node) for e in first):
        return None
    copies = []
    midway = 0
    for list_id, start in members:
        entries = lists[list_id][start:start + length]
        if start:
            before = lists[list_id][start - 1].node
            midway += entries[0].node.lineno == (before.end_lineno or before.lineno) + 1
        cell = entries[0].cell
        occurrence = Occurrence(cell.notebook, cell.cell, entries[0].path, start, start + length,
                                entries[0].node.lineno,
                                entries[-1].node.end_lineno or entries[-1].node.lineno)
        copies.append(_Copy((list_id, start), occurrence, _leaves(entries),
                            start + length < len(lists[list_id]), _bound_names(entries)))
    return _Candidate(weight, lines, length, copies, _make_group(weight, lines, copies), midway)


def _make_group(weight: int, lines: int, copies: list[_Copy]) -> CloneGroup:
    ordered = sorted(copies, key=lambda c: (c.occurrence.notebook, c.occurrence.cell,
                                            c.occurrence.path, c.occurrence.start))
    values = [[leaf.value for leaf in c.leaves] for c in ordered]
    exact = all(v == values[0] for v in values)
    consistent = renaming_clash([c.leaves for c in ordered], [c.bound for c in ordered]) is None
    kind = "exact" if exact else "renamed"
    if sum(1 for c in copies if c.ends_early) >= 2:
        kind = "near"
    return CloneGroup("", kind, weight, lines, tuple(c.occurrence for c in ordered), consistent)


def _is_trivial(node: ast.stmt) -> bool:
    return isinstance(node, ast.Pass) or (isinstance(node, ast.Expr)
                                          and isinstance(node.value, ast.Constant))


def bound_names(statements: list[ast.stmt]) -> frozenset[str]:
    """Every name ``statements`` bind or delete anywhere inside (comprehension and loop
    targets, ``as`` names, lambda arguments, imports, match captures included)."""
    found: set[str] = set()
    for statement in statements:
        found |= _bound_in(statement)
    return frozenset(found)


_DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
# Nodes other than names that bind a name (``_Shape`` visits names itself).
_BINDERS = frozenset({ast.arg, ast.ExceptHandler, ast.alias, ast.MatchAs, ast.MatchStar,
                      ast.MatchMapping})


def _bound_in(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in walk(tree):
        if type(node) is ast.Name:
            if type(node.ctx) is not ast.Load:
                found.add(node.id)
        elif type(node) in _BINDERS:
            name = _binding(node)
            if name:
                found.add(name)
    return found


def _binding(node: ast.AST) -> str | None:
    """The name one of ``_BINDERS`` binds itself (not its children), if any."""
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.alias):
        return node.asname or node.name.split(".")[0]
    if isinstance(node, ast.MatchMapping):
        return node.rest
    return node.name  # type: ignore[attr-defined]  # ExceptHandler, MatchAs, MatchStar


def renaming_clash(leaf_lists: list[list[Leaf]], bound: list[frozenset[str]]) -> str | None:
    """Why the copies cannot share one function because of their names, or None.

    Name positions are grouped by the tuple of names they hold across the copies; each tuple
    becomes one variable or parameter of the function. That is sound when every name a copy
    binds sits in one tuple only (its writes and reads stay one variable). A name a copy only
    reads may sit in several: ``X`` in one copy where another reads ``X_train`` and ``X_test``
    gives two parameters, both passed ``X`` by that copy.
    """
    names = [[leaf.value for leaf in leaves if leaf.kind == "name"] for leaves in leaf_lists]
    tuples = sorted(set(zip(*names)), key=repr)  # in a fixed order, so the reason is too
    for i, copy_bound in enumerate(bound):
        seen: dict[object, tuple] = {}
        for key in tuples:
            name = key[i]
            if name not in copy_bound:
                continue
            if name in seen:
                other = seen[name]
                j = next(j for j in range(len(key)) if key[j] != other[j])
                return (f"`{name}` is both `{other[j]}` and `{key[j]}` in another copy, and the "
                        "block assigns it")
            seen[name] = key
    return None


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
