"""Clone detection: exact, renamed, near copies; across cells and notebooks; linear grouping."""

from pathlib import Path

from helpers import write_notebook
from nb2pkg.analysis import analyze
from nb2pkg.analysis.clones import (block_bound, block_shape, bound_names, find_clones,
                                   reusing_fingerprints, shape)
from nb2pkg.analysis.parse import parse_cell
from nb2pkg.notebook import read_notebook

BLOCK = "sub = data[data.kind == 'a']\ntotal = sub.value.sum()\nprint('a', total)\n"


def cells(*sources: str):
    return [parse_cell(s, 0, i) for i, s in enumerate(sources)]


def test_exact_copies_across_cells() -> None:
    groups = find_clones(cells(BLOCK, "x = 1", BLOCK))
    assert len(groups) == 1
    group = groups[0]
    assert group.kind == "exact"
    assert [(o.cell, o.first_line, o.last_line) for o in group.occurrences] == [(0, 1, 3), (2, 1, 3)]


def test_renamed_names_and_changed_literals() -> None:
    other = BLOCK.replace("sub", "part").replace("total", "amount").replace("'a'", "'b'")
    (group,) = find_clones(cells(BLOCK, other))
    assert group.kind == "renamed" and group.consistent


def test_inconsistent_renaming_is_flagged() -> None:
    # `x` is assigned, then read where the other copy reads `p`: not one variable any more.
    a = "x = p + 1\ny = x * 2\nprint(y)"
    b = "x = p + 1\ny = p * 2\nprint(y)"
    (group,) = find_clones(cells(a, b))
    assert not group.consistent


def test_a_name_only_read_may_stand_for_several() -> None:
    # `X` where the other copy reads `X_train` and `X_test`: one parameter per position.
    a = "model = make(1)\nmodel.fit(X, y)\nscore = model.score(X, y)\nprint(score)"
    b = "model = make(5)\nmodel.fit(X_train, y_train)\nscore = model.score(X_test, y_test)\nprint(score)"
    (group,) = find_clones(cells(a, b))
    assert group.consistent


def test_near_copies_share_a_run() -> None:
    a = BLOCK + "print('only here')\n"
    b = BLOCK + "result = total * 2\n"
    (group,) = find_clones(cells(a, b))
    assert group.kind == "near"
    assert group.statements == 3


def test_attribute_and_keyword_differences_are_not_clones() -> None:
    other = BLOCK.replace(".value.", ".weight.")
    assert find_clones(cells(BLOCK, other)) == []


def test_minimum_size() -> None:
    assert find_clones(cells(BLOCK, BLOCK), min_statements=4) == []
    assert len(find_clones(cells(BLOCK, BLOCK), min_statements=3)) == 1


def test_copies_within_one_cell_and_nested_in_loops() -> None:
    nested = "for k in ks:\n" + "".join("    " + line + "\n" for line in BLOCK.splitlines())
    groups = find_clones(cells(BLOCK + "\n" + BLOCK, nested))
    (group,) = groups
    assert len(group.occurrences) == 3
    assert {o.path for o in group.occurrences} == {(), ((0, "body"),)}


def test_imports_and_definitions_never_form_clones() -> None:
    source = "import os\nimport sys\nimport re\ndef f():\n    pass\n"
    assert find_clones(cells(source, source)) == []


def test_across_notebooks(tmp_path: Path) -> None:
    one = write_notebook(tmp_path / "one.ipynb", ["import pandas as pd", BLOCK])
    two = write_notebook(tmp_path / "two.ipynb", [BLOCK.replace("sub", "rows")])
    analysis = analyze([read_notebook(one), read_notebook(two)])
    (group,) = analysis.clones
    assert [(o.notebook, o.cell) for o in group.occurrences] == [(0, 1), (1, 0)]


def test_grouping_scales_linearly_with_repeats() -> None:
    # 2,000 copies of the same block form one group, found without pairwise comparison.
    many = cells(*[BLOCK.replace("sub", f"sub{i}") for i in range(2000)])
    (group,) = find_clones(many)
    assert len(group.occurrences) == 2000


def test_a_prefix_pasted_everywhere_is_one_group_however_copies_pair_up() -> None:
    # 1,000 cells open with the same 3 lines; each pair of cells then shares 3 more lines of its
    # own. Every pair is also a maximal repeat overlapping the prefix: 501 raw groups. The prefix
    # is one group; what each pair shares beyond it is a group of its own (those 3 lines).
    prefix = "fig, axes = plt.subplots(1, 1)\naxes.plot(m, a, c='k')\naxes.plot(m, b, c='b')\n"
    sources = [prefix + "".join(f"axes.set_{word}{i // 2}('x')\n" for word in ("a", "b", "c"))
               for i in range(1000)]
    group, *pairs = find_clones(cells(*sources))
    assert group.statements == 3 and len(group.occurrences) == 1000
    assert len(pairs) == 500
    assert all(p.statements == 3 and [(o.cell, o.start) for o in p.occurrences]
               == [(2 * k, 3), (2 * k + 1, 3)] for k, p in enumerate(
                   sorted(pairs, key=lambda p: p.occurrences[0].cell)))


def test_what_a_larger_group_leaves_is_a_group_when_extraction_could_take_it() -> None:
    # Cells 1 and 2 share 6 lines, the first 3 of which 4 cells share: the 3-line group comes
    # first (12 copied statements against 12, more copies; `;` keeps the cells quiet) and the
    # last 3 lines of cells 1 and 2 are a group of their own. Left over lines that extraction
    # would refuse (constants only) are no group: they must not take statements from one it
    # could use.
    shared = "fig, axes = plt.subplots(1, 1)\naxes.plot(m, a, c='k');\naxes.plot(m, b, c='b');\n"
    labels = "axes.set_xlabel('Month')\naxes.set_ylabel('Dollars')\naxes.set_title('Paid')\n"
    found = find_clones(cells(shared, shared + labels, shared + labels, shared))
    assert [(g.statements, [(o.cell, o.start) for o in g.occurrences]) for g in found] == [
        (3, [(0, 0), (1, 0), (2, 0), (3, 0)]), (3, [(1, 3), (2, 3)])]
    data = "a = 1\nb = 2\nc = 3\n"
    found = find_clones(cells(shared, shared + data, shared + data, shared))
    assert [(g.statements, len(g.occurrences)) for g in found] == [(3, 4)]


def test_merging_keeps_what_extraction_can_take(tmp_path: Path) -> None:
    # tests/data/clones/refused_group_does_not_hide_extractable.txt, planned: the 5-line copies
    # are extracted (the 3-line group, reported first before, was refused and hid them); then
    # the 3 lines of the other two cells, whose function returns the displayed value.
    from helpers import DATA, parse_case
    from nb2pkg.plan import PlanOptions, plan_package

    case = (DATA / "clones" / "refused_group_does_not_hide_extractable.txt").read_text()
    path = write_notebook(tmp_path / "case.ipynb", parse_case(case.split("\n== groups\n")[0])["cells"])
    plan = plan_package(analyze([read_notebook(path)]), PlanOptions(name="case"))
    assert [[(c.occurrence.cell, c.occurrence.start) for c in e.calls] for e in plan.extractions] \
        == [[(2, 0), (3, 0)], [(0, 0), (1, 0)]]


def test_kept_leaves_and_bound_names_are_those_of_the_statements() -> None:
    # find_clones keeps each statement's leaves and bound names and joins them for a run;
    # the join must be what ``shape`` and ``bound_names`` give for the run's statements.
    # The bound names are found while fingerprinting, not by bound_names' own walk.
    from nb2pkg.analysis.clones import (_bound_names, _leaves, _statement_facts,
                                        _statement_lists, _Stmt, bound_names, shape)

    def stmt(cell, path, i, s):
        facts = _statement_facts(cell, s)
        return _Stmt(cell, path, i, s, facts.key, facts.weight, facts)

    source = ("for i, (a, b) in enumerate(rows):\n    import os.path as p\n"
              "    total = f'{a}-{b:{(width := 3)}}' + 'x'\n    del b\nwith open(p) as fh:\n    text = fh.read()\n"
              "try:\n    n = int(text)\nexcept ValueError as err:\n    n = len([w for w in text])\n"
              "match n:\n    case [first, *others]: pass\n    case {'k': 1, **more}: pass\n"
              "g = lambda q, *r: q + 1.5\n")
    (cell,) = cells(source)
    for path, body in _statement_lists(cell.tree):
        entries = [stmt(cell, path, i, s) for i, s in enumerate(body)]
        for start in range(len(body)):
            for stop in range(start + 1, len(body) + 1):
                run = entries[start:stop]
                nodes = [e.node for e in run]
                assert _leaves(run) == shape(nodes).leaves
                assert _bound_names(run) == bound_names(nodes)
    top = [stmt(cell, (), i, s) for i, s in enumerate(cell.tree.body)]
    assert _bound_names(top) >= {"i", "a", "b", "p", "total", "fh", "text", "n", "err",
                                     "w", "width", "first", "others", "more", "g", "q", "r"}


def test_a_cells_fingerprints_are_kept_while_reusing_them_and_only_for_that_cell() -> None:
    from nb2pkg.analysis.clones import _cell_facts, reusing_fingerprints

    source = BLOCK + "def f():\n    pass\n"
    some = cells(source, "x = 1", BLOCK, source)
    plain = find_clones(some)
    assert plain
    with reusing_fingerprints():
        assert find_clones(some) == plain
        assert _cell_facts(some[0]) is _cell_facts(some[0])
        # An equal record parsed again is another tree: its definitions have their own keys.
        (again,) = cells(source)
        assert again == some[0] and _cell_facts(again) is not _cell_facts(some[0])
        assert find_clones(some) == plain  # the second search, from the kept fingerprints
    assert _cell_facts(some[0]) is not _cell_facts(some[0])  # the scope ended: nothing kept


def test_what_clone_search_kept_of_a_statement_is_what_it_would_compute_again() -> None:
    source = (BLOCK + "def f(x):\n    return [y for y in x]\n"
              + "for k in range(3):\n    import os\n    " + BLOCK.replace("\n", "\n    ").rstrip(" ")
              + "if f:\n    class C:\n        pass\n")
    parsed = cells(source, BLOCK)
    statements = [s for cell in parsed for s in cell.tree.body]
    nested = statements[4].body  # the loop's body: clone search visits nested lists too
    with reusing_fingerprints():
        find_clones(parsed)
        for block in ([s] for s in statements + nested):
            kept, found = block_shape(block), shape(block)
            assert (kept.leaves, kept.weight, kept.defines) == \
                (found.leaves, found.weight, found.defines)
            assert block_bound(block) == bound_names(block)
        # Kept, not computed again: the leaves are the objects clone search made.
        assert block_shape(statements[:1]).leaves[0] is block_shape(statements[:1]).leaves[0]
    assert block_shape(statements[:1]).leaves[0] is not block_shape(statements[:1]).leaves[0]
