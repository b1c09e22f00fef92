"""What a block reads before binding, binds surely or maybe, and what makes moving it unsafe."""

import ast
import json
from pathlib import Path

import pytest

from nb2pkg.analysis.scope import block_io, block_io_and_writes
from nb2pkg.magics import mask


def io(source: str):
    return block_io(ast.parse(source).body)


def test_reads_before_writes_in_evaluation_order() -> None:
    result = io("y = x + 1\nx = 2\nz = x + y")
    assert result.reads == ("x",)
    assert result.writes == {"x", "y", "z"}


def test_augmented_assignment_reads_its_target() -> None:
    assert io("total += 1").reads == ("total",)


def test_branches_and_loops_bind_only_maybe() -> None:
    result = io("if c:\n    a = 1\nelse:\n    a = 2\n    b = 3\nfor i in xs:\n    d = i")
    assert result.definite_writes == {"a"}
    assert {"b", "i", "d"} <= result.writes


def test_loop_variable_read_after_the_loop_is_a_free_read() -> None:
    # The loop may run zero times, so `i` after it may be the value from before the block.
    assert "i" in io("for i in xs:\n    pass\nprint(i)").reads


# A loop that surely runs its body once, start to end, surely binds what the body binds.
LOOPS_THAT_RUN = [
    ("for i in [1, 3]:\n    d = i", True),
    ("for i in (0,):\n    d = i", True),
    ("for i in 'ab':\n    d = i", True),
    ("for i in {'a': 1}:\n    d = i", True),
    ("for i in range(1, 31):\n    d = i", True),
    ("for i in range(5, 0, -1):\n    d = i", True),
    ("for i in range(3):\n    d = i\nelse:\n    e = 1", True),
    ("for i in []:\n    d = i", False),
    ("for i in [*xs]:\n    d = i", False),
    ("for i in {**m}:\n    d = i", False),
    ("for i in '':\n    d = i", False),
    ("for i in range(0):\n    d = i", False),
    ("for i in range(5, 0):\n    d = i", False),
    ("for i in range(1, n):\n    d = i", False),
    ("for i in range(0, 5, 0):\n    d = i", False),
    ("for i in range(3, step=1):\n    d = i", False),
    ("for i in range(3):\n    if i:\n        continue\n    d = i", False),
    ("for i in range(3):\n    try:\n        d = i\n    except ValueError:\n        break", False),
    ("for i in range(3):\n    for j in xs:\n        pass\n    else:\n        break\n    d = i", False),
    # A break of an inner loop leaves that loop only.
    ("for i in range(3):\n    for j in xs:\n        break\n    d = i", True),
]


@pytest.mark.parametrize("source, runs", LOOPS_THAT_RUN)
def test_a_loop_that_surely_runs_binds_what_its_body_binds(source: str, runs: bool) -> None:
    found = block_io(ast.parse(source).body, range_is_builtin=True).definite_writes
    assert ({"i", "d"} <= found) is runs, found
    if "else" in source and runs:
        assert "e" in found
    # Unless the caller knows `range` is the builtin, a range proves nothing.
    if "range" in source:
        assert "d" not in io(source).definite_writes


def test_function_bodies_are_deferred_reads() -> None:
    result = io("def f(a, b=default):\n    return a + THRESHOLD\n")
    assert result.reads == ("default",)
    assert result.deferred_reads == {"THRESHOLD"}
    assert result.defines == ("f",)


def test_comprehension_variables_stay_inside() -> None:
    result = io("squares = [k * k for k in items if k > limit]")
    assert set(result.reads) == {"items", "limit"}
    assert "k" not in result.writes


def test_walrus_in_comprehension_binds_outside() -> None:
    assert "last" in io("[last := v for v in values]").writes


def test_in_place_changes_are_recorded() -> None:
    result = io("df['a'] = 1\nlst.append(2)\nobj.attr = 3")
    assert result.mutated == {"df", "lst", "obj"}
    assert set(result.reads) == {"df", "lst", "obj"}


@pytest.mark.parametrize("source, reason", [
    ("global g\ng = 1", "`global`/`nonlocal` g"),
    ("del x", "`del x` removes a notebook variable"),
    ("x = await f()", "`await` leaves the block"),
    ("break", "`break` leaves the block"),
    ("print(locals())", "uses `locals()`"),
    ("from os import *", "uses `import *`"),
])
def test_unsafe_reasons(source: str, reason: str) -> None:
    assert reason in io(source).unsafe_reasons


def test_vars_of_an_object_is_not_namespace_access() -> None:
    assert io("print(vars(obj), dir(obj))").dynamic == ()
    assert io("print(vars())").dynamic == ("`vars()`",)


def test_break_inside_a_loop_of_the_block_is_safe() -> None:
    assert io("for i in xs:\n    if i:\n        break").unsafe_reasons == ()


def test_class_body_reads_now_methods_later() -> None:
    result = io("class A(Base):\n    size = SIZE\n    def m(self):\n        return LATER")
    assert set(result.reads) == {"Base", "SIZE"}
    assert result.deferred_reads == {"LATER"}


def test_names_are_read_in_the_order_of_the_syntax_trees_children() -> None:
    # Every kind of child an expression has: fields, lists of them (with gaps), keywords,
    # operators; the order is that of ``ast.iter_child_nodes``.
    source = ("f(a, *b, k=c, **d)[e:g:h].attr\n{**i, j: k2, 'x': l}\nm < n <= o\n"
              "p if q else r\n(s, [t, u], {v})\nw.x(y)(z)\nf'{aa!r:{bb}}'\ncc[dd, ee]\n")
    expected = []
    for statement in ast.parse(source).body:
        def visit(node):
            if isinstance(node, ast.Name):
                if node.id not in expected:
                    expected.append(node.id)
            for child in ast.iter_child_nodes(node):
                visit(child)
        visit(statement)
    assert io(source).reads == tuple(expected)
    assert len(expected) == 30


_EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "notebooks").glob("*.ipynb"))
_TRICKY = """
import os.path as osp, sys
from math import *
x = [y := n for n in range(3)]
for i, (a, b) in enumerate(pairs):
    total += a
else:
    done = True
try:
    import missing
except ImportError as error:
    missing = None
with open(path) as handle, lock:
    data = handle.read()
def f(q):
    global counter
    counter = q
class C:
    attribute = x
del a
match command:
    case [first, *rest]:
        pass
    case {"k": value, **others}:
        pass
"""


@pytest.mark.parametrize("source", [_TRICKY] + [
    "".join(cell["source"]) for path in _EXAMPLES
    for cell in json.loads(path.read_text())["cells"] if cell["cell_type"] == "code"])
def test_one_scan_finds_what_each_statement_binds(source: str) -> None:
    body = ast.parse(mask(source).code).body
    io, writes = block_io_and_writes(body)
    assert io == block_io(body)
    assert writes == [block_io([statement]).writes for statement in body]


def test_a_function_is_scanned_once_while_functions_are_remembered(monkeypatch) -> None:
    from nb2pkg.analysis import scope

    body = ast.parse("def f(x):\n    return x + y\n\nz = f(1)\n").body
    scanned = []
    scan = scope._scan_function
    monkeypatch.setattr(scope, "_scan_function", lambda node: scanned.append(node) or scan(node))
    with scope.remembering_functions():
        assert block_io(body) == block_io(body[:1] + body[1:])
        assert block_io(body[:1]).deferred_reads == {"y"}
    assert len(scanned) == 1
    block_io(body)  # outside: nothing is kept
    assert len(scanned) == 2
