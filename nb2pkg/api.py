"""Public entry points, used by the CLI and the JupyterLab extension.

``analyze`` = read → analyze. ``convert`` = read → analyze → plan → generate (→ verify).
Both return plain records with ``to_dict()`` for JSON (documented in docs/json.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .analysis import Analysis
from .gc_pause import gc_paused
from .errors import Nb2pkgError
from .notebook import read_notebook

Progress = Callable[[str], None]
JSON_VERSION = 1
# Why a stage runs with the one before it when the user said so (REPORT.md, the manifest).
JOIN_ASKED = "asked for with --join-stage"


@dataclass(frozen=True)
class ConvertOptions:
    name: str | None = None  # package name; default from the first notebook's file name
    extract: bool = True
    pipeline: bool = True  # write stage notebooks, pipeline.yaml and the CI workflow
    verify: bool = False
    record: bool = True  # with verify: record package calls as regression tests
    # With verify: run each refactored notebook again with only the project's dependencies
    # importable, and add what a library needed there (verify.run_alone).
    isolated_run: bool = True
    timeout: int = 600  # with verify: seconds a cell may run
    force: bool = False
    dry_run: bool = False
    single_stage: bool = False
    # Stage name -> why it runs as part of the stage before it (``--join-stage``, and what
    # --verify finds cannot be saved between stages).
    join_stages: Mapping[str, str] = field(default_factory=dict)
    min_clone_statements: int = 3
    min_clone_lines: int = 3
    names: Mapping[str, Mapping[str, object]] = field(default_factory=dict)  # group id -> overrides
    max_data_bytes: int = 50 * 1024 * 1024  # data files larger than this are not copied


@dataclass(frozen=True)
class AnalysisReport:
    analysis: Analysis
    failures: tuple[Any, ...] = ()  # batch.NotebookResult of notebooks that could not be read

    def to_dict(self) -> dict[str, Any]:
        return {"version": JSON_VERSION, "notebooks": [_notebook_dict(a) for a in self.analysis.notebooks],
                "clones": [_clone_dict(self.analysis, g) for g in self.analysis.clones],
                "skipped": [f.to_dict() for f in self.failures]}


@dataclass(frozen=True)
class ConvertReport:
    package: str
    output: str
    files: tuple[str, ...]
    dry_run: bool
    plan: Any = field(repr=False)  # the PackagePlan
    verification: Any = None  # verify.Verification when --verify ran
    failures: tuple[Any, ...] = ()  # batch.NotebookResult of inputs left out (refused, failed)

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        names = [str(a.notebook.path) for a in plan.analysis.notebooks]
        return {
            "version": JSON_VERSION,
            "package": self.package,
            "output": self.output,
            "dry_run": self.dry_run,
            "files": list(self.files),
            "extracted": [{
                "group": e.group, "function": e.function, "module": f"{plan.name}.{e.module}",
                "parameters": [p.name for p in e.parameters], "returns": list(e.returns),
                "occurrences": [_occurrence_dict(names, c.occurrence) for c in e.calls],
            } for e in plan.extractions],
            "refused": [{"group": r.group, "reason": r.reason,
                         "occurrences": [_occurrence_dict(names, o) for o in r.occurrences]}
                        for r in plan.refusals],
            "hoisted": [{"name": h.name, "kind": h.kind, "module": f"{plan.name}.{h.module}",
                         "notebook": names[h.notebook], "cell": h.cell,
                         "lifted": {"parameters": [asdict(p) for p in h.lifted.parameters],
                                    "calls": h.lifted.calls} if h.lifted else None}
                        for h in plan.hoisted],
            "kept": [{"name": k.name, "notebook": names[k.notebook], "cell": k.cell,
                      "reason": k.reason} for k in plan.kept],
            "loops": [{"id": l.id, "notebook": names[l.notebook], "cell": l.cell,
                       "first_line": l.first_line, "last_line": l.last_line,
                       "statements": l.rows, "variables": list(l.variables),
                       "function": f"{plan.name}.{l.function}" if l.function else None}
                      for l in plan.loops],
            "loops_refused": [{"id": r.id, "notebook": names[r.notebook], "cell": r.cell,
                               "first_line": r.first_line, "last_line": r.last_line,
                               "statements": r.rows, "reason": r.reason,
                               "function": f"{plan.name}.{r.function}" if r.function else None}
                              for r in plan.loop_refusals],
            "findings": [asdict(f) for f in plan.findings],
            "verification": self.verification.to_dict() if self.verification else None,
            "skipped": [f.to_dict() for f in self.failures],
        }


def _read(paths: Sequence[Path | str], jobs: int, say: Progress):
    """Per-notebook analyses of the readable notebooks, and a result for each one that is not.

    With a single notebook its error is raised (there is nothing else to do); with several, the
    others go on and the failures are reported.
    """
    from .batch import analyze_many, expand

    notebooks = expand(paths)
    if not notebooks:
        raise Nb2pkgError(f"no notebooks found in {', '.join(map(str, paths))}",
                          hint="pass .ipynb files or folders holding them")
    if len(notebooks) == 1:
        from .analysis import analyze_notebook

        return [analyze_notebook(read_notebook(notebooks[0]))], []
    analyses, failures = analyze_many(notebooks, jobs, say)
    if not analyses:
        raise Nb2pkgError(f"none of the {len(notebooks)} notebooks could be read",
                          hint="see the errors above" if failures else None)
    return analyses, failures


def analyze(paths: Sequence[Path | str], min_statements: int = 3, min_lines: int = 3,
            progress: Progress | None = None, jobs: int = 1) -> AnalysisReport:
    """Read and analyse notebooks (files or folders) together: clones are found across all."""
    from .analysis import combine

    with gc_paused():
        analyses, failures = _read(paths, jobs, progress or (lambda message: None))
        return AnalysisReport(combine(analyses, min_statements, min_lines), tuple(failures))


def convert(paths: Sequence[Path | str], output: Path | str,
            options: ConvertOptions = ConvertOptions(),
            progress: Progress | None = None, jobs: int = 1, *,
            source_folder: Path | str | None = None, confine_to: Path | str | None = None,
            allow_hidden: bool = True) -> ConvertReport:
    """Convert notebooks into one package under ``output``. Never executes notebook code unless
    ``options.verify`` is set, and never modifies the input notebooks.

    Where the notebooks' surroundings are (``nb2pkg.assets``): ``source_folder`` is the folder
    the notebook's relative paths resolve from, for one notebook read from elsewhere (the lab
    converts a private copy); by default each notebook's own folder. Verifying runs the original
    there. With ``confine_to``, no data file or local module is read from outside that folder
    (or through a link leading out of it); without ``allow_hidden``, none with a name starting
    with ``.`` on its way.
    """
    from .write import check_output, write_project

    say = progress or (lambda message: None)
    output = Path(output)
    if not paths:
        raise Nb2pkgError("no notebooks given", hint="pass one or more .ipynb files")
    if not options.dry_run:
        check_output(output, options.force, [Path(p) for p in paths])
    plan, failures = plan_project(paths, options, say, jobs, source_folder=source_folder,
                                  confine_to=confine_to, allow_hidden=allow_hidden)
    _check_joined(plan, options)
    from .generate import render, render_rest, render_runnable

    if options.dry_run:
        return ConvertReport(plan.name, str(output), tuple(sorted(render(plan))), True, plan,
                             failures=tuple(failures))
    verification = None
    if options.verify:
        from .verify import verify_project

        runnable = render_runnable(plan)
        say("verifying: executing original and refactored notebooks")
        verification = verify_project(plan, runnable, progress=say, record=options.record,
                                      cwd=source_folder, alone=options.isolated_run,
                                      timeout=options.timeout)
        if not verification.equivalent:  # never leave a package that prints something else
            return ConvertReport(plan.name, str(output), (), False, plan, verification,
                                 tuple(failures))
        if options.record:
            plan = replace(plan, recorded=tuple(verification.calls))
        plan = replace(plan, varying=tuple(
            (notebook.filename, result.comparison.varying)
            for notebook, result in zip(plan.notebooks, verification.notebooks)
            if result.comparison.varying))
        from .plan import with_run_dependencies

        plan = with_run_dependencies(plan, verification)
        joins = _joins(verification)
        if joins:
            say(f"running {len(joins)} pipeline stage(s) with the stage before, for values "
                "that cannot be saved between them: " + ", ".join(joins))
            options = replace(options, join_stages={**options.join_stages, **joins})
            from .pipeline.stages import plan_pipeline

            plan = replace(plan, pipeline=plan_pipeline(plan, options.single_stage,
                                                        options.join_stages))
        found = _run_time_assets(plan, verification, options.max_data_bytes, source_folder,
                                 confine_to, allow_hidden)
        if found != plan.assets:
            say(f"carrying {len(found.data) - len(plan.assets.data)} more data files the "
                "notebooks read when they ran")
            plan = replace(plan, assets=found)
            runnable = render_runnable(plan)
        files = {**runnable, **render_rest(plan)}
    else:
        files = render(plan)
    from .baseline import BASE, baseline_files

    # What update and check merge with and compare to: .nb2pkg/ (docs/update.md). Its copies
    # of the files are not listed as written files.
    written = [f for f in write_project({**files, **baseline_files(plan, files, options, output,
                                                                  source_folder)},
                                        output, options.force) if not f.startswith(BASE + "/")]
    say(f"wrote {len(written)} files to {output}")
    return ConvertReport(plan.name, str(output), tuple(written), False, plan, verification,
                         tuple(failures))


def _joins(verification: Any) -> dict[str, str]:
    """Stage name -> why, for each stage a value found ``uncrossable`` would be saved for."""
    joins: dict[str, str] = {}
    for result in verification.notebooks:
        for stage, name, kind, error in result.uncrossable:
            joins.setdefault(stage, f"`{name}` ({kind}) cannot be saved for the stages after "
                                    f"it ({error}), found by --verify")
    return joins


def _check_joined(plan: Any, options: ConvertOptions) -> None:
    """Every stage ``--join-stage`` names was joined to the stage before it."""
    if not options.join_stages:
        return
    if plan.pipeline is None:
        raise Nb2pkgError("--join-stage needs the pipeline", hint="drop --no-pipeline")
    joined = {name for name, _ in plan.pipeline.joined}
    unknown = [name for name in options.join_stages if name not in joined]
    if unknown:
        stages = [stage.name for stage in plan.pipeline.stages]
        raise Nb2pkgError(f"no stage `{unknown[0]}` to join to the stage before it",
                          hint="name a stage pipeline.yaml lists, but not a notebook's first: "
                               + ", ".join(stages))


def _convert_one(job: tuple[Path, Path, ConvertOptions]) -> Any:
    """One notebook of ``convert_each``: its ``batch.NotebookResult`` (in a worker process)."""
    from .batch import NotebookResult, failure

    path, output, options = job
    try:
        report = convert([path], output, options)
    except Nb2pkgError as error:
        return failure(path, error)
    if report.verification is not None and not report.verification.equivalent:
        return NotebookResult(str(path), "failed", "verification found different outputs")
    return NotebookResult(str(path), "converted", output=str(output))


def convert_each(paths: Sequence[Path], output: Path, options: ConvertOptions, jobs: int = 1,
                 progress: Progress | None = None) -> list[Any]:
    """One package per notebook, under ``output/<notebook name>``."""
    from .batch import run_parallel
    from .refactor.naming import Namer, package_name
    from .write import check_output

    check_output(output, options.force, paths)
    namer = Namer()
    jobs_list = [(p, output / namer.claim(package_name(p.stem)), options) for p in paths]
    return run_parallel(_convert_one, jobs_list, jobs, progress,
                        lambda job: str(job[0]))


def plan_project(paths: Sequence[Path | str], options: ConvertOptions, say: Progress,
                 jobs: int = 1, *, source_folder: Path | str | None = None,
                 confine_to: Path | str | None = None, allow_hidden: bool = True):
    """read → analyze → plan: the ``PackagePlan`` (the whole output, as data) and the notebooks
    that could not be read. Writes nothing; ``generate.render`` turns the plan into files."""
    from .analysis import combine
    from .analysis.clones import reusing_fingerprints
    from .analysis.parse import reusing_parses
    from .dependencies import one_environment
    from .plan import PlanOptions, plan_package

    with gc_paused(), reusing_parses(), reusing_fingerprints(), one_environment():
        analyses, failures = _read(paths, jobs, say)
        if source_folder is not None and len(analyses) + len(failures) > 1:
            raise Nb2pkgError("a source folder is for one notebook; "
                              f"{len(analyses) + len(failures)} were given",
                              hint="convert a notebook read from elsewhere on its own")
        analysis = combine(analyses, options.min_clone_statements, options.min_clone_lines)
        say(f"planning package ({len(analysis.clones)} clone groups)")
        assets = _assets(analysis, options.max_data_bytes, source_folder, confine_to,
                         allow_hidden)
        plan = plan_package(analysis, PlanOptions(name=options.name, extract=options.extract,
                                                  min_statements=options.min_clone_statements,
                                                  overrides=options.names,
                                                  pipeline=options.pipeline,
                                                  single_stage=options.single_stage,
                                                  join_stages=options.join_stages), assets)
    return plan, failures


def render_project(paths: Sequence[Path | str], options: ConvertOptions, say: Progress,
                   jobs: int = 1, *, source_folder: Path | str | None = None,
                   confine_to: Path | str | None = None, allow_hidden: bool = True):
    """read → analyze → plan → render: the plan, every file (relative path → content) and the
    notebooks that could not be read. Writes nothing."""
    from .generate import render

    plan, failures = plan_project(paths, options, say, jobs, source_folder=source_folder,
                                  confine_to=confine_to, allow_hidden=allow_hidden)
    with gc_paused():
        return plan, render(plan), failures


def _assets(analysis: Analysis, max_bytes: int, folder: Path | str | None = None,
            confine_to: Path | str | None = None, allow_hidden: bool = True):
    """Data files and local modules of every notebook, merged (the first notebook wins a path
    that two notebooks map to different files)."""
    from .analysis.files import file_uses
    from .assets import Assets, find_assets

    data: dict[str, Any] = {}
    modules: dict[str, Any] = {}
    outside: list[Any] = []  # assets.LeftOut
    for position, result in enumerate(analysis.notebooks):
        imported = {n for c in result.cells for n in c.imports}
        found = find_assets(result.notebook.path, file_uses(result.cells), imported, max_bytes,
                            position, folder=folder, confine_to=confine_to,
                            allow_hidden=allow_hidden)
        for item in found.data:
            known = data.get(item.target)
            if known is None:
                data[item.target] = item
            elif known.source == item.source:  # one file, several readers
                data[item.target] = replace(known, read_by=known.read_by + item.read_by,
                                            written_by=known.written_by + item.written_by)
            # else: another notebook's file holds that path already, and keeps it
        for module in found.modules:
            modules.setdefault(module.name, module)
        outside += found.outside
    return Assets(tuple(data[k] for k in sorted(data)), tuple(modules[k] for k in sorted(modules)),
                  tuple(dict.fromkeys(outside)))


def _run_time_assets(plan: Any, verification: Any, max_bytes: int,
                     folder: Path | str | None, confine_to: Path | str | None,
                     allow_hidden: bool) -> Any:
    """``plan.assets`` with the data files verification saw the notebooks read that static
    analysis had not found (``NotebookVerification.opened``), found and read as every other
    file is (``assets.find_assets``: the same confinement, size limit and hidden-file rule)."""
    import posixpath

    from .analysis.files import FileUses, PathUse
    from .assets import PROJECT_NOTEBOOKS, find_assets

    known = {d.target for d in plan.assets.data}
    data = list(plan.assets.data)
    for position, (result, notebook) in enumerate(zip(verification.notebooks, plan.notebooks)):
        uses = tuple(PathUse(path, cell if cell is not None else 0, 0, False)
                     for path, cell in result.opened
                     if posixpath.normpath(posixpath.join(PROJECT_NOTEBOOKS, path)) not in known)
        if not uses:
            continue
        found = find_assets(Path(notebook.original), FileUses(uses, ()), set(), max_bytes,
                            position, folder=folder, confine_to=confine_to,
                            allow_hidden=allow_hidden)
        for item in found.data:
            if item.target not in known:
                known.add(item.target)
                data.append(replace(item, at_run_time=True))
    if len(data) == len(plan.assets.data):
        return plan.assets
    return replace(plan.assets, data=tuple(sorted(data, key=lambda d: d.target)))


def _occurrence_dict(names: list[str], o: Any) -> dict[str, Any]:
    return {"notebook": names[o.notebook], "cell": o.cell, "first_line": o.first_line,
            "last_line": o.last_line}


def _clone_dict(analysis: Analysis, group: Any) -> dict[str, Any]:
    names = [str(a.notebook.path) for a in analysis.notebooks]
    return {"id": group.id, "kind": group.kind, "statements": group.statements,
            "lines": group.lines, "consistent": group.consistent,
            "occurrences": [_occurrence_dict(names, o) for o in group.occurrences]}


def _notebook_dict(result: Any) -> dict[str, Any]:
    notebook = result.notebook
    parameters = notebook.parameters_cell
    cells = []
    for cell in result.cells:
        entry: dict[str, Any] = {"cell": cell.cell, "opaque": cell.opaque}
        if cell.io is not None:
            entry["defines"] = sorted(n for n in cell.io.writes if n in result.flow.defined_in)
            entry["uses"] = [{"name": u.name, "line": u.line, "from_cell": u.provider}
                             for u in result.flow.inputs.get(cell.cell, ())]
        else:
            entry["error"] = cell.error
        if cell.masked.magics:
            entry["magics"] = [{"kind": m.kind, "name": m.name, "line": m.line}
                               for m in cell.masked.magics]
        cells.append(entry)
    return {
        "path": str(notebook.path),
        "kernel": notebook.kernel_name,
        "nbformat": notebook.original_nbformat,
        "cells": len(notebook.cells),
        "code_cells": len(result.cells),
        "parameters_cell": parameters.index if parameters else None,
        "sections": [{"title": s.title, "level": s.level, "cell": s.heading_cell}
                     for s in result.sections],
        "code": cells,
        "findings": [asdict(f) for f in result.findings],
    }
