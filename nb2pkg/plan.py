"""From an analysis to a ``PackagePlan``: the whole output of a conversion, as data.

Modules, refactored notebooks, the pipeline (stages with their inputs, outputs, parameters and
data files), dependencies, the kernel, carried data files and, once verification recorded them,
the recorded package calls. Nothing here touches the disk; ``generate`` renders the plan through
the templates (every byte of every file comes from the plan) and ``write`` writes it.
"""

from __future__ import annotations

import ast
import keyword
import re
import sys
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Mapping


from .analysis import Analysis, Finding
from .analysis.clones import CloneGroup
from .analysis.parse import ParsedCell, names_in_strings
from .assets import Assets
from .dependencies import Dependency, dependencies
from .analysis.dataflow import BUILTIN_NAMES
from .magics import is_placeholder_name
from .notebook_format import copy_node, from_dict
from .refactor.extract import ExtractContext, Extraction, Refusal, _Refuse, extract_parts
from .refactor.hoist import (IPYTHON_IMPORTS, Hoisted, ImportTable, Kept, import_table,
                             package_listing, plan_hoisting)
from .refactor.lift import lift_variables
from .refactor.loops import Loop, LoopRefusal, plan_loops, roll_functions
from .errors import Nb2pkgError
from .refactor.naming import MAX_NAME, Namer, clashes, identifier, module_name, package_name
from .refactor.rewrite import (Replacement, RewriteError, rewrite_cell, span_refusal, spans_overlap,
                               statement_source)
from .refactor.tidy import (can_gather, first_imports, import_cell, import_forms, names_read, ready_at,
                            statement_forms, without_names)

if TYPE_CHECKING:
    from .pipeline.stages import PipelinePlan


@dataclass(frozen=True)
class ModulePlan:
    name: str  # module name inside the package ("common" or a notebook's)
    source_notebooks: tuple[str, ...]
    imports: tuple[str, ...]
    definitions: tuple[str, ...]  # hoisted statements, in notebook order (constants first)
    functions: tuple[str, ...]  # extracted functions


@dataclass(frozen=True)
class NotebookPlan:
    filename: str
    original: str  # path of the original notebook
    module: str
    node: object = field(compare=False, repr=False)  # the refactored nbformat node


@dataclass(frozen=True)
class PlanOptions:
    name: str | None = None
    extract: bool = True
    min_statements: int = 3
    pipeline: bool = True  # stage notebooks, pipeline.yaml, dvc.yaml and the CI workflow
    single_stage: bool = False  # one stage per notebook instead of one per section
    # Stage name -> why it runs as part of the stage before it (pipeline.split's ``join``).
    join_stages: Mapping[str, str] = field(default_factory=dict)
    overrides: Mapping[str, Mapping[str, object]] = field(default_factory=dict)


@dataclass(frozen=True)
class PackagePlan:
    name: str
    modules: tuple[ModulePlan, ...]
    notebooks: tuple[NotebookPlan, ...]
    extractions: tuple[Extraction, ...]
    refusals: tuple[Refusal, ...]
    hoisted: tuple[Hoisted, ...]
    kept: tuple[Kept, ...]
    dependencies: tuple[Dependency, ...]
    analysis: Analysis = field(compare=False, repr=False)
    assets: Assets = Assets()  # data files and local modules carried into the project
    kernel: str = "python3"  # the one kernel the notebooks, stages, tests and CI run on
    notices: tuple[Finding, ...] = ()  # findings about this environment (kernels, imports)
    pipeline: PipelinePlan | None = None  # None: no pipeline files (--no-pipeline)
    # The package calls a verification recorded (runtime.recording): they become
    # tests/test_recorded.py and its data. None: not verified, or not recorded.
    recorded: tuple[Any, ...] | None = None
    # Runs of statements differing only in literals and variables read, rolled into loops
    # (refactor/loops.py), and those left alone with the reason.
    loops: tuple[Loop, ...] = ()
    loop_refusals: tuple[LoopRefusal, ...] = ()
    # Per refactored notebook file, the cells a verification saw print differently in two
    # runs of the original (unseeded randomness): the generated notebook test knows them.
    varying: tuple[tuple[str, tuple[int, ...]], ...] = ()

    @property
    def findings(self) -> tuple[Finding, ...]:
        """The notebooks' own findings, then those about converting them here."""
        return tuple(f for a in self.analysis.notebooks for f in a.findings) + self.notices


def with_run_dependencies(plan: PackagePlan, verification: Any) -> PackagePlan:
    """``plan`` with the dependencies that running each notebook with only its dependencies
    installed showed it needs (``verify.run_alone``), and a notice for each, and for a notebook
    that still fails there."""
    from .dependencies import canonical_name

    have = {canonical_name(d.name.partition("[")[0]) for d in plan.dependencies}
    added: list[Dependency] = []
    notices: list[Finding] = []
    splits = plan.pipeline.splits if plan.pipeline is not None else [None] * len(plan.notebooks)
    for result, notebook, split in zip(verification.notebooks, plan.notebooks, splits):
        for needed in result.needs:
            if canonical_name(needed.name) not in have:
                have.add(canonical_name(needed.name))
                added.append(needed)
                notices.append(Finding(
                    "run-dependency", f"`{needed.name}` is needed when the notebook runs (a "
                    "library it uses needs it; the notebook does not import it): it is listed "
                    "as a dependency", result.original))
        if result.alone:
            notices.append(Finding(
                "needs-more", f"with only the project's dependencies installed, {result.alone}",
                result.original, hint="add what it needs to pyproject.toml's dependencies"))
        if split is not None:
            notices += _stopping_the_pipeline(result, notebook.node, split.left_out)
    if not notices:
        return plan
    return replace(plan, dependencies=tuple(sorted((*plan.dependencies, *added),
                                                   key=lambda d: d.name.lower())),
                   notices=plan.notices + tuple(notices))


def _stopping_the_pipeline(result: Any, node: Any, left_out: tuple[int, ...]) -> list[Finding]:
    """A finding for each error the notebook shows and runs on past that a pipeline stage
    keeps: papermill fails the stage on it (``pipeline.split`` leaves out the cells tagged
    to raise that it can, ``left_out``)."""
    found = []
    for position, error in result.errors_run_past:
        if position in left_out or position >= len(node.cells):
            continue
        cell = node.cells[position].get("metadata", {}).get("nb2pkg", {}).get("source_cell")
        found.append(Finding(
            "error-in-stage", f"shows an error and runs on ({error[:200]}), which fails the "
            "pipeline stage holding it: papermill stops a run on any error output",
            result.original, cell if isinstance(cell, int) else None,
            hint="fix what raises (an error in showing a value is often a library version "
                 "mismatch), or, if the cell raises on purpose, tag it raises-exception and "
                 "keep what later cells use out of it"))
    return found


def module_names(analysis: Analysis, package: str) -> list[str]:
    """One module per notebook, named after it; ``core`` when that is the package's own name
    (``sales_report.core``, not ``sales_report.sales_report``)."""
    namer = Namer({"common", "tests", package})
    return [namer.claim("core" if name == package else name)
            for name in (module_name(a.notebook.name) for a in analysis.notebooks)]


# The start of the reason a group is left alone when extracting it raised an unexpected error:
# a bug in nb2pkg, which the tests look for (nothing a notebook holds should cause it).
INTERNAL_ERROR = "left alone because nb2pkg failed on it"


def _extract_parts(group: CloneGroup, ctx: ExtractContext) -> list[Extraction | Refusal]:
    """``extract_parts``, except that a bug met on one group leaves that group alone (and says
    so in the report) rather than ending the whole conversion with a traceback."""
    taken = set(ctx.taken)  # the names in use, as they were before this group
    try:
        return extract_parts(group, ctx)
    except Exception as exc:  # noqa: BLE001 - any bug: the group stays as the author wrote it
        ctx.taken.clear()
        ctx.taken.update(taken)
        message = " ".join(str(exc).split())[:200]
        return [Refusal(group.id, f"{INTERNAL_ERROR} ({type(exc).__name__}: {message}); "
                        "please report it with the notebook", group.occurrences)]


def choose_package_name(analysis: Analysis, wanted: str | None) -> str:
    """The package name: ``wanted`` when given (refused if it would shadow something), else
    the default rule of ``naming.package_name`` for the first notebook."""
    if wanted is None:
        return package_name(analysis.notebooks[0].notebook.name)
    if not (wanted.isidentifier() and wanted.isascii()) or keyword.iskeyword(wanted):
        wanted = identifier(wanted, "nb")  # "My Package" -> my_package, as pip would spell it
    why = clashes(wanted)
    if why:
        raise Nb2pkgError(f"the package name {wanted!r} would shadow {why}",
                          hint=f"choose another --name, e.g. {package_name(wanted)!r}")
    return wanted


def plan_package(analysis: Analysis, options: PlanOptions = PlanOptions(),
                 assets: Assets = Assets()) -> PackagePlan:
    """Decide every module and notebook of the package for ``analysis``; ``assets`` are the
    files and local modules found beside the notebooks (``nb2pkg.assets``)."""
    package = choose_package_name(analysis, options.name)
    modules = module_names(analysis, package)
    notebooks = [a.notebook for a in analysis.notebooks]
    parsed = [a.cells for a in analysis.notebooks]
    flows = [a.flow for a in analysis.notebooks]
    imports = _without_local(import_table(parsed, flows), assets.module_names())
    hoisting = plan_hoisting(notebooks, parsed, flows, imports, modules)
    # Functions reading notebook variables take them as parameters (the notebooks rewritten).
    lifting = lift_variables(analysis, imports, hoisting)
    if lifting.lifted:
        analysis = lifting.analysis
        notebooks = [a.notebook for a in analysis.notebooks]
        parsed = [a.cells for a in analysis.notebooks]
        flows = [a.flow for a in analysis.notebooks]
        hoisting = plan_hoisting(notebooks, parsed, flows, imports, modules)
    hoisted, kept = lifting.annotate(*hoisting)
    hoisted = [h for h in hoisted if _own_line(analysis, h)]
    hoisted_names = {(h.notebook, h.name): h for h in hoisted}

    cells = {(c.notebook, c.cell): c for a in analysis.notebooks for c in a.cells}
    taken = {name for a in analysis.notebooks for name in (*a.flow.defined_in, *a.flow.read_in)}
    taken |= {h.name for h in hoisted} | set(modules) | {package}

    def module_global(nb: int, name: str) -> str | None:
        if name in BUILTIN_NAMES:
            if name not in flows[nb].defined_in:
                return "builtin" if name != "get_ipython" else None
            # Shadowed: by an import the module can make too (`from IPython.display import
            # display`), or by the notebook's own definition.
        if (nb, name) in hoisted_names:
            return "hoisted"
        return imports.statement(nb, name)

    def section_title(nb: int, cell: int) -> str | None:
        titles = [s.title for s in analysis.notebooks[nb].sections if s.heading_cell < cell]
        return titles[-1] if titles else None

    ctx = ExtractContext(cells=cells, flows=flows, modules=modules, module_global=module_global,
                         taken=taken, min_statements=options.min_statements,
                         overrides=options.overrides, section_title=section_title)
    for h in list(hoisted):  # the cell must be taken apart to move it
        try:
            ctx.check_rewritable((h.notebook, h.cell))
        except _Refuse as exc:
            hoisted.remove(h)
            hoisted_names.pop((h.notebook, h.name), None)
            kept.append(Kept(h.notebook, h.cell, h.name, str(exc)))
    extractions: list[Extraction] = []
    refusals: list[Refusal] = []
    # Statements moved into the package (a definition, or a constant it reads) leave their
    # cells: a call site or loop containing one would replace what is already gone.
    moved = [LoopSpan(h.notebook, h.cell, (), h.index, h.index + 1) for h in hoisted]
    claimed: list = []
    if options.extract:
        for group in analysis.clones:
            if any(_overlaps(o, c) for o in group.occurrences for c in claimed):
                continue  # a larger extraction already covers part of it
            # A clash of names is refused inside (the copies may agree once the displayed
            # last expression, which stays in its cell, is left out).
            for result in _extract_parts(group, ctx):
                if isinstance(result, Extraction):
                    try:
                        for call in result.calls:
                            if any(_overlaps(call.occurrence, m) for m in moved):
                                raise _Refuse("overlaps a definition moved into the package")
                            _check_span(ctx, call.occurrence)
                    except _Refuse as exc:
                        refusals.append(Refusal(result.group, str(exc), group.occurrences))
                        continue
                    extractions.append(result)
                    claimed += [call.occurrence for call in result.calls]
                else:
                    refusals.append(result)
    loops: list[Loop] = []
    loop_refusals: list[LoopRefusal] = []
    if options.extract:
        def occupied(nb: int, cell: int, path, start: int, stop: int) -> bool:
            span = LoopSpan(nb, cell, path, start, stop)
            return any(_overlaps(span, c) for c in (*claimed, *moved))

        parameters = [(p.index if (p := a.notebook.parameters_cell) is not None else None)
                      for a in analysis.notebooks]
        loops, loop_refusals = plan_loops([a.cells for a in analysis.notebooks], ctx.taken,
                                          options.overrides, occupied, parameters,
                                          options.min_statements)
        # ... and inside the functions extracted (a per-class plot loop of copied cells).
        sources, inner, inner_refusals = roll_functions(
            [(f"{e.module}.{e.function}", e.source, e.calls[0].occurrence.notebook,
              e.calls[0].occurrence.cell) for e in extractions], (), options.overrides,
            len(loops) + len(loop_refusals) + 1, options.min_statements)
        extractions = [replace(e, source=source) for e, source in zip(extractions, sources)]
        loops += inner
        loop_refusals += inner_refusals

    kernel, notices = choose_kernel(analysis)
    if options.name is None:
        plain = identifier(analysis.notebooks[0].notebook.name, "nb", limit=MAX_NAME)
        if package != plain:
            notices.insert(0, Finding(
                "package-renamed", f"the package is called {package!r}: {plain!r} would shadow "
                f"{clashes(plain)}", str(analysis.notebooks[0].notebook.path),
                hint="pass --name to choose another name"))
    module_plans = _modules(analysis, package, modules, hoisted, extractions, imports, ctx)
    notebook_plans = _notebooks(analysis, package, modules, hoisted, extractions, ctx, kernel,
                                module_plans, loops)
    depends, import_notices = dependencies(analysis, package, assets.module_names(),
                                           {n for m in assets.modules for n in m.imports},
                                           assets.text_of)
    plan = PackagePlan(package, tuple(module_plans), tuple(notebook_plans), tuple(extractions),
                       tuple(refusals), tuple(hoisted), tuple(kept), tuple(depends), analysis,
                       assets, kernel, tuple(notices + import_notices),
                       loops=tuple(loops), loop_refusals=tuple(loop_refusals))
    if options.pipeline:  # the split reads the refactored notebooks planned above
        from .pipeline.stages import plan_pipeline

        plan = replace(plan, pipeline=plan_pipeline(plan, options.single_stage,
                                                    options.join_stages))
    return plan


def _without_local(table: ImportTable, local: frozenset[str]) -> ImportTable:
    """The import table minus imports of local modules: those stay beside the notebooks, so
    package code cannot import them, and definitions that need them stay in the notebook."""
    def local_import(statement: str) -> bool:
        return statement.split()[1].split(".")[0] in local

    return ImportTable(tuple({name: statement for name, statement in by_name.items()
                              if not local_import(statement)} for by_name in table.by_notebook),
                       tuple({top: names for top, names in loaded.items() if top not in local}
                             for loaded in table.submodules))


# Jupyter's own rule for kernel names (jupyter_client.kernelspec._kernel_name_pat), bounded: the
# name is written into the CI workflow and pipeline.yaml, so nothing else may pass.
KERNEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
DEFAULT_KERNEL = "python3"


def choose_kernel(analysis: Analysis) -> tuple[str, list[Finding]]:
    """One kernel for the whole project, and a finding for every notebook that named another.

    A notebook's own kernel is kept when its name is well formed and the kernel is installed
    here; otherwise (``python2``, a conda env of another machine) the project runs on the
    current Python's ``python3`` kernel, which is where ``--verify`` ran it too.
    """
    chosen: str | None = None
    notices: list[Finding] = []
    installed: set[str] | None = None
    for result in analysis.notebooks:
        notebook = result.notebook
        wanted = notebook.kernel_name
        if wanted == DEFAULT_KERNEL or wanted == chosen:
            chosen = chosen or wanted
            continue
        reason = None
        if not KERNEL_NAME.fullmatch(wanted):
            reason = "is not a valid kernel name"
        else:
            if installed is None:
                installed = _installed_kernels()
            if wanted not in installed:
                reason = "is not installed here"
            elif chosen is not None:
                reason = f"differs from the project's kernel {chosen!r}"
        if reason is None:
            chosen = wanted
            continue
        notices.append(Finding(
            "kernel-replaced", f"the notebook's kernel {wanted!r} {reason}; the project runs "
            f"on {chosen or DEFAULT_KERNEL!r}", str(notebook.path),
            hint="install that kernel and convert again to keep it"))
    return chosen or DEFAULT_KERNEL, notices


def _installed_kernels() -> set[str]:
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        return set(KernelSpecManager().find_kernel_specs())
    except Exception:  # a broken Jupyter setup: every named kernel is treated as missing
        return set()


def _own_line(analysis: Analysis, h: Hoisted) -> bool:
    tree = analysis.notebooks[h.notebook].cells
    cell = next(c for c in tree if c.cell == h.cell)
    body = cell.tree.body  # type: ignore[union-attr]
    statement = body[h.index]
    before = body[h.index - 1] if h.index else None
    after = body[h.index + 1] if h.index + 1 < len(body) else None
    return not ((before and before.end_lineno == statement.lineno)
                or (after and after.lineno == statement.end_lineno))


def _check_span(ctx: ExtractContext, occurrence) -> None:
    """Refuse a call site that the rewrite could not replace (found without libcst)."""
    ctx.check_rewritable((occurrence.notebook, occurrence.cell))
    cell = ctx.cells[(occurrence.notebook, occurrence.cell)]
    assert cell.tree is not None  # clones are only found in cells that parse
    refusal = span_refusal(cell.tree, cell.masked.code.split("\n"), occurrence.path,
                           occurrence.start, occurrence.stop)
    if refusal:
        raise _Refuse(refusal)


def _rewrite(ctx: ExtractContext, cell: ParsedCell, replacements: list[Replacement]) -> str:
    try:
        return rewrite_cell(cell.masked, replacements, cell.tree,
                            lambda: ctx.cst_module((cell.notebook, cell.cell)))
    except RewriteError as exc:  # spans are checked when planned: a planning bug
        raise RuntimeError(f"cell {cell.cell}: {exc}") from exc


@dataclass(frozen=True)
class LoopSpan:
    """A span of statements, to compare with an extraction's call sites."""

    notebook: int
    cell: int
    path: tuple
    start: int
    stop: int


def _overlaps(a, b) -> bool:
    return (a.notebook, a.cell) == (b.notebook, b.cell) and spans_overlap(a, b)


def _statement_source(ctx: ExtractContext, notebook: int, cell: int, index: int) -> str:
    parsed = ctx.cells[(notebook, cell)]
    assert parsed.tree is not None  # definitions and imports come from cells that parse
    return statement_source(parsed.masked.code, parsed.tree, index,
                            lambda: ctx.cst_module((notebook, cell)))


def _modules(analysis: Analysis, package: str, modules: list[str], hoisted: list[Hoisted],
             extractions: list[Extraction], imports: ImportTable, ctx: ExtractContext) -> list[ModulePlan]:
    names = sorted({h.module for h in hoisted} | {e.module for e in extractions},
                   key=lambda m: (m != "common", modules.index(m) if m in modules else 0))
    home = {h.name: h.module for h in hoisted}
    result = []
    seen_shared: set[str] = set()
    for module in names:
        items = [h for h in hoisted if h.module == module]
        if module == "common":  # one copy of each shared definition
            unique = []
            for h in items:
                if h.name not in seen_shared:
                    seen_shared.add(h.name)
                    unique.append(h)
            items = unique
        items.sort(key=lambda h: (h.kind != "constant", h.notebook, h.cell, h.index))
        functions = [e for e in extractions if e.module == module]
        needed: set[str] = set()
        notebook_of: dict[str, int] = {}
        for h in items:
            needed |= h.reads
            notebook_of.update({n: h.notebook for n in h.reads})
        for e in functions:
            needed |= set(e.globals_used)
            notebook_of.update({n: e.calls[0].occurrence.notebook for n in e.globals_used})
        defined_here = {h.name for h in items}
        sources = tuple(_statement_source(ctx, h.notebook, h.cell, h.index) for h in items)
        code = "\n".join((*sources, *(e.source for e in functions)))
        # An import a formula string uses (`smf.ols("y ~ np.log(x)", data)`): patsy evaluates
        # the formula in the calling function's module.
        for name in sorted(names_in_strings(ast.walk(ast.parse(code)))
                           if "." in code else ()):
            holder = next((nb for nb in sorted(set(notebook_of.values()))
                           if imports.statement(nb, name)), None)
            if name not in needed and holder is not None:
                needed.add(name)
                notebook_of[name] = holder
        lines = set()
        for name in sorted(needed - defined_here):
            if is_placeholder_name(name):
                continue
            if name in home and home[name] != module:
                lines.add(f"from .{home[name]} import {name}")
            elif imports.statement(notebook_of[name], name):
                statement = imports.statement(notebook_of[name], name)
                lines.add(statement)  # type: ignore[arg-type]
                lines.update(imports.loaded_with(notebook_of[name], statement, code))  # type: ignore[arg-type]
            elif name in IPYTHON_IMPORTS:
                lines.add(IPYTHON_IMPORTS[name])
        origin = sorted({analysis.notebooks[h.notebook].notebook.path.name for h in items}
                        | {analysis.notebooks[c.occurrence.notebook].notebook.path.name
                           for e in functions for c in e.calls})
        result.append(ModulePlan(module, tuple(origin), _merge_imports(lines),
                                 sources, tuple(e.source for e in functions)))
    return result


def _merge_imports(lines: set[str]) -> tuple[str, ...]:
    """One line per module, standard library first, then third party, then the package itself."""
    plain: list[str] = []
    names: dict[str, list[str]] = {}
    for line in lines:
        if line.startswith("from "):
            module, imported = line[5:].split(" import ", 1)
            names.setdefault(module, []).append(imported)
        else:
            plain.append(line)
    merged = plain + [f"from {module} import {', '.join(sorted(set(items)))}"
                      for module, items in names.items()]

    def order(line: str) -> tuple[int, str, str]:
        module = line.split()[1]
        top = module.split(".")[0]
        group = 2 if module.startswith(".") else 0 if top in sys.stdlib_module_names else 1
        return group, module, line

    return tuple(sorted(merged, key=order))


def _notebooks(analysis: Analysis, package: str, modules: list[str], hoisted: list[Hoisted],
               extractions: list[Extraction], ctx: ExtractContext,
               kernel: str, module_plans: list[ModulePlan] = (),  # type: ignore[assignment]
               loops: list[Loop] = ()) -> list[NotebookPlan]:  # type: ignore[assignment]
    plans = []
    used_filenames: set[str] = set()
    module_imports = {m.name: m.imports for m in module_plans}
    for nb, result in enumerate(analysis.notebooks):
        parsed = {c.cell: c for c in result.cells}
        target = import_cell(result.cells)
        first = first_imports(result.cells)
        readiness: dict[str, tuple[int, int] | None] = {}  # module -> ready_at, once each

        def ready(module: str, cell: int, line: int) -> bool:
            """Has the original imported, by ``line`` of ``cell``, all that ``module`` does?"""
            if module not in readiness:
                readiness[module] = ready_at(module, module_imports, first)
            at = readiness[module]
            return at is not None and at <= (cell, line)

        replacements: dict[int, list[Replacement]] = {}
        by_cell: dict[int, list[Hoisted]] = {}
        gathered: dict[str, list[str]] = {}  # module -> names imported in the import cell
        moved: dict[int, list[Hoisted]] = {}
        for h in hoisted:
            if h.notebook != nb:
                continue
            line = parsed[h.cell].tree.body[h.index].lineno  # type: ignore[union-attr]
            if target is not None and can_gather(parsed, target, h.cell, line, h.name) \
                    and ready(h.module, target.cell, target.end_line):
                gathered.setdefault(h.module, []).append(h.name)
                moved.setdefault(h.cell, []).append(h)
            else:
                by_cell.setdefault(h.cell, []).append(h)
        for cell, items in moved.items():
            items.sort(key=lambda h: h.index)
            # A cell left empty says where its definitions went.
            emptied = len(items) == len(parsed[cell].tree.body) and cell not in by_cell  # type: ignore[union-attr]
            note = "# {} moved into the package (imported above)".format(
                ", ".join(f"`{h.name}`" for h in items)) if emptied else ""
            for i, h in enumerate(items):
                replacements.setdefault(cell, []).append(
                    Replacement((), h.index, h.index + 1, note if i == 0 else ""))
        for cell, items in by_cell.items():
            items.sort(key=lambda h: h.index)
            per_module: dict[str, list[str]] = {}
            for h in items:
                per_module.setdefault(h.module, []).append(h.name)
            line = "\n".join(f"from {package}.{m} import {', '.join(names)}"
                             for m, names in per_module.items())
            for i, h in enumerate(items):
                replacements.setdefault(cell, []).append(
                    Replacement((), h.index, h.index + 1, line if i == 0 else ""))
        imported: dict[str, list[str]] = {}
        first_call = None
        for e in extractions:
            for call in e.calls:
                o = call.occurrence
                if o.notebook == nb:
                    replacements.setdefault(o.cell, []).append(
                        Replacement(o.path, o.start, o.stop, call.statement))
                    if e.function not in imported.setdefault(e.module, []):
                        imported[e.module].append(e.function)
                    first_call = o.cell if first_call is None else min(first_call, o.cell)
        for loop in loops:
            if loop.notebook == nb and not loop.function:  # else it is in a package function
                replacements.setdefault(loop.cell, []).append(
                    Replacement(loop.path, loop.start, loop.stop, loop.code))

        # The cell before which the package's functions are imported (a cell of their own,
        # inserted there): beside the notebook's imports when the original has imported by
        # then what their modules import and they come before every call, else before the
        # first call (see refactor/tidy.py).
        functions_at = None
        if imported and first_call is not None:
            if target is not None and target.cell < first_call:
                beside = all(ready(m, target.cell, target.end_line) for m in imported)
                functions_at = target.cell + 1 if beside else first_call
            else:  # first, when the modules import nothing the notebook imports later
                code = next(c.cell for c in result.cells)
                functions_at = code if all(ready(m, code, 0) for m in imported) else first_call
        # Imports the refactoring left unused, which a package module this notebook imports
        # from the same or an earlier cell makes too, go (see refactor/tidy.py).
        imported_in: dict[str, int] = {m: target.cell for m in gathered} if target else {}
        for h in hoisted:
            if h.notebook == nb and h.module not in gathered:
                imported_in[h.module] = min(imported_in.get(h.module, h.cell), h.cell)
        # (The functions' cell comes before cell `functions_at`; right after the import cell,
        # nothing runs between the two, so it counts as that cell.)
        if functions_at is not None:
            at = target.cell if target and functions_at == target.cell + 1 else functions_at
            for m in imported:
                imported_in[m] = min(imported_in.get(m, at), at)
        forms_of = {m: import_forms(module_imports.get(m, ())) for m in imported_in}
        sources = {i: (_rewrite(ctx, parsed[i], r) if r else None)
                   for i, r in replacements.items()}
        # What was rewritten with how many replacements: a cell that gets no more below keeps
        # its text (rewriting is deterministic), rather than being rewritten a second time.
        counts = {i: len(r) for i, r in replacements.items()}
        read, dynamic = names_read(sources.get(c.cell) or c.source for c in result.cells)
        originally_read = set(result.flow.read_in)
        import_edits: dict[tuple[int, int], str] = {}
        for c in result.cells:
            if dynamic or c.tree is None:
                continue
            provided = set().union(*(forms for m, forms in forms_of.items()
                                     if imported_in[m] <= c.cell))
            for index, statement in enumerate(c.tree.body):
                drop = {bound for form in statement_forms(statement) for bound in [form[2]]
                        if form in provided and bound in originally_read and bound not in read}
                if drop:
                    import_edits[(c.cell, index)] = without_names(statement, drop)
        for (cell, index), text in import_edits.items():
            if (cell, index) != (target and (target.cell, target.index)):
                replacements.setdefault(cell, []).append(Replacement((), index, index + 1, text))
        if gathered and target is not None:
            own = import_edits.get((target.cell, target.index))
            if own is None:
                own = _statement_source(ctx, nb, target.cell, target.index)
            lines = [own] if own else []
            lines += [f"from {package}.{m} import {', '.join(names)}" for m, names in gathered.items()]
            replacements.setdefault(target.cell, []).append(
                Replacement((), target.index, target.index + 1, "\n".join(lines)))

        node = copy_node(result.notebook.node)
        if result.notebook.kernel_name != kernel:
            node.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3 (ipykernel)" if kernel == DEFAULT_KERNEL else kernel,
                                           "language": "python"}
        for index, cell in enumerate(node.cells):
            cell.metadata["nb2pkg"] = {"source_cell": index}
            if index in replacements:
                done = sources.get(index)
                if done is None or counts.get(index) != len(replacements[index]):
                    done = _rewrite(ctx, parsed[index], replacements[index])
                # A cell whose first statements went (an import now unused) starts with them.
                opened = len(cell.source) - len(cell.source.lstrip("\n"))
                cell.source = "\n" * opened + done.lstrip("\n")
        if imported:
            source = "# Functions nb2pkg extracted from code repeated in this notebook\n" + "\n".join(
                f"from {package}.{m} import {', '.join(sorted(names))}"
                for m, names in sorted(imported.items()))
            new = from_dict({"cell_type": "code", "execution_count": None, "outputs": [],
                             "source": source, "metadata": {"nb2pkg": {"generated": True},
                                                            "tags": ["nb2pkg-imports"]}})
            at = functions_at if functions_at is not None else len(node.cells)
            # After the last `%watermark -iv` (extraction leaves copies before it alone).
            packages = package_listing(result.cells)
            if packages is not None:
                at = max(at, packages[0] + 1)
            node.cells.insert(at, new)
            _renumber_ids(node)
        filename = result.notebook.path.name
        if filename.casefold() in used_filenames:  # Analysis.ipynb and analysis.ipynb collide on macOS
            filename = f"{modules[nb]}.ipynb"
        used_filenames.add(filename.casefold())
        plans.append(NotebookPlan(filename, str(result.notebook.path), modules[nb], node))
    return plans


def _renumber_ids(node) -> None:
    # nbformat 4.5 wants unique cell ids; derive them from position so output is reproducible.
    if node.get("nbformat_minor", 0) >= 5 or any("id" in c for c in node.cells):
        seen = set()
        for index, cell in enumerate(node.cells):
            cell_id = cell.get("id") or f"nb2pkg-{index}"
            while cell_id in seen:
                cell_id = f"{cell_id}-{index}"
            seen.add(cell_id)
            cell["id"] = cell_id


__all__ = ["PackagePlan", "PlanOptions", "plan_package"]
