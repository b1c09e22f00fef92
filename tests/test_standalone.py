"""What nb2pkg generates lives without nb2pkg (issue 11; DESIGN.md, "The standalone principle").

First without a kernel: the modules of ``nb2pkg/runtime/`` that projects carry a copy of import
nothing from nb2pkg and are formatted as generated modules are, so the copy is the module itself. Then on every
example: the generated project names nb2pkg in no import and no dependency, its tests pass in a
Python where nb2pkg cannot be imported, and its stage notebooks run there with plain papermill.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import tomllib
from pathlib import Path

import nbformat
import pytest

from helpers import (EXAMPLES, again_if_kernel_lost_its_port, venv_with_this_environment,
                     write_notebook)
from nb2pkg import runtime
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.formatting import format_python

RUNTIME = Path(runtime.__file__).parent
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def _imports(source: str) -> list[tuple[str, int]]:
    """(module, level) of every import statement (level > 0: relative)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("name", runtime.SHIPPED)
def test_shipped_runtime_modules_import_nothing_from_nb2pkg(name: str) -> None:
    imports = _imports((RUNTIME / f"{name}.py").read_text(encoding="utf-8"))
    assert imports, "no imports parsed"
    assert [m for m, level in imports if level or m.split(".")[0] == "nb2pkg"] == []


def test_the_kernel_side_recorder_imports_only_the_runtime() -> None:
    imports = _imports((RUNTIME / "recording.py").read_text(encoding="utf-8"))
    assert [(m, level) for m, level in imports if level or m.startswith("nb2pkg")] == [
        ("recorded", 1)]


@pytest.mark.parametrize("name", runtime.SHIPPED)
def test_shipped_runtime_modules_are_formatted(name: str) -> None:
    source = (RUNTIME / f"{name}.py").read_text(encoding="utf-8")
    assert format_python(source) == source


def test_the_copy_in_a_project_is_the_runtime_module_under_a_header() -> None:
    from nb2pkg.generate import runtime_module

    source = (RUNTIME / "stage_io.py").read_text(encoding="utf-8")
    copy = runtime_module("stage_io")
    header, _, rest = copy.partition('"""')
    assert '"""' + rest == source
    assert header.count("\n") == 3 and all(line.startswith("# ") for line in header.splitlines())
    assert "belongs to this" in header


# --- every example, converted and verified -----------------------------------------------------

_IMPORT_LINE = re.compile(r"^\s*(?:from\s+\S+\s+)?import\s", re.M)


def _code_lines(path: Path) -> list[str]:
    """The lines of Python code in a generated file (code cells of notebooks)."""
    if path.suffix == ".py":
        return path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".ipynb":
        node = nbformat.read(str(path), as_version=4)
        return [line for cell in node.cells if cell.cell_type == "code"
                for line in cell.source.splitlines()]
    return []


def nb2pkg_imports(project: Path) -> list[str]:
    """Every import line (Python files, notebook code cells) that mentions nb2pkg."""
    return [f"{path.relative_to(project)}: {line.strip()}"
            for path in sorted(project.rglob("*")) if path.is_file()
            for line in _code_lines(path)
            if "nb2pkg" in line and (_IMPORT_LINE.match(line) or "__import__" in line)]


def nb2pkg_dependencies(project: Path) -> list[str]:
    """Every requirement of pyproject.toml (build, run, extras) that names nb2pkg."""
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = [*data.get("build-system", {}).get("requires", []),
                    *data["project"].get("dependencies", []),
                    *(r for extra in data["project"].get("optional-dependencies", {}).values()
                      for r in extra)]
    return [r for r in requirements
            if re.split(r"[\s\[<>=!~;@]", r.strip(), maxsplit=1)[0].lower() == "nb2pkg"]


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    """A virtual environment with this environment's packages but no nb2pkg.

    A ``.pth`` file naming this environment's site-packages folders makes their packages
    importable; the ``.pth`` files inside those folders (nb2pkg's editable install is one) are
    not processed for folders added that way, so nb2pkg's modules cannot be imported there (an
    editable install leaves a ``nb2pkg/templates`` folder in site-packages, so ``nb2pkg``
    itself imports, as an empty namespace package).
    """
    home = tmp_path_factory.mktemp("venv-without-nb2pkg")
    python = venv_with_this_environment(home)
    probe = subprocess.run([str(python), "-c", "import nb2pkg.api"], capture_output=True,
                           text=True, env=_env(), cwd=home)
    assert probe.returncode == 1 and "No module named 'nb2pkg" in probe.stderr, probe.stderr
    return python


def _env() -> dict[str, str]:
    """This environment minus anything that would make nb2pkg importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module", params=[pytest.param(n, id=n.stem, marks=pytest.mark.xdist_group(f"standalone-{n.stem}"))
                                       for n in NOTEBOOKS])
def project(request, tmp_path_factory) -> Path:
    notebook: Path = request.param
    out = tmp_path_factory.mktemp("standalone") / notebook.stem
    report = convert([notebook], out, ConvertOptions(verify=True))
    assert report.verification is not None and report.verification.equivalent
    assert (out / "tests" / "test_recorded.py").exists()
    return out


@pytest.mark.kernel
def test_no_generated_file_imports_or_depends_on_nb2pkg(project: Path) -> None:
    assert nb2pkg_imports(project) == []
    assert nb2pkg_dependencies(project) == []
    assert list((project / "tests" / "data" / "recorded").glob("*/*.json"))


@pytest.mark.kernel
def test_the_generated_tests_pass_where_nb2pkg_cannot_be_imported(project: Path,
                                                                   python: Path) -> None:
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                                "--no-build-isolation", "-e", str(project)],
                               capture_output=True, text=True, env=_env(), cwd=project)
    assert installed.returncode == 0, installed.stderr
    tested = subprocess.run([str(python), "-m", "pytest", "-v", "-p", "no:cacheprovider",
                             str(project)], capture_output=True, text=True, env=_env(), cwd=project)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    passed = re.findall(r"^tests/(\w+)\.py::\S+ PASSED", tested.stdout, re.M)
    assert {"test_notebooks", "test_recorded", "test_package"} <= set(passed), tested.stdout


@pytest.mark.kernel
def test_stage_notebooks_run_with_plain_papermill(project: Path, python: Path) -> None:
    """The first stages (the second loads what the first saved), in a kernel where nb2pkg
    cannot be imported, with the package's folder on PYTHONPATH as `nb2pkg run` sets it."""
    stages = sorted((project / "stages").glob("*/*.ipynb"))
    assert stages
    probe = project / "probe.ipynb"
    node = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import nb2pkg.api")])
    node.metadata["kernelspec"] = nbformat.read(str(stages[0]), as_version=4).metadata.kernelspec
    nbformat.write(node, str(probe))
    env = {**_env(), "PYTHONPATH": str(project / "src")}

    def papermill(notebook: Path, output: Path) -> subprocess.CompletedProcess:
        return again_if_kernel_lost_its_port(lambda: subprocess.run(
            [str(python), "-m", "papermill", str(notebook), str(output),
             "--cwd", str(project / "notebooks")],
            capture_output=True, text=True, env=env, cwd=project))

    failed = papermill(probe, project / "probe-out.ipynb")  # the kernel has no nb2pkg either
    assert failed.returncode != 0 and "No module named 'nb2pkg" in failed.stderr, failed.stderr
    (project / "runs").mkdir(exist_ok=True)
    for stage in stages[:2]:
        ran = papermill(stage, project / "runs" / stage.name)
        assert ran.returncode == 0, ran.stderr[-3000:]
    index = json.loads((project / "artifacts" / _stage_name(stages[1]) / "index.json").read_text())
    assert index["stage"] == _stage_name(stages[1])


def _stage_name(path: Path) -> str:
    return nbformat.read(str(path), as_version=4).metadata["nb2pkg"]["stage"]


@pytest.mark.kernel
@pytest.mark.timeout(600)
def test_watermark_lists_the_same_packages_once_the_project_is_installed(tmp_path: Path,
                                                                        python: Path) -> None:
    """`%watermark -iv` prints the version of the package of every function and class in the
    namespace. `--verify` runs the package from its folder, without a version, so it cannot see
    the difference; installed, the package has one, and the project's own test failed (spaghetti's
    notebooks, session 31). Definitions before the listing stay, imports are not gathered above
    it, extracted functions are imported after it."""
    notebook = write_notebook(tmp_path / "listed.ipynb", [
        "import json\nimport statistics",
        "def dump(x):\n    return json.dumps(x)",
        "%load_ext watermark\n%watermark -iv",
        "def shout(x):\n    return x.upper()",
        "north = [1, 2, 3]\nsouth = [4, 5]",
        "doubled = [v * 2 for v in north]\ntotal = statistics.mean(doubled)\nprint('total', total)",
        "doubled = [v * 2 for v in south]\ntotal = statistics.mean(doubled)\nprint('total', total)",
        "print(dump([1]), shout('a'))",
    ])
    out = tmp_path / "out"
    report = convert([notebook], out, ConvertOptions(verify=True))
    assert report.verification is not None and report.verification.equivalent
    assert report.plan.extractions and [h.name for h in report.plan.hoisted] == ["shout"]
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                                "--no-build-isolation", "-e", str(out)],
                               capture_output=True, text=True, env=_env(), cwd=out)
    assert installed.returncode == 0, installed.stderr
    tested = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "tests/test_notebooks.py"], capture_output=True, text=True,
                            env=_env(), cwd=out)
    assert tested.returncode == 0 and "1 passed" in tested.stdout, tested.stdout[-3000:]
