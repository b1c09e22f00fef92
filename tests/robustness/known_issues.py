"""Open bugs in files the robustness work may not change, recognised so the fuzz tests can go on
looking for new ones. Each has a minimal case in tests/data/robustness/open/ and is described in
docs/robustness.md ("Open issues"). When one is fixed, delete its function here and its uses:
the fuzz tests then check that class again.
"""

from __future__ import annotations

import ast


def extraction_among_refusals(plan) -> bool:
    """Open issue 1 (plan.py): a group whose renaming is inconsistent only in its displayed last
    expression is extracted, and the Extraction lands in ``plan.refusals``; rendering REPORT.md
    then fails with jinja2 UndefinedError ('Extraction object' has no attribute 'occurrences').
    Case: open/inconsistent_only_in_displayed_expression.ipynb."""
    from nb2pkg.refactor.extract import Refusal

    return any(not isinstance(r, Refusal) for r in plan.refusals)


def stale_rebound_names(plan, notebooks: list[list[str]]) -> set[str]:
    """Open issue 2 (refactor/extract.py): a name that had a value before the block and that the
    block rebinds is not returned when nothing reads it later, so after the call the notebook
    still holds the old value (a dead *new* name simply disappears, which is by design).
    Case: open/rebound_input_keeps_old_value.ipynb. Returns every name an extracted block
    rebinds that its call site does not assign back (the names this issue can leave stale)."""
    from nb2pkg.analysis.clones import statement_list

    names: set[str] = set()
    for extraction in plan.extractions:
        for call in extraction.calls:
            o = call.occurrence
            tree = ast.parse(notebooks[o.notebook][o.cell])
            body = statement_list(tree, o.path)[o.start:o.stop]
            written = {n.id for statement in body for n in ast.walk(statement)
                       if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
            head = call.statement.split("(", 1)[0]
            assigned = ({t.strip() for t in head.split("=", 1)[0].split(",")} if "=" in head
                        else set())
            names |= written - assigned
    return names


def known_crash(error: BaseException) -> str | None:
    """The open issue an exception from ``convert`` comes from, if it is a known one."""
    if type(error).__name__ == "UndefinedError" and "Extraction object' has no attribute" in str(error):
        return "known issue 1: Extraction among refusals"
    return None


def argument_dropped_earlier(plan, error: NameError) -> bool:
    """Open issue 3 (refactor/extract.py::_live_after): a call site passes in the old value of a
    name the block assigns on some paths only, but an earlier extraction did not return that
    name (nothing in the original read it): NameError at the call.
    Case: open/conditional_write_after_extracted_setup.ipynb."""
    name = getattr(error, "name", None)
    return any(name == argument.strip() for extraction in plan.extractions
               for call in extraction.calls
               for argument in call.statement.split("(", 1)[1].rstrip(")").split(","))
