"""Render a ``PackagePlan`` through ``templates/`` into file contents (``nb2pkg.write`` writes them).

Every generated file comes from a template. Python files are formatted with black.
"""

from __future__ import annotations

import sys
from dataclasses import replace
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
    from .record import coverage, test_data

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
    }
    for module in plan.modules:
        files[f"src/{plan.name}/{module.name}.py"] = format_python(
            template("project/module.py.j2", module=module))
    for notebook in plan.notebooks:
        files[f"notebooks/{notebook.filename}"] = nbformat.writes(notebook.node) + "\n"
        files[f"tests/originals/{notebook.filename}"] = Path(notebook.original).read_bytes()
    files.update(asset_files(plan.assets))
    if calls is not None:
        files.update(test_data(calls))
        files["tests/test_recorded.py"] = format_python(template("project/tests/test_recorded.py.j2"))
    files.update(extra or {})
    return files


def _public_names(plan: PackagePlan, module: str, functions_only: bool = False) -> list[str]:
    names = [h.name for h in plan.hoisted if h.module == module
             and (h.kind == "function" or not functions_only)]
    names += [e.function for e in plan.extractions if e.module == module]
    return sorted(set(names))

