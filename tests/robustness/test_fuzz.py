"""Fuzzing: analyze and convert never crash on generated notebooks, magics round-trip exactly, and
extracting repeated code keeps what the notebook computes and prints.

(a) Cells from hypothesmith's grammar-based and CST-based generators, and from the program
    generator, cut into cells and mixed with magics and shell lines, with odd cell metadata (tags,
    missing ids, outputs, execution counts, CRLF line ends): ``analyze`` and ``convert`` raise
    nothing but ``Nb2pkgError``, and ``unmask(mask(s)) == s`` for every cell.
(b) Straight-line programs with 2-4 renamed copies of a block (tests/robustness/programs.py): the
    original cells and the refactored cells (importing the generated modules, exec'd exactly as
    ``generate.render`` writes them) leave equal values in every notebook name both define and
    print the same text. A name the refactored notebook no longer defines must be one that nothing
    reads afterwards (by design, dead block variables become function locals).
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import tempfile
import warnings
from itertools import count
from pathlib import Path

import hypothesmith
import nbformat
import pytest
from hypothesis import HealthCheck, Phase, event, given, note, settings
from hypothesis import strategies as st

from nb2pkg.analysis import analyze as analyze_notebooks
from nb2pkg.analysis.scope import block_io
from nb2pkg.api import ConvertOptions, analyze, convert
from nb2pkg.errors import Nb2pkgError
from nb2pkg.generate import render
from nb2pkg.magics import mask, unmask
from nb2pkg.notebook import read_notebook
from nb2pkg.plan import INTERNAL_ERROR, PlanOptions, plan_package
from harness import load_package, run_cells, unload
from programs import programs

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")]

# hypothesmith's strategies build a Lark parser when created (seconds): build them once. They call
# hypothesis.target(), so each may be drawn only once per example.
GRAMMAR = hypothesmith.from_grammar()
NODES = hypothesmith.from_node()
# NB2PKG_FUZZ_SCALE=50 runs 50 times as many examples (a longer local hunt; CI uses 1).
SCALE = int(os.environ.get("NB2PKG_FUZZ_SCALE", "1"))
# In CI the examples are derandomized (the same every run): a rare new failure then shows up in
# a local run (and stays in .hypothesis/ until fixed) rather than failing someone else's submission.
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck),
                derandomize=bool(os.environ.get("CI")),
                # the target phase hill-climbs hypothesmith's targets: slow, and not what we want
                phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink])


@pytest.fixture(autouse=True, scope="module")
def fast_dependency_lookup():
    """``plan.dependencies`` scans every installed distribution on each conversion (0.2-0.4 s
    here); its answer cannot change during the test, so scan once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(importlib.metadata, "packages_distributions",
                      functools.lru_cache(None)(importlib.metadata.packages_distributions))
        yield


# -- (a) no crashes ------------------------------------------------------------------------------
MAGICS = ["%matplotlib inline", "%time x = 1", "!ls -la", "files = !ls", "%%capture out",
          "%%bash\necho hi", "x?", "??y", "%load_ext autoreload", "%autoreload 2",
          "!pip install pandas", "%%timeit\nsum(range(3))", "x = %env HOME", "!echo $x {y}",
          "%%writefile f.py\nprint(1)", "%store x", "%%time\ny = 2", "  %ls", "obj.attr??",
          "%config InlineBackend.figure_format = 'svg'", "%%javascript\nalert(1)", "!!ls",
          "%time", "%%", "%", "!", "?"]


def _cut(source: str, cuts: list[int]) -> list[str]:
    """Cut a program into cells before top-level lines (the cells need not parse)."""
    lines = source.splitlines(keepends=True)
    starts = sorted({i for i, text in enumerate(lines) if text[:1] not in (" ", "\t", "")} - {0})
    chosen = sorted({starts[c % len(starts)] for c in cuts}) if starts else []
    bounds = [0, *chosen, len(lines)]
    return ["".join(lines[a:b]) for a, b in zip(bounds, bounds[1:])]


@st.composite
def odd_notebooks(draw) -> nbformat.NotebookNode:
    kind = draw(st.sampled_from(["grammar", "nodes", "program"]))
    if kind == "program":
        source = "\n".join(draw(programs(cross_notebook=False)).notebooks[0])
    else:
        source = draw(GRAMMAR if kind == "grammar" else NODES)
    cells = _cut(source, draw(st.lists(st.integers(0, 99), max_size=4)))
    for _ in range(draw(st.integers(0, 4))):
        magic = draw(st.sampled_from(MAGICS))
        where = draw(st.integers(0, len(cells)))
        how = draw(st.sampled_from(["cell", "before", "after"]))
        if how == "cell" or where == len(cells):
            cells.insert(where, magic)
        elif how == "before":
            cells[where] = magic + "\n" + cells[where]
        else:
            cells[where] = cells[where].rstrip("\n") + "\n" + magic
    if draw(st.integers(0, 5)) == 0:
        cells = [c.replace("\n", "\r\n") for c in cells]
    if draw(st.integers(0, 5)) == 0:
        cells.append(draw(st.sampled_from(["", "   \n", "# only a comment", "\ufeffx = 1",
                                           "\tx = 1", "pass;", "x = 1 \\\n"])))

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for source in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell.execution_count = draw(st.none() | st.integers(0, 40))
        tags = draw(st.lists(st.sampled_from(["parameters", "injected-parameters", "nb2pkg-imports",
                                              "skip", "ünï", ""]), max_size=2, unique=True))
        if tags:
            cell.metadata["tags"] = tags
        if draw(st.integers(0, 4)) == 0:
            cell.metadata["nb2pkg"] = {"source_cell": draw(st.integers(0, 9))}
        if draw(st.integers(0, 4)) == 0:
            cell.metadata["jupyter"] = {"source_hidden": True}
        output = draw(st.sampled_from([None, "stream", "result", "error", "display"]))
        if output == "stream":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
        elif output == "result":
            cell.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"},
                                                   execution_count=cell.execution_count)]
        elif output == "error":
            cell.outputs = [nbformat.v4.new_output("error", ename="E", evalue="v", traceback=["t"])]
        elif output == "display":
            cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBOR"})]
        nb.cells.append(cell)
        if draw(st.integers(0, 3)) == 0:
            nb.cells.append(nbformat.v4.new_markdown_cell(draw(st.sampled_from(
                ["# Title", "## Sec *x* <b>y</b>", "text", "Heading\n===", "```\n# not\n```", ""]))))
    if draw(st.booleans()):  # an older file: no cell ids
        nb.nbformat_minor = 4
        for cell in nb.cells:
            cell.pop("id", None)
    return nb


@settings(FUZZ, max_examples=60 * SCALE)
@given(odd_notebooks())
def test_generated_notebooks_never_crash(nb) -> None:
    for cell in nb.cells:
        masked = mask(cell.source)
        assert unmask(masked.code, masked.replacements) == cell.source
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.ipynb"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.write(nb, str(path))
        before = path.read_bytes()
        try:
            analyze([path]).to_dict()
            report = convert([path], Path(folder) / "out", ConvertOptions())
            report.to_dict()
            event(f"converted: {len(report.plan.extractions)} extracted")
        except Nb2pkgError as error:
            assert "\n" not in str(error)
            event(f"refused: {type(error).__name__}")
        assert path.read_bytes() == before


# -- (b) extraction keeps behaviour --------------------------------------------------------------
_package_numbers = count()


@settings(FUZZ, max_examples=120 * SCALE)
@given(programs())
def test_extraction_keeps_behaviour(program) -> None:
    note(program.describe())
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for i, cells in enumerate(program.notebooks):
            nb = nbformat.v4.new_notebook()
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "P", "language": "python"}
            nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
            paths.append(Path(folder) / f"prog{i}.ipynb")
            nbformat.write(nb, str(paths[-1]))
        analysis = analyze_notebooks([read_notebook(p) for p in paths])
        plan = plan_package(analysis, PlanOptions(name=f"fuzzpkg{next(_package_numbers)}"))
        files = render(plan)
    event(f"{len(plan.extractions)} extracted, {len(plan.refusals)} refused")
    assert not [r.reason for r in plan.refusals if r.reason.startswith(INTERNAL_ERROR)]
    for refusal in plan.refusals:
        event(f"refused: {refusal.reason.split(':')[0]}")
    refactored = [[c.source for c in n.node.cells if c.cell_type == "code"] for n in plan.notebooks]
    note("refactored:\n" + "\n# ----- next notebook\n".join("\n# ----- cell\n".join(c)
                                                           for c in refactored))
    note("modules:\n" + "\n".join(text for name, text in files.items()
                                   if name.startswith("src/") and name.endswith(".py")))

    functions = {e.function for e in plan.extractions}
    registered = load_package(plan, files)
    try:
        for original, new in zip(program.notebooks, refactored):
            before, printed_before = run_cells(original)
            after, printed_after = run_cells(new)
            after = {k: v for k, v in after.items() if k not in functions}
            assert printed_after == printed_before
            assert set(after) <= set(before), "names the original notebook does not define"
            differ = {k for k in after if after[k] != before[k]}
            assert not differ, {k: (before[k], after[k]) for k in differ}
            # A name that disappeared is read by no refactored cell before that cell binds it
            # (not even on a path this run did not take): nothing can see it is gone.
            reads = {name for cell in new for name in block_io(ast.parse(cell).body).reads}
            assert not (set(before) - set(after)) & reads
    finally:
        unload(registered)
