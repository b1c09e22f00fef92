"""Render a ``PackagePlan`` through ``templates/`` and write it atomically.

Every generated file comes from a template. Python files are formatted with black. The project is
built in a temporary folder beside the target and moved into place in one rename, so an
interrupted run leaves either the previous output or none, never half a package.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import OutputExistsError, OutputWriteError
from .plan import PackagePlan

Files = Mapping[str, "str | bytes"]


def templates_dir() -> Path:
    """The templates folder: inside the installed wheel, or beside the package in a checkout."""
    packaged = resources.files("nb2pkg") / "templates"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "templates"


def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


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

    from .record import coverage, test_data

    env = _environment()
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
        findings=[replace(f, notebook=Path(f.notebook).name)
                  for a in plan.analysis.notebooks for f in a.findings],
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


def check_output(output: Path, force: bool, inputs: Iterable[Path] = ()) -> None:
    """Refuse an existing output without ``force``, and any output that holds an input."""
    output = output.resolve()
    for path in inputs:
        path = Path(path).resolve()
        if path == output or output in path.parents:
            raise OutputExistsError("the output folder contains the input notebook", path=output,
                                    hint="choose an output folder outside the notebooks' folder")
    for parent in output.parents:  # `-o some-file/out`: say so now, not after the analysis
        if parent.exists():
            if not parent.is_dir():
                raise OutputExistsError(f"cannot create the output folder: {parent} is a file",
                                        path=output, hint="choose an output folder elsewhere")
            break
    if output.exists() and not force:
        raise OutputExistsError("output folder already exists", path=output,
                                hint="pass --force to replace it, or choose another folder")
    if output.exists() and not output.is_dir():
        raise OutputExistsError("output exists and is not a folder", path=output,
                                hint="choose another path")


def write_project(files: Files, output: Path, force: bool = False) -> list[str]:
    """Write ``files`` under ``output`` atomically; return the written paths, sorted."""
    check_output(output, force)
    output = output.resolve()
    parent = output.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.nb2pkg-", dir=parent))
    except OSError as exc:
        raise OutputWriteError(f"cannot create the output folder: {exc.strerror}", path=output,
                               hint="check permissions and free disk space") from None
    old: Path | None = None
    try:
        for relative, content in sorted(files.items()):
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8", newline="\n")
        os.chmod(staging, 0o755)
        if output.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{output.name}.nb2pkg-old-", dir=parent))
            os.rename(output, old / output.name)
        os.rename(staging, output)
    except BaseException as exc:  # also Ctrl-C: never leave the staging folder behind
        shutil.rmtree(staging, ignore_errors=True)
        if old is not None and not output.exists():  # put the previous output back
            os.rename(old / output.name, output)
        if not isinstance(exc, OSError):
            raise
        raise OutputWriteError(f"cannot write the project: {exc.strerror or exc}", path=output,
                               hint="check permissions and free disk space; nothing was changed"
                               ) from None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return sorted(files)


def write_recordings(project: Path, calls: Sequence[Any]) -> list[str]:
    """Replace the recorded-call test data of an existing project (``nb2pkg verify`` refresh)."""
    from .record import test_data

    files: dict[str, str] = dict(test_data(calls))
    files["tests/test_recorded.py"] = format_python(
        _environment().get_template("project/tests/test_recorded.py.j2").render())
    shutil.rmtree(project / "tests" / "data" / "recorded", ignore_errors=True)
    for relative, content in files.items():
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.nb2pkg-tmp")
        partial.write_text(content, encoding="utf-8", newline="\n")
        os.replace(partial, target)  # each file appears whole or not at all
    return sorted(files)
