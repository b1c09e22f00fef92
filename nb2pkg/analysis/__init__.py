"""Analysis of notebooks: parse each cell once, then scope, dataflow, clones and findings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..notebook import Notebook, Section, sections
from .clones import CloneGroup, find_clones
from .dataflow import DataFlow, dataflow
from .findings import Finding, findings
from .parse import ParsedCell, parse_notebook


@dataclass(frozen=True)
class NotebookAnalysis:
    notebook: Notebook
    cells: tuple[ParsedCell, ...]
    flow: DataFlow
    findings: tuple[Finding, ...]
    sections: tuple[Section, ...]


@dataclass(frozen=True)
class Analysis:
    notebooks: tuple[NotebookAnalysis, ...]
    clones: tuple[CloneGroup, ...]
    # The clone size limits used, so that a rewrite of the notebooks can be analysed alike.
    min_statements: int = 3
    min_lines: int = 3


def analyze(notebooks: list[Notebook] | tuple[Notebook, ...], min_statements: int = 3,
            min_lines: int = 3, progress: Callable[[str], None] | None = None) -> Analysis:
    """Analyse ``notebooks`` together (clones are found across all of them)."""
    from ..gc_pause import gc_paused

    with gc_paused():
        results = []
        for position, notebook in enumerate(notebooks):
            if progress:
                progress(f"analysing {notebook.path}")
            results.append(analyze_notebook(notebook, position))
        return combine(results, min_statements, min_lines)


def analyze_notebook(notebook: Notebook, position: int = 0) -> NotebookAnalysis:
    """Everything that concerns one notebook alone (parallelizable across notebooks)."""
    cells = parse_notebook(notebook, position)
    flow = dataflow(cells)
    return NotebookAnalysis(notebook, cells, flow, tuple(findings(notebook, cells, flow)),
                            sections(notebook))


def combine(results: list[NotebookAnalysis], min_statements: int = 3,
            min_lines: int = 3) -> Analysis:
    """Join per-notebook analyses (in order) and find clones across all of them."""
    every_cell = [cell for result in results for cell in result.cells]
    clones = find_clones(every_cell, min_statements, min_lines,
                         _extracted_functions([r.notebook for r in results]))
    return Analysis(tuple(results), tuple(clones), min_statements, min_lines)


def _extracted_functions(notebooks) -> frozenset[str]:
    """Functions imported by the cell nb2pkg adds to notebooks it refactored."""
    import ast

    names: set[str] = set()
    for notebook in notebooks:
        for cell in notebook.cells:
            if cell.is_code and "nb2pkg-imports" in cell.tags:
                try:
                    tree = ast.parse(cell.source)
                except SyntaxError:
                    continue
                names |= {a.asname or a.name for node in tree.body
                          if isinstance(node, ast.ImportFrom) for a in node.names}
    return frozenset(names)


__all__ = ["Analysis", "NotebookAnalysis", "analyze", "analyze_notebook", "combine", "CloneGroup", "Finding"]
