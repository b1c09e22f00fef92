"""Render a ``PackagePlan`` through ``templates/`` into file contents (``nb2pkg.write`` writes them).

Every generated file comes from a template. Python files are formatted with black.
"""

from __future__ import annotations

import sys
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

from .plan import PackagePlan
from .templating import environment

Files = Mapping[str, "str | bytes"]


def format_python(source: str) -> str:
    """Format with black; code black cannot parse is returned unchanged (and still valid)."""
    import black

    try:
        return black.format_str(source, mode=black.Mode())
    except Exception:  # black.InvalidInput and friends: never lose code over formatting
        return source


def render(plan: PackagePlan, extra: Files | None = None,
           calls: Sequence[Any] | None = None) -> dict[str, str | bytes]:
    """Every file of the generated project, by relative POSIX path.

    ``calls`` are the package function calls recorded by a verification run: they become
    ``tests/data/recorded/`` and ``tests/test_recorded.py``, and their coverage goes in REPORT.md.
    """
    import nbformat

    from .assets import asset_files
    from .record import coverage

    env = environment()
    # File names only: a generated package must not carry the author's folders.
    sources = [a.notebook.path.name for a in plan.analysis.notebooks]
    notebook_names = [a.notebook.path.name for a in plan.analysis.notebooks]
    module_names = {m.name: _public_names(plan, m.name) for m in plan.modules}
    context = dict(
        package=plan.name,
        distribution=plan.name.replace("_", "-"),
        sources=sources,
        notebook_names=notebook_names,
        modules=plan.modules,
        module_names=module_names,
        notebooks=plan.notebooks,
        notebook_files=[n.filename for n in plan.notebooks],
        dependencies=plan.dependencies,
        test_requirements=_test_requirements(plan, calls or ()),
        # The project has a pipeline (stage notebooks, dvc.yaml): its tools are an extra.
        pipeline="dvc.yaml" in (extra or {}),
        pipeline_requirements=PIPELINE_REQUIREMENTS,
        python_min=f"{sys.version_info.major}.{sys.version_info.minor}",
        extractions=plan.extractions,
        refusals=plan.refusals,
        hoisted=plan.hoisted,
        kept=plan.kept,
        assets=plan.assets,
        findings=[replace(f, notebook=Path(f.notebook).name)
                  for f in plan.findings],
        coverage=None if calls is None else coverage(
            [f"{plan.name}.{m.name}.{name}" for m in plan.modules
             for name in _public_names(plan, m.name, functions_only=True)], calls),
    )

    def template(name: str, **more) -> str:
        return env.get_template(name).render(**context, **more)

    files: dict[str, str | bytes] = {
        "pyproject.toml": template("project/pyproject.toml.j2"),
        "README.md": template("project/README.md.j2"),
        "REPORT.md": template("project/REPORT.md.j2"),
        f"src/{plan.name}/__init__.py": format_python(template("project/__init__.py.j2")),
        "tests/test_package.py": format_python(template("project/tests/test_package.py.j2")),
        "tests/test_notebooks.py": format_python(template("project/tests/test_notebooks.py.j2")),
        "tests/_notebook_outputs.py": runtime_module("notebook_outputs"),
        "constraints.txt": template("project/constraints.txt.j2",
                                    constraints=_constraints(plan, calls or ())),
        ".gitignore": template("project/gitignore.j2"),
    }
    for module in plan.modules:
        files[f"src/{plan.name}/{module.name}.py"] = format_python(
            template("project/module.py.j2", module=module))
    for notebook in plan.notebooks:
        files[f"notebooks/{notebook.filename}"] = nbformat.writes(notebook.node) + "\n"
        files[f"tests/originals/{notebook.filename}"] = Path(notebook.original).read_bytes()
    files.update(asset_files(plan.assets))
    if calls is not None:
        files.update(recorded_test_files(calls))
    files.update(extra or {})
    return files


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
    generated project independent of nb2pkg. The source is black-formatted already
    (tests/test_standalone.py checks it), so it is not formatted again here.
    """
    from . import runtime

    source = (Path(runtime.__file__).parent / f"{name}.py").read_text(encoding="utf-8")
    return environment().get_template("project/owned_module.py.j2").render(
        name=name, purpose=_RUNTIME_PURPOSE[name], source=source)


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


def _constraints(plan: PackagePlan, calls: Sequence[Any]) -> list[str]:
    """``name==version`` of the package's dependencies (and of what its recorded tests read
    values with) as installed here, and everything they need: constraints.txt."""
    from .dependencies import constraints

    return constraints([d.requirement for d in plan.dependencies]
                       + _test_requirements(plan, calls), exclude=[plan.name])


def _test_requirements(plan: PackagePlan, calls: Sequence[Any]) -> list[str]:
    """What the generated tests need to read the recorded values (numpy, pandas, pyarrow),
    minus what the package already depends on."""
    from packaging.utils import canonicalize_name

    from .record import test_requirements

    have = {canonicalize_name(d.name) for d in plan.dependencies}
    return [r for r in test_requirements(calls) if canonicalize_name(r) not in have]


def _public_names(plan: PackagePlan, module: str, functions_only: bool = False) -> list[str]:
    names = [h.name for h in plan.hoisted if h.module == module
             and (h.kind == "function" or not functions_only)]
    names += [e.function for e in plan.extractions if e.module == module]
    return sorted(set(names))

