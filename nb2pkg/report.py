"""Human-readable text for analysis and conversion results (the CLI prints it)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from .analysis.findings import severity_of
from .templating import line_span


def _count(n: int, noun: str) -> str:
    """``"no functions"``, ``"1 function"``, ``"3 functions"``."""
    return f"{n or 'no'} {noun}{'' if n == 1 else 's'}"


def _where(names: list[str], o: Any) -> str:
    return f"{names[o.notebook]} cell {o.cell} {line_span(o.first_line, o.last_line)}"


def _place(f: Any, whole: str) -> str:
    """Where a finding is: ``cell 3 line 2``, or ``whole`` for one about the whole notebook."""
    where = f"cell {f.cell}" if f.cell is not None else whole
    return f"{where} line {f.line}".strip() if f.line else where


def _findings(findings) -> list[str]:
    lines = []
    for f in findings:
        lines.append(f"  {_place(f, 'notebook')}: [{f.code}] {f.message}" + (f"\n      → {f.hint}" if f.hint else ""))
    return lines


def _lifted(name: str, lifted: Any) -> str:
    """``to_label: takes churn_threshold (was the notebook's CHURN_THRESHOLD)``: one line per
    function that now takes notebook variables as parameters (refactor/lift.py)."""
    params = [p.parameter for p in lifted.parameters]
    variables = [p.variable for p in lifted.parameters]
    was = "was" if len(params) == 1 else "were"
    return f"{name}: takes {', '.join(params)} ({was} the notebook's {', '.join(variables)})"


def _loop_place(plan: Any, names: list[str], item: Any) -> str:
    """Where a loop (or a run left alone) is: the extracted function, or notebook cell lines."""
    if item.function:
        return f"in {plan.name}.{item.function}"
    return f"{names[item.notebook]} cell {item.cell} {line_span(item.first_line, item.last_line)}"


def format_analysis(report: Any) -> str:
    analysis = report.analysis
    names = [str(a.notebook.path) for a in analysis.notebooks]
    out: list[str] = []
    for result in analysis.notebooks:
        nb = result.notebook
        params = nb.parameters_cell
        out.append(f"{nb.path}: {len(nb.cells)} cells ({len(result.cells)} code), kernel "
                   f"{nb.kernel_name}, parameters cell: {params.index if params else 'none'}")
        if result.sections:
            out.append("  sections: " + "; ".join(f"{'#' * s.level} {s.title} (cell {s.heading_cell})"
                                                  for s in result.sections))
        opaque = [c.cell for c in result.cells if c.opaque]
        if opaque:
            out.append(f"  unparseable cells kept verbatim: {opaque}")
        for cell in result.cells:
            uses = result.flow.inputs.get(cell.cell, ())
            if cell.io is None:
                continue
            defines = sorted(n for n in cell.io.writes if n in result.flow.defined_in)
            sources = ", ".join(f"{u.name}←{u.provider if u.provider is not None else '?'}"
                                for u in uses)
            if defines or sources:
                out.append(f"  cell {cell.cell}: defines {', '.join(defines) or '-'}; "
                           f"uses {sources or '-'}")
        if result.findings:
            out.append(f"  findings ({len(result.findings)}):")
            out += _findings(result.findings)
        out.append("")
    if analysis.clones:
        out.append(f"repeated code ({len(analysis.clones)} groups):")
        for group in analysis.clones:
            note = "" if group.consistent else ", names clash"
            out.append(f"  {group.id} {group.kind}, {group.statements} statements x "
                       f"{len(group.occurrences)}{note}:")
            for o in group.occurrences:
                out.append(f"    {_where(names, o)}")
    else:
        out.append("repeated code: none")
    return "\n".join(out)


def format_conversion(report: Any) -> str:
    plan = report.plan
    names = [str(a.notebook.path) for a in plan.analysis.notebooks]
    if report.verification is not None and not report.verification.equivalent:
        out = [f"Nothing written to {report.output}: the refactored notebooks do not print what "
               "the originals print (see below), which is a bug in nb2pkg (please report it); "
               "rerun with --no-extract to convert without extracting functions (definitions "
               "still move into the package)"]
    else:
        out = [("Would write" if report.dry_run else "Wrote") + f" package `{plan.name}` to "
               f"{report.output} ({len(report.files)} files)"]
    if report.dry_run:
        out += [f"  {path}" for path in report.files]
    out.append(f"extracted {_count(len(plan.extractions), 'function')} from repeated code"
               + (":" if plan.extractions else ""))
    for e in plan.extractions:
        params = ", ".join(p.name for p in e.parameters)
        returns = f" -> {', '.join(e.returns)}" if e.returns else ""
        out.append(f"  {plan.name}.{e.module}.{e.function}({params}){returns}  [{e.group}, "
                   f"{len(e.calls)} copies]")
    if plan.refusals:
        out.append(f"left {_count(len(plan.refusals), 'repeated block')} alone:")
        for r in plan.refusals:
            out.append(f"  {r.group} ({_where(names, r.occurrences[0])}, ...): {r.reason}")
    if plan.loops or plan.loop_refusals:
        runs = "run" if len(plan.loops) == 1 else "runs"
        out.append(f"rolled {len(plan.loops)} {runs} of statements differing only in literals and variables into "
                   f"loops" + (f", left {len(plan.loop_refusals)} alone" if plan.loop_refusals
                               else "") + ":")
        for loop in plan.loops:
            out.append(f"  {loop.id} ({_loop_place(plan, names, loop)}): {loop.rows} statements, "
                       f"a loop over {', '.join(loop.variables)}")
        for refusal in plan.loop_refusals:
            out.append(f"  {refusal.id} ({_loop_place(plan, names, refusal)}): left alone, "
                       f"{refusal.reason}")
    moved = f"moved {_count(len(plan.hoisted), 'definition')} into modules"
    lifted = [h for h in plan.hoisted if h.lifted]
    if lifted:
        out.append(f"{moved}, {len(lifted)} taking notebook variables as parameters:")
        out += [f"  {_lifted(h.name, h.lifted)}" for h in lifted]
        if plan.kept:
            out.append(f"kept {len(plan.kept)} in the notebook:")
    else:
        out.append(moved + (f"; kept {len(plan.kept)} in the notebook:" if plan.kept else ""))
    for k in plan.kept:
        out.append(f"  `{k.name}` ({names[k.notebook]} cell {k.cell}): {k.reason}")
    if plan.pipeline is not None:
        stages = [stage.name for stage in plan.pipeline.stages]
        out.append(f"pipeline of {_count(len(stages), 'stage')}: {', '.join(stages)}")
        out += [f"  {name} runs as part of the stage before it: {why}"
                for name, why in plan.pipeline.joined]
    findings = list(plan.findings)
    if findings:
        # Errors (an error a pipeline stage stops at, a cell that does not parse) are shown
        # here: the generated CI fails on them.
        errors = [f for f in findings if severity_of(f.code) == "error"]
        out.append(f"findings ({len(findings)}), details in REPORT.md"
                   + (f"; {_count(len(errors), 'error')} to fix:" if errors else ""))
        out += [f"  {' '.join(filter(None, [PurePath(f.notebook).name, _place(f, '')]))}: "
                f"[{f.code}] {f.message}" for f in errors]
    if report.verification is not None:
        out.append(report.verification.describe())
    return "\n".join(out)
