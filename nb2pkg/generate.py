"""Render a ``PackagePlan`` through ``templates/`` into file contents (``nb2pkg.write`` writes them).

Every generated file comes from a template. Python files are formatted in black's style
(ruff's formatter).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from .formatting import format_modules, format_python
from .notebook_format import notebook_json
from .plan import PackagePlan
from .templating import environment

Files = Mapping[str, "str | bytes"]


def render(plan: PackagePlan) -> dict[str, str | bytes]:
    """Every file of the generated project, by relative POSIX path."""
    context = _context(plan)
    return _formatted(_runnable(plan, context), _rest(plan, context))


def render_runnable(plan: PackagePlan) -> dict[str, str | bytes]:
    """The files that run: the package, the refactored notebooks and the data they read.

    ``nb2pkg.verify`` runs these before the rest is rendered from what it found
    (``plan.recorded``), so that ``convert --verify`` renders each file once.
    """
    return _formatted(_runnable(plan, _context(plan)))


def render_rest(plan: PackagePlan) -> dict[str, str | bytes]:
    """Everything ``render_runnable`` leaves out: project metadata, README and REPORT, tests
    (with the recorded calls of ``plan.recorded``), the pipeline files."""
    return _formatted(_rest(plan, _context(plan)))


# Each part of the project is rendered as (Python files to format, the other files): all the
# Python of a conversion is then formatted by one formatter process.
Parts = tuple[dict[str, str], dict[str, "str | bytes"]]


def _runnable(plan: PackagePlan, context: Mapping[str, Any]) -> Parts:
    from .assets import asset_files

    package = {f"src/{plan.name}/__init__.py": _template("project/__init__.py.j2", context)}
    for module in plan.modules:
        package[f"src/{plan.name}/{module.name}.py"] = _template("project/module.py.j2", context,
                                                                 module=module)
    files: dict[str, str | bytes] = {}
    for notebook in plan.notebooks:
        files[f"notebooks/{notebook.filename}"] = notebook_json(notebook.node) + "\n"
    files.update(asset_files(plan.assets))
    if plan.pipeline is not None:
        from .pipeline.split import STAGE_IO

        # The stage notebooks' own module for loading and saving values: no nb2pkg needed.
        files[f"src/{plan.name}/{STAGE_IO}.py"] = runtime_module("stage_io")
    return package, files


def _rest(plan: PackagePlan, context: Mapping[str, Any]) -> Parts:
    calls = plan.recorded
    tests = {
        "tests/test_package.py": _template("project/tests/test_package.py.j2", context),
        "tests/test_notebooks.py": _template("project/tests/test_notebooks.py.j2", context)}
    files: dict[str, str | bytes] = {}
    files.update({
        "pyproject.toml": _template("project/pyproject.toml.j2", context),
        "README.md": _template("project/README.md.j2", context),
        "REPORT.md": _template("project/REPORT.md.j2", context),
        "tests/_notebook_outputs.py": runtime_module("notebook_outputs"),
        "constraints.txt": _template("project/constraints.txt.j2", context,
                                     constraints=_constraints(plan, context["test_requirements"])),
        ".gitignore": _template("project/gitignore.j2", context),
    })
    for notebook in plan.notebooks:
        files[f"tests/originals/{notebook.filename}"] = Path(notebook.original).read_bytes()
    if calls is not None:
        files.update(recorded_test_files(calls))
    if plan.pipeline is not None:
        from .pipeline.stages import pipeline_files

        files.update(pipeline_files(plan))
    return tests, files


def _formatted(*parts: Parts) -> dict[str, str | bytes]:
    """The files of ``parts``, in order, their Python formatted together (one process)."""
    python = {path: text for code, _ in parts for path, text in code.items()}
    formatted = dict(zip(python, format_modules(list(python.values()))))
    files: dict[str, str | bytes] = {}
    for code, other in parts:
        files.update((path, formatted[path]) for path in code)
        files.update(other)
    return files


def _template(name: str, context: Mapping[str, Any], **more: Any) -> str:
    return environment().get_template(name).render(**context, **more)


def _context(plan: PackagePlan) -> dict[str, Any]:
    """What the project templates get."""
    calls = plan.recorded
    # File names only: a generated package must not carry the author's folders.
    sources = [a.notebook.path.name for a in plan.analysis.notebooks]
    return dict(
        package=plan.name,
        distribution=plan.name.replace("_", "-"),
        sources=sources,
        notebook_names=sources,
        modules=plan.modules,
        module_names={m.name: _public_names(plan, m.name) for m in plan.modules},
        notebooks=plan.notebooks,
        notebook_files=[n.filename for n in plan.notebooks],
        varying={name: list(cells) for name, cells in plan.varying},
        dependencies=plan.dependencies,
        test_requirements=_test_requirements(plan, calls or ()),
        # The project has a pipeline (stage notebooks, dvc.yaml): its tools are an extra.
        pipeline=plan.pipeline is not None,
        # How to run a stage by hand (README): the first stage's papermill call.
        first_stage=None if plan.pipeline is None else _first_stage(plan.pipeline.spec),
        pipeline_requirements=PIPELINE_REQUIREMENTS,
        joined=() if plan.pipeline is None else plan.pipeline.joined,
        python_min=f"{sys.version_info.major}.{sys.version_info.minor}",
        extractions=plan.extractions,
        refusals=plan.refusals,
        loops=plan.loops,
        loop_refusals=plan.loop_refusals,
        hoisted=plan.hoisted,
        kept=plan.kept,
        assets=plan.assets,
        findings=[replace(f, notebook=Path(f.notebook).name)
                  for f in plan.findings],
        coverage=None if calls is None else _coverage(plan, calls),
    )


def _coverage(plan: PackagePlan, calls: Sequence[Any]) -> list[Any]:
    # Only a verified conversion recorded calls: others need not import record (~7 ms).
    from .record import coverage

    return coverage([f"{plan.name}.{m.name}.{name}" for m in plan.modules
                     for name in _public_names(plan, m.name, functions_only=True)], calls)


# What each module of nb2pkg/runtime/ is for, in the project that carries a copy of it.
_RUNTIME_PURPOSE = {
    "notebook_outputs": "Used by tests/test_notebooks.py: run notebooks on a kernel, compare "
                        "their outputs.",
    "recorded": "Used by tests/test_recorded.py: read the recorded calls, compare values.",
    "stage_io": "Used by the stage notebooks in stages/: save and load the values that cross "
                "stages.",
}


@lru_cache(maxsize=None)
def runtime_module(name: str) -> str:
    """The project's own copy of ``nb2pkg/runtime/<name>.py``, under a header saying so.

    The module is the one nb2pkg itself runs (one source of truth); the copy makes the
    generated project independent of nb2pkg. The source is formatted already
    (tests/test_standalone.py checks it), so it is not formatted again here.
    """
    from . import runtime

    source = (Path(runtime.__file__).parent / f"{name}.py").read_text(encoding="utf-8")
    return environment().get_template("project/owned_module.py.j2").render(
        name=name, purpose=_RUNTIME_PURPOSE[name], source=source)


RECORDED_HEADING = "\n## Recorded-value tests\n"


def recorded_section(coverage: Sequence[Any]) -> str:
    """REPORT.md's section on the recorded-value tests (its last), from ``record.coverage``."""
    return _template("project/report_recorded.md.j2", {"coverage": coverage})


def _recorded_span(report: str) -> tuple[int, int] | None:
    """Where a REPORT.md's recorded-value section is: from the blank line before its heading
    to the blank line before the next heading (the end of the text when it is the last)."""
    start = report.find(RECORDED_HEADING)
    if start < 0:
        return None
    end = report.find("\n## ", start + len(RECORDED_HEADING))
    return start, len(report) if end < 0 else end


def recorded_section_of(report: str) -> str:
    """The recorded-value section of a REPORT.md's text, as it is there; "" when it has none."""
    span = _recorded_span(report)
    return "" if span is None else report[span[0]:span[1]]


def with_recorded_section(report: str, section: str) -> str:
    """A REPORT.md's text with its recorded-value section replaced by ``section`` (added at the
    end when it had none): what ``verify --record`` and ``update`` write."""
    span = _recorded_span(report)
    if span is None:
        return report + section
    start, end = span
    rest = report[end:]
    return report[:start] + (section.rstrip("\n") + "\n" + rest if rest else section)


def recorded_test_files(calls: Sequence[Any]) -> dict[str, str | bytes]:
    """``tests/test_recorded.py``, its helpers and its data, from the recorded calls."""
    from .record import test_data

    return {**test_data(calls),
            "tests/test_recorded.py": format_python(
                environment().get_template("project/tests/test_recorded.py.j2").render()),
            "tests/_recorded.py": runtime_module("recorded"),
            "tests/_notebook_outputs.py": runtime_module("notebook_outputs")}


# What running the pipeline takes (the `pipeline` extra of a project that has one): papermill
# runs each stage notebook, DVC decides which (dvc.yaml), ipykernel is the stages' kernel.
PIPELINE_REQUIREMENTS = ("papermill", "dvc", "ipykernel")


def _constraints(plan: PackagePlan, test_requirements: Sequence[str]) -> list[str]:
    """``name==version`` of the package's dependencies (and of ``test_requirements``, what its
    recorded tests read values with) as installed here, and everything they need:
    constraints.txt."""
    from .dependencies import constraints

    return constraints([d.requirement for d in plan.dependencies] + list(test_requirements),
                       exclude=[plan.name])


def _test_requirements(plan: PackagePlan, calls: Sequence[Any]) -> list[str]:
    """What the generated tests need to read the recorded values (numpy, pandas, pyarrow),
    minus what the package already depends on."""
    if not calls:
        return []
    from .dependencies import canonical_name
    from .record import test_requirements

    have = {canonical_name(d.name) for d in plan.dependencies}
    return [r for r in test_requirements(calls) if canonical_name(r) not in have]


def _first_stage(spec: Any) -> dict[str, Any]:
    from .pipeline.export import stage_command

    stage = spec.stages[0]
    return {"command": stage_command(spec, stage), "parameters": bool(spec.parameters)}


def _public_names(plan: PackagePlan, module: str, functions_only: bool = False) -> list[str]:
    names = [h.name for h in plan.hoisted if h.module == module
             and (h.kind == "function" or not functions_only)]
    names += [e.function for e in plan.extractions if e.module == module]
    return sorted(set(names))

