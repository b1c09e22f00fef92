"""Verification on a real kernel: equivalent refactorings pass, wrong ones are caught, a failing
original is an environment problem (never "equivalent"), and what varies by itself is not blamed.

The comparison rules themselves are pure functions, tested first without a kernel."""

from __future__ import annotations

import functools

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import DATA, ROOT, write_notebook
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.verify import (EnvironmentProblem, NotebookVerification, Output, Verification,
                           compare, execute, first_unexpected_error, keep_reproducible,
                           normalize_text, outputs_of, package_functions, source_cells,
                           split_stderr, verify_notebook, verify_paths)

kernel = pytest.mark.kernel
CASES = DATA / "verify"
REALNB = ROOT.parent / "shared" / "realnb" / "cases"

CELLS = [
    ("code", "factor = 3", ["parameters"]),
    "data = [1, 2, 3, 4]",
    "# first half\npart = data[0:2]\nscaled = [v * factor for v in part]\nprint('first', sum(scaled))",
    "# second half\npart = data[2:4]\nscaled = [v * factor for v in part]\nprint('second', sum(scaled))",
    "scaled",
]


def nb2pkg(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """nb2pkg's own messages (the kernel may log to the same stderr)."""
    return [line for line in result.stderr.splitlines() if line.startswith("nb2pkg:")]


def module_with(text: str, project: Path) -> Path:
    """The package module of a generated project that holds ``text``."""
    (module,) = [m for m in (project / "src").glob("*/*.py") if text in m.read_text()]
    return module


def copy_case(name: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(CASES / name, folder / name))


# --- normalization and comparison (pure) ---------------------------------------------------


def test_normalization_of_what_legitimately_varies() -> None:
    text = "<pkg.mod.Thing object at 0x7f3a2b1c>\nCPU times: user 1 ms\n<class 'pkg.mod.Thing'>"
    assert normalize_text(text) == "<Thing object at 0x…>\n<timing>\n<class 'Thing'>"


def test_a_cells_file_is_masked_with_its_folders() -> None:
    text = ('File /tmp/ipykernel_4242/1234.py:3\n  "C:\\Temp\\ipykernel_7\\8.py", in f\n'
            'at ipykernel_1/2.py and x/ipykernel_1 (not a file)')
    assert normalize_text(text) == ('File <cell>:3\n  "<cell>", in f\n'
                                    'at <cell> and x/ipykernel_1 (not a file)')


@pytest.mark.timeout(60)
def test_a_long_run_without_spaces_is_normalized_in_linear_time() -> None:
    # colorcet's pages show base64 pictures in HTML: looking for a cell file's folders first
    # took time quadratic in such a run (20 KB: 5 s), and `--verify` never ended.
    picture = "data:image/png;base64," + "iVBORw0KGgo/AAAA+" * 200_000  # 3.4 MB
    assert normalize_text(picture) == picture
    assert normalize_text(picture + "/ipykernel_1/2.py") == "<cell>"
    table = "0.31 ± 0.02 | " * 100_000  # a line of many "±" is no timing line either
    assert normalize_text(table) == table


def _cell(*outputs) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("pass")
    cell.outputs = list(outputs)
    nb.cells.append(cell)
    return nb


def test_stream_chunks_are_joined() -> None:
    (output,) = outputs_of(_cell(nbformat.v4.new_output("stream", name="stdout", text="a"),
                                 nbformat.v4.new_output("stream", name="stdout", text="b\n")))
    assert output.text == "ab\n"


def test_warnings_leave_stderr_and_the_text_around_them_joins_again() -> None:
    warning = ("/tmp/ipykernel_41/2973.py:3: DeprecationWarning: scale() is deprecated\n"
               "  warnings.warn('scale() is deprecated', DeprecationWarning)\n")
    outputs = outputs_of(_cell(nbformat.v4.new_output("stream", name="stdout", text="a"),
                               nbformat.v4.new_output("stream", name="stderr", text=warning),
                               nbformat.v4.new_output("stream", name="stdout", text="b\n")))
    assert outputs == (Output(0, "warning", "DeprecationWarning: scale() is deprecated"),
                       Output(0, "stdout", "ab\n"))
    assert split_stderr("progress 10%\n") == ([], "progress 10%\n")


def test_a_widget_is_the_same_widget_whatever_its_model_id() -> None:
    def widget(model_id: str):
        return outputs_of(_cell(nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"version_major": 2, "model_id": model_id},
            "text/plain": "Canvas(...)"})))

    assert widget("d5ceaeeb053f4af1") == widget("0c7e9a1b2f3d4e5f")


def test_cells_nb2pkg_added_count_as_the_next_original_cell() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# t", metadata={"nb2pkg": {"source_cell": 0}}),
                nbformat.v4.new_code_cell("def f(): ...", metadata={"nb2pkg": {"generated": True}}),
                nbformat.v4.new_code_cell("f()", metadata={"nb2pkg": {"source_cell": 1}})]
    assert source_cells(nb) == [0, 1, 1]


def out(cell: int, kind: str, text: str) -> Output:
    return Output(cell, kind, text)


WARNED = out(1, "warning", "DeprecationWarning: scale() is deprecated")


def test_warnings_compare_as_one_set_per_notebook_not_per_location_or_count() -> None:
    expected = [out(1, "stdout", "north 12\n"), WARNED, out(2, "stdout", "south 18\n"),
                *(Output(c, "warning", WARNED.text) for c in (2, 3, 3, 3))]
    once = [out(1, "stdout", "north 12\n"), WARNED, out(2, "stdout", "south 18\n")]
    assert compare(expected, once).equivalent  # shown once after extraction: one code location

    never = compare(expected, [o for o in once if o.kind != "warning"])
    assert not never.equivalent and never.missing_warnings == (WARNED.text,)
    assert never.first_difference_cell == 1
    new = compare(once, [*once, out(2, "warning", "SettingWithCopyWarning: a copy")])
    assert not new.equivalent and new.added_warnings == ("SettingWithCopyWarning: a copy",)


def test_a_cell_that_varies_by_itself_is_compared_on_what_both_runs_print() -> None:
    # An unseeded estimator: the first run of the original also warns and displays one more
    # output, so the number of outputs differs between the original's own runs.
    first = [out(2, "stdout", "fitting\n"), out(2, "warning", "ConvergenceWarning: stopped"),
             out(2, "display", "text/plain: 'stopped early'"), out(2, "stdout", "score 0.51\n"),
             out(4, "stdout", "stable 3 runs\n")]
    second = [out(2, "stdout", "fitting\n"), out(2, "stdout", "score 0.53\n"),
              out(4, "stdout", "stable 3 runs\n")]
    refactored = [out(2, "stdout", "fitting\n"), out(2, "stdout", "score 0.52\n"),
                  out(4, "stdout", "stable 3 runs\n")]
    assert not compare(first, refactored).equivalent  # one run alone cannot tell
    verdict = compare(first, refactored, second)
    assert verdict.equivalent and verdict.varying == (2,)
    assert verdict.compared == 2  # "fitting" (both runs print it) and cell 4
    assert verdict.varying_warnings == ("ConvergenceWarning: stopped",)

    broken_stable = [*refactored[:2], out(4, "stdout", "stable 2 runs\n")]
    assert compare(first, broken_stable, second).differing == (4,)
    lost_what_both_print = [out(2, "stdout", "score 0.52\n"), refactored[2]]
    assert compare(first, lost_what_both_print, second).differing == (2,)
    two_scores = [*refactored[:2], out(2, "stdout", "score 0.52\n"), refactored[2]]
    assert compare(first, two_scores, second).differing == (2,)  # more than either run printed


def test_what_two_runs_print_by_chance_is_not_required_once_a_third_run_differs() -> None:
    # dowhy's gcm.evaluate_causal_model: a permutation test draws one of two pictures, and
    # prints a KL divergence of unseeded data. Both runs of the original drew picture A, the
    # refactored run drew B; the third run of the original drew B too.
    def run(picture: str, kl: str) -> list[Output]:
        return [out(8, "stderr", "Test permutations: 100%"),
                out(8, "display", f"image/png sha256:{picture}"), out(8, "stdout", kl),
                out(9, "stdout", "done\n")]

    first, second = run("a944", "KL 0.044\n"), run("a944", "KL 0.056\n")
    refactored, third = run("dea6", "KL 0.031\n"), run("dea6", "KL 0.009\n")
    assert compare(first, refactored, second).differing == (8,)  # the picture was "stable"
    verdict = compare(first, refactored, second, third=third)
    assert verdict.equivalent and verdict.varying == (8,)
    assert verdict.compared == 2  # the progress line every run printed, and cell 9
    lost = [o for o in refactored if o.kind != "stderr"]
    assert compare(first, lost, second, third=third).differing == (8,)  # all three print it
    no_picture = [o for o in refactored if o.kind != "display"]
    assert compare(first, no_picture, second, third=third).differing == (8,)  # as many


def test_a_progress_bar_compares_as_shown_its_last_state_without_times() -> None:
    # tqdm writes each update after a carriage return; how many updates a run makes, and
    # the rate, depend on the machine's speed. Jupyter shows the last state.
    def cell(*chunks: str) -> nbformat.NotebookNode:
        return _cell(*(nbformat.v4.new_output("stream", name="stderr", text=c) for c in chunks))

    fast = cell("\rTest:   0%|   | 0/6 [00:00<?, ?it/s]",
                "\rTest:  33%|#  | 2/6 [00:00<00:00, 13.56it/s]",
                "\rTest: 100%|###| 6/6 [00:00<00:00, 20.60it/s]", "\n")
    slow = cell("\rTest:   0%|   | 0/6 [00:00<?, ?it/s]",
                "\rTest:  50%|## | 3/6 [00:01<00:01, 2.4s/it]",
                "\rTest: 100%|###| 6/6 [01:02<00:00, 10.32s/it]\n")
    assert outputs_of(fast) == outputs_of(slow) == (
        Output(0, "stderr", "Test: 100%|###| 6/6 [<timing>]\n"),)
    stopped = cell("\rTest:   0%|   | 0/6 [00:00<?, ?it/s]",
                   "\rTest:  50%|## | 3/6 [00:01<00:01, 2.4s/it]\n")
    assert outputs_of(stopped) != outputs_of(fast)
    assert outputs_of(cell("abcdef\rXY\n")) == (Output(0, "stderr", "XYcdef\n"),)


def _scripted_runs(monkeypatch, *runs: nbformat.NotebookNode) -> list[tuple[str, bool]]:
    """``notebook_outputs.execute`` returning ``runs`` in turn; the list it returns fills with
    (notebook file name, whether that run was seeded), one entry per run."""
    from nb2pkg.runtime import notebook_outputs

    calls: list[tuple[str, bool]] = []

    def execute(path, *, setup=None, **_):
        calls.append((Path(path).name, setup is not None and "seed(0)" in setup))
        return runs[len(calls) - 1]
    monkeypatch.setattr(notebook_outputs, "execute", execute)
    return calls


def test_where_only_varying_cells_differ_both_run_again_seeded(tmp_path, monkeypatch) -> None:
    # Three runs of the original drew the same picture by chance, the refactored another;
    # seeded alike, both print the same: equivalent, and said so. Seeded runs that still
    # differ leave the verdict as it was.
    from nb2pkg.runtime import notebook_outputs

    def node(picture: str, number: str) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("draw()", outputs=[
            nbformat.v4.new_output("display_data", data={"text/plain": picture}),
            nbformat.v4.new_output("stream", name="stdout", text=number)])]
        return nb

    original, refactored = (write_notebook(tmp_path / n, ["draw()"]) for n in ("o.ipynb", "r.ipynb"))

    scripted = functools.partial(_scripted_runs, monkeypatch)

    runs = (node("A", "0.1"), node("B", "0.2"), node("A", "0.3"), node("A", "0.4"))
    calls = scripted(*runs, node("A", "0.5"), node("A", "0.5"))
    result = notebook_outputs.compare_notebooks(original, refactored)
    assert result.comparison.equivalent and result.comparison.seeded
    assert calls == [("o.ipynb", False), ("r.ipynb", False), ("o.ipynb", False),
                     ("o.ipynb", False), ("o.ipynb", True), ("r.ipynb", True)]
    assert "random generators seeded alike" in result.describe()

    scripted(*runs, node("A", "0.5"), node("B", "0.5"))
    result = notebook_outputs.compare_notebooks(original, refactored)
    assert result.comparison.differing == (0,) and not result.comparison.seeded


def test_a_cell_every_run_of_the_original_drew_alike_is_also_run_again_seeded(
        tmp_path, monkeypatch) -> None:
    # dowhy's identifying_effects example: cells 10 and 14 varied between runs of the
    # original; cell 12's graph, laid out at random, came out the same in all three (few
    # layouts are possible) and another in the refactored run. The notebook is unseeded, so
    # both run again seeded alike; the verdict is theirs.
    from nb2pkg.runtime import notebook_outputs

    def node(number: str, picture: str) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell("print(rand())", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text=number)]),
            nbformat.v4.new_code_cell("draw()", outputs=[
                nbformat.v4.new_output("display_data", data={"text/plain": picture})])]
        return nb

    original, refactored = (write_notebook(tmp_path / n, ["print(rand())", "draw()"])
                            for n in ("o.ipynb", "r.ipynb"))

    scripted = functools.partial(_scripted_runs, monkeypatch)

    runs = (node("0.1", "A"), node("0.2", "B"), node("0.3", "A"), node("0.4", "A"))
    calls = scripted(*runs, node("0.5", "A"), node("0.5", "A"))
    result = notebook_outputs.compare_notebooks(original, refactored)
    assert result.comparison.equivalent and result.comparison.seeded
    assert [seeded for _, seeded in calls] == [False] * 4 + [True] * 2

    scripted(*runs, node("0.5", "A"), node("0.5", "B"))  # seeded alike, still another graph
    result = notebook_outputs.compare_notebooks(original, refactored)
    assert result.comparison.differing == (1,) and not result.comparison.seeded

    calls = scripted(node("0.1", "A"), node("0.1", "B"), node("0.1", "A"))  # nothing varies
    result = notebook_outputs.compare_notebooks(original, refactored)
    assert result.comparison.differing == (1,) and len(calls) == 3  # no seeded runs


@pytest.mark.kernel
def test_seeding_makes_an_unseeded_notebook_print_the_same_twice(tmp_path) -> None:
    from nb2pkg.runtime.notebook_outputs import SEEDED

    # hyperopt's fmin draws from `np.random.default_rng()` (no seed) on each call: its
    # tutorial's optimum came out another one in the refactored run, seeded or not.
    path = write_notebook(tmp_path / "draw.ipynb", [
        "import random\nimport numpy as np\nprint(random.random(), np.random.rand())",
        "from numpy.random import default_rng\n"
        "print(default_rng().random(), np.random.default_rng().random())",
        "print(np.random.default_rng(7).random() == np.random.Generator("
        "np.random.PCG64(7)).random())"])
    seeded = [outputs_of(execute(path, setup=SEEDED)) for _ in range(2)]
    assert seeded[0] == seeded[1] and [o.kind for o in seeded[0]] == ["stdout"] * 3
    first, second = seeded[0][1].text.split()
    assert first != second  # each generator asked for gets a seed of its own
    assert seeded[0][2].text == "True\n"  # a seed given is used
    unseeded = [outputs_of(execute(path)) for _ in range(2)]
    assert unseeded[0][0] != unseeded[1][0] and unseeded[0][1] != unseeded[1][1]


def test_a_cell_known_to_vary_needs_only_the_same_kinds_of_output() -> None:
    # spaghetti's LISA plots come from permutations: conversion saw two runs of the original
    # differ there, the project's own test ran it twice more, the runs happened to agree, and
    # the refactored notebook's picture (a third draw) failed the test.
    first = [out(32, "display", "image/png sha256:3fe9"), out(40, "stdout", "done\n")]
    refactored = [out(32, "display", "image/png sha256:7702"), out(40, "stdout", "done\n")]
    assert compare(first, refactored, first).differing == (32,)  # not known: different
    verdict = compare(first, refactored, first, known_varying=[32, 99])
    assert verdict.equivalent and verdict.varying == (32,)
    assert compare(first, refactored, known_varying=[32]).equivalent  # one run of the original
    crashed = [out(32, "error", "ValueError: bad"), refactored[1]]
    assert compare(first, crashed, first, known_varying=[32]).differing == (32,)
    two = [refactored[0], refactored[0], refactored[1]]
    assert compare(first, two, first, known_varying=[32]).differing == (32,)
    changed_elsewhere = [refactored[0], out(40, "stdout", "done!\n")]
    assert compare(first, changed_elsewhere, first, known_varying=[32]).differing == (40,)


def test_an_error_is_never_excused_as_variation() -> None:
    first, second = [out(3, "stdout", "0.41\n")], [out(3, "stdout", "0.77\n")]
    crashed = [out(3, "error", "NameError: name 'model' is not defined")]
    assert compare(first, crashed, second).differing == (3,)
    flaky = [out(3, "error", "NameError: name 'model' is not defined")]  # the original's own
    assert compare(first, crashed, flaky).equivalent


def test_an_error_the_notebook_shows_itself_is_expected() -> None:
    saved = [out(2, "stdout", "3.33\n"), out(3, "error", "ZeroDivisionError: division by zero")]
    assert first_unexpected_error(saved, saved) is None
    missing = [out(1, "error", "FileNotFoundError: [Errno 2] No such file: 'data/a.csv'"),
               out(2, "error", "NameError: name 'df' is not defined")]
    assert first_unexpected_error(missing, saved) == missing[0]  # the cause, not its echoes
    other = [out(3, "error", "TypeError: unsupported operand")]
    assert first_unexpected_error(other, saved) == other[0]  # same cell, another exception
    assert first_unexpected_error(other, [], may_raise={3}) is None  # tagged raises-exception


def test_a_cell_meant_to_raise_is_tagged_or_marked_by_nbvals_comment() -> None:
    from nb2pkg.verify import raising_cells

    node = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("# NBVAL_RAISES_EXCEPTION\n1 / 0"),
        nbformat.v4.new_code_cell("1 / 0  # NBVAL_RAISES_EXCEPTION"),  # nbval reads comment lines
        nbformat.v4.new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
        nbformat.v4.new_markdown_cell("# NBVAL_RAISES_EXCEPTION")])
    assert raising_cells(node) == {0, 2}


def test_recorded_functions_are_the_public_ones_of_public_modules(tmp_path: Path) -> None:
    # _stage_io.py serves the stage notebooks: the refactored notebook never calls it, so
    # recording it would only report "never called" for each of its functions.
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("def top():\n    pass\n")
    (package / "core.py").write_text("def total(x):\n    return x\n\n\ndef _helper():\n    pass\n")
    (package / "_stage_io.py").write_text("def save_outputs():\n    pass\n")
    assert package_functions(tmp_path) == ["pkg.core.total"]


HIDDEN_STATE = """\
import matplotlib.pyplot as plt

ISSUED = []


def double(x):
    return 2 * x


def next_ticket(prefix):
    ISSUED.append(prefix)  # a module-level counter: the number depends on the calls before
    return f"{prefix}-{len(ISSUED)}"


def bottom_of_plot(values):
    plt.plot(values)  # onto matplotlib's current figure, whatever it holds already
    return round(float(plt.ylim()[0]), 3)


def leave():
    import os

    os._exit(3)
"""


def _calls(function: str, *calls: tuple[list, object]):
    from nb2pkg.record import RecordedCall
    from nb2pkg.runtime.recorded import encode

    made = []
    for cell, (args, result) in enumerate(calls, start=2):
        files: dict[str, bytes] = {}
        made.append(RecordedCall(f"pkg.core.{function}", cell, "nb.ipynb", encode(args, files),
                                 encode({}, files), encode(result, files), files=files))
    return made


def _replayed(tmp_path: Path, calls) -> tuple:
    """The calls, marked by ``keep_reproducible`` against the package HIDDEN_STATE."""
    (tmp_path / "src" / "pkg").mkdir(parents=True, exist_ok=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "core.py").write_text(HIDDEN_STATE)
    notebook = NotebookVerification("nb.ipynb", "nb.ipynb", True, (), (), calls=tuple(calls))
    return keep_reproducible(Verification((notebook,)), tmp_path, timeout=60).calls


def _why(calls) -> dict[str, list[str | None]]:
    found: dict[str, list[str | None]] = {}
    for call in calls:
        found.setdefault(call.function.rpartition(".")[2], []).append(call.irreproducible)
    return found


def test_recorded_calls_that_do_not_reproduce_from_their_arguments_are_marked(tmp_path) -> None:
    from nb2pkg.record import coverage, test_data

    marked = _replayed(tmp_path, [
        *_calls("double", ([4], 8), ([2.5], 5.0), ([1], 3)),  # the last one recorded wrong
        # As the notebook saw them: "A-1" then "B-2". Replayed in that order they agree by
        # coincidence; the second replay, in reverse order, gives "B-3" and "A-4".
        *_calls("next_ticket", (["A"], "A-1"), (["B"], "B-2")),
        # The notebook had drawn [100, 200] on the figure first: bottom -8.95.
        *_calls("bottom_of_plot", ([[1, 2]], -8.95))])
    again = "called a second time in one process, it gave another result"
    alone = "called again from its recorded arguments, it gave another result"
    assert _why(marked) == {
        "double": [None, None, f"{alone} (2 != 3)"],
        "next_ticket": [f"{again} ('A-4' != 'A-1')", f"{again} ('B-3' != 'B-2')"],
        "bottom_of_plot": [f"{alone} (0.95 != -8.95)"]}
    assert sorted(name.split("/")[3] for name in test_data(marked)) == [
        "core.double", "core.double"]  # the two calls that reproduced, one JSON file each
    report = {c.function.rpartition(".")[2]: c for c in coverage(
        ["pkg.core.double", "pkg.core.next_ticket", "pkg.core.bottom_of_plot"], marked)}
    # A function with calls kept and dropped keeps a test and says what was left out.
    assert report["double"] == type(report["double"])("pkg.core.double", 2, 0, None, 1,
                                                       f"{alone} (2 != 3)")
    assert report["next_ticket"].reason == (
        f"not reproducible from its arguments: {again} ('A-4' != 'A-1')")
    assert report["bottom_of_plot"].reason == (
        f"not reproducible from its arguments: {alone} (0.95 != -8.95)")


def test_a_replay_that_kills_its_process_drops_every_call_and_says_so(tmp_path) -> None:
    marked = _replayed(tmp_path, [*_calls("double", ([4], 8)), *_calls("leave", ([], None))])
    assert _why(marked) == {"double": ["the replay process failed (exit status 3)"],
                            "leave": ["the replay process failed (exit status 3)"]}


# --- on a real kernel ----------------------------------------------------------------------


@pytest.fixture()
def project(tmp_path: Path) -> tuple[Path, Path]:
    original = write_notebook(tmp_path / "halves.ipynb", CELLS)
    convert([original], tmp_path / "out", ConvertOptions())
    return original, tmp_path / "out"


@kernel
def test_equivalent_refactoring_verifies(project) -> None:
    original, out = project
    result = verify_paths([original], out)
    assert result.equivalent, result.describe()
    assert len(result.notebooks[0].expected) == 3  # two prints and the displayed value


@kernel
def test_a_wrong_extraction_is_caught(project) -> None:
    original, out = project
    module = module_with("v * factor", out)
    source = module.read_text()
    module.write_text(source.replace("v * factor", "v * 2"))  # as if `factor` had been dropped
    result = nb2pkg("verify", str(original), str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "DIFFERENT" in result.stdout and "first difference at cell 2" in result.stdout
    assert "-[cell 2 stdout] first 9" in result.stdout and "+[cell 2 stdout] first 6" in result.stdout
    # The kernels' connections are encrypted where the kernel can (ipykernel 7.3 and later
    # otherwise warns on every start, in the user's terminal).
    assert "without encryption" not in result.stderr


@kernel
def test_an_error_only_the_refactored_notebook_raises_is_a_difference(project) -> None:
    original, out = project
    module = module_with("v * factor", out)
    module.write_text(module.read_text().replace("scaled = [", "raise RuntimeError('lost')\n    scaled = ["))
    result = verify_paths([original], out)
    assert not result.equivalent
    assert "+[cell 2 error] RuntimeError: lost" in result.describe()


@kernel
def test_convert_verify_refuses_to_write_a_package_that_prints_something_else(
        tmp_path: Path, monkeypatch) -> None:
    import nb2pkg.refactor.extract as extract

    original = write_notebook(tmp_path / "halves.ipynb", CELLS)
    real = extract._extract

    def broken(group, ctx):  # a deliberately wrong extraction: the `factor` parameter is ignored
        result = real(group, ctx)
        assert "v * factor" in result.source
        return type(result)(**{**result.__dict__, "source": result.source.replace("v * factor", "v * 2")})

    monkeypatch.setattr(extract, "_extract", broken)
    report = convert([original], tmp_path / "out", ConvertOptions(verify=True))
    assert report.verification is not None and not report.verification.equivalent
    assert report.files == () and not (tmp_path / "out").exists()
    assert "extraction C1" in report.verification.describe()


@kernel
def test_convert_verify_keeps_only_the_recorded_calls_that_reproduce(tmp_path) -> None:
    """tests/data/verify/hidden_state.ipynb: `next_ticket` counts its calls, `bottom_of_plot`
    reads matplotlib's current figure; both printed the right thing in the notebook, neither
    becomes a test. `double` does, and its test still catches a changed operator."""
    out = tmp_path / "out"
    report = convert([copy_case("hidden_state.ipynb", tmp_path / "in")], out,
                     ConvertOptions(verify=True))
    assert report.verification is not None and report.verification.equivalent
    dropped = report.to_dict()["verification"]["irreproducible_calls"]
    assert sorted((c["function"].rpartition(".")[2], c["cell"]) for c in dropped) == [
        ("bottom_of_plot", 4), ("next_ticket", 3), ("next_ticket", 3)]
    recorded = out / "tests" / "data" / "recorded"
    assert sorted(p.relative_to(recorded).as_posix() for p in recorded.rglob("*.json")) == [
        "core.double/hidden_state-cell2-1.json", "core.double/hidden_state-cell2-2.json"]
    lines = {line.split("`")[1].rpartition(".")[2]: line
             for line in (out / "REPORT.md").read_text().splitlines() if line.startswith("- `hidden")}
    assert lines["double"].endswith(": 2 call(s) checked by value")
    assert "no test (not reproducible from its arguments: called a second time in one process, " \
        "it gave another result ('A-4' \\!= 'A-1'))" in lines["next_ticket"]
    assert "no test (not reproducible from its arguments: called again from its recorded " \
        "arguments, it gave another result (0.95 \\!= -8.95))" in lines["bottom_of_plot"]

    def recorded_tests() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               "tests/test_recorded.py"], capture_output=True, text=True,
                              cwd=out, env={**os.environ, "PYTHONPATH": str(out / "src")})

    passed = recorded_tests()
    assert passed.returncode == 0 and "2 passed" in passed.stdout, passed.stdout[-2000:]
    module = module_with("return 2 * x", out)
    module.write_text(module.read_text().replace("return 2 * x", "return 2 + x"))
    caught = recorded_tests()
    assert caught.returncode == 1 and "2 failed" in caught.stdout, caught.stdout[-2000:]


def _dependencies(project: Path) -> list[str]:
    import tomllib

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    return [d.partition(">=")[0] for d in pyproject["project"]["dependencies"]]


@kernel
def test_what_a_library_needs_only_for_one_call_becomes_a_dependency(tmp_path) -> None:
    """scikit-learn needs pandas for load_iris(as_frame=True); the notebook never imports it.
    Run where only the project's dependencies are importable, the notebook says so, and
    --verify adds pandas, pinned, with the reason in REPORT.md (homl3's generated tests
    failed in a fresh venv without it). What libraries merely try to import (numpy tries
    charset-normalizer) is not added."""
    import importlib.metadata

    notebook = write_notebook(tmp_path / "iris.ipynb", [
        "from sklearn.datasets import load_iris",
        "frame = load_iris(as_frame=True).frame\nprint(frame.shape)"])
    convert([notebook], tmp_path / "plain", ConvertOptions(pipeline=False))
    assert _dependencies(tmp_path / "plain") == ["scikit-learn"]
    # `nb2pkg verify` on the project written without --verify says what it lacks.
    checked = nb2pkg("verify", "--no-record", str(notebook), str(tmp_path / "plain"))
    assert checked.returncode == 0, checked.stderr
    assert (f"warning: notebooks/iris.ipynb needs `pandas>={importlib.metadata.version('pandas')}` "
            "when it runs") in checked.stdout.replace(str(tmp_path / "plain") + "/", ""), \
        checked.stdout
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, pipeline=False))
    assert report.verification is not None and report.verification.equivalent
    assert _dependencies(tmp_path / "out") == ["pandas", "scikit-learn"]
    pins = (tmp_path / "out" / "constraints.txt").read_text().splitlines()
    assert f"pandas=={importlib.metadata.version('pandas')}" in pins
    assert "`pandas` is needed when the notebook runs" in (tmp_path / "out" / "REPORT.md").read_text()
    assert report.to_dict()["verification"]["notebooks"][0]["dependencies_needed"] == ["pandas"]
    # Its kernels are stopped (nbclient stops only the kernels it started itself).
    import psutil

    isolated = [c for c in psutil.Process().children(recursive=True)
                if {"-S", "ipykernel_launcher"} <= set(c.cmdline())]
    assert not isolated, [c.cmdline() for c in isolated]


@kernel
def test_a_notebook_that_fails_with_only_its_dependencies_gets_a_finding(tmp_path) -> None:
    """What fails there without naming a module to add is said, not guessed at."""
    notebook = write_notebook(tmp_path / "site.ipynb", [
        "import sys", "assert not sys.flags.no_site, 'runs only with site-packages'\nprint('ok')"])
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, pipeline=False))
    assert report.verification is not None and report.verification.equivalent
    (finding,) = [f for f in report.plan.findings if f.code == "needs-more"]
    assert finding.message == ("with only the project's dependencies installed, cell 1 raises "
                               "AssertionError: runs only with site-packages")
    assert _dependencies(tmp_path / "out") == []


@kernel
def test_a_notebook_that_prints_differently_with_only_its_dependencies_gets_a_finding(tmp_path) -> None:
    """A library that prints another way without an optional package raises nothing: the
    outputs are compared too; what varies from run to run (cell 1) is not blamed on it.
    (PyYAML is installed here, and no dependency of the project.)"""
    notebook = write_notebook(tmp_path / "optional.ipynb", [
        "import importlib.util\nimport random",
        "print(random.random())",
        "print('fast loader' if importlib.util.find_spec('yaml') else 'slow loader')"])
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, pipeline=False))
    assert report.verification is not None and report.verification.equivalent
    (finding,) = [f for f in report.plan.findings if f.code == "needs-more"]
    assert finding.message == ("with only the project's dependencies installed, cell 2 prints "
                               "differently (where everything is installed: fast loader; with "
                               "only its dependencies: slow loader)")


@kernel
def test_what_a_library_says_it_lacks_becomes_a_dependency(tmp_path) -> None:
    """A library may warn about an optional package and go on another way (sktime:
    "ExponentialSmoothing requires package 'statsmodels' to be present"): nothing raises,
    the warning names it, and --verify adds it as it adds what an error names. (PyYAML is
    installed here, and no dependency of the project.)"""
    notebook = write_notebook(tmp_path / "soft.ipynb", [
        "import importlib.util\nimport warnings",
        "if importlib.util.find_spec('yaml') is None:\n"
        "    warnings.warn(\"the fast loader requires package 'yaml' to be present\")\n"
        "print('loaded')"])
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, pipeline=False))
    assert report.verification is not None and report.verification.equivalent
    assert report.to_dict()["verification"]["notebooks"][0]["dependencies_needed"] == ["PyYAML"]
    assert _dependencies(tmp_path / "out") == ["PyYAML"]
    assert not [f for f in report.plan.findings if f.code == "needs-more"]


@kernel
def test_convert_verify_takes_a_timeout_per_cell(tmp_path) -> None:
    """The error says to raise --timeout: convert has it too, not only verify."""
    notebook = write_notebook(tmp_path / "slow.ipynb", ["import time", "time.sleep(30)"])
    result = nb2pkg("convert", str(notebook), "-o", str(tmp_path / "out"), "--verify",
                    "--timeout", "2", "--no-pipeline")
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result)
    assert "raise --timeout" in line, line
    assert not (tmp_path / "out").exists()


READS_DATA = ["import csv",
              "with open('data/sales.csv') as f:\n    rows = list(csv.DictReader(f))\nprint(len(rows), 'rows')",
              "def total(rows):\n    return sum(float(r['amount']) for r in rows)\n",
              "print('total', total(rows))"]


def _with_data(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "sales.csv").write_text("region,amount\nnorth,2.5\nsouth,4\n")
    return folder


@kernel
def test_when_both_fail_the_same_way_it_is_an_environment_problem_not_equivalent(tmp_path) -> None:
    # Issue 10: both notebooks failed with the same FileNotFoundError (then NameErrors) and
    # verification said "equivalent".
    original = write_notebook(tmp_path / "nbs" / "sales.ipynb", READS_DATA)
    converted = nb2pkg("convert", str(original), "-o", str(tmp_path / "out"))
    assert converted.returncode == 0, converted.stderr

    result = nb2pkg("verify", str(original), str(tmp_path / "out"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "equivalent" not in result.stdout
    (line,) = error_lines(result)
    assert str(original) in line and "cell 1" in line and "FileNotFoundError" in line
    assert "data/sales.csv" in line and "file the notebook reads is missing" in line

    refused = nb2pkg("convert", str(original), "-o", str(tmp_path / "out2"), "--verify")
    assert refused.returncode == 2 and not (tmp_path / "out2").exists()
    (line,) = error_lines(refused)
    assert "cell 1" in line and "FileNotFoundError" in line

    _with_data(tmp_path / "nbs")  # with its data, the same notebook verifies
    assert nb2pkg("verify", str(original), str(tmp_path / "out")).returncode == 0


@kernel
def test_a_missing_package_says_to_install_it(tmp_path: Path) -> None:
    original = write_notebook(tmp_path / "nb.ipynb", ["import nb2pkg_no_such_package_xyz", "print(1)"])
    with pytest.raises(EnvironmentProblem) as raised:
        verify_notebook(original, original)
    message = str(raised.value)
    assert "cell 0" in message and "ModuleNotFoundError" in message and "install" in message
    assert len(message.splitlines()) == 1


@kernel
def test_a_notebook_importing_its_own_folder_says_to_run_from_the_folder_above(tmp_path) -> None:
    # mesa's Epstein Civil Violence example, in epstein_civil_violence/, imports
    # epstein_civil_violence.model: only the folder above makes that importable.
    folder = tmp_path / "civil_violence"
    folder.mkdir()
    (folder / "__init__.py").write_text("")
    (folder / "model.py").write_text("SIZE = 3\n")
    original = write_notebook(folder / "nb.ipynb", ["from civil_violence.model import SIZE", "SIZE"])
    with pytest.raises(EnvironmentProblem) as raised:
        verify_notebook(original, original)
    message = str(raised.value)
    assert f"set PYTHONPATH={tmp_path}" in message, message
    assert "missing package" not in message and len(message.splitlines()) == 1


@kernel
def test_a_name_the_installed_package_lacks_says_which_version_to_install(tmp_path) -> None:
    # sktime's examples import names later releases moved ("cannot import name
    # 'ColumnConcatenator'"): the package is installed, so "install the missing package" misleads.
    original = write_notebook(tmp_path / "nb.ipynb", ["from json.decoder import nb2pkg_gone", "1"])
    with pytest.raises(EnvironmentProblem) as raised:
        verify_notebook(original, original)
    message = str(raised.value)
    assert "the installed json has no nb2pkg_gone in json.decoder" in message, message
    assert "install the version the notebook was written for" in message
    assert "missing package" not in message and len(message.splitlines()) == 1


@kernel
def test_an_exception_the_original_shows_on_purpose_is_compared_not_refused(tmp_path) -> None:
    teaching = copy_case("shows_an_error.ipynb", tmp_path)
    result = verify_notebook(teaching, teaching)  # saved outputs show ZeroDivisionError in cell 3
    assert result.equivalent and [o.cell for o in result.expected if o.kind == "error"] == [3]

    node = nbformat.read(str(teaching), as_version=4)
    for cell in node.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    cleared = tmp_path / "cleared.ipynb"
    nbformat.write(node, str(cleared))
    with pytest.raises(EnvironmentProblem, match="cell 3.*ZeroDivisionError"):
        verify_notebook(cleared, cleared)  # nothing says the error is meant: refused
    node.cells[3].metadata["tags"] = ["raises-exception"]
    nbformat.write(node, str(cleared))
    assert verify_notebook(cleared, cleared).equivalent


@kernel
def test_a_deprecation_warning_shown_once_after_extraction_is_equivalent(tmp_path) -> None:
    # Issue 10: a DeprecationWarning shown once per code location appeared once instead of
    # once per cell after extraction (here it would even vanish: Python hides
    # DeprecationWarnings outside __main__).
    original = copy_case("deprecated_in_a_loop.ipynb", tmp_path)
    report = convert([original], tmp_path / "out", ConvertOptions(verify=True))
    assert [e.function for e in report.plan.extractions] == ["report_total"]
    verification = report.verification.notebooks[0]
    assert verification.equivalent, verification.describe()
    warned = [o.cell for o in verification.expected if o.kind == "warning"]
    assert warned == [1, 2, 3] and [o.cell for o in verification.actual if o.kind == "warning"] == [1]

    module = module_with("warnings.warn(", tmp_path / "out")
    module.write_text("\n".join(line for line in module.read_text().splitlines()
                                if "warnings.warn(" not in line))
    lost = verify_paths([original], tmp_path / "out").notebooks[0]
    assert not lost.equivalent
    assert lost.comparison.missing_warnings == ("DeprecationWarning: scale() is deprecated, use rescale()",)


@kernel
def test_a_warning_raised_while_recording_imports_the_package_is_not_lost(tmp_path) -> None:
    # Recording imports the package before the notebook runs; the package imports a library
    # that warns on import. The original shows that warning where it imports the library.
    (tmp_path / "oldlib.py").write_text("import warnings\n\nwarnings.warn('oldlib is no longer "
                                        "maintained', UserWarning)\n\n\ndef twice(x):\n    return 2 * x\n")
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "src" / "pkg" / "__init__.py").write_text("")
    (tmp_path / "src" / "pkg" / "core.py").write_text(
        "import oldlib\n\n\ndef double(x):\n    return oldlib.twice(x)\n")
    original = write_notebook(tmp_path / "original.ipynb", ["import oldlib", "print(oldlib.twice(4))"])
    refactored = write_notebook(tmp_path / "refactored.ipynb",
                                ["from pkg.core import double", "print(double(4))"])
    result = verify_notebook(original, refactored, python_path=[tmp_path / "src"],
                             record=["pkg.core.double"])
    assert result.equivalent, result.describe()
    assert [o.text for o in result.actual if o.kind == "warning"] == [
        "UserWarning: oldlib is no longer maintained"]
    assert [call.function for call in result.calls] == ["pkg.core.double"]


@kernel
def test_outputs_that_vary_by_themselves_are_not_blamed_on_the_refactoring(tmp_path) -> None:
    # Issue 10: the second run of the original was skipped when the number of outputs differed.
    original = copy_case("varies_by_itself.ipynb", tmp_path)  # counts its runs in runs.txt
    report = convert([original], tmp_path / "out", ConvertOptions(verify=True))
    verification = report.verification.notebooks[0]
    assert verification.equivalent, verification.describe()
    assert verification.varying == (2,) and verification.comparison.varying_warnings
    # original, refactored, original again, refactored with only the project's dependencies
    assert (tmp_path / "runs.txt").read_text() == "4"
    # The generated notebook test knows the cell varies (its own runs may happen to agree).
    test = (tmp_path / "out" / "tests" / "test_notebooks.py").read_text()
    assert f'VARYING = {{"{original.name}": [2]}}' in test, test

    module = module_with("def label", tmp_path / "out")
    module.write_text(module.read_text().replace("runs", "tries"))
    broken = verify_paths([original], tmp_path / "out").notebooks[0]
    assert not broken.equivalent and broken.first_difference_cell == 4
    assert broken.comparison.differing == (4,), broken.describe()


@kernel
def test_two_runs_of_the_original_agreeing_by_chance_do_not_blame_the_refactoring(tmp_path) -> None:
    # sktime's 02_classification: an unseeded classifier's score was the same in both runs of
    # the original and another in the refactored run (a third draw): one conversion in two
    # said "different". The original visibly varies (cell 1), so it runs a third time.
    notebook = write_notebook(tmp_path / "draws.ipynb", [
        "from pathlib import Path\nruns = Path('runs.txt')\n"
        "n = int(runs.read_text()) + 1 if runs.exists() else 1\nruns.write_text(str(n))",
        "print('run', n)",
        "print({1: 0.5, 3: 0.5}.get(n, round(0.1 * n, 1)))"])  # 0.5, 0.2, 0.5, then 0.4
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, pipeline=False))
    verification = report.verification.notebooks[0]
    assert verification.equivalent, verification.describe()
    assert verification.varying == (1, 2)
    # original, refactored, original again, original a third time, refactored alone
    assert (tmp_path / "runs.txt").read_text() == "5"


@kernel
@pytest.mark.parametrize("record", [True, False], ids=["record", "no-record"])
def test_verify_with_relative_paths_from_another_working_directory(tmp_path, record) -> None:
    # Issue 17: `nb2pkg verify nbs/x.ipynb out/x` failed unless DIR was absolute.
    original = write_notebook(_with_data(tmp_path / "nbs") / "sales_report.ipynb", READS_DATA)
    converted = nb2pkg("convert", "nbs/sales_report.ipynb", "-o", "out/ver_sales", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    options = [] if record else ["--no-record"]
    for cwd, args in ((tmp_path, ["nbs/sales_report.ipynb", "out/ver_sales"]),
                      (elsewhere, ["../nbs/sales_report.ipynb", "../out/ver_sales"])):
        result = nb2pkg("verify", *args, *options, cwd=cwd)
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.startswith("equivalent") and "2 outputs compared" in result.stdout
        if record:  # the calls replayed from the project's src: kept as tests, and said so
            project = tmp_path / "out" / "ver_sales"
            assert list((project / "tests" / "data" / "recorded").glob("*/*.json")), result.stderr
            section = (project / "REPORT.md").read_text().split("## Recorded-value tests")[1]
            assert "checked by value" in section and "no test" not in section, section
    assert original.exists()


@kernel
def test_the_generated_notebook_test_never_passes_on_two_failures(tmp_path) -> None:
    original = write_notebook(_with_data(tmp_path / "nbs") / "sales.ipynb", READS_DATA)
    report = convert([original], tmp_path / "out", ConvertOptions())
    assert report.files
    test = tmp_path / "out" / "tests" / "test_notebooks.py"

    def run_generated_test() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                               str(test)], capture_output=True, text=True, cwd=tmp_path / "out",
                              env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert run_generated_test().returncode == 0
    shutil.rmtree(tmp_path / "out" / "notebooks" / "data", ignore_errors=True)
    failed = run_generated_test()  # the data is not beside the project's notebooks any more
    assert failed.returncode == 1, failed.stdout
    assert "FileNotFoundError" in failed.stdout and "data/sales.csv" in failed.stdout


@kernel
@pytest.mark.skipif(not (REALNB / "guip-housing-market").is_dir(), reason="realnb corpus not here")
def test_an_unseeded_real_notebook_is_not_blamed_on_the_refactoring(tmp_path: Path) -> None:
    # guip-housing-market builds its data with unseeded np.random: cells 4-14 vary every run.
    case = shutil.copytree(REALNB / "guip-housing-market", tmp_path / "case")
    report = convert([case / "Exercises_with_solutions.ipynb"], tmp_path / "out",
                     ConvertOptions(verify=True))
    verification = report.verification.notebooks[0]
    assert verification.equivalent, verification.describe()
    assert {4, 6, 8, 10, 14} <= set(verification.varying)

    # What does not vary is still compared, and an error is never taken for variation.
    refactored = tmp_path / "out" / "notebooks" / "Exercises_with_solutions.ipynb"
    node = nbformat.read(str(refactored), as_version=4)
    cells = {c.metadata["nb2pkg"].get("source_cell"): c for c in node.cells}
    cells[12].source = cells[12].source.replace("len(bigcolumn)", "len(bigcolumn) - 1")
    cells[6].source = cells[6].source.replace("housemkt.head()", "housemkt.head(undefined)")
    nbformat.write(node, str(refactored))
    broken = verify_paths([case / "Exercises_with_solutions.ipynb"], tmp_path / "out").notebooks[0]
    assert broken.comparison.differing == (6, 12), broken.describe()


@pytest.mark.kernel
def test_running_a_notebook_keeps_the_signal_handlers(tmp_path: Path) -> None:
    # nbclient resets SIGINT and SIGTERM to Python's defaults after a run: the CLI's SIGTERM
    # handler was gone after the first notebook, and SIGTERM then killed the process where it
    # stood, leaving scratch folders behind.
    import signal

    from nb2pkg.runtime import notebook_outputs

    def mine(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    before = signal.signal(signal.SIGTERM, mine)
    try:
        notebook_outputs.execute(write_notebook(tmp_path / "a.ipynb", ["x = 1"]))
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)


@kernel
def test_files_read_by_names_built_at_run_time_are_carried(tmp_path: Path) -> None:
    # great_tables' sports-earnings example reads an icon per sport (`sport + ".png"`): the
    # project lacked them, and its own test failed once the notebook ran from notebooks/.
    folder = tmp_path / "nb"
    folder.mkdir()
    for name, text in (("north.txt", "N"), ("south.txt", "S"), ("unread.txt", "U"),
                       (".hidden.txt", "H"), ("helper_data.py", "X = 1\n")):
        (folder / name).write_text(text)
    notebook = write_notebook(folder / "regions.ipynb", [
        "regions = ['north', 'south']",
        "texts = [open(r + '.txt').read() for r in regions]\nprint(texts)",
        "with open('made.txt', 'w') as out:\n    out.write('m')\nprint(open('made.txt').read())",
        "print(open('.hid' + 'den.txt').read(), open('/etc/hostname').read() != '')",
    ])
    before = sorted(p.name for p in folder.iterdir())
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True))
    assert report.verification is not None and report.verification.equivalent
    (result,) = report.verification.notebooks
    assert ("north.txt", 1) in result.opened and ("south.txt", 1) in result.opened
    carried = {d.target: d for d in report.plan.assets.data if d.at_run_time}
    assert sorted(carried) == ["notebooks/north.txt", "notebooks/south.txt"]  # not written ones
    assert carried["notebooks/north.txt"].read_by == ((0, 1),)
    assert (tmp_path / "out" / "notebooks" / "south.txt").read_text() == "S"
    assert "found by `--verify`" in (tmp_path / "out" / "REPORT.md").read_text()
    assert sorted(p.name for p in folder.iterdir() if p.name != "made.txt") == \
        [n for n in before if n != "made.txt"]


@kernel
def test_an_error_shown_without_stopping_is_a_finding_when_a_stage_keeps_it(tmp_path) -> None:
    # nbclient runs on past a cell tagged to raise; papermill fails the run on its error
    # output. The stage leaves out the cell whose changes nothing after reads, not the other.
    notebook = write_notebook(tmp_path / "nb.ipynb", [
        ("markdown", "## Fit"), "rows = [1, 2]",
        ("code", "int('not a number')", ["raises-exception"]),  # left out of the stage
        ("code", "rows.append(3)\nrows[7]", ["raises-exception"]),  # `rows` is read after
        ("markdown", "## Use"), "print(rows)"])
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, record=False,
                                                                 isolated_run=False))
    assert report.verification.equivalent
    (result,) = report.verification.notebooks
    assert [error for _, error in result.errors_run_past] == [
        "ValueError: invalid literal for int() with base 10: 'not a number'",
        "IndexError: list index out of range"]
    found = [f for f in report.plan.findings if f.code == "error-in-stage"]
    assert [(f.cell, f.message.split(" (")[0]) for f in found] == [
        (3, "shows an error and runs on")]
    assert "IndexError: list index out of range" in found[0].message
    assert "[error-in-stage] `nb.ipynb` cell 3" in (tmp_path / "out" / "REPORT.md").read_text()


@kernel
def test_a_kernel_that_dies_before_it_starts_is_started_again(tmp_path, monkeypatch,
                                                              capfd) -> None:
    # Under load, another process can take a port jupyter_client chose before the kernel
    # binds it ("Address already in use"): the kernel dies before replying to kernel_info.
    # No cell ran, so starting it again is safe; a second death is reported with what the
    # kernel said. What the kernel process writes to its own stderr (ipykernel's heartbeat
    # printed a traceback when it lost its port) stays out of the user's terminal.
    import json

    starts = tmp_path / "starts.txt"
    launcher = tmp_path / "launch.py"
    launcher.write_text(
        "import runpy, sys\nfrom pathlib import Path\n"
        f"starts = Path({str(starts)!r})\n"
        "n = int(starts.read_text()) + 1 if starts.exists() else 1\n"
        "starts.write_text(str(n))\n"
        f"if n <= int(Path({str(tmp_path / 'fail.txt')!r}).read_text()):\n"
        "    sys.exit('zmq.error.ZMQError: Address already in use')\n"
        "print('Traceback (most recent call last): the heartbeat', file=sys.stderr)\n"
        "sys.argv = ['ipykernel_launcher', *sys.argv[1:]]\n"
        "runpy.run_module('ipykernel_launcher', run_name='__main__')\n")
    spec = tmp_path / "jupyter" / "kernels" / "flaky"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, str(launcher), "-f", "{connection_file}"],
        "display_name": "flaky", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    notebook = write_notebook(tmp_path / "nb.ipynb", ["print('ran')"],
                              kernelspec={"name": "flaky", "display_name": "flaky",
                                          "language": "python"})

    (tmp_path / "fail.txt").write_text("1")
    assert outputs_of(execute(notebook)) == (Output(0, "stdout", "ran\n"),)
    assert starts.read_text() == "2"
    assert "Traceback" not in capfd.readouterr().err

    starts.unlink()
    (tmp_path / "fail.txt").write_text("2")
    from nb2pkg.errors import VerificationError

    with pytest.raises(VerificationError) as stopped:
        execute(notebook)
    assert starts.read_text() == "2"
    assert str(stopped.value) == (
        f"{notebook}: kernel 'flaky' died before it started (the kernel said: "
        "zmq.error.ZMQError: Address already in use) (check that it starts outside nb2pkg; "
        "jupyter kernelspec list shows where it is installed)")
