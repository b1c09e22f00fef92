"""Lifting's checks (refactor/lift.py); whole cases are in tests/data/extract/refuse_lift_*.txt."""

from nb2pkg.analysis.parse import parse_cell
from nb2pkg.refactor.lift import _first_naming, _named_as_text


def test_one_index_of_the_cells_texts_answers_as_the_search_for_each_name() -> None:
    sources = ["x = scaled(1)", "%timeit np.scaled(2)\n%time scaled_2(3)", "print(f(4)",
               "!echo {f} $g.h", "%time _private(5)  # éclair"]
    cells = [parse_cell(source, 0, i) for i, source in enumerate(sources)]
    index = _named_as_text(cells)
    names = {"scaled", "scaled_2", "f", "g", "h", "np", "print", "echo", "_private", "éclair",
             "missing", "time"}
    assert {n: index.get(n) for n in names} == {n: _first_naming(cells, n) for n in names}
    assert index["f"] == (2, True) and "h" not in index and "scaled" not in index
