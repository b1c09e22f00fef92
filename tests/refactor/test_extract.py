"""Extraction cases as data files: notebook cells → extracted function and rewritten cells,
or the reason the copies were left alone. One file per case in tests/data/extract/."""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import pytest

from helpers import DATA, parse_case, write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.generate import format_python
from nb2pkg.notebook import read_notebook
from nb2pkg.plan import INTERNAL_ERROR, PlanOptions, plan_package

CASES = sorted((DATA / "extract").glob("*.txt"))


def _plan(path: Path):
    analysis = analyze([read_notebook(path)])
    return plan_package(analysis, PlanOptions(name="case"))


def _code_cells(plan) -> list[str]:
    node = plan.notebooks[0].node
    return [c.source for c in node.cells if c.cell_type == "code"]


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_extraction_case(case: Path, tmp_path: Path) -> None:
    parts = parse_case(case.read_text())
    notebook = write_notebook(tmp_path / "case.ipynb", parts["cells"])
    plan = _plan(notebook)
    assert not [r.reason for r in plan.refusals if r.reason.startswith(INTERNAL_ERROR)]
    if "refused" in parts:
        assert not plan.extractions, "expected the copies to be left alone"
        reasons = [r.reason for r in (*plan.refusals, *plan.loop_refusals)]
        for expected in parts["refused"][0].splitlines():
            assert any(expected in reason for reason in reasons), reasons
        # Left alone means left alone: every code cell is byte-identical (unless the case
        # says how a run in it is rolled into a loop instead).
        assert _code_cells(plan) == parts.get(
            "after", [c for c in parts["cells"] if isinstance(c, str)])
        return
    functions = "\n\n".join(format_python(e.source).strip() for e in plan.extractions)
    assert functions == (parts["function"][0].strip() if "function" in parts else "")
    if "module" in parts:  # the definitions moved into the package (hoisted, lifted)
        moved = "\n\n".join(format_python("\n\n\n".join(m.definitions)).strip()
                             for m in plan.modules if m.definitions)
        assert moved == parts["module"][0].strip()
    for line in parts.get("kept", [""])[0].splitlines():  # `name: part of the reason`
        name, reason = line.split(": ", 1)
        assert any(k.name == name and reason in k.reason for k in plan.kept), plan.kept
    if "after" in parts:
        assert _code_cells(plan) == parts["after"]
    elif "kept" in parts and "function" not in parts:  # nothing moved, nothing rewritten
        assert _code_cells(plan) == [c for c in parts["cells"] if isinstance(c, str)]


@pytest.mark.parametrize("case", [c for c in CASES if "== function" in c.read_text()
                                   or c.stem.startswith("roll_")], ids=lambda c: c.stem)
def test_extraction_is_idempotent(case: Path, tmp_path: Path) -> None:
    """Converting the refactored notebook again extracts nothing new and rolls no loop."""
    import nbformat

    parts = parse_case(case.read_text())
    first = _plan(write_notebook(tmp_path / "case.ipynb", parts["cells"]))
    assert first.extractions or first.loops
    again = tmp_path / "again" / "case.ipynb"
    again.parent.mkdir()
    nbformat.write(first.notebooks[0].node, str(again))
    second = _plan(again)
    assert not second.extractions and not second.loops


def test_a_name_imported_differently_in_two_notebooks_becomes_a_parameter(tmp_path: Path) -> None:
    block = "root = m.sqrt(value)\ndoubled = root * 2\nprint(doubled)"
    one = write_notebook(tmp_path / "one.ipynb", ["import math as m", "value = 4", block])
    two = write_notebook(tmp_path / "two.ipynb", ["import cmath as m", "value = -4", block])
    analysis = analyze([read_notebook(one), read_notebook(two)])
    plan = plan_package(analysis, PlanOptions(name="case"))
    (extraction,) = plan.extractions
    assert extraction.module == "common"
    assert [p.name for p in extraction.parameters] == ["m", "value"]
    same = write_notebook(tmp_path / "same" / "two.ipynb", ["import math as m", "value = 9", block])
    plan = plan_package(analyze([read_notebook(one), read_notebook(same)]), PlanOptions(name="case"))
    assert [p.name for p in plan.extractions[0].parameters] == ["value"]
    assert "import math as m" in plan.modules[0].imports


def test_the_copy_left_out_is_named_with_the_reason(tmp_path: Path) -> None:
    """tests/data/extract/leave_one_copy_out.txt: the refusal of the whole group says why, which
    copy stays and which group holds the others."""
    parts = parse_case((DATA / "extract" / "leave_one_copy_out.txt").read_text())
    plan = _plan(write_notebook(tmp_path / "case.ipynb", parts["cells"]))
    (extraction,) = plan.extractions
    (refusal,) = plan.refusals
    assert extraction.group == "C1.1" and len(extraction.calls) == 2
    assert refusal.group == "C1" and len(refusal.occurrences) == 3
    assert refusal.reason == (
        "a name stands for different names in different copies: `total` is both `total` and "
        "`total_b` in another copy, and the block assigns it; the copy in cell 2 stays, and the "
        "other 2 are extracted (C1.1)")


def test_each_copy_left_out_is_tried_with_the_same_names_free(monkeypatch) -> None:
    """Every try of all copies but one names its function with the names taken before the tries
    (a try claims its function's name, as any extraction does); only the kept one's name stays
    taken. Here leaving out the third copy needs fewer parameters than leaving out the first,
    and it keeps the name `report`, not `report_2`."""
    from nb2pkg.analysis.clones import CloneGroup, Occurrence
    from nb2pkg.refactor import extract
    from nb2pkg.refactor.extract import Extraction, Parameter, Refusal, _without_one_copy
    from nb2pkg.refactor.naming import Namer

    copies = tuple(Occurrence(0, cell, (), 0, 3, 1, 3) for cell in (1, 2, 3))
    group = CloneGroup("C1", "renamed", 3, 3, copies, True)
    ctx = types.SimpleNamespace(taken={"data"})
    seen = []

    def extract_group(rest, ctx):  # as _extract names and claims
        seen.append(set(ctx.taken))
        left = next(o for o in copies if o not in rest.occurrences)
        if left.cell == 2:
            return Refusal(rest.id, "too many parameters", rest.occurrences)
        name = Namer(ctx.taken).claim("report")
        ctx.taken.add(name)
        parameters = (Parameter("a", ()),) * (3 if left.cell == 1 else 1)
        return Extraction(rest.id, name, "core", "", parameters, (), (), ())

    monkeypatch.setattr(extract, "extract_group", extract_group)
    left, kept = _without_one_copy(group, ctx, "would take 7 parameters")
    assert (left.cell, kept.function, kept.group) == (3, "report", "C1.1")
    assert seen == [{"data"}] * 3
    assert ctx.taken == {"data", "report"}


def test_copies_holding_a_definition_moved_into_the_package_stay(tmp_path: Path) -> None:
    """A copied block that contains a constant the notebook's function reads (moved into the
    package with it) is not extracted: its call would replace statements already gone (this
    crashed the rewrite when one causal notebook was converted beside a copy of itself)."""
    cell = ("import numpy as np\nn = 100\ndata = {'a': np.arange(n)}\nP_1 = 0.2\nP_2 = 0.15\n\n"
            "def observe(data):\n    return data['a'] * P_1 + P_2\n\nobserved = observe(data)")
    one = write_notebook(tmp_path / "one.ipynb", [cell])
    two = write_notebook(tmp_path / "two.ipynb", [cell])
    plan = plan_package(analyze([read_notebook(one), read_notebook(two)]), PlanOptions(name="case"))
    assert not plan.extractions
    assert any("moved into the package" in r.reason for r in plan.refusals)
    assert "P_1 = 0.2" in plan.modules[0].definitions
    for notebook in plan.notebooks:
        (code,) = [c.source for c in notebook.node.cells if c.cell_type == "code"
                   and "nb2pkg-imports" not in c.metadata.get("tags", ())]
        assert "P_1 = " not in code and "observed = observe(data)" in code


# -- behaviour: every case runs before and after, with the same output and the same variables --
def _run_cells(cells: list[str]) -> tuple[list[str], dict]:
    """Run ``cells`` in one fresh namespace as IPython would: stdout captured per cell, and the
    value of a cell-ending expression recorded (unless None or silenced by a trailing `;`)."""
    import ast
    import contextlib
    import io

    namespace: dict = {"__name__": "__main__"}
    shown: list[str] = []
    for source in cells:
        tree = ast.parse(source)
        last = tree.body[-1] if tree.body else None
        display = (isinstance(last, ast.Expr)
                   and not source.rstrip().split("\n")[-1].split("#")[0].rstrip().endswith(";"))
        body = tree.body[:-1] if display else tree.body
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(ast.Module(body=body, type_ignores=[]), "<cell>", "exec"), namespace)
            if display:
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
                if value is not None:
                    print(repr(value))
        shown.append(out.getvalue())
    return shown, namespace


def _variables(namespace: dict) -> dict:
    import types

    # `_` holds what the notebook throws away (`_ = plt.plot(...)`): an extracted function
    # returns it only when the notebook reads it again.
    return {k: v for k, v in namespace.items() if not k.startswith("__") and k != "_"
            and not isinstance(v, (types.ModuleType, types.FunctionType, type))}


def _same(a, b) -> bool:
    try:
        import pandas as pd

        if isinstance(a, (pd.DataFrame, pd.Series)):
            return type(a) is type(b) and a.equals(b)
    except ImportError:  # pragma: no cover
        pass
    try:
        import numpy as np

        if isinstance(a, np.ndarray):
            return isinstance(b, np.ndarray) and np.array_equal(a, b)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(a, (type, types.FunctionType)):  # a definition the refactoring moved
        return type(a) is type(b) and a.__qualname__ == b.__qualname__
    if isinstance(a, (dict, list, tuple)) and type(a) is type(b) and len(a) == len(b):
        if isinstance(a, dict):
            return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
        return all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and (a == b or repr(a) == repr(b))


def _package_modules(plan) -> dict:
    """The planned package, importable in this process (``case`` and ``case.<module>``)."""
    import types

    package = types.ModuleType(plan.name)
    package.__path__ = []
    modules = {plan.name: package}
    for module in plan.modules:
        created = types.ModuleType(f"{plan.name}.{module.name}")
        modules[created.__name__] = created
        setattr(package, module.name, created)
    return modules


def _execute_plan(plan) -> tuple[list[str], dict]:
    import sys

    modules = _package_modules(plan)
    sys.modules.update(modules)
    try:
        for module in plan.modules:  # in order: a notebook module may import "common"
            created = modules[f"{plan.name}.{module.name}"]
            source = "\n".join([*module.imports, *module.definitions, *module.functions])
            exec(compile(source.replace("from .", f"from {plan.name}."), created.__name__, "exec"),
                 created.__dict__)
        cells = [c for c in plan.notebooks[0].node.cells if c.cell_type == "code"]
        shown, namespace = _run_cells([c.source for c in cells])
        # Compare by the original's cells: the added import cell prints nothing.
        kept = [s for c, s in zip(cells, shown) if not c.metadata.get("nb2pkg", {}).get("generated")]
        return kept, namespace
    finally:
        for name in modules:
            sys.modules.pop(name, None)


def _runnable(cells: list) -> bool:
    import ast

    try:
        for cell in cells:
            if isinstance(cell, str):
                compile(ast.parse(cell), "<cell>", "exec")
    except SyntaxError:  # magics and top-level await: only a kernel runs them
        return False
    return True


@pytest.fixture(autouse=True)
def _no_figure_left_open():
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # pyplot keeps every figure a case draws until it is closed
        pyplot.close("all")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_extraction_case_behaves_the_same(case: Path, tmp_path: Path) -> None:
    """The refactored cells print and display what the original cells did, and leave the same
    variables with equal values (minus temporaries of the extracted blocks that nothing reads
    later, which now live in the function; never a new one)."""
    parts = parse_case(case.read_text())
    cells = parts["cells"]
    if not _runnable(cells):
        pytest.skip("IPython syntax: checked on a real kernel by "
                    "test_extraction_case_with_ipython_syntax_behaves_the_same_on_a_kernel")
    plan = _plan(write_notebook(tmp_path / "case.ipynb", cells))
    shown_before, before = _run_cells([c for c in cells if isinstance(c, str)])
    shown_after, after = _execute_plan(plan)
    assert shown_after == shown_before
    before, after = _variables(before), _variables(after)
    # The only new names allowed: a rolled loop's variables (names the notebook never uses).
    loop_variables = {name for loop in plan.loops for name in loop.variables}
    assert set(after) - set(before) <= loop_variables, "new notebook variables"
    for name, value in after.items():
        if name not in loop_variables:
            assert _same(before[name], value), name


def test_the_names_file_can_skip_a_group_and_name_another(tmp_path: Path) -> None:
    """`C1: skip` leaves group C1 alone (reported with that reason); other groups still go."""
    parts = parse_case((DATA / "extract" / "pairs_of_copies.txt").read_text())
    notebook = write_notebook(tmp_path / "case.ipynb", parts["cells"])
    analysis = analyze([read_notebook(notebook)])
    plan = plan_package(analysis, PlanOptions(name="case", overrides={"C1": {"skip": True}}))
    assert not plan.extractions
    assert [(r.group, r.reason) for r in plan.refusals] == [("C1", "skipped: the names file says so")]
    assert _code_cells(plan) == [c for c in parts["cells"] if isinstance(c, str)]
    plan = plan_package(analysis, PlanOptions(name="case", overrides={"C1": {"name": "tally"}}))
    assert [e.function for e in plan.extractions] == ["tally"]


def test_the_names_file_says_skip(tmp_path: Path) -> None:
    from nb2pkg.cli import _load_names

    names = tmp_path / "names.yaml"
    names.write_text("C1: skip\nC2: false\nC3: tally\nC4: {name: skip}\n")
    assert _load_names(names) == {"C1": {"skip": True}, "C2": {"skip": True},
                                  "C3": {"name": "tally"}, "C4": {"name": "skip"}}


def _depth(node) -> int:
    import ast

    return 1 + max((_depth(child) for child in ast.iter_child_nodes(node)), default=0)


@pytest.mark.parametrize("code", ["x", "f(g(h(x)))", "a[" * 30 + "0" + "]" * 30,
                                  "if x:\n    y = [1, {2: (3,)}]\n", "-" * 45 + "x"])
def test_deeper_than_is_the_depth_of_the_syntax_tree(code: str) -> None:
    # The libcst code-generation trial (deep nesting) is skipped for trees it calls shallow.
    import ast

    from nb2pkg.refactor.extract import _deeper_than

    tree = ast.parse(code)
    depth = _depth(tree)
    assert [_deeper_than(tree, levels) for levels in range(1, 60)] == [
        depth > levels for levels in range(1, 60)]


def test_source_segments_are_those_of_ast_get_source_segment() -> None:
    # extract keeps a cell's lines and cuts each literal's text from them (the stdlib splits
    # the whole source again for every node); every node of real cells, and odd line breaks.
    import ast
    import json
    from pathlib import Path

    from nb2pkg.magics import mask
    from nb2pkg.refactor.extract import segment_lines, source_segment

    root = Path(__file__).resolve().parents[2]
    sources = ["x = 'a'\r\ny = (1,\r 2)\nz = f(\n  'é', \f 3)\r\n", "a = [1,\n 2]", "", "\n\n",
               "s = '''x\ry'''\n", "t = 1\x0bu = 2\x1cv = 3\u2028\n"]
    for path in sorted((root / "examples" / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                source = cell["source"]
                sources.append(mask("".join(source) if isinstance(source, list) else source).code)
    checked = 0
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        lines = segment_lines(source)
        for node in ast.walk(tree):
            assert source_segment(lines, node) == ast.get_source_segment(source, node), (source, ast.dump(node))
            checked += 1
    assert checked > 3000


@pytest.mark.kernel
@pytest.mark.parametrize("case", [c for c in CASES if not _runnable(parse_case(c.read_text())["cells"])],
                         ids=lambda c: c.stem)
def test_extraction_case_with_ipython_syntax_behaves_the_same_on_a_kernel(case: Path,
                                                                         tmp_path: Path) -> None:
    """What only a kernel runs (magics, shell commands, top-level await): `convert --verify`
    executes the original and the refactored notebook and compares what they print."""
    from nb2pkg.api import ConvertOptions, convert

    from nb2pkg.magics import mask

    cells = parse_case(case.read_text())["cells"]
    try:
        for cell in cells:
            if isinstance(cell, str):
                ast.parse(mask(cell).code)  # top-level await parses; compile() would refuse it
    except SyntaxError:
        pytest.skip("a cell does not parse even as IPython: the original cannot run either")
    notebook = write_notebook(tmp_path / "case.ipynb", cells)
    report = convert([notebook], tmp_path / "out", ConvertOptions(verify=True, name="case"))
    assert report.verification is not None and report.verification.equivalent, \
        report.verification and report.verification.describe()


def test_a_bug_met_on_one_group_leaves_that_group_alone(tmp_path: Path, monkeypatch) -> None:
    # Extracting one group raised (describe's title rule once hashed a list literal): the
    # conversion ended in a traceback. Now that group is left alone, as written, and the
    # report says why; the other groups are still extracted.
    import nb2pkg.refactor.extract as extract
    from nb2pkg.plan import INTERNAL_ERROR

    parts = parse_case((DATA / "extract" / "name_from_code_when_title_names_another.txt").read_text())
    notebook = write_notebook(tmp_path / "case.ipynb", parts["cells"])
    expected = _plan(notebook)
    assert len(expected.extractions) >= 2
    broken = expected.extractions[0].group
    real = extract._extract

    def failing(group, ctx):
        if group.id == broken:
            raise TypeError("unhashable type: 'list'")
        return real(group, ctx)

    monkeypatch.setattr(extract, "_extract", failing)
    plan = _plan(notebook)
    (refusal,) = [r for r in plan.refusals if r.group == broken]
    assert refusal.reason.startswith(INTERNAL_ERROR)
    assert "TypeError: unhashable type: 'list'" in refusal.reason
    assert len(plan.extractions) == len(expected.extractions) - 1
    assert broken not in {e.group for e in plan.extractions}
    for o in refusal.occurrences:  # each copy still reads as the author wrote it
        assert parts["cells"][o.cell] in _code_cells(plan)
