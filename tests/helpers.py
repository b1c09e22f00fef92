"""Shared helpers: build notebooks from plain cell lists, run the pipeline in memory."""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "notebooks"
DATA = Path(__file__).resolve().parent / "data"


def write_notebook(path: Path, cells: list, **metadata) -> Path:
    """Write a v4 notebook; a cell is source text (code) or ("markdown", text) / ("code", text, tags)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.update(metadata)
    for cell in cells:
        if isinstance(cell, str):
            nb.cells.append(nbformat.v4.new_code_cell(cell))
        elif cell[0] == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(cell[1]))
        else:
            new = nbformat.v4.new_code_cell(cell[1])
            if len(cell) > 2:
                new.metadata["tags"] = list(cell[2])
            nb.cells.append(new)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def parse_case(text: str) -> dict[str, list]:
    """Split a case file into sections: "cells" (input), "function", "after", "refused",
    "module" (the definitions moved into the package), "kept" (`name: part of the reason`).

    Markers: `%% code` / `%% markdown` start a cell; `== function`, `== after`, `== refused`,
    `== module`, `== kept` start the expected parts. Lines starting with `##` before the first
    marker are a description.
    """
    parts: dict[str, list] = {"cells": []}
    section = "cells"
    current: list[str] | None = None
    kind = "code"

    def close() -> None:
        if current is not None:
            text = "\n".join(current).strip("\n")
            parts.setdefault(section, []).append(text if kind == "code" else ("markdown", text))

    for line in text.splitlines():
        if line.startswith("== "):
            close()
            current = None
            section = line[3:].strip()
            parts.setdefault(section, [])
            if section in ("function", "refused", "module", "kept"):
                current, kind = [], "code"
            continue
        if line.startswith("%% "):
            close()
            current, kind = [], line[3:].strip()
            continue
        if current is None:
            continue  # description
        current.append(line)
    close()
    return parts


def venv_with_this_environment(folder: Path) -> Path:
    """A virtual environment in ``folder`` that imports this environment's packages; its python.

    A ``.pth`` file names this environment's site-packages folders. ``system_site_packages``
    would not do: inside a virtual environment it exposes the base interpreter's packages. The
    ``.pth`` files *inside* folders added that way are not processed, so an editable install of
    nb2pkg (itself a ``.pth``) is not importable there: the venv is also "without nb2pkg".
    """
    import site
    import subprocess
    import venv

    venv.create(folder, with_pip=True)
    python = folder / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "_tests_parent_environment.pth").write_text(
        "\n".join(site.getsitepackages()) + "\n")
    return python


def venv_without_nb2pkg(folder: Path, home: Path) -> Path:
    """``venv_with_this_environment`` in ``folder``, checked: nb2pkg is not importable there."""
    import subprocess

    python = venv_with_this_environment(folder)
    probe = subprocess.run([str(python), "-c", "import nb2pkg.api"], capture_output=True,
                           text=True, env=standalone_env(python, home), cwd=folder)
    assert probe.returncode == 1 and "No module named 'nb2pkg." in probe.stderr, probe.stderr
    return python


def standalone_env(python: Path, home: Path) -> dict[str, str]:
    """The environment of a command run as on a fresh runner: the venv of ``python`` first on
    PATH, a HOME of its own (kernels are registered with ``--user``), nothing of ours."""
    import os

    keep = {k: v for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH",
                         "JUPYTER_DATA_DIR", "MPLBACKEND")}
    return {**keep, "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home),
            "JUPYTER_DATA_DIR": str(home / "jupyter"), "VIRTUAL_ENV": str(python.parent.parent),
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def workflow_bash(script: str, project: Path, python: Path, home: Path, timeout: int = 1800,
                  **env: str):
    """``script`` as GitHub runs a ``run:`` step on Linux (bash --noprofile --norc -eo
    pipefail), in ``project``, in ``standalone_env``."""
    import subprocess

    return again_if_kernel_lost_its_port(lambda: subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], capture_output=True,
        text=True, cwd=project, timeout=timeout, env={**standalone_env(python, home), **env}))


def again_if_kernel_lost_its_port(run):
    """``run()`` (a finished process), once more when its kernel died before starting.

    jupyter_client picks a kernel's ports before the kernel binds them, and on a machine running
    other tests' kernels and servers another process can take one in between: the kernel dies
    before it starts. papermill, which the generated pipeline runs, does not start it again
    (nb2pkg's own runs do). No cell ran, and papermill and `dvc repro` start again where they
    stopped, so the command runs once more; what both runs printed is kept, the first run's
    marked.
    """
    import subprocess

    result = run()
    if result.returncode == 0 or KERNEL_LOST_ITS_PORT not in result.stdout + result.stderr:
        return result
    again = run()
    return subprocess.CompletedProcess(
        again.args, again.returncode, f"{result.stdout}{again.stdout}",
        f"[first run, kernel lost its port]\n{result.stderr}[run again]\n{again.stderr}")


# What jupyter_client raises when a kernel dies before starting (another process took a port).
KERNEL_LOST_ITS_PORT = "Kernel died before replying to kernel_info"


def dvc_ran_stages(output: str) -> list[str]:
    """The stages ``dvc repro`` says it ran."""
    import re

    # Once each: a step run again after its kernel lost its port says so twice.
    return list(dict.fromkeys(re.findall(r"^Running stage '([^']+)':", output, re.M)))


def run_json(project: Path, *args: str):
    """``nb2pkg run --json`` of ``project``'s pipeline in this process: exit code, the JSON
    result, the names of the stages that ran."""
    import contextlib
    import io
    import json

    from nb2pkg.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["run", str(project / "pipeline.yaml"), "--json", *args])
    result = json.loads(buffer.getvalue())
    return code, result, [s["name"] for s in result["stages"] if s["status"] == "ran"]


def printed(project: Path, stage: str) -> str:
    """What the executed notebook of ``stage`` printed (its stream outputs)."""
    import nbformat

    node = nbformat.read(str(project / "runs" / f"{stage}.ipynb"), as_version=4)
    return "".join(o.get("text", "") for c in node.cells for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")
