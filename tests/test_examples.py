"""Acceptance on every bundled example: `convert --verify` succeeds, then `pip install -e DIR`
and `pytest DIR` pass, and the refactored notebooks hold no unexplained repeated blocks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import EXAMPLES, ROOT, venv_with_this_environment
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook

pytestmark = pytest.mark.kernel
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


@pytest.fixture(scope="module")
def python(tmp_path_factory) -> Path:
    """A virtual environment that sees the packages of the environment running the tests, so
    installs are quick and offline.

    ``system_site_packages=True`` would not do: inside a virtual environment it exposes the base
    interpreter's packages, not this environment's. A ``.pth`` file naming this environment's
    site-packages folders does, wherever the tests run.
    """
    return venv_with_this_environment(tmp_path_factory.mktemp("venv"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_example_converts_verifies_installs_and_tests(notebook: Path, tmp_path: Path,
                                                      python: Path) -> None:
    out = tmp_path / notebook.stem
    converted = subprocess.run(
        [sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o", str(out), "--verify",
         "--json"], capture_output=True, text=True, env=_env(), cwd=ROOT)
    assert converted.returncode == 0, converted.stdout[-3000:] + converted.stderr[-3000:]
    report = json.loads(converted.stdout)
    assert report["verification"]["equivalent"]

    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps",
                                "--no-build-isolation", "-e", str(out)],
                               capture_output=True, text=True, env=_env())
    assert installed.returncode == 0, installed.stderr
    tested = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(out)],
                            capture_output=True, text=True, env=_env(), cwd=out)
    assert tested.returncode == 0, tested.stdout[-3000:]
    assert " passed" in tested.stdout

    assert (out / "tests" / "test_recorded.py").exists()
    _mutants_are_caught(out, python)

    # Whatever repeated code remains in the refactored notebook is explained by a refusal.
    remaining = analyze([read_notebook(out / "notebooks" / notebook.name)]).clones
    refused_lines = {(o["cell"], o["first_line"]) for r in report["refused"] for o in r["occurrences"]}
    for group in remaining:
        for o in group.occurrences:
            source_cell = _source_cell(out / "notebooks" / notebook.name, o.cell)
            assert any(cell == source_cell for cell, _ in refused_lines), (group, report["refused"])


def _source_cell(path: Path, index: int) -> int:
    cell = json.loads(path.read_text())["cells"][index]
    return cell["metadata"]["nb2pkg"]["source_cell"]


def _mutants(source: str, function: str):
    """Versions of the module with one operator or constant in ``function`` changed."""
    import ast

    swap = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
            ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.Gt: ast.LtE,
            ast.LtE: ast.Gt, ast.GtE: ast.Lt}
    count = sum(1 for _ in ast.walk(ast.parse(source)))
    for position in range(count):
        tree = ast.parse(source)
        target = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
        nodes = list(ast.walk(target))
        if position >= len(nodes):
            return
        node = nodes[position]
        if isinstance(node, ast.BinOp) and type(node.op) in swap:
            node.op = swap[type(node.op)]()
        elif isinstance(node, ast.Compare) and type(node.ops[0]) in swap:
            node.ops[0] = swap[type(node.ops[0])]()
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            node.value += 1
        else:
            continue
        yield ast.unparse(tree)


def _behaves_differently(src: Path, dotted: str, mutant: str, paths: list[Path]) -> bool:
    """Does the mutant give another result, output or argument change on the recorded calls?"""
    import contextlib
    import importlib
    import io

    from nb2pkg.runtime.recorded import assert_same, load_call

    package, module, function = dotted.split(".")
    sys.path.insert(0, str(src))
    try:
        importlib.import_module(package)
        namespace = importlib.import_module(f"{package}.{module}").__dict__.copy()
        exec(compile(mutant, f"{module}.py", "exec"), namespace)
        for path in paths:
            call = load_call(path)  # afresh: a call may change its arguments
            if call.result_type is not None:
                continue
            printed = io.StringIO()
            try:
                with contextlib.redirect_stdout(printed):
                    result = namespace[function](*call.args, **call.kwargs)
                assert_same(result, call.result)
                assert printed.getvalue() == call.printed
                if call.args_after is not None:
                    assert_same(call.args, call.args_after)
            except Exception:
                return True
        return False
    finally:
        sys.path.remove(str(src))
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


def _mutants_are_caught(out: Path, python: Path) -> None:
    """For each function with recorded-value tests, a changed operator or constant that alters
    what the function does on the recorded inputs makes the generated tests fail."""
    folders = sorted(p for p in (out / "tests" / "data" / "recorded").iterdir() if p.is_dir())
    assert folders, "no calls were recorded"
    caught = []
    for folder in folders:
        paths = sorted(folder.glob("*.json"))
        calls = [json.loads(path.read_text()) for path in paths]
        if not any("result" in call for call in calls):
            continue
        dotted = calls[0]["function"]
        package, module, function = dotted.split(".")
        path = out / "src" / package / f"{module}.py"
        original = path.read_text()
        mutant = next((m for m in _mutants(original, function)
                       if _behaves_differently(out / "src", dotted, m, paths)), None)
        if mutant is None:
            continue  # no single-token change alters this function on its recorded inputs
        try:
            path.write_text(mutant)
            result = subprocess.run(
                [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                 str(out / "tests" / "test_recorded.py"), "-k", function],
                capture_output=True, text=True, env=_env(), cwd=out)
            assert result.returncode == 1, f"changing {function} went unnoticed:\n{result.stdout[-2000:]}"
            caught.append(function)
        finally:
            path.write_text(original)
    assert caught, "no deliberate bug was caught by the recorded-value tests"
