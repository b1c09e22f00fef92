"""Apply statement replacements to a cell's source with libcst, keeping everything else verbatim."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from ..analysis.clones import Path
from ..magics import Masked, unmask
from .extract import _Refuse, cst_span, cst_statement_list


@dataclass(frozen=True)
class Replacement:
    path: Path  # statement list inside the cell (() = top level)
    start: int  # ast statement indexes [start, stop) in that list
    stop: int
    code: str  # replacement statements (may be "" to delete); comments above the first stay


class RewriteError(Exception):
    """A replacement could not be applied; the caller leaves the cell unchanged."""


def rewrite_cell(masked: Masked, replacements: list[Replacement],
                 module: cst.Module | None = None) -> str:
    """The cell's original source with ``replacements`` applied (IPython syntax restored).

    ``module`` is the cell's masked code already parsed with libcst, when the caller has it.
    """
    if not replacements:
        return unmask(masked.code, masked.replacements)
    module = module or cst.parse_module(masked.code)
    # Later positions first, so earlier indexes stay valid while we edit.
    for item in sorted(replacements, key=lambda r: ([i for i, _ in r.path], r.start), reverse=True):
        try:
            owner, statements = cst_statement_list(module, item.path)
            first, last = cst_span(statements, item.start, item.stop)
        except _Refuse as exc:
            raise RewriteError(str(exc)) from None
        parsed = cst.parse_module(item.code) if item.code.strip() else None
        new = list(parsed.body) if parsed is not None else []
        # A replacement of comments only ("# `f` moved into the package") keeps its lines.
        notes = tuple(parsed.header) + tuple(parsed.footer) if parsed is not None and not new else ()
        leading = (*statements[first].leading_lines, *notes)
        if new:
            new[0] = new[0].with_changes(leading_lines=(*leading, *new[0].leading_lines))
        elif last < len(statements):
            # Deleting: comments above the removed code stay above what follows.
            statements[last] = statements[last].with_changes(
                leading_lines=(*leading, *statements[last].leading_lines))
        body = statements[:first] + new + statements[last:]
        if owner is module:
            # Deleting the last statements: their comments stay, the blank lines above them go
            # (a cell does not end in blank lines).
            footer = (*[line for line in leading if line.comment is not None], *module.footer) \
                if not new and last == len(statements) else module.footer
            module = module.with_changes(body=body, footer=footer)
        else:
            module = module.deep_replace(owner, owner.with_changes(body=body))  # type: ignore[assignment]
    code = module.code
    return unmask(code, masked.replacements)
