"""Runs of statements that differ only in literals, rolled into loops (nb2pkg/refactor/loops.py).

The cases themselves (cells -> rolled cells, or the reason a run is left alone, each executed
before and after) are data files in tests/data/extract/ (`roll_*.txt`, `refuse_roll_*.txt`);
this file checks what surrounds them: the report, the JSON, the names file, a second
conversion, and a real kernel.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.notebook import read_notebook
from nb2pkg.plan import PlanOptions, plan_package

RUN = ('summary = {}\nsummary["north"] = round(3 / 1.07, 2)\nsummary["south"] = round(5 / 1.07, 2)\n'
       'summary["east"] = round(1 / 1.07, 2)\nprint(summary)')
PLOT = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
        "lim = 4\nplt.figure()\nplt.plot([-lim, lim], [0, 0], 'k-')\n"
        "plt.plot([-lim, lim], [0.5, 0.5], 'k:')\nplt.plot([-lim, lim], [1, 1], 'k:')\n"
        "print(len(plt.gca().lines))")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True, text=True,
                          timeout=600)


def _plan(path: Path, **overrides):
    return plan_package(analyze([read_notebook(path)]), PlanOptions(name="case", **overrides))


def test_the_report_and_the_json_list_each_loop_by_id(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", [RUN, 'log = []\nlog.append("a")  # first\nlog.append("b")\nlog.append("c")\nprint(log)'])
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["loops"] == [{"id": "L1", "notebook": str(notebook), "cell": 0, "first_line": 2,
                              "last_line": 4, "statements": 3, "variables": ["key", "number"],
                              "function": None}]
    assert [(r["id"], r["reason"]) for r in data["loops_refused"]] == [
        ("L2", "a comment inside the run would be lost")]
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert ("- **L1** `nb.ipynb` cell 0 lines 2-4: 3 statements became a loop over "
            "`key, number`") in report
    assert "- **L2** `nb.ipynb` cell 1 lines 2-4: left alone, a comment inside" in report


def test_the_cli_summary_lists_each_loop(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", [RUN, 'log = []\nlog.append("a")  # first\n'
                                                     'log.append("b")\nlog.append("c")\nprint(log)'])
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert (f"rolled 1 run of statements differing only in literals and variables into loops, left 1 alone:\n"
            f"  L1 ({notebook} cell 0 lines 2-4): 3 statements, a loop over key, number\n"
            f"  L2 ({notebook} cell 1 lines 2-4): left alone, a comment inside the run would be "
            "lost\n") in result.stdout


def test_the_names_file_skips_a_loop_or_renames_its_variables(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", [RUN])
    plan = _plan(notebook, overrides={"L1": {"skip": True}})
    assert not plan.loops
    assert [(r.id, r.reason) for r in plan.loop_refusals] == [("L1", "skipped: the names file says so")]
    assert plan.notebooks[0].node.cells[0].source == RUN
    plan = _plan(notebook, overrides={"L1": {"params": {"key": "region", "number": "total"}}})
    assert plan.notebooks[0].node.cells[0].source.splitlines()[1:3] == [
        'for region, total in [("north", 3), ("south", 5), ("east", 1)]:',
        "    summary[region] = round(total / 1.07, 2)"]


def test_no_extract_rolls_nothing(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", [RUN])
    plan = _plan(notebook, extract=False)
    assert not plan.loops and not plan.loop_refusals
    assert plan.notebooks[0].node.cells[0].source == RUN


def test_a_second_conversion_rolls_nothing_new(tmp_path: Path) -> None:
    import nbformat

    first = _plan(write_notebook(tmp_path / "nb.ipynb", [RUN, PLOT]))
    assert len(first.loops) == 2
    again = tmp_path / "again" / "nb.ipynb"
    again.parent.mkdir()
    nbformat.write(first.notebooks[0].node, str(again))
    second = _plan(again)
    assert not second.loops and not second.loop_refusals


def test_the_loop_variables_are_names_the_notebook_never_uses(tmp_path: Path) -> None:
    # `key` and `column` are taken (`column` only in a magic's text), so the loop takes the
    # next good name.
    cells = ["key = 1\n%env column=x", RUN]
    plan = _plan(write_notebook(tmp_path / "nb.ipynb", cells))
    (loop,) = plan.loops
    assert loop.variables == ("name", "number")


@pytest.mark.kernel
def test_rolled_loops_verify_on_a_real_kernel(tmp_path: Path) -> None:
    """`convert --verify` runs the original and the refactored notebook and compares outputs."""
    notebook = write_notebook(tmp_path / "nb.ipynb", [RUN, PLOT])
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"), "--verify",
                 "--no-isolated-run", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [loop["id"] for loop in data["loops"]] == ["L1", "L2"]
    assert data["verification"]["equivalent"] is True
    cells = json.loads((tmp_path / "out" / "notebooks" / "nb.ipynb").read_text())["cells"]
    assert "for value, style in [(0, 'k-'), (0.5, 'k:'), (1, 'k:')]:" in "".join(cells[1]["source"])


def test_runs_inside_an_extracted_function_are_rolled_there(tmp_path: Path) -> None:
    """A run copied with its cell is extracted with it; the loop is then in the function, with
    its variables local to it (named without regard to the notebook's globals)."""
    block = ("drawn = []\ndrawn.append(dict(key='a', size=2))\ndrawn.append(dict(key='b', size=1))\n"
             "drawn.append(dict(key='c', size=0))\ntotal = len(drawn) + {n}\nprint(total)")
    cells = ["key = 'taken in the notebook'", block.format(n=1), block.format(n=2)]
    notebook = write_notebook(tmp_path / "nb.ipynb", cells)
    plan = _plan(notebook)
    (extraction,) = plan.extractions
    (loop,) = plan.loops
    assert (loop.function, loop.variables) == (f"nb.{extraction.function}", ("key", "size"))
    assert "    for key, size in [('a', 2), ('b', 1), ('c', 0)]:\n" \
           "        drawn.append(dict(key=key, size=size))\n" in extraction.source
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert (f"- **L1** in `nb.core.{extraction.function}` (extracted, first copy in `nb.ipynb` "
            "cell 1): 3 statements became a loop over `key, size`") in report


def test_a_difference_after_a_loop_names_it_among_the_likely_causes(tmp_path: Path) -> None:
    from nb2pkg.verify import NotebookVerification, _with_suspects

    plan = _plan(write_notebook(tmp_path / "nb.ipynb", ["x = 1", RUN, "print(x)"]))
    result = NotebookVerification("nb.ipynb", "notebooks/nb.ipynb", False, (), (),
                                  first_difference_cell=2)
    assert _with_suspects(plan, plan.notebooks[0], result).suspects == (
        "loop L1 over key, number (cell 1)",)
    before = NotebookVerification("nb.ipynb", "notebooks/nb.ipynb", False, (), (),
                                  first_difference_cell=0)
    assert _with_suspects(plan, plan.notebooks[0], before).suspects == ()
