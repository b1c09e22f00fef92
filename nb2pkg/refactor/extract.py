"""Turn a clone group into one function and a call site per copy (anti-unification with libcst).

Positions that differ between the copies become parameters (a consistent renaming is one
parameter, equal literal changes share one); names the block reads before binding become
parameters; names it binds and the notebook reads elsewhere are returned and unpacked at the call
site. A trailing expression that the cell displays stays in the cell. Whatever cannot be shown
safe is refused with a reason, and the code is left alone.
"""

from __future__ import annotations

import ast
import bisect
import collections
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

from ..analysis.clones import (CloneGroup, Leaf, Occurrence, block_bound, block_shape,
                               ends_quietly, renaming_clash, statement_list)
from ..analysis.worth import data_only, is_data, literal_container, plot_split
from ..analysis.dataflow import BUILTIN_NAMES, DataFlow
from ..analysis.parse import ParsedCell, walk
from ..analysis.scope import BlockIO, block_io
from ..magics import NAMESPACE_MAGICS, is_placeholder_name
from .hoist import package_listing
from .describe import Facts, changed_in_place, docstring, free_name
from .naming import Namer, common_stem, identifier, looks_like_class, unnumbered

if TYPE_CHECKING:  # libcst is imported only when a cell is parsed with it (see cst_code.py)
    import libcst as cst

CellKey = tuple[int, int]  # (notebook position, cell index)
# libcst's code generation recurses a few frames per nesting level, so only a cell of at least
# this many characters can nest deeply enough to exhaust Python's default recursion limit.
DEEP_NESTING_CHARS = 500
# ... and only a syntax tree deeper than this: the shallowest failure measured is a chain of
# subscripts `a[a[...]]` at an ast depth of 169 (about 6 frames per level); below 40 levels code
# generation cannot come near the limit, so the trial (12 % of a 600-cell conversion) is skipped.
DEEP_NESTING_LEVELS = 40


@dataclass(frozen=True)
class Parameter:
    name: str
    arguments: tuple[str, ...]  # the argument's source text at each call site, in occurrence order


@dataclass(frozen=True)
class CallSite:
    occurrence: Occurrence  # the statements replaced (the displayed last expression excluded)
    statement: str  # the replacing statement, e.g. "total, df = summarize(df_north, 'north')"


@dataclass(frozen=True)
class Extraction:
    group: str
    function: str
    module: str  # module key: a notebook's module name, or "common"
    source: str  # the function definition (unformatted; formatted at generation)
    parameters: tuple[Parameter, ...]
    returns: tuple[str, ...]
    calls: tuple[CallSite, ...]
    globals_used: tuple[str, ...]  # module-level names the body needs (imports, hoisted defs)

    @property
    def order(self) -> tuple[int, ...]:
        return group_order(self.group)


@dataclass(frozen=True)
class Refusal:
    group: str
    reason: str
    occurrences: tuple[Occurrence, ...]

    @property
    def order(self) -> tuple[int, ...]:
        return group_order(self.group)


def group_order(group: str) -> tuple[int, ...]:
    """Sort key of a group id: C2 < C10, C3 < C3.1 < C3.2."""
    return tuple(int(part) for part in group.lstrip("C").split(".") if part.isdigit())


@dataclass
class ExtractContext:
    """What extraction needs to know about the notebooks (filled by the planner)."""

    cells: Mapping[CellKey, ParsedCell]
    flows: Sequence[DataFlow]  # per notebook
    modules: Sequence[str]  # module name per notebook
    # How the module holding the function can provide `name` for notebook `nb`: "builtin",
    # "hoisted" (defined in that notebook's module), the import statement, or None (it cannot).
    module_global: Callable[[int, str], str | None]
    taken: set[str]  # every name the notebooks use, plus names already handed out
    min_statements: int = 3
    overrides: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    section_title: Callable[[int, int], str | None] | None = None  # (notebook, cell) -> heading
    _modules: dict[CellKey, cst.Module] = field(default_factory=dict)
    _positions: dict[CellKey, tuple[cst.Module, Mapping[cst.CSTNode, object]]] = field(
        default_factory=dict)
    _notebook_facts: dict[int, tuple[list[CellKey], frozenset[str], bool]] = field(
        default_factory=dict)
    _stores: dict[CellKey, Mapping[str, tuple[int, ...]]] = field(default_factory=dict)
    _lines: dict[CellKey, list[bytes]] = field(default_factory=dict)
    _segment_lines: dict[CellKey, list[str]] = field(default_factory=dict)
    # Reads and writes of the statements after a block, by (cell, path, stop): the liveness
    # check asks for every name the block writes, in every copy.
    _rest_io: dict[tuple[CellKey, tuple, int], BlockIO] = field(default_factory=dict)
    _later: dict[int, tuple[dict[str, list[int]], dict[str, list[int]], list[int]]] = field(
        default_factory=dict)
    _mentions: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    _words: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    _range_is_builtin: dict[int, bool] = field(default_factory=dict)
    _signatures: dict[int, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    _listings: dict[int, list[tuple[int, int, str]]] = field(default_factory=dict)
    _package_listings: dict[int, tuple[int, int] | None] = field(default_factory=dict)

    def cst_module(self, key: CellKey) -> cst.Module:
        """The cell's masked code parsed with libcst (once)."""
        if key not in self._modules:
            import libcst as cst

            code = self.cells[key].masked.code
            try:
                module = cst.parse_module(code)
                tree = self.cells[key].tree
                if len(code) > DEEP_NESTING_CHARS and (
                        tree is None or _deeper_than(tree, DEEP_NESTING_LEVELS)):
                    module.code  # generating code recurses deeper than parsing: try it once
            except RecursionError:  # hundreds of terms in one expression: ast copes, libcst not
                raise _Refuse("an expression is nested too deeply to rewrite") from None
            self._modules[key] = module
        return self._modules[key]

    def check_rewritable(self, key: CellKey) -> None:
        """Refuse a cell libcst cannot take apart. Only a deeply nested one can fail (and its
        rewrite may need libcst if its text has carriage returns), so only such a cell is
        parsed with libcst here."""
        code = self.cells[key].masked.code
        tree = self.cells[key].tree
        if "\r" in code or (len(code) > DEEP_NESTING_CHARS and (
                tree is None or _deeper_than(tree, DEEP_NESTING_LEVELS))):
            self.cst_module(key)

    def cst_positions(self, key: CellKey) -> tuple[cst.Module, Mapping[cst.CSTNode, object]]:
        """The parsed cell with source positions, for cells whose leaves are rewritten."""
        if key not in self._positions:
            from libcst.metadata import MetadataWrapper, PositionProvider

            # The module was parsed for this cache and is never changed: no need to copy it.
            wrapper = MetadataWrapper(self.cst_module(key), unsafe_skip_copy=True)
            try:
                self._positions[key] = (wrapper.module, wrapper.resolve(PositionProvider))
            except RecursionError:
                raise _Refuse("an expression is nested too deeply to rewrite") from None
        return self._positions[key]

    def stores(self, key: CellKey) -> Mapping[str, tuple[int, ...]]:
        """Lines where each name is bound or deleted in the cell (for before/outside checks)."""
        if key not in self._stores:
            found: dict[str, list[int]] = {}
            tree = self.cells[key].tree
            for node in walk(tree) if tree is not None else ():
                if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                    found.setdefault(node.id, []).append(node.lineno)
            self._stores[key] = {name: tuple(lines) for name, lines in found.items()}
        return self._stores[key]

    def kept_lines(self, key: CellKey) -> list[str]:
        """The cell's masked code split as ``ast.get_source_segment`` splits it (once)."""
        if key not in self._segment_lines:
            self._segment_lines[key] = segment_lines(self.cells[key].masked.code)
        return self._segment_lines[key]

    def source_lines(self, key: CellKey) -> list[bytes]:
        if key not in self._lines:
            self._lines[key] = self.cells[key].masked.code.encode().splitlines()
        return self._lines[key]

    def notebook_facts(self, notebook: int) -> tuple[list[CellKey], frozenset[str], bool]:
        """Cell keys in order, names read by function bodies, and whether any cell uses
        ``globals()`` and the like: computed once per notebook for the liveness check."""
        if notebook not in self._notebook_facts:
            keys = sorted(k for k in self.cells if k[0] == notebook)
            ios = [self.cells[k].io for k in keys]
            deferred = frozenset(n for io in ios if io is not None for n in io.deferred_reads)
            dynamic = any(io is not None and io.dynamic for io in ios)
            self._notebook_facts[notebook] = (keys, deferred, dynamic)
        return self._notebook_facts[notebook]


    def listing_after(self, o: Occurrence) -> str | None:
        """A magic after the copy ``o`` that lists the notebook's variables (``%whos``), as
        ``"cell N runs `%whos`"``, or None."""
        if o.notebook not in self._listings:
            keys = self.notebook_facts(o.notebook)[0]
            self._listings[o.notebook] = [
                (key[1], m.line, m.name) for key in keys
                for m in self.cells[key].masked.magics if m.name in _SEES_VARIABLES]
        found = next(((cell, name) for cell, line, name in self._listings[o.notebook]
                      if (cell, line) > (o.cell, o.last_line)), None)
        return f"cell {found[0]} runs `%{found[1]}`" if found else None

    def package_listing(self, notebook: int) -> tuple[int, int] | None:
        """(cell, line) of the notebook's last ``%watermark -iv``, or None (``hoist``)."""
        if notebook not in self._package_listings:
            keys = self.notebook_facts(notebook)[0]
            self._package_listings[notebook] = package_listing(self.cells[key] for key in keys)
        return self._package_listings[notebook]

    def positional_names(self, notebook: int) -> Mapping[str, tuple[str, ...]]:
        """The positional parameters of each function the notebook defines once at the top of
        a cell (``def read_graph(path)``): a constant passed to it is named after them."""
        if notebook not in self._signatures:
            found: dict[str, tuple[str, ...] | None] = {}
            for key in self.notebook_facts(notebook)[0]:
                tree = self.cells[key].tree
                for node in tree.body if tree is not None else ():
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        names = tuple(a.arg for a in (*node.args.posonlyargs, *node.args.args))
                        found[node.name] = names if node.name not in found else None
            self._signatures[notebook] = {k: v for k, v in found.items() if v is not None}
        return self._signatures[notebook]

    def range_is_builtin(self, notebook: int) -> bool:
        """Is ``range`` surely the builtin in this notebook (so ``for i in range(1, 31)`` runs
        its body)? Not when its code binds the name or reaches the namespace in ways we cannot
        follow (``globals()``), when a cell does not parse, or when IPython syntax names it or
        may run code that binds names (``%run``, ``%store -r``, extensions, ``%%capture``)."""
        if notebook not in self._range_is_builtin:
            keys, _, dynamic = self.notebook_facts(notebook)
            self._range_is_builtin[notebook] = not dynamic \
                and "range" not in self.flows[notebook].defined_in \
                and not any(self.cells[key].io is None
                            or any(_BINDING_MAGIC.match(m.text) or "range" in _WORD_RUN.findall(m.text)
                                   for m in self.cells[key].masked.magics) for key in keys)
        return self._range_is_builtin[notebook]

    def cell_events(self, notebook: int) -> tuple[dict[str, list[int]], dict[str, list[int]],
                                                  list[int]]:
        """Per name, the positions (in ``notebook_facts`` keys) of the cells that read it and of
        those that surely bind it; and the positions of the cells read only as text (opaque,
        or holding magics). Built once per notebook, so the liveness check looks a name up
        instead of passing over every later cell for every name."""
        if notebook not in self._later:
            keys = self.notebook_facts(notebook)[0]
            reads: dict[str, list[int]] = {}
            writes: dict[str, list[int]] = {}
            textual: list[int] = []
            for position, key in enumerate(keys):
                cell = self.cells[key]
                if cell.io is None or cell.masked.magics:
                    textual.append(position)
                if cell.io is None:
                    continue
                for name in set(cell.io.reads):
                    reads.setdefault(name, []).append(position)
                for name in cell.io.definite_writes:
                    writes.setdefault(name, []).append(position)
            self._later[notebook] = (reads, writes, textual)
        return self._later[notebook]

    def mentions(self, notebook: int, name: str) -> list[int]:
        """The positions of the cells read only as text (see ``cell_events``) whose text holds
        ``name``: an opaque cell's source, or another cell's magics. The liveness check asks
        for a name in every copy of every block that assigns it, so each text is split once
        into its runs of word characters: a name (all word characters) is in a text exactly
        when it is in one of its runs, and the runs of all texts are far fewer than the texts."""
        found = self._mentions.get((notebook, name))
        if found is None:
            words = self._textual_words(notebook)
            if _WORD_RUN.fullmatch(name):
                found = sorted({p for word, positions in words.items() if name in word
                                for p in positions})
            else:  # not an identifier of word characters (never seen): read every text
                keys = self.notebook_facts(notebook)[0]
                found = [p for p in self.cell_events(notebook)[2]
                         if name in _text_of(self.cells[keys[p]])]
            self._mentions[(notebook, name)] = found
        return found

    def _textual_words(self, notebook: int) -> dict[str, list[int]]:
        """Each run of word characters in the text-only cells' texts -> their positions."""
        found = self._words.get(notebook)
        if found is None:
            keys = self.notebook_facts(notebook)[0]
            found = {}
            for position in self.cell_events(notebook)[2]:
                for word in set(_WORD_RUN.findall(_text_of(self.cells[keys[position]]))):
                    found.setdefault(word, []).append(position)
            self._words[notebook] = found
        return found


_WORD_RUN = re.compile(r"\w+")
# Magics that show the notebook's variables, all of them (`%watermark -iv` shows the modules
# imported, which extraction never moves).
_SEES_VARIABLES = NAMESPACE_MAGICS - {"watermark"}
# IPython syntax that may bind any name: running a script or stored variables into the
# namespace, loading an extension, capturing a cell's output into a variable.
_BINDING_MAGIC = re.compile(r"\s*%{1,2}\s*(run|store|load_ext|reload_ext|load|capture|macro)\b")


def _text_of(cell: ParsedCell) -> str:
    """What of a cell only text can tell: all of an opaque one, else its magics."""
    return cell.source if cell.io is None else "\n".join(m.text for m in cell.masked.magics)


def _first_from(positions: list[int], start: int) -> int | None:
    i = bisect.bisect_left(positions, start)
    return positions[i] if i < len(positions) else None


def _deeper_than(tree: ast.AST, levels: int) -> bool:
    """Does ``tree`` nest more than ``levels`` nodes deep? (Stops at the first such node.)"""
    level = [tree]
    for _ in range(levels):  # one list of nodes per level, as in parse.walk
        below = []
        for node in level:
            for name in node._fields:
                value = getattr(node, name, None)
                if isinstance(value, list):
                    below += [item for item in value if isinstance(item, ast.AST)]
                elif isinstance(value, ast.AST):
                    below.append(value)
        if not below:
            return False
        level = below
    return True


class _Refuse(Exception):
    pass


def extract_group(group: CloneGroup, ctx: ExtractContext) -> Extraction | Refusal:
    """Extract ``group`` into a function, or say why it is not safe (or not worth) to."""
    if _override(ctx, group.id).get("skip"):
        return Refusal(group.id, "skipped: the names file says so", group.occurrences)
    try:
        return _extract(group, ctx)
    except _Refuse as refusal:
        return Refusal(group.id, str(refusal), group.occurrences)


def extract_parts(group: CloneGroup, ctx: ExtractContext) -> list[Extraction | Refusal]:
    """Extract ``group``; a block that computes and then plots (or the reverse) is split where
    one gives way to the other, and each part (ids ``C3.1``, ``C3.2``) is extracted or refused
    on its own (``analysis.worth``). A part refused as a whole may have a smaller part
    extracted instead (``_or_smaller``)."""
    if _override(ctx, group.id).get("skip"):
        return [Refusal(group.id, "skipped: the names file says so", group.occurrences)]
    try:
        first = _statements(ctx, group.occurrences[0])
    except (AssertionError, IndexError):  # pragma: no cover - occurrences come from the cells
        return [extract_group(group, ctx)]
    parts = plot_split(first)
    if len(parts) < 2:
        return _or_smaller(group, ctx)
    results: list[Extraction | Refusal] = []
    for number, (start, stop, kind) in enumerate(parts, 1):
        occurrences = []
        for o in group.occurrences:
            block = _statements(ctx, o)
            occurrences.append(replace(o, start=o.start + start, stop=o.start + stop,
                                       first_line=block[start].lineno,
                                       last_line=block[stop - 1].end_lineno or block[stop - 1].lineno))
        part = replace(group, id=f"{group.id}.{number}", occurrences=tuple(occurrences),
                       statements=block_shape(first[start:stop]).weight)
        found = _or_smaller(part, ctx)
        if isinstance(found[0], Refusal):
            what = "plotting" if kind == "plot" else "computation"
            found[0] = replace(found[0], reason=f"the {what} part of a block that computes and "
                                                f"plots (split there): {found[0].reason}")
        results += found
    return results


CONDITIONAL = "is assigned only on some paths through the block"


def _or_smaller(group: CloneGroup, ctx: ExtractContext) -> list[Extraction | Refusal]:
    """``group`` extracted; or, refused, the refusal and what a smaller part of it gives."""
    result = extract_group(group, ctx)
    if isinstance(result, Extraction) or _override(ctx, group.id).get("skip"):
        return [result]
    smaller, what = _loop_body(group, ctx), "the loop stays, and its body is extracted"
    if smaller is None and CONDITIONAL in result.reason:
        smaller, what = _without_conditional_edges(group, ctx), (
            "the statements at its edges that assign names only on some paths stay, and the "
            "rest is extracted")
    if smaller is not None:
        inside = extract_parts(smaller, ctx)
        if any(isinstance(r, Extraction) for r in inside):
            return [replace(result, reason=f"{result.reason}; {what} ({smaller.id})"), *inside]
    fewer = _without_one_copy(group, ctx, result.reason)
    if fewer is not None:
        left, extraction = fewer
        where = f"cell {left.cell}" + (f" of notebook {left.notebook + 1}"
                                       if len({o.notebook for o in group.occurrences}) > 1 else "")
        return [replace(result, reason=f"{result.reason}; the copy in {where} stays, and the "
                                       f"other {len(extraction.calls)} are extracted "
                                       f"({extraction.group})"), extraction]
    return [result]


# Reasons that hold for any set of the copies (they are about the shape all copies share):
# leaving one copy out cannot change them, so it is not tried.
DATA_ONLY = "only assigns constants and tables (data, not logic)"
DEFINES = "defines a function or class inside the copied block"
MAGICS = "contains IPython magics or shell commands, which only run in a notebook"
_SHAPE_REASONS = (DATA_ONLY, DEFINES, MAGICS)
# At most this many copies are tried one by one (each try is an extraction's work).
LEAVE_ONE_OUT_COPIES = 8


def _without_one_copy(group: CloneGroup, ctx: ExtractContext,
                      reason: str) -> tuple[Occurrence, Extraction] | None:
    """One copy that keeps the others from being extracted (it reads another variable where
    the others read the one they assign, it is the only one to differ in a constant, ...), and
    the extraction of the others (id ``C3.1``): the copy left out stays as it is. Among the
    copies whose leaving out works, the one that leaves the function the fewest parameters
    (then the first). Only for three copies or more, so that two copies still share it."""
    copies = group.occurrences
    if (not 3 <= len(copies) <= LEAVE_ONE_OUT_COPIES
            or reason in _SHAPE_REASONS):
        return None
    best: tuple[Occurrence, Extraction] | None = None
    taken = set(ctx.taken)  # an extraction claims its function's name: only the one kept may
    for index, left in enumerate(copies):
        ctx.taken.clear()
        ctx.taken.update(taken)
        rest = replace(group, id=f"{group.id}.1", occurrences=copies[:index] + copies[index + 1:])
        found = extract_group(rest, ctx)
        if isinstance(found, Extraction) and (
                best is None or len(found.parameters) < len(best[1].parameters)):
            best = (left, found)
    ctx.taken.clear()
    ctx.taken.update(taken | ({best[1].function} if best is not None else set()))
    return best


# How much of each copy's section title the words they share must be to name the function.
TITLE_SHARE = 0.8


def _common_words(texts: Sequence[str | None], most: float = 0.0) -> str | None:
    """The words of the first text that every other has too, in its order; None when they are
    less than ``most`` of some text's words."""
    split = [[identifier(w) for w in (text or "").split()] for text in texts]
    common = [w for w in split[0] if all(w in words for words in split[1:])]
    if not common or any(len(common) < most * len(words) for words in split):
        return None
    return " ".join(w for w, key in zip((texts[0] or "").split(), split[0]) if key in common)


def _loop_body(group: CloneGroup, ctx: ExtractContext) -> CloneGroup | None:
    """The group of the copies' loop bodies (id ``C3.1``), when every copy is one ``for`` or
    ``while`` loop without ``else``: the loop and the guards opening its body (``if ...:
    continue``) stay in the notebook, and the function does one iteration's work. A loop as a
    whole is refused when the names it binds only if it runs had values before; the body
    binds them every time it runs."""
    occurrences = []
    for o in group.occurrences:
        block = _statements(ctx, o)
        if len(block) != 1 or not isinstance(block[0], (ast.For, ast.While)) or block[0].orelse:
            return None
        body = block[0].body
        guards = 0
        while guards < len(body) and _guard(body[guards]):
            guards += 1
        if guards == len(body):
            return None
        occurrences.append(replace(o, path=(*o.path, (o.start, "body")), start=guards,
                                   stop=len(body), first_line=body[guards].lineno,
                                   last_line=body[-1].end_lineno or body[-1].lineno))
    first = _statements(ctx, occurrences[0])
    return replace(group, id=f"{group.id}.1", occurrences=tuple(occurrences),
                   statements=block_shape(first).weight,
                   lines=occurrences[0].last_line - occurrences[0].first_line + 1)


def _without_conditional_edges(group: CloneGroup, ctx: ExtractContext) -> CloneGroup | None:
    """The group (id ``C3.1``) without the statements at the start and end of its copies that
    assign a name only on some paths (``for ax_ in axes: ...`` after a plot): a name bound
    before, or read later, that a function could not leave as it was. None when there are
    none, or nothing else."""
    blocks = [_statements(ctx, o) for o in group.occurrences]
    conditional = [bool(io.writes - io.definite_writes)
                   for io in (block_io([statement]) for statement in blocks[0])]
    lead = next((i for i, c in enumerate(conditional) if not c), len(conditional))
    trail = next((i for i, c in enumerate(reversed(conditional)) if not c), len(conditional))
    if not (lead or trail) or lead + trail >= len(blocks[0]):
        return None
    kept, occurrences = _cut(blocks, list(group.occurrences), lead, trail)
    return replace(group, id=f"{group.id}.1", occurrences=tuple(occurrences),
                   statements=block_shape(kept[0]).weight,
                   lines=occurrences[0].last_line - occurrences[0].first_line + 1)


def _guard(statement: ast.stmt) -> bool:
    """``if condition: continue`` (or ``break``): the loop's, so it stays with the loop."""
    return (isinstance(statement, ast.If) and not statement.orelse and len(statement.body) == 1
            and isinstance(statement.body[0], (ast.Continue, ast.Break)))


def _extract(group: CloneGroup, ctx: ExtractContext) -> Extraction:
    occurrences = list(group.occurrences)
    blocks = [_statements(ctx, o) for o in occurrences]
    if data_only(blocks[0]):
        raise _Refuse(DATA_ONLY)
    listing = next(filter(None, map(ctx.listing_after, occurrences)), None)
    if listing:
        raise _Refuse(f"{listing}, which lists the notebook's variables: the function's name "
                      "would show there, and what the copies assign")
    for o in occurrences:
        packages = ctx.package_listing(o.notebook)
        if packages and o.cell <= packages[0]:
            raise _Refuse(f"cell {packages[0]} runs `%watermark -iv`, which lists the package of "
                          "each function the notebook holds: the function, imported before it, "
                          "would add the package to that list")

    # A displayed last expression stays in its cell, so the display is untouched; if what is
    # left is too small, the function returns the value and the call ends the cell instead.
    shown: list[ast.stmt] | None = None  # the displayed statement of each copy, when it moves
    ends = [o.path == () and o.stop == len(ctx.cells[(o.notebook, o.cell)].tree.body)  # type: ignore[union-attr]
            for o in occurrences]
    trimmed = ""
    if any(end and _displayed(ctx, o, b[-1]) for o, b, end in zip(occurrences, blocks, ends)):
        shown = [b[-1] for b in blocks]
        blocks, occurrences = _cut(blocks, occurrences, 0, 1)
    else:
        # `del name` at the end stays in the cell: the function leaves the variable to it.
        dels = 0
        while dels < len(blocks[0]) and _deletes_names(blocks[0][len(blocks[0]) - 1 - dels]):
            dels += 1
        if dels:
            blocks, occurrences = _cut(blocks, occurrences, 0, dels)
            trimmed = "`del` statements"
    # Constants that differ between the copies, assigned at the edges, stay in the notebook.
    lead, trail = _data_edges(blocks, allow_trailing=shown is None)
    if lead or trail:
        blocks, occurrences = _cut(blocks, occurrences, lead, trail)
        trimmed = "constants it assigns"
    if not blocks[0] or block_shape(blocks[0]).weight < ctx.min_statements:
        if shown is None:
            raise _Refuse(f"too small once the {trimmed} stay in the cell" if trimmed
                          else "too small")
        # Too small without the displayed expression: it moves too, and the function returns
        # its value, which the call ending the cell displays.
        blocks = [b + [s] for b, s in zip(blocks, shown)]
        occurrences = [replace(o, stop=o.stop + 1, last_line=s.end_lineno or s.lineno)
                       for o, s in zip(occurrences, shown)]
        if block_shape(blocks[0]).weight < ctx.min_statements:
            raise _Refuse("too small once the displayed last expression stays in the cell"
                          + (" and the constants it assigns" if lead else ""))
    else:
        shown = None
    quiet = [shown is not None and end and not _displayed(ctx, o, b[-1])
             for o, b, end in zip(occurrences, blocks, ends)]

    ios = [block_io(b, range_is_builtin=ctx.range_is_builtin(o.notebook))
           for b, o in zip(blocks, occurrences)]
    # A `break` or `continue` leaving the block (of one kind, the same in every copy) becomes
    # `return True`; the call says `if f(...): break` (see _loop_escape).
    escape = _loop_escape(ios, blocks)
    for io in ios:
        if io.unsafe_reasons and escape is None:
            raise _Refuse("not safe to move into a function: " + "; ".join(io.unsafe_reasons))
    shapes = [block_shape(b) for b in blocks]
    if any(found.defines for found in shapes):
        raise _Refuse(DEFINES)
    leaves = [found.leaves for found in shapes]
    if any(is_placeholder_name(str(leaf.value)) for leaf in leaves[0] if leaf.kind == "name"):
        raise _Refuse(MAGICS)
    clash = renaming_clash(leaves, [block_bound(b) for b in blocks])
    if clash:
        raise _Refuse("a name stands for different names in different copies: " + clash)

    # -- classify names -----------------------------------------------------------------------
    name_classes: dict[tuple[str, ...], list[int]] = {}
    for j, leaf in enumerate(leaves[0]):
        if leaf.kind == "name":
            key = tuple(str(l[j].value) for l in leaves)
            name_classes.setdefault(key, []).append(j)
    # Names bound by something other than a name leaf (`import json as web` inside a `try`,
    # `except E as err`) are the same in every copy and stay the function's own: refused when
    # the notebook uses them after the block, or had given them a value before it.
    for o, io, copy in zip(occurrences, ios, leaves):
        named = {str(leaf.value) for leaf in copy if leaf.kind == "name"}
        for name in sorted(io.writes - named):
            if _live_after(ctx, o, name) or _bound_outside(ctx, occurrences, o, name):
                raise _Refuse(f"binds `{name}` otherwise than by assignment (an import, an "
                              "`except ... as`), and the notebook uses it outside the block")
    one_notebook = len({o.notebook for o in occurrences}) == 1
    module = ctx.modules[occurrences[0].notebook] if one_notebook else "common"

    inputs: list[tuple[str, ...]] = []
    outputs: list[tuple[str, ...]] = []
    kept: list[str] = []
    for key in name_classes:
        read = any(name in io.reads for name, io in zip(key, ios))
        written = any(name in io.writes for name, io in zip(key, ios))
        same = len(set(key)) == 1
        if same and not written and _shared_global(ctx, occurrences, key[0], one_notebook):
            kept.append(key[0])
            continue
        # Returned: what may be read later, and what had a value before the block (so the
        # notebook's variables end as they did, even if nothing reads them again; but `_`, the
        # name for a value thrown away, as in `_ = plt.plot(...)`, only when read).
        needed = written and any(
            _live_after(ctx, o, name)
            or (name != "_" and _bound_outside(ctx, occurrences, o, name))
            for o, name in zip(occurrences, key))
        if needed and not read and any(name not in io.definite_writes for name, io in zip(key, ios)):
            if all(_bound_before(ctx, o, name) and _live_after(ctx, o, name)
                   for o, name in zip(occurrences, key)):
                read = True  # pass the old value in, so a path that skips the assignment keeps it
            else:
                raise _Refuse(f"`{key[0]}` {CONDITIONAL}")
        if read:
            inputs.append(key)
        if needed:
            outputs.append(key)
    if escape is not None and (outputs or shown is not None):
        raise _Refuse(f"not safe to move into a function: `{escape}` leaves the block, and the "
                      "notebook uses what the block assigns after it")
    if shown is not None and outputs:
        raise _Refuse("too small once the displayed last expression stays in the cell (and "
                      "the notebook uses its variables later, so the function cannot return "
                      "the displayed value instead)")

    # Differing literals: one parameter per distinct tuple of values. A list, set or dict of
    # constants (`plt.axis([0, 2, 0, 15])`) is one value, so one parameter.
    containers = [_containers(b) for b in blocks]
    literal_params: dict[tuple[str, ...], list[int]] = {}
    container_params: dict[tuple[str, ...], list[ast.expr]] = {}  # values -> nodes of copy 0
    for j, leaf in enumerate(leaves[0]):
        if leaf.kind == "name":
            continue
        outer = containers[0].get(id(leaf.node))
        if outer is not None:
            nodes = [c[id(l[j].node)] for c, l in zip(containers, leaves)]
            values = tuple(_node_source(ctx, o, n) for o, n in zip(occurrences, nodes))
            if len(set(values)) > 1 and outer not in container_params.get(values, []):
                container_params.setdefault(values, []).append(outer)
            continue
        values = tuple(_literal_source(ctx, o, l[j]) for o, l in zip(occurrences, leaves))
        if len(set(values)) > 1:
            literal_params.setdefault(values, []).append(j)

    # Text of an f-string that is another differing string plus fixed text ('north: ' beside
    # "north") is written from that parameter (f"{column}: "), not passed again.
    derived = _derived_strings(literal_params, {
        v for v, p in literal_params.items() if all(leaves[0][j].kind == "fstring" for j in p)})
    for values in derived:
        del literal_params[values]

    # -- names --------------------------------------------------------------------------------
    override = _override(ctx, group.id)
    namer = Namer(set(kept))
    local: dict[tuple[str, ...], str] = {}
    for key in name_classes:  # unchanged names first: they keep their spelling
        if len(set(key)) == 1 and key[0] not in kept:
            # ... but a notebook constant's (CHURN_THRESHOLD) is a plain parameter inside.
            local[key] = namer.claim(key[0].lower() if len(key[0]) > 1 and key[0].isupper()
                                     else key[0])
    parents = _parents(blocks[0])
    positional = {**_POSITIONAL, **ctx.positional_names(occurrences[0].notebook)}
    literal_names = {}
    for values, positions in literal_params.items():
        wanted = _literal_name(leaves[0][positions[0]].node, leaves[0][positions[0]].kind,
                               leaves[0][positions[0]].value, parents, positional)
        literal_names[values] = namer.claim(_renamed(override, wanted))
    for values, nodes in container_params.items():
        wanted = _literal_name(nodes[0], "container", None, parents, positional)
        literal_names[values] = namer.claim(_renamed(override, wanted))
    values_of: dict[tuple[str, ...], list] = {**literal_params, **container_params}
    by_first: dict[str, list[tuple[str, ...]]] = {}
    for key in name_classes:
        by_first.setdefault(key[0], []).append(key)
    # y1, y2 -> y; but ax1, ax2, ax3 in one copy and ax4, ax5, ax6 in another stay apart.
    bare = {key: unnumbered(key) for key in name_classes if key not in local}
    stems = collections.Counter(bare.values())
    for key in name_classes:
        if key not in local and key[0] not in kept:
            stem = bare[key]
            if stem is None or stems[stem] > 1 or len(by_first[key[0]]) > 1:
                passed = _passed_as([leaves[0][p].node for p in name_classes[key]], parents,
                                    ctx.positional_names(occurrences[0].notebook))
                stem = _local_stem(key, by_first[key[0]], literal_names, values_of, blocks[0],
                                   name_classes[key], leaves[0], passed)
            local[key] = namer.claim(_renamed(override, stem))
    inner = set(local.values()) | set(literal_names.values())
    varying: set[str] = set()  # words that differ between the copies (north, south; not total)
    for key in [*name_classes, *literal_params, *container_params]:
        if len(set(key)) > 1:
            words: list[set[str]] = [set(identifier(str(value)).split("_")) for value in key]
            varying |= set[str]().union(*words) - words[0].intersection(*words[1:])
    # A comment names the function with the words every copy's comment has ("alcohol
    # outliers", "malic acid outliers" -> "outliers"); a section title only when the copies'
    # titles are nearly the same ("Estimate causal effects using linear regression",
    # "Estimate effects using linear regression"), not by a word two sections happen to share.
    titles = [ctx.section_title(o.notebook, o.cell) if ctx.section_title is not None else None
              for o in occurrences]
    comments = [_leading_comment(ctx, o) for o in occurrences]
    facts = Facts(
        block=blocks[0], comment=_common_words(comments),
        section=_common_words(titles, most=TITLE_SHARE),
        varying=frozenset(varying), returns=[local[k] for k in outputs],
        returns_display=shown is not None,
        params=[(local[k], k, k[0]) for k in inputs]
        + [(literal_names[v], v, None) for v in [*literal_params, *container_params]],
        mutated=changed_in_place(blocks[0]), escape=escape,
        renamed={id(leaves[0][j].node): local[key] for key, positions in name_classes.items()
                 if key in local and local[key] != key[0] for j in positions})
    wanted = str(override.get("name") or free_name(facts, ctx.taken | set(kept) | inner))
    if wanted in inner:
        wanted = f"{'plot' if wanted != 'plot' else 'draw'}_{wanted}"
    function = Namer(ctx.taken | set(kept) | inner).claim(wanted)

    # -- build the function ---------------------------------------------------------------------
    replacements: dict[int, str] = {}  # leaf index in copy 0 -> new name
    for key, positions in name_classes.items():
        if key in local and local[key] != key[0]:
            for j in positions:
                replacements[j] = local[key]
    for values, positions in literal_params.items():
        for j in positions:
            replacements[j] = literal_names[values]
    for (base, prefix, suffix), positions in derived.values():
        for j in positions:
            replacements[j] = (prefix, literal_names[base], suffix)  # type: ignore[assignment]
    swapped = [(node, literal_names[values]) for values, nodes in container_params.items()
               for node in nodes]
    params = [local[k] for k in inputs] + list(literal_names.values())
    returned = [local[k] for k in outputs]
    # The function's statements: the block's, and the `return` when it returns something.
    statements_count = block_shape(blocks[0]).weight + bool((returned or escape) and shown is None)
    literal_count = len(literal_names)
    if len(params) > statements_count + 1:
        raise _Refuse(f"would take {len(params)} parameters for {statements_count} statements: "
                      "not worth a function")
    if literal_count >= 2 and 3 * literal_count > 2 * len(params) \
            and 2 * literal_count > block_shape(blocks[0]).weight:
        raise _Refuse(f"{literal_count} of its {len(params)} parameters are constants that "
                      "differ between the copies: the copies differ in data, not logic")
    from .function_code import function_source

    source = function_source(ctx, occurrences[0], leaves[0], replacements, swapped, function,
                             params, returned, docstring(facts, function),
                             escape=escape is not None, returns_shown=shown is not None)
    # What only a loop that surely runs binds (`for year in range(1995, 2020, step)`, proven
    # for each copy's own values) the function's own analysis cannot see as bound.
    plain = block_io(blocks[0]).definite_writes
    by_loops = {local[k] for k in outputs if k[0] not in plain
                and all(name in io.definite_writes for name, io in zip(k, ios))}
    _check_free_names(source, set(kept), by_loops)

    # -- call sites ---------------------------------------------------------------------------
    parameters = [Parameter(local[k], tuple(k)) for k in inputs]
    parameters += [Parameter(literal_names[v], v) for v in [*literal_params, *container_params]]
    calls = []
    for i, occurrence in enumerate(occurrences):
        arguments = ", ".join(p.arguments[i] for p in parameters)
        call = f"{function}({arguments})"
        targets = [k[i] for k in outputs]
        statement = f"{', '.join(targets)} = {call}" if targets else call
        if escape is not None:
            statement = f"if {call}:\n    {escape}"
        calls.append(CallSite(occurrence, statement + (";" if quiet[i] else "")))
    ctx.taken.add(function)  # only now: a group refused above leaves its name to another
    return Extraction(group.id, function, module, source, tuple(parameters), tuple(returned),
                      tuple(calls), tuple(sorted(set(kept))))


# -- helpers ------------------------------------------------------------------------------------
def _loop_escape(ios: list, blocks: list[list[ast.stmt]]) -> str | None:
    """"break" or "continue" when that is the only reason the copies cannot move as they are
    (the same in every copy, and not in a loop's `else:` inside the block, where it would
    leave the block's own loop)."""
    kinds = {tuple(io.unsafe_reasons) for io in ios}
    if len(kinds) != 1:
        return None
    (reasons,) = kinds
    escapes = [kind for kind in ("break", "continue") if f"`{kind}` leaves the block" in reasons]
    if len(escapes) != 1 or len(reasons) != 1:
        return None
    for block in blocks:
        for node in ast.walk(ast.Module(body=block, type_ignores=[])):
            if isinstance(node, (ast.For, ast.AsyncFor, ast.While)) and any(
                    isinstance(n, (ast.Break, ast.Continue)) for e in node.orelse for n in ast.walk(e)):
                return None
    return escapes[0]


def _displayed(ctx: ExtractContext, o: Occurrence, statement: ast.stmt) -> bool:
    """Would IPython display this cell-ending statement's value? Not after a trailing `;`, nor
    for ``print(...)`` or pyplot's ``show()``, which return None (``clones.displays`` is the
    same rule without knowing the notebook's imports)."""
    if not isinstance(statement, ast.Expr) or ends_quietly(ctx.cells[(o.notebook, o.cell)], statement):
        return False
    value = statement.value
    if not isinstance(value, ast.Call):
        return True
    func = value.func
    if isinstance(func, ast.Name) and func.id == "print":
        return "print" in ctx.flows[o.notebook].defined_in
    if isinstance(func, ast.Attribute) and func.attr == "show" and isinstance(func.value, ast.Name):
        alias = func.value.id
        return ctx.module_global(o.notebook, alias) not in {
            f"import matplotlib.pyplot as {alias}", f"from matplotlib import pyplot as {alias}",
            "from matplotlib import pyplot"}
    return True


def _cut(blocks: list[list[ast.stmt]], occurrences: list[Occurrence], lead: int,
         trail: int) -> tuple[list[list[ast.stmt]], list[Occurrence]]:
    """The copies without their first ``lead`` and last ``trail`` statements."""
    cut_blocks, cut = [], []
    for block, o in zip(blocks, occurrences):
        kept = block[lead:len(block) - trail]
        cut_blocks.append(kept)
        if kept:
            o = replace(o, start=o.start + lead, stop=o.stop - trail, first_line=kept[0].lineno,
                        last_line=kept[-1].end_lineno or kept[-1].lineno)
        else:
            o = replace(o, start=o.start + lead, stop=o.start + lead)
        cut.append(o)
    return cut_blocks, cut


def _deletes_names(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Delete) and all(isinstance(t, ast.Name) for t in statement.targets)


def _data_edges(blocks: list[list[ast.stmt]], allow_trailing: bool) -> tuple[int, int]:
    """How many statements at the start and at the end only assign constants, when some of
    those constants (or the names they go to) differ between the copies."""
    def run(indexes) -> int:
        count, differs = 0, False
        for i in indexes:
            # (A table of names, `forecasts = {"housing": housing}`, is often what the block
            # fills in: it moves with the block.)
            if not is_data(blocks[0][i], tables=False):
                break
            count += 1
            first = [leaf.value for leaf in block_shape([blocks[0][i]]).leaves]
            differs = differs or any([leaf.value for leaf in block_shape([b[i]]).leaves] != first
                                     for b in blocks[1:])
        return count if differs else 0

    size = len(blocks[0])
    lead = run(range(size))
    trail = run(range(size - 1, lead - 1, -1)) if allow_trailing and lead < size else 0
    return lead, trail


def _containers(block: list[ast.stmt]) -> dict[int, ast.expr]:
    """id(constant node) -> the outermost list/set/dict of constants holding it."""
    found: dict[int, ast.expr] = {}

    def visit(node: ast.AST, outer: ast.expr | None) -> None:
        if outer is None and isinstance(node, ast.expr) and literal_container(node):
            outer = node
        if outer is not None and isinstance(node, ast.Constant):
            found[id(node)] = outer
        for child in ast.iter_child_nodes(node):
            visit(child, outer)

    for statement in block:
        visit(statement, None)
    return found


def _node_source(ctx: ExtractContext, o: Occurrence, node: ast.expr) -> str:
    text = source_segment(ctx.kept_lines((o.notebook, o.cell)), node)
    return text if text is not None else ast.unparse(node)


# Lines as ``ast.get_source_segment`` splits them: at \r\n, \r and \n only, ends kept.
_SEGMENT_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def segment_lines(source: str) -> list[str]:
    return _SEGMENT_LINE.findall(source)


def source_segment(lines: list[str], node: ast.AST) -> str | None:
    """``ast.get_source_segment(source, node)`` from ``segment_lines(source)``, which a caller
    keeps: the stdlib splits the whole source again on every call (a cell's literals are
    looked up one by one)."""
    try:
        if node.end_lineno is None or node.end_col_offset is None:  # type: ignore[attr-defined]
            return None
        first, last = node.lineno - 1, node.end_lineno - 1  # type: ignore[attr-defined]
        start, end = node.col_offset, node.end_col_offset  # type: ignore[attr-defined]
    except AttributeError:
        return None
    if first == last:
        return lines[first].encode()[start:end].decode()
    return "".join([lines[first].encode()[start:].decode(), *lines[first + 1:last],
                    lines[last].encode()[:end].decode()])


def _local_stem(key: tuple[str, ...], siblings: list[tuple[str, ...]],
                literal_names: Mapping[tuple[str, ...], str],
                values_of: Mapping[tuple[str, ...], list], block: list[ast.stmt],
                positions: list[int], leaves: list[Leaf], passed: str | None = None) -> str:
    """A name for a variable whose name differs between the copies.

    The words the copies' names share (df_north, df_south -> df); when one copy's name stands
    for several (it reads `X` where another reads `X_train` and `X_test`), the names of the
    copy where they are told apart; classes called to make something by what they make
    (PooledOLS, RandomEffects in `mod = PooledOLS(..)` -> mod_class); the parameter the
    variable is ``passed`` to (`plot_pattern(poisson, ...)` and `plot_pattern(cluster, ...)`
    -> points, plot_pattern's own name for it); else what the value is (the rows of a frame, a
    list), and only then the literal that differs alongside (north/south with "north" ->
    region_data).
    """
    if len(siblings) > 1:
        for c in range(len(key)):
            names = [k[c] for k in siblings]
            if len(set(names)) == len(names):
                return identifier(key[c]) if not key[c].isidentifier() else key[c]
    made = _class_kind(key, block, leaves[positions[0]].node)
    if made:
        return made
    stem = common_stem(list(key))
    if stem is not None:
        return stem
    if passed is not None and len(passed) > 2:
        return passed
    # A copy's own name, the most used first, unless it is made of the differing literals
    # (north/south beside "north"/"south").
    literal_words = {w for v in values_of for x in v for w in identifier(str(x).strip("'\"")).split("_")}
    for name in sorted(set(key), key=lambda n: (-key.count(n), key.index(n))):
        if not set(identifier(name).split("_")) & literal_words:
            return name
    like = [literal_names[v] for v in values_of
            if [identifier(str(x).strip("'\"")) for x in v] == list(key)]
    if like and like[0] not in {"label", "value", "n", "text"}:
        return f"{like[0]}_data"
    kind = _value_kind(block, leaves[positions[0]].node)
    if kind:
        return kind
    # Named after the literal that labels it ("housing" for `housing`, "ln PCE" for `ln_pce`):
    # the literal's role (label, text) is not what the value is; `label_data` reads as labels.
    return "data" if like else key[0]


def _class_kind(key: tuple[str, ...], block: list[ast.stmt], name_node: ast.AST) -> str | None:
    """``model_class`` (or ``<made>_class``) for different classes, CamelCase names, that the
    block calls and binds the result of to one name (``mod = PooledOLS(..)``): a parameter
    named after one of them reads as that class."""
    if not all(looks_like_class(name) for name in key):
        return None
    for statement in block:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1 \
                and isinstance(statement.targets[0], ast.Name) \
                and isinstance(statement.value, ast.Call) and statement.value.func is name_node:
            made = statement.targets[0].id
            return "model_class" if made in ("mod", "model", "m") else f"{identifier(made)}_class"
    return None


def _value_kind(block: list[ast.stmt], name_node: ast.AST) -> str | None:
    """What the assignment binding ``name_node`` stores: "rows", "values", "counts"..."""
    for statement in block:
        for node in ast.walk(statement):
            if isinstance(node, ast.Assign) and any(t is name_node for t in node.targets):
                value = node.value
                if isinstance(value, ast.Subscript):
                    return "rows" if isinstance(value.slice, (ast.Compare, ast.BoolOp,
                                                              ast.UnaryOp)) else "selected"
                if isinstance(value, (ast.ListComp, ast.List)):
                    return "values"
                if isinstance(value, (ast.DictComp, ast.Dict)):
                    return "table"
                if isinstance(value, ast.Call):
                    func = value.func
                    called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    return identifier(called.removeprefix("get_").removeprefix("read_")
                                      .removeprefix("load_").removeprefix("make_"), "result")
    return None


def _statements(ctx: ExtractContext, o: Occurrence) -> list[ast.stmt]:
    tree = ctx.cells[(o.notebook, o.cell)].tree
    assert tree is not None
    return statement_list(tree, o.path)[o.start:o.stop]


def _clash(leaves: list[list[Leaf]]) -> str:
    first = [l.value for l in leaves[0] if l.kind == "name"]
    for other_leaves in leaves[1:]:
        other = [l.value for l in other_leaves if l.kind == "name"]
        seen: dict[object, object] = {}
        for a, b in zip(first, other):
            if seen.setdefault(a, b) != b:
                return f"`{a}` is both `{seen[a]}` and `{b}` in another copy"
        back: dict[object, object] = {}
        for a, b in zip(first, other):
            if back.setdefault(b, a) != a:
                return f"`{back[b]}` and `{a}` are both `{b}` in another copy"
    return "renaming is not one-to-one"


def _shared_global(ctx: ExtractContext, occurrences: list[Occurrence], name: str,
                   one_notebook: bool) -> bool:
    """Can the function read ``name`` as a module global, meaning the same thing for every copy?

    Within one notebook: a builtin, an import or a definition moved to its module. Across
    notebooks: a builtin, or the same import statement in each (their own definitions may differ).
    """
    kinds = {ctx.module_global(o.notebook, name) for o in occurrences}
    if None in kinds or len(kinds) != 1:
        return False
    # A builtin's name the notebook binds (`from IPython.display import display`, `from numpy
    # import sum`) means the builtin in a copy that runs before that: the module's import
    # would change it.
    if name in BUILTIN_NAMES and kinds != {"builtin"} and not all(
            _bound_before(ctx, o, name) for o in occurrences):
        return False
    return one_notebook or kinds != {"hoisted"}


def _live_after(ctx: ExtractContext, o: Occurrence, name: str) -> bool:
    """May ``name``, as the block leaves it, be read later (top-to-bottom execution)?

    Conservative: a read inside an enclosing loop, by a function body, through ``globals()``
    and the like, or in an unparseable cell counts as a read.
    """
    keys, deferred, dynamic = ctx.notebook_facts(o.notebook)
    if dynamic or name in deferred:
        return True
    # Magics read names as text (`!echo $x {y}`): any later magic mentioning the name reads it.
    if any(m.line > o.last_line and name in m.text
           for m in ctx.cells[(o.notebook, o.cell)].masked.magics):
        return True
    tree = ctx.cells[(o.notebook, o.cell)].tree
    assert tree is not None
    path, stop = o.path, o.stop
    key = (o.notebook, o.cell)
    while True:
        rest = ctx._rest_io.get((key, path, stop))
        if rest is None:
            rest = ctx._rest_io[(key, path, stop)] = block_io(statement_list(tree, path)[stop:])
        if name in rest.reads:
            return True
        if name in rest.definite_writes:
            return False
        if not path:
            break
        index, field_name = path[-1]
        path = path[:-1]
        parent = statement_list(tree, path)[index]
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While)):
            # The next iteration runs the rest of the loop again.
            if any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)
                   and not o.first_line <= n.lineno <= o.last_line for n in ast.walk(parent)):
                return True
        stop = index + 1
    # The later cells in order: the first that reads the name (as code, or as text in an
    # opaque cell or a magic) before or in the first cell that surely binds it.
    start = bisect.bisect_right(keys, key)
    reads, writes, _ = ctx.cell_events(o.notebook)
    read = _first_from(reads.get(name, []), start)
    write = _first_from(writes.get(name, []), start)
    limit = min((p for p in (read, write) if p is not None), default=len(keys))
    mention = _first_from(ctx.mentions(o.notebook, name), start)
    if mention is not None and mention <= limit:
        return True
    return read is not None and (write is None or read <= write)


def _bound_outside(ctx: ExtractContext, occurrences: list[Occurrence], o: Occurrence,
                   name: str) -> bool:
    """Did code other than the copies give ``name`` a value before this copy?"""
    copies = [x for x in occurrences if x.notebook == o.notebook]
    cells = {x.cell for x in copies}
    if any(c < o.cell and c not in cells for c in ctx.flows[o.notebook].defined_in.get(name, ())):
        return True
    spans = [(x.first_line, x.last_line) for x in copies if x.cell == o.cell]
    return any(line < o.first_line and not any(a <= line <= b for a, b in spans)
               for line in ctx.stores((o.notebook, o.cell)).get(name, ()))


def _bound_before(ctx: ExtractContext, o: Occurrence, name: str) -> bool:
    if ctx.flows[o.notebook].provider(name, o.cell) is not None:
        return True
    return any(line < o.first_line for line in ctx.stores((o.notebook, o.cell)).get(name, ()))


def _literal_source(ctx: ExtractContext, o: Occurrence, leaf: Leaf) -> str:
    if leaf.kind == "fstring":
        return repr(leaf.value)
    node = leaf.node
    if node.lineno != node.end_lineno:  # type: ignore[attr-defined]
        return repr(leaf.value)
    line = ctx.source_lines((o.notebook, o.cell))[node.lineno - 1]  # type: ignore[attr-defined]
    # ast columns count UTF-8 bytes.
    return line[node.col_offset:node.end_col_offset].decode()  # type: ignore[attr-defined]


def _override(ctx: ExtractContext, group_id: str) -> Mapping[str, object]:
    return ctx.overrides.get(group_id, {})


def _renamed(override: Mapping[str, object], wanted: str) -> str:
    params = override.get("params") or {}
    return str(params.get(wanted, wanted)) if isinstance(params, dict) else wanted


def _parents(block: list[ast.stmt]) -> dict[int, ast.AST]:
    parents: dict[int, ast.AST] = {}
    for statement in block:
        for node in walk(statement):
            for child in ast.iter_child_nodes(node):
                parents[id(child)] = node
    return parents


# Positional parameters of calls notebooks repeat with other constants, by their documented
# names (Python's, numpy's, matplotlib's): `range(1, 4)` -> start, stop.
_POSITIONAL: dict[str, tuple[str, ...]] = {
    "range": ("start", "stop", "step"), "arange": ("start", "stop", "step"),
    "linspace": ("start", "stop", "num"), "logspace": ("start", "stop", "num"),
    "round": ("number", "ndigits"), "randint": ("low", "high", "size"),
    "uniform": ("low", "high", "size"), "normal": ("loc", "scale", "size"),
    "subplots": ("nrows", "ncols"), "add_subplot": ("nrows", "ncols", "index"),
}


# Methods whose one argument is the data they work on: `model.fit([1, 2, 3])` passes values,
# not a "fit" (where `plt.xlabel("x")` passes an xlabel).
_TAKES_DATA = {"fit", "predict", "transform", "fit_transform", "fit_predict", "score", "append",
               "extend", "update", "apply", "map", "isin"}


def _passed_as(nodes: list[ast.AST], parents: dict[int, ast.AST],
               positional: Mapping[str, tuple[str, ...]]) -> str | None:
    """The parameter a variable the block takes in (``nodes``: where it is named, the first a
    read) is first passed to: a keyword's name, or the notebook's own function's parameter at
    that position (``positional``); None when it is computed in the block or passed elsewhere."""
    if not nodes or not isinstance(getattr(nodes[0], "ctx", None), ast.Load):
        return None  # computed here: what it is, not where it goes, names it
    for node in nodes:
        parent = parents.get(id(node))
        if isinstance(parent, ast.keyword) and parent.arg:
            return parent.arg
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) \
                and node in parent.args:
            roles = positional.get(parent.func.id, ())
            position = parent.args.index(node)
            if position < len(roles):
                return roles[position]
    return None


def _literal_name(node: ast.AST, kind: str, value: object, parents: dict[int, ast.AST],
                  positional: Mapping[str, tuple[str, ...]] = _POSITIONAL) -> str:
    """A parameter name from where the literal sits: keyword, a model formula
    (``ols("y ~ x", ..)``), a format template, compared attribute, column key, the parameter it
    is passed to by position (``positional``: a function's positional parameters by its name),
    the method it is passed to (``plt.xlabel("x")`` -> xlabel), plot's format string, the name
    it is assigned to."""
    parent = parents.get(id(node))
    if kind == "fstring":
        return "label"
    if isinstance(parent, ast.keyword) and parent.arg:
        return identifier(parent.arg)
    if isinstance(value, str) and "~" in value and isinstance(parent, ast.Call) \
            and parent.args and parent.args[0] is node:
        return "formula"  # ols("y ~ x", data=df): a model formula (patsy, formulaic)
    if isinstance(parent, ast.Attribute) and parent.attr == "format" and isinstance(value, str):
        return "template"  # "Estimand {}".format(count)
    if isinstance(parent, ast.Compare):
        other = parent.left if parent.left is not node else parent.comparators[0]
        if isinstance(other, ast.Attribute):
            return identifier(other.attr)
        if isinstance(other, ast.Subscript) and isinstance(other.slice, ast.Constant):
            return identifier(str(other.slice.value), "value")
    if isinstance(parent, ast.Subscript) and isinstance(value, str):
        return "column"
    if isinstance(parent, ast.Call) and node in parent.args:
        callee = parent.func.attr if isinstance(parent.func, ast.Attribute) else \
            parent.func.id if isinstance(parent.func, ast.Name) else ""
        # A notebook's own function is called by its name; a library's may be a method.
        roles = (positional if isinstance(parent.func, ast.Name) else _POSITIONAL).get(callee, ())
        if callee in ("range", "arange") and len(parent.args) == 1:
            roles = ("stop",)
        position = parent.args.index(node)
        if position < len(roles):
            return roles[position]
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) \
            and node in parent.args and len(parent.args) == 1 \
            and parent.func.attr not in _TAKES_DATA:
        return identifier(parent.func.attr.removeprefix("set_"))
    if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Attribute) \
            and parent.func.attr == "plot" and isinstance(value, str) and node in parent.args[1:]:
        return "style"  # matplotlib's format string after the data ("b.", "k--")
    if isinstance(parent, ast.Assign) and len(parent.targets) == 1 \
            and isinstance(parent.targets[0], ast.Name):
        return identifier(parent.targets[0].id)
    if kind == "container":
        return "values"
    if isinstance(value, str):
        return "label"
    if isinstance(value, int):
        return "n"
    return "value"


def _leading_comment(ctx: ExtractContext, o: Occurrence) -> str | None:
    """The comment lines just above the block (a comment inside it describes only a part)."""
    lines = ctx.cells[(o.notebook, o.cell)].masked.code.splitlines()
    above: list[str] = []
    index = o.first_line - 2
    while 0 <= index < len(lines) and lines[index].strip().startswith("#"):
        above.insert(0, lines[index].strip().lstrip("#").strip())
        index -= 1
    return " ".join(above) or None



_UNSAFE_IN_FSTRING = set("{}\\'\"\n\r")


def _derived_strings(literal_params: Mapping[tuple[str, ...], list[int]],
                     candidates: set[tuple[str, ...]]) -> dict[tuple[str, ...], tuple[tuple[tuple[str, ...], str, str], list[int]]]:
    """String parameters whose value in every copy is another string parameter's value with
    the same text around it: values -> ((that parameter's values, prefix, suffix), positions)."""
    strings: dict[tuple[str, ...], tuple[str, ...]] = {}
    for values in literal_params:
        try:
            decoded = tuple(ast.literal_eval(v) for v in values)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            continue
        if all(isinstance(d, str) for d in decoded):
            strings[values] = decoded
    found = {}
    for values, texts in strings.items():
        if values not in candidates:
            continue
        for base, base_texts in strings.items():
            if base == values or base in found or not base_texts[0]:
                continue
            at = texts[0].find(base_texts[0])
            if at < 0:
                continue
            prefix, suffix = texts[0][:at], texts[0][at + len(base_texts[0]):]
            if _UNSAFE_IN_FSTRING & set(prefix + suffix):
                continue
            if all(t == prefix + b + suffix for t, b in zip(texts, base_texts)):
                found[values] = ((base, prefix, suffix), literal_params[values])
                break
    return found


def _check_free_names(source: str, kept: set[str], bound_by_loops: set[str]) -> None:
    """The generated function may read only its parameters, its locals and kept globals
    (``bound_by_loops``: locals a loop that runs for every call's values surely binds)."""
    from ..analysis.dataflow import BUILTIN_NAMES

    tree = ast.parse(source)
    function = tree.body[0]
    assert isinstance(function, ast.FunctionDef)
    params = {a.arg for a in function.args.args}
    io = block_io(function.body)
    free = set(io.reads) - params - kept - BUILTIN_NAMES - (bound_by_loops & io.writes)
    if free:
        raise _Refuse(f"internal check failed: the function would read undefined {sorted(free)}")
