"""Which cells form which stage, and which values cross from stage to stage. Pure: no disk, no kernel.

A notebook is cut at its markdown headings of one level: the smallest level that occurs more than
once (``##`` under a single ``#`` title), else the top level. Cells before the first cut join the
first stage; a section without code joins the next one (the last one joins the previous), so no
stage is empty and no code is lost.

What a stage needs from earlier stages, for each name it reads (or that functions it defines or
copies read when called):

* bound last by an ``import``: the import statement is copied into the stage's setup cell;
* bound last by a top-level ``def``/``class`` (or ``name = lambda ...``) that stayed in the
  notebook: the definition is copied too (classes always, so pickled instances load), and what the
  definition reads is needed in turn;
* a parameter (literal assignment in the cell tagged ``parameters``, of a value pipeline.yaml can
  carry: ``parameter_problem``) that no stage rebinds or mutates: it becomes a parameter of the
  stage;
* any other value: an input artifact, provided by the *latest* earlier stage that mentions the name
  at top level (reads, binds, mutates or deletes it), so changes made in place
  (``df.drop(..., inplace=True)``, ``rows.append(x)``, ``f(rows)``) are carried forward.

A stage's outputs are the names later stages take from it. Top-level statements of earlier
stages that configure a library for the session (``SETTING_CALLS``: ``set_config(...)``,
``pd.set_option(...)``, ``plt.rcParams[...] = ...``) and read only imported names run again in
the stage's setup cell, after the imports.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Sequence

from ..analysis.dataflow import IPYTHON_NAMES
from ..analysis.parse import ParsedCell, names_in_strings, reparse
from ..analysis.scope import block_io, block_io_and_writes
from ..magics import is_placeholder_name, unmask
from ..notebook import headings

# Line magics that configure the session: later stages need them as much as the imports.
CONFIG_MAGICS = frozenset({"matplotlib", "load_ext", "reload_ext", "autoreload", "aimport",
                           "config"})
# Calls that configure a library for the rest of the session, by the called name: a later
# stage, in a kernel of its own, needs them too (scikit-learn's display, pandas' and numpy's
# printing, matplotlib's and seaborn's style, warnings filters, logging, the plotting backend
# of HoloViews and Panel, `hv.extension("bokeh")` or its older `hv.notebook_extension(...)`,
# and bokeh's `output_notebook()`).
SETTING_CALLS = frozenset({"set_config", "set_option", "set_printoptions", "seterr",
                           "filterwarnings", "simplefilter", "set_theme", "set_style",
                           "set_context", "set_palette", "basicConfig", "set_default_dtype",
                           "extension", "notebook_extension", "output_notebook"})
# Settings known by the last two names called (`hv.opts.defaults(...)`, `sns.set()`).
SETTING_PAIRS = (["style", "use"], ["rcParams", "update"], ["opts", "defaults"], ["sns", "set"])
METRICS_TAG = "metrics"
# The module of the generated package that stage notebooks load and save values with (a copy of
# nb2pkg/runtime/stage_io.py), imported under this name in their setup cell.
STAGE_IO = "_stage_io"


@dataclass(frozen=True)
class ParameterDef:
    name: str  # the notebook variable
    default: Any
    type: str  # "int", "float", "bool", "str", "list", "dict" or "any"
    source: str  # the assignment as written in the parameters cell


@dataclass(frozen=True)
class StagePlan:
    notebook: str  # the notebook's module name
    index: int  # position among the notebook's stages, from 0
    name: str  # unique in the pipeline: "<module>-<slug>"
    slug: str
    title: str
    cells: tuple[int, ...]  # positions in the refactored notebook node, in order
    parameters: tuple[str, ...]  # parameter variables the stage uses
    inputs: tuple[tuple[str, str], ...]  # (variable, name of the providing stage)
    outputs: tuple[str, ...]
    magics: tuple[str, ...]  # session magics copied from earlier stages
    imports: tuple[str, ...]  # import statements copied from earlier stages
    definitions: tuple[str, ...]  # definitions copied, run before the inputs load
    late_definitions: tuple[str, ...]  # definitions that read inputs when defined: after loading
    metrics: tuple[str, ...]  # metric names recorded by cells tagged `metrics`, when literal
    metric_cells: tuple[int, ...]  # positions of cells tagged `metrics`
    # Session settings made by earlier stages (`set_config(display="text")`,
    # `pd.set_option(...)`, `plt.rcParams[...] = ...`), in order: run again after the imports.
    settings: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        return f"{self.index + 1:02d}_{self.slug}.ipynb"


@dataclass(frozen=True)
class NotebookSplit:
    module: str
    level: int | None  # heading level cut at; None: one stage
    parameters: tuple[ParameterDef, ...]
    parameters_position: int | None  # position of the original parameters cell in the node
    parameters_residual: str | None  # what stays of that cell once parameters move up ("" = drop)
    parameters_comments: str  # its comment lines, kept with the parameters when the cell is dropped
    stages: tuple[StagePlan, ...]
    # Literal assignments of the parameters cell that stay code: (variable, why not a parameter).
    kept_as_code: tuple[tuple[str, str], ...] = ()
    joined: tuple[str, ...] = ()  # stages run as part of the stage before them (``join``)
    # Cells tagged to raise that the stages leave out (papermill fails a run on any error
    # output): nothing they change is read after them. Positions in the node.
    left_out: tuple[int, ...] = ()


# -- choosing the cuts --------------------------------------------------------------------------
def stage_level(levels: Sequence[int]) -> int | None:
    """The heading level to cut at: the smallest that occurs more than once, else the top one."""
    if not levels:
        return None
    counts = {level: levels.count(level) for level in set(levels)}
    repeated = [level for level, count in counts.items() if count > 1]
    return min(repeated) if repeated else min(levels)


def slug(title: str, fallback: str = "stage") -> str:
    """A file and stage name part: ASCII letters, digits and ``_`` ("Über uns" -> "uber_uns")."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.findall(r"[A-Za-z0-9]+", ascii_title.lower())
    from ..refactor.naming import MAX_NAME, shorten

    return "_".join(shorten(words, MAX_NAME)) or fallback


def _source_cell(cell: Any) -> int | None:
    meta = cell.get("metadata", {}).get("nb2pkg", {})
    value = meta.get("source_cell")
    return value if isinstance(value, int) else None


def _groups(node: Any, single_stage: bool) -> tuple[int | None, list[tuple[str, list[int]]]]:
    """(level, [(title, positions)]) with the rules of the module docstring."""
    cells = node.cells
    marks: dict[int, str] = {}  # position -> title of the cut it starts
    all_levels: list[int] = []
    found: list[tuple[int, int, str]] = []
    for position, cell in enumerate(cells):
        if cell.cell_type == "markdown":
            for depth, title in headings(cell.source):
                all_levels.append(depth)
                found.append((position, depth, title))
    level: int | None = None if single_stage else stage_level(all_levels)
    if level is not None:
        for position, heading_level, title in found:
            if heading_level == level and position not in marks:
                marks[position] = title
    title_of_all = found[0][2] if found else ""
    groups: list[tuple[str, list[int]]] = [("", [])]
    for position in range(len(cells)):
        if position in marks:
            groups.append((marks[position], []))
        groups[-1][1].append(position)
    # Cells before the first cut join the first stage.
    if len(groups) > 1:
        _, first = groups.pop(0)
        groups[0] = (groups[0][0], first + groups[0][1])
    else:
        groups = [(title_of_all, groups[0][1])]

    def has_code(positions: list[int]) -> bool:
        return any(cells[p].cell_type == "code" and cells[p].source.strip() for p in positions)

    merged: list[tuple[str, list[int]]] = []
    carry: list[int] = []
    for title, positions in groups:
        positions = carry + positions
        if not has_code(positions):
            carry = positions  # a section with no code joins the next
            continue
        carry = []
        merged.append((title, positions))
    if carry or not merged:  # a notebook without code (or cells) is still one stage
        if merged:
            merged[-1] = (merged[-1][0], merged[-1][1] + carry)
        else:
            merged.append((title_of_all, carry))
    return (level if len(merged) > 1 else None), merged


# -- statements ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Statement:
    node: ast.stmt
    text: str
    order: tuple[int, int]  # (position in node, index in cell): original order


def _statements(parsed: ParsedCell, position: int) -> list[_Statement]:
    if parsed.tree is None:
        return []
    lines = parsed.masked.code.splitlines(keepends=True)
    body = parsed.tree.body
    result = []
    for index, statement in enumerate(body):
        first = min([statement.lineno] + [d.lineno for d in getattr(statement, "decorator_list", [])])
        last = statement.end_lineno or statement.lineno
        alone = ((index == 0 or body[index - 1].end_lineno < first)
                 and (index + 1 == len(body) or body[index + 1].lineno > last))
        if alone:
            code = "".join(lines[first - 1:last]).rstrip("\n")
        else:
            code = ast.get_source_segment(parsed.masked.code, statement) or ""
        result.append(_Statement(statement, unmask(code, parsed.masked.replacements).rstrip(),
                                 (position, index)))
    return result


def _is_definition(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return True
    return (isinstance(statement, ast.Assign) and len(statement.targets) == 1
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(statement.value, ast.Lambda))


def _defined_name(statement: ast.stmt) -> str:
    if isinstance(statement, ast.Assign):
        return statement.targets[0].id  # type: ignore[attr-defined]
    return statement.name  # type: ignore[attr-defined]


def _dotted(node: ast.expr) -> list[str]:
    """``pd.options.display`` -> ["pd", "options", "display"]; [] for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else []


def _is_setting(statement: ast.stmt) -> bool:
    """A top-level statement that configures a library for the session (``SETTING_CALLS``,
    ``SETTING_PAIRS``, ``rcParams`` items, ``pd.options.x = ...``)."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        called = _dotted(statement.value.func)
        return bool(called) and (called[-1] in SETTING_CALLS and len(called) <= 2
                                 or called[-2:] in SETTING_PAIRS)
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target = statement.targets[0]
        if isinstance(target, ast.Subscript):
            return _dotted(target.value)[-1:] == ["rcParams"]
        assigned = _dotted(target)
        return len(assigned) > 2 and assigned[1] == "options"
    return False


def _magic_of(statement: ast.stmt, parsed: ParsedCell) -> str | None:
    """The text of a line magic that is a whole top-level statement, if this is one."""
    if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call)
            and isinstance(statement.value.func, ast.Name)
            and is_placeholder_name(statement.value.func.id)):
        return None
    code = ast.get_source_segment(parsed.masked.code, statement) or ""
    text = unmask(code, parsed.masked.replacements).strip()
    return text if text.startswith("%") and not text.startswith("%%") else None


@dataclass(frozen=True)
class _Binding:
    kind: str  # "import", "definition" or "value"
    statement: _Statement | None = None
    is_class: bool = False


@dataclass(frozen=True)
class _StageFacts:
    reads: list[str]  # needed from before the stage, in order
    mentions: set[str]
    changes: set[str]  # bound, mutated or deleted at top level
    bindings: dict[str, _Binding]  # last top-level binding of each name in the stage
    star_imports: list[_Statement]
    magics: list[tuple[tuple[int, int], str]]
    settings: list[_Statement]  # top-level statements that configure a library (_is_setting)
    # Imports of submodules, by top-level package: `from a.b import c` also makes `a.b` an
    # attribute of `a`, which a stage reading `a` may use (`a.b.c`) without importing it.
    submodule_imports: dict[str, list[_Statement]]
    # Names used as `name.attribute` inside its strings (formulas: "y ~ np.log(x)"): an
    # import binding one is copied too.
    in_strings: set[str]


def _facts(parsed_cells: list[tuple[int, ParsedCell]], skip: set[tuple[int, int]]) -> _StageFacts:
    kept = [(statement, parsed) for position, parsed in parsed_cells
            for statement in _statements(parsed, position) if statement.order not in skip]
    io, writes = block_io_and_writes([statement.node for statement, _ in kept])
    bindings: dict[str, _Binding] = {}
    stars: list[_Statement] = []
    magics: list[tuple[tuple[int, int], str]] = []
    settings: list[_Statement] = []
    submodules: dict[str, list[_Statement]] = {}
    for (statement, parsed), written in zip(kept, writes):
        node = statement.node
        magic = _magic_of(node, parsed)
        if magic is not None:
            name = magic[1:].split(None, 1)[0] if len(magic) > 1 else ""
            if name in CONFIG_MAGICS:
                magics.append((statement.order, magic))
            continue
        if _is_setting(node):
            settings.append(statement)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any(alias.name == "*" for alias in node.names):
                stars.append(statement)
            dotted = ([a.name for a in node.names] if isinstance(node, ast.Import)
                      else [node.module] if node.module and not node.level else [])
            for top in dict.fromkeys(name.split(".")[0] for name in dotted if "." in name):
                submodules.setdefault(top, []).append(statement)
            for alias in node.names:
                if alias.name != "*":
                    bound = alias.asname or alias.name.split(".")[0]
                    bindings[bound] = _Binding("import", statement)
        elif _is_definition(node):
            bindings[_defined_name(node)] = _Binding("definition", statement,
                                                     isinstance(node, ast.ClassDef))
        else:
            for name in written:
                bindings[name] = _Binding("value")
    reads = [n for n in (*io.reads, *sorted(io.deferred_reads)) if not is_placeholder_name(n)]
    mentions = set(io.reads) | io.writes | io.mutated | io.deferred_reads | io.deletes
    mentions = {n for n in mentions if not is_placeholder_name(n)}
    changes = {n for n in io.writes | io.mutated | io.deletes if not is_placeholder_name(n)}
    cells = {id(parsed): parsed for _, parsed in kept}  # whole cells: a few imports too many at worst
    in_strings = names_in_strings([n for parsed in cells.values() for n in parsed.nodes])
    return _StageFacts(list(dict.fromkeys(reads)), mentions, changes, bindings, stars, magics,
                       settings, submodules, in_strings)


# -- parameters ---------------------------------------------------------------------------------
def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    for kind, cls in (("int", int), ("float", float), ("str", str), ("list", (list, tuple)),
                      ("dict", dict)):
        if isinstance(value, cls):
            return kind
    return "any"


def _parameters(parsed: ParsedCell, position: int
                ) -> tuple[list[ParameterDef], set[tuple[int, int]], str, str,
                           tuple[tuple[str, str], ...]]:
    """Literal assignments of the parameters cell, the statements they are, what remains of the
    cell without them ("" when only comments remain), its comment lines, and the literal
    assignments left as code because their value cannot be a parameter (variable, why)."""
    if parsed.tree is None:
        return [], set(), parsed.source, "", ()
    statements = _statements(parsed, position)
    line_owners: dict[int, list[int]] = {}
    for i, s in enumerate(statements):
        for line in range(s.node.lineno, (s.node.end_lineno or s.node.lineno) + 1):
            line_owners.setdefault(line, []).append(i)
    candidates: list[tuple[int, ParameterDef]] = []
    refused: dict[str, str] = {}  # variable -> why it stays code
    for i, s in enumerate(statements):
        node = s.node
        target = value = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        if not isinstance(target, ast.Name) or value is None:
            continue
        try:
            default = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
        problem = parameter_problem(target.id, default)
        if problem is not None:
            refused.setdefault(target.id, problem)
        candidates.append((i, ParameterDef(target.id, default, _type_of(default), s.text)))
    # Every assignment of a refused name stays code, or a later carried one would be overwritten.
    candidates = [(i, p) for i, p in candidates if p.name not in refused]
    literal = {i for i, _ in candidates}
    found = [p for _, p in candidates]
    # A statement sharing a line with code that stays cannot move: it stays code, not a parameter.
    movable = {i for i in literal
               if all(set(line_owners[line]) <= literal
                      for line in range(statements[i].node.lineno,
                                        (statements[i].node.end_lineno or 0) + 1))}
    found = [p for i, p in zip(sorted(literal), found) if i in movable]
    taken = {statements[i].order for i in movable}
    removed = {line for i in movable
               for line in range(statements[i].node.lineno, (statements[i].node.end_lineno or 0) + 1)}
    source_lines = parsed.source.splitlines()
    kept = [line for number, line in enumerate(source_lines, 1) if number not in removed]
    comments = "\n".join(line for line in kept if line.strip().startswith("#"))
    has_code = any(line.strip() and not line.strip().startswith("#") for line in kept)
    residual = "\n".join(kept).strip("\n") if has_code else ""
    # Parameters assigned twice keep the last value, as the cell would.
    last = {p.name: p for p in found}
    return list(last.values()), taken, residual, comments, tuple(refused.items())


_ASCII_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_CARRIED = "None, booleans, numbers, strings, and lists and string-keyed dicts of them"


def parameter_problem(name: str, value: Any) -> str | None:
    """Why the literal assignment ``name = value`` cannot be a pipeline parameter, or None.

    A parameter travels through pipeline.yaml (YAML, names checked against its JSON Schema), ``-p``
    overrides, the cell papermill injects and the run state (JSON): only the values listed in
    ``_CARRIED`` come through all of them unchanged. Anything else (``1j``, ``...``, bytes, sets,
    dicts with non-string keys) made a pipeline.yaml that could not be written or that ``nb2pkg
    run`` refused, so such an assignment stays ordinary code in its cell (issue 12).
    """
    if not _ASCII_NAME.match(name):
        return f"`{name}` is not an ASCII name, which pipeline.yaml requires for parameters"
    todo = [value]
    while todo:
        item = todo.pop()
        if item is None or isinstance(item, (bool, int, float, str)):
            continue
        if isinstance(item, (list, tuple)):
            todo.extend(item)
        elif isinstance(item, dict):
            key = next((k for k in item if not isinstance(k, str)), None)
            if key is not None:
                return (f"`{name}` is a dict with a key of type {type(key).__name__} "
                        f"({key!r}); a pipeline parameter can hold {_CARRIED}")
            todo.extend(item.values())
        else:
            what = "Ellipsis" if item is Ellipsis else type(item).__name__
            return f"`{name}` holds a value of type {what}; a pipeline parameter can hold {_CARRIED}"
    return None


# -- the split ----------------------------------------------------------------------------------
def split_notebook(module: str, node: Any, parameters_cell: int | None = None,
                   single_stage: bool = False, taken_names: set[str] | None = None,
                   join: Collection[str] = ()) -> NotebookSplit:
    """Split the refactored notebook ``node`` (cells carry ``nb2pkg.source_cell``) into stages.

    ``parameters_cell`` is the original index of the cell tagged ``parameters``; ``taken_names``
    holds stage names already used in the pipeline (updated). A stage named in ``join`` runs as
    part of the stage before it (names as the split without joins gives them, so that joining
    one stage never renames another).
    """
    taken = taken_names if taken_names is not None else set()
    level, groups = _groups(node, single_stage)
    cells = node.cells
    parsed: dict[int, ParsedCell] = {}
    for position, cell in enumerate(cells):
        if cell.cell_type == "code":
            parsed[position] = reparse(cell.source, 0, position)

    parameters_position = None
    parameter_defs: list[ParameterDef] = []
    skip: set[tuple[int, int]] = set()
    residual: str | None = None
    comments = ""
    kept_as_code: tuple[tuple[str, str], ...] = ()
    if parameters_cell is not None:
        parameters_position = next((p for p, c in enumerate(cells)
                                    if _source_cell(c) == parameters_cell and p in parsed), None)
    if parameters_position is not None:
        parameter_defs, skip, residual, comments, kept_as_code = _parameters(
            parsed[parameters_position], parameters_position)
    parameter_names = {p.name for p in parameter_defs}
    left_out = _left_out(cells, parsed)

    slugs = _unique_slugs([slug(title, module) for title, _ in groups])
    names = []
    for s in slugs:
        name = f"{module}-{s}" if len(groups) > 1 else module
        base, n = name, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        names.append(name)
    joined = []
    for index in range(len(groups) - 1, 0, -1):
        if names[index] in join:
            _, positions = groups.pop(index)
            groups[index - 1] = (groups[index - 1][0], groups[index - 1][1] + positions)
            joined.append(names.pop(index))
            del slugs[index]
    if len(groups) == 1:
        level = None
    facts = [_facts([(p, parsed[p]) for p in positions if p in parsed and p not in left_out],
                    skip) for _, positions in groups]

    resolved = [_resolve(index, facts, parameter_names, names) for index in range(len(groups))]
    outputs: list[set[str]] = [set() for _ in groups]
    for result in resolved:
        for variable, provider in result["inputs"]:
            outputs[names.index(provider)].add(variable)

    stages = []
    for index, ((title, positions), result) in enumerate(zip(groups, resolved)):
        metric_cells = tuple(p for p in positions if cells[p].cell_type == "code"
                             and METRICS_TAG in (cells[p].get("metadata", {}).get("tags") or ()))
        stages.append(StagePlan(
            notebook=module, index=index, name=names[index], slug=slugs[index],
            title=title or module, cells=tuple(positions),
            parameters=tuple(result["parameters"]), inputs=tuple(result["inputs"]),
            outputs=tuple(sorted(outputs[index])), magics=tuple(result["magics"]),
            settings=tuple(result["settings"]),
            imports=tuple(result["imports"]), definitions=tuple(result["definitions"]),
            late_definitions=tuple(result["late"]),
            metrics=tuple(dict.fromkeys(n for p in metric_cells if p in parsed
                                        for n in _metric_names(parsed[p]))),
            metric_cells=metric_cells))
    owner_residual = residual if parameters_position is not None else None
    return NotebookSplit(module, level, tuple(parameter_defs), parameters_position,
                         owner_residual, comments, tuple(stages), kept_as_code,
                         tuple(reversed(joined)), left_out)


def _left_out(cells: Any, parsed: dict[int, ParsedCell]) -> tuple[int, ...]:
    """Cells meant to raise (tagged ``raises-exception`` or marked by nbval's comment) whose
    changes no later cell reads.

    Such a cell shows an error on purpose (a teaching notebook); nbclient runs on past it,
    but papermill fails the whole run on any error output, so a stage holding it always
    fails. Left out, the stage runs as the notebook does, less a traceback. A cell whose
    bindings or changes a later cell reads stays (the stage then fails there, saying so).
    """
    # runtime.notebook_outputs knows the marks; a conversion loads it only for a cell that may
    # carry one (it is not otherwise imported to convert). The usual case: no such cell.
    marked = [p for p in parsed if "raises-exception" in (cells[p].get("metadata", {}).get("tags")
                                                          or ()) or "NBVAL_RAISES" in cells[p].source]
    if not marked:
        return ()
    from ..runtime.notebook_outputs import raises_on_purpose

    tagged = {p for p in marked if raises_on_purpose(cells[p])}
    if not tagged:
        return ()
    first = min(tagged)  # nothing before the first tagged cell can be left out
    later_reads: set[str] = set()
    found = []
    for position in sorted((p for p in parsed if p >= first), reverse=True):
        tree = parsed[position].tree
        io = block_io(tree.body) if tree is not None else None
        if io is not None and position in tagged and not io.dynamic \
                and not (io.writes | io.mutated | io.deletes) & later_reads:
            found.append(position)
            continue
        if io is None:
            return tuple(sorted(found))  # an unparseable cell: what it reads is unknown
        later_reads |= {*io.reads, *io.deferred_reads, *io.mutated}
    return tuple(sorted(found))


def _unique_slugs(slugs: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for s in slugs:
        if s in seen:
            seen[s] += 1
            candidate = f"{s}_{seen[s]}"
            while candidate in seen:
                seen[s] += 1
                candidate = f"{s}_{seen[s]}"
            seen[candidate] = 1
            result.append(candidate)
        else:
            seen[s] = 1
            result.append(s)
    return result


def _resolve(index: int, facts: list[_StageFacts], parameter_names: set[str],
             names: list[str]) -> dict[str, list]:
    """What stage ``index`` takes from earlier stages (see the module docstring)."""
    own = facts[index]
    # Names only a formula string reads count when an import binds them (not values: a
    # formula's other names are mostly its data's columns).
    latest: dict[str, str] = {}
    for earlier in facts[:index]:
        latest.update((name, b.kind) for name, b in earlier.bindings.items())
    imported_before = {name for name, kind in latest.items() if kind == "import"}
    needed: list[str] = list(dict.fromkeys([*own.reads, *sorted(own.in_strings & imported_before)]))
    queued = set(needed)
    imports: dict[str, tuple[int, int]] = {}
    definitions: dict[str, tuple[tuple[int, int], ast.stmt]] = {}
    inputs: dict[str, str] = {}
    parameters: list[str] = []

    def need(more: Iterable[str]) -> None:
        for name in more:
            if name not in queued and not is_placeholder_name(name):
                queued.add(name)
                needed.append(name)

    def copy_definition(binding: _Binding) -> None:
        statement = binding.statement
        assert statement is not None
        if statement.text not in definitions:
            definitions[statement.text] = (statement.order, statement.node)
            io = block_io([statement.node])
            need([*io.reads, *sorted(io.deferred_reads)])

    # Classes of earlier stages are always defined again: pickled instances refer to them,
    # and their methods may be called here, so what the methods read is needed too.
    latest_class: dict[str, _Binding] = {}
    for earlier in facts[:index]:
        for name, binding in earlier.bindings.items():
            latest_class[name] = binding
    for name, binding in latest_class.items():
        if binding.kind == "definition" and binding.is_class:
            copy_definition(binding)

    # Settings of earlier stages, run again here after the imports they read (only those
    # reading nothing but imported names: a notebook value would have to be an input).
    settings = []
    for earlier in facts[:index]:
        for statement in earlier.settings:
            io = block_io([statement.node])
            if all(latest.get(name) == "import" for name in io.reads):
                settings.append(statement.text)
                need(io.reads)
    position = 0
    while position < len(needed):
        name = needed[position]
        position += 1
        if name in IPYTHON_NAMES:
            continue
        binder = next((t for t in range(index - 1, -1, -1) if name in facts[t].bindings), None)
        if name in parameter_names:
            changed = next((t for t in range(index - 1, -1, -1) if name in facts[t].changes), None)
            if changed is None:
                parameters.append(name)
                continue
            if binder is None or binder < changed:  # changed in place since the parameters cell
                provider = next(t for t in range(index - 1, changed - 1, -1)
                                if name in facts[t].mentions)
                inputs[name] = names[provider]
                continue
        if binder is None:
            continue  # a builtin, or undefined before this stage (the notebook fails alike)
        binding = facts[binder].bindings[name]
        if binding.kind == "import":
            assert binding.statement is not None
            imports.setdefault(binding.statement.text, binding.statement.order)
            # A package bound by an import: the submodules earlier stages loaded are its
            # attributes in the original's session (`matplotlib_scalebar.scalebar.ScaleBar`
            # after `from matplotlib_scalebar.scalebar import ScaleBar`).
            node = binding.statement.node
            package = next((a.name.split(".")[0] for a in node.names
                            if (a.asname or a.name.split(".")[0]) == name),
                           None) if isinstance(node, ast.Import) else None
            for earlier in facts[:index]:
                for statement in earlier.submodule_imports.get(package or "", ()):
                    imports.setdefault(statement.text, statement.order)
        elif binding.kind == "definition":
            copy_definition(binding)
        else:
            provider = next(t for t in range(index - 1, binder - 1, -1) if name in facts[t].mentions)
            inputs[name] = names[provider]
    stars = {s.text: s.order for earlier in facts[:index] for s in earlier.star_imports}
    imports.update({text: order for text, order in stars.items() if text not in imports})
    import_text = [t for t, _ in sorted(imports.items(), key=lambda item: item[1])]
    magics = []
    uses_matplotlib = any("matplotlib" in text for text in import_text) or any(
        "matplotlib" in (b.statement.text if b.statement else "")
        for b in own.bindings.values() if b.kind == "import")
    for earlier in facts[:index]:
        for _, magic in earlier.magics:
            if magic.startswith("%matplotlib") and not uses_matplotlib:
                continue
            if magic not in magics:
                magics.append(magic)
    early, late = [], []
    loaded = set(inputs)
    late_names: set[str] = set()
    for text, (order, node) in sorted(definitions.items(), key=lambda item: item[1][0]):
        reads = set(block_io([node]).reads)
        if reads & (loaded | late_names):
            late.append(text)
            late_names.add(_defined_name(node))
        else:
            early.append(text)
    return {"parameters": parameters, "inputs": list(inputs.items()), "imports": import_text,
            "definitions": early, "late": late, "magics": magics, "settings": settings}


def _metric_names(parsed: ParsedCell) -> list[str]:
    tree = parsed.tree
    if tree is None or not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return []
    value = tree.body[-1].value
    if isinstance(value, ast.Dict):
        return [k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
    return []


def metric_cell_source(parsed: ParsedCell) -> str | None:
    """The cell with its last expression wrapped in ``record_metrics(...)``, which returns it,
    so the cell displays exactly what it displayed. None when the cell does not end with one."""
    tree = parsed.tree
    if tree is None or not tree.body or not isinstance(tree.body[-1], ast.Expr):
        return None
    last = tree.body[-1]
    code = parsed.masked.code
    lines = code.splitlines(keepends=True)

    def offset(line: int, column: int) -> int:  # ast columns count UTF-8 bytes
        return (sum(len(text) for text in lines[:line - 1])
                + len(lines[line - 1].encode()[:column].decode(errors="ignore")))

    start = offset(last.lineno, last.col_offset)
    end = offset(last.end_lineno or last.lineno, last.end_col_offset or 0)
    wrapped = (code[:start] + f"{STAGE_IO}.record_metrics(" + code[start:end] + ")"
               + code[end:])
    return unmask(wrapped, parsed.masked.replacements)
