"""Write generated files atomically, and refuse outputs that must not be replaced.

The project is built in a temporary folder beside the target and moved into place in one rename,
so an interrupted run leaves either the previous output or none, never half a package.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import OutputExistsError, OutputWriteError

Files = Mapping[str, "str | bytes"]


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
    from .generate import format_python
    from .templating import render_template
    from .record import test_data

    files: dict[str, str] = dict(test_data(calls))
    files["tests/test_recorded.py"] = format_python(
        render_template("project/tests/test_recorded.py.j2"))
    shutil.rmtree(project / "tests" / "data" / "recorded", ignore_errors=True)
    for relative, content in files.items():
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.nb2pkg-tmp")
        partial.write_text(content, encoding="utf-8", newline="\n")
        os.replace(partial, target)  # each file appears whole or not at all
    return sorted(files)
