"""Faults: interrupted conversions, unwritable targets, colliding names, huge outputs, many cells.

(a) A conversion that dies while writing leaves the previous output or none, never half a
    package; the only folders it may leave beside the target are its own, clearly named
    `.<target>.nb2pkg-*` (see docs/robustness.md for when that happens).
(b) An output whose parent cannot be created is one error line, exit 2.
(c) Notebooks whose names collide in one package get distinct modules and notebook files.
(d) Tens of MB of image outputs convert, in bounded memory (peak RSS measured in a child).
(e) Thousands of cells convert in seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from helpers import ROOT, write_notebook
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.errors import OutputWriteError
from nb2pkg.cli import main

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STAGING_PREFIX = ".{name}.nb2pkg-"  # write.write_project's temporary folders


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def repeated_notebook(path: Path, blocks: int = 3, extra_cells: int = 0) -> Path:
    """A notebook with a repeated block (so something is extracted) and optional filler."""
    cells = ["import math\nRATE = 3"]
    for i, region in enumerate(["north", "south", "east", "west"][:blocks]):
        cells.append(f"total_{region} = {i + 1} * RATE\ncount_{region} = total_{region} + 2\n"
                     f"ratio_{region} = math.sqrt(count_{region})\nprint('{region}', ratio_{region})")
    cells += [f"x{i} = {i}\nprint(x{i})" for i in range(extra_cells)]
    return write_notebook(path, cells)


def leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name != name and p.name.startswith("."))


# -- (a) interrupted conversions -----------------------------------------------------------------
@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()],
                         ids=["disk-full", "ctrl-c"])
@pytest.mark.parametrize("previous", [False, True], ids=["fresh", "force-over-previous"])
def test_write_interrupted_after_each_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           failure: BaseException, previous: bool) -> None:
    notebook = repeated_notebook(tmp_path / "in" / "sales.ipynb")
    out = tmp_path / "out" / "pkg"
    # At the output's depth: .nb2pkg/manifest.json names the notebook relative to the project.
    convert([notebook], tmp_path / "reference" / "pkg")
    reference = tree_digest(tmp_path / "reference" / "pkg")
    complete = list(reference)  # every file is written once, .nb2pkg/base/ copies included
    left: set[str] = set()
    for fail_at in range(len(complete) + 1):
        if previous and not out.exists():
            convert([notebook], out)
        written = 0
        real_text, real_bytes = pathlib.Path.write_text, pathlib.Path.write_bytes

        def counting(real):
            def write(self, *args, **kwargs):
                nonlocal written
                if self.parent.name.startswith("nb2pkg-format-"):  # the formatter's scratch
                    return real(self, *args, **kwargs)
                if written == fail_at:
                    raise failure
                written += 1
                return real(self, *args, **kwargs)
            return write

        monkeypatch.setattr(pathlib.Path, "write_text", counting(real_text))
        monkeypatch.setattr(pathlib.Path, "write_bytes", counting(real_bytes))
        try:
            convert([notebook], out, ConvertOptions(force=True))
            finished = True
        except (OutputWriteError, KeyboardInterrupt) as error:
            finished = False
            if isinstance(error, OutputWriteError):
                assert "\n" not in str(error) and "nothing was changed" in str(error)
        finally:
            monkeypatch.undo()
        assert finished == (fail_at >= len(complete))
        if out.exists():  # the previous complete output, or the new complete one
            assert tree_digest(out) == reference
        else:
            assert not previous, "--force lost the previous output"
        for name in leftovers(out.parent, out.name):
            assert name.startswith(STAGING_PREFIX.format(name=out.name)), name
            left.add(name)
            shutil.rmtree(out.parent / name)
    assert not left, f"staging folders left after {type(failure).__name__}: {sorted(left)}"


def test_rename_into_place_fails_keeps_previous(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    notebook = repeated_notebook(tmp_path / "in" / "sales.ipynb")
    out = tmp_path / "out"
    convert([notebook], out)
    (out / "mine.txt").write_text("previous output")
    before = tree_digest(out)
    real_rename = os.rename
    calls = []

    def rename(source, target):
        calls.append((source, target))
        if len(calls) == 2:  # the staging folder into place, after the old one moved aside
            raise OSError(16, "Device or resource busy")
        return real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OutputWriteError):
        convert([notebook], out, ConvertOptions(force=True))
    monkeypatch.undo()
    assert tree_digest(out) == before
    assert leftovers(tmp_path, "out") == []


def big_notebook(path: Path, megabytes: float, cells: int = 0) -> Path:
    """A notebook with ``megabytes`` of PNG-like base64 outputs (random, incompressible)."""
    rng = random.Random(1)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    image = base64.b64encode(rng.randbytes(1_000_000)).decode()  # 1.33 MB of base64
    figures = max(1, round(megabytes / 1.33))
    for i in range(max(figures, cells)):
        cell = nbformat.v4.new_code_cell(f"values_{i} = [v * {i} for v in range(10)]\n"
                                         f"plot(values_{i})")
        if i < figures:
            cell.outputs = [nbformat.v4.new_output(
                "display_data", data={"image/png": image, "text/plain": "<Figure>"})]
        nb.cells.append(cell)
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_sigkill_during_conversion_leaves_previous_or_nothing(tmp_path: Path) -> None:
    """Kill `nb2pkg convert --force` at random moments, half of them while it writes (once its
    staging folder exists): the target is always the complete output or absent."""
    notebook = big_notebook(tmp_path / "big.ipynb", 12, cells=300)
    out = tmp_path / "target" / "pkg"
    out.parent.mkdir()
    command = [sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o", str(out), "--force"]
    prefix = STAGING_PREFIX.format(name=out.name)

    def staging() -> bool:
        return any(p.name.startswith(prefix) for p in out.parent.iterdir())

    def start_and_wait_for_staging() -> tuple[subprocess.Popen, float]:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=ENV)
        while process.poll() is None and not staging():
            time.sleep(0.0005)
        return process, time.perf_counter()

    started = time.perf_counter()
    process, writing = start_and_wait_for_staging()
    assert process.wait() == 0
    ended = time.perf_counter()
    duration, write_window = ended - started, ended - writing
    reference = tree_digest(out)
    rng = random.Random(7)
    outcomes = {"complete": 0, "absent": 0}
    left: list[str] = []
    for attempt in range(12):
        if attempt % 3 == 2:
            shutil.rmtree(out, ignore_errors=True)  # sometimes there is no previous output
        if attempt % 2:
            process, _ = start_and_wait_for_staging()
            time.sleep(rng.uniform(0, write_window))
        else:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, env=ENV)
            time.sleep(rng.uniform(0.2, 1.0) * duration)
        process.kill()
        process.wait()
        if out.exists():
            assert tree_digest(out) == reference, f"partial output after a kill (attempt {attempt})"
            outcomes["complete"] += 1
        else:
            outcomes["absent"] += 1
        for name in leftovers(out.parent, out.name):
            assert name.startswith(prefix), name
            left.append(name)
            shutil.rmtree(out.parent / name)
    print(f"\nSIGKILL: a conversion takes {duration:.1f} s, {write_window:.2f} s of it writing; "
          f"after 12 kills the target was {outcomes}; clearly named folders left beside it: "
          f"{len(left)}")


# -- (b) unwritable target -----------------------------------------------------------------------
def test_output_under_a_file_is_one_error_line(tmp_path: Path) -> None:
    notebook = repeated_notebook(tmp_path / "sales.ipynb")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for target in (blocker / "out", blocker / "deeper" / "out"):
        result = subprocess.run([sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o",
                                 str(target), "--json"],  # --json: no progress lines on stderr
                                capture_output=True, text=True, env=ENV)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2, result.stderr
        assert len(lines) == 1 and lines[0].startswith(f"nb2pkg: error: {target}: "), lines
        assert "cannot create the output folder" in lines[0]
        assert not result.stdout
    assert blocker.read_text() == "not a folder"


def test_read_only_parent_is_one_error_line(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("running as root: a read-only folder does not stop root from writing "
                    "(test_output_under_a_file_is_one_error_line covers the error path)")
    notebook = repeated_notebook(tmp_path / "sales.ipynb")
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        status = main(["convert", str(notebook), "-o", str(parent / "out")])
    finally:
        parent.chmod(0o755)
    assert status == 2 and not (parent / "out").exists()


# -- (c) colliding names -------------------------------------------------------------------------
def test_colliding_notebook_names_get_distinct_modules_and_files(tmp_path: Path) -> None:
    functions = {"a/Sales Report.ipynb": "sales_a", "b/sales_report.ipynb": "sales_b",
                 "x/analysis.ipynb": "analysis_x", "y/analysis.ipynb": "analysis_y"}
    paths = [write_notebook(tmp_path / name, [f"def {f}():\n    return {f!r}", f"print({f}())"])
             for name, f in functions.items()]
    report = convert(paths, tmp_path / "out")
    plan = report.plan
    modules = [n.module for n in plan.notebooks]
    files = [n.filename for n in plan.notebooks]
    assert len(set(modules)) == 4 and len(set(files)) == 4, (modules, files)
    written = set(report.files)
    for notebook_plan, (name, function) in zip(plan.notebooks, functions.items()):
        module = (tmp_path / "out" / "src" / plan.name / f"{notebook_plan.module}.py").read_text()
        assert f"def {function}" in module  # each notebook's code in its own module
        refactored = nbformat.read(str(tmp_path / "out" / "notebooks" / notebook_plan.filename), 4)
        assert any(f"from {plan.name}.{notebook_plan.module} import {function}" in c.source
                   for c in refactored.cells)
        assert f"tests/originals/{notebook_plan.filename}" in written
        assert Path(notebook_plan.original) == tmp_path / name


# -- (d) huge outputs ----------------------------------------------------------------------------
PEAK = """
import json, resource, sys
def peak_kb():
    # ru_maxrss of a child forked from a big process (pytest) starts at the parent's size;
    # Linux's VmHWM is this process's own high-water mark.
    try:
        with open("/proc/self/status") as status:
            return int(next(l for l in status if l.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
sys.modules.setdefault("rfc3987_syntax", None)  # as the CLI does
import nbformat, libcst, jinja2
from nb2pkg.api import convert
base = peak_kb()
convert([sys.argv[1]], sys.argv[2])
print(json.dumps({"base_kb": base, "peak_kb": peak_kb(),
                  "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
def test_huge_outputs_convert_in_bounded_memory(tmp_path: Path) -> None:
    notebook = big_notebook(tmp_path / "figures.ipynb", 40)
    size = notebook.stat().st_size
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", PEAK, str(notebook), str(tmp_path / "out")],
                            capture_output=True, text=True, env=ENV)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    peak = measured["peak_kb"] * 1024
    extra = (measured["peak_kb"] - measured["base_kb"]) * 1024
    print(f"\nhuge outputs: {size / 1e6:.0f} MB notebook converted in {seconds:.1f} s, peak RSS "
          f"{peak / 1e6:.0f} MB ({extra / 1e6:.0f} MB above the {measured['base_kb'] / 1e3:.0f} MB"
          f" of the imports alone, {extra / size:.1f}x the file)")
    assert peak < 10 * size
    copied = tmp_path / "out" / "tests" / "originals" / "figures.ipynb"
    assert copied.read_bytes() == notebook.read_bytes()


# -- (e) many cells ------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.timeout(600)  # a hang guard; speed is measured in bench/
def test_three_thousand_cells(tmp_path: Path) -> None:
    cells: list = ["import math\nRATE = 3"]
    for i in range(3000):
        kind = i % 5
        if kind == 0:
            cells.append(("markdown", f"## Step {i}"))
        elif kind == 1:
            cells.append(f"total_{i} = {i} * RATE\ncount_{i} = total_{i} + 1\n"
                         f"ratio_{i} = count_{i} / (total_{i} + 1)\nprint('step', {i}, ratio_{i})")
        elif kind == 2:
            cells.append(f"def f_{i}(x):\n    return x + {i}")
        elif kind == 3:
            cells.append(f"%time y_{i} = f_{i - 1}(total_{i - 2})\n!echo {i}")
        else:
            cells.append(f"v_{i} = math.sqrt(abs(y_{i - 1}))\nv_{i}")
    notebook = write_notebook(tmp_path / "long.ipynb", cells)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o",
                             str(tmp_path / "out"), "--json"], capture_output=True, text=True,
                            env=ENV)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    print(f"\n3,001 cells: converted in {seconds:.1f} s ({len(report['extracted'])} functions "
          f"extracted, {len(report['hoisted'])} definitions moved)")
    assert report["extracted"] and report["hoisted"]
