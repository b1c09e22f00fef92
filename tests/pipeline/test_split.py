"""Splitting a notebook into stages: cuts, names, and what crosses from stage to stage.

Pure analysis: no kernel. Notebooks are built in memory from cell lists.
"""

from __future__ import annotations

import nbformat
import pytest

from nb2pkg.pipeline.split import slug, split_notebook, stage_level


def node(*cells):
    """A refactored-looking node: every cell carries nb2pkg.source_cell."""
    nb = nbformat.v4.new_notebook()
    for index, cell in enumerate(cells):
        if isinstance(cell, tuple) and cell[0] == "md":
            new = nbformat.v4.new_markdown_cell(cell[1])
        elif isinstance(cell, tuple):
            new = nbformat.v4.new_code_cell(cell[1])
            new.metadata["tags"] = list(cell[2])
        else:
            new = nbformat.v4.new_code_cell(cell)
        new.metadata["nb2pkg"] = {"source_cell": index}
        nb.cells.append(new)
    return nb


def split(*cells, parameters=None, single_stage=False, join=()):
    return split_notebook("nb", node(*cells), parameters, single_stage=single_stage, join=join)


def by_name(result):
    return {s.name: s for s in result.stages}


def test_level_is_the_smallest_repeated_else_the_top():
    assert stage_level([1, 2, 2, 3]) == 2
    assert stage_level([1, 2, 3]) == 1
    assert stage_level([2, 3, 3, 3, 2]) == 2
    assert stage_level([]) is None


def test_cells_before_the_first_heading_join_the_first_stage():
    result = split(("md", "# Title"), "import os", "x = 1",
                   ("md", "## Load"), "y = x + 1",
                   ("md", "## Use"), "print(y)")
    assert result.level == 2
    assert [s.title for s in result.stages] == ["Load", "Use"]
    assert result.stages[0].cells == (0, 1, 2, 3, 4)


def test_no_headings_is_one_stage_and_single_stage_keeps_one():
    assert len(split("x = 1", "print(x)").stages) == 1
    assert len(split().stages) == 1  # even an empty notebook has its (empty) stage
    result = split(("md", "## A"), "x = 1", ("md", "## B"), "print(x)", single_stage=True)
    assert len(result.stages) == 1
    assert result.stages[0].name == "nb"
    assert result.stages[0].inputs == ()


def test_duplicate_titles_get_unique_names_and_files():
    result = split(("md", "## Plot"), "x = 1", ("md", "## Plot"), "y = x", ("md", "## Plot"),
                   "print(y)")
    names = [s.name for s in result.stages]
    assert names == ["nb-plot", "nb-plot_2", "nb-plot_3"]
    assert len({s.filename for s in result.stages}) == 3


def test_a_section_without_code_joins_the_next_and_no_cell_is_lost():
    cells = [("md", "## Intro\nwords only"), ("md", "## Load"), "x = 1", ("md", "## Notes"),
             ("md", "## Use"), "print(x)", ("md", "## Appendix\nthe end")]
    result = split(*cells)
    assert [s.title for s in result.stages] == ["Load", "Use"]
    covered = [p for s in result.stages for p in s.cells]
    assert sorted(covered) == list(range(len(cells)))  # every cell, exactly once


def test_inputs_come_from_the_latest_stage_that_mentions_them():
    # defined in 1, changed in place in 2, read in 3: stage 3 takes it from stage 2
    result = by_name(split(("md", "## A"), "rows = [1, 2]",
                           ("md", "## B"), "rows.append(3)",
                           ("md", "## C"), "print(rows)"))
    assert result["nb-c"].inputs == (("rows", "nb-b"),)
    assert result["nb-b"].inputs == (("rows", "nb-a"),)
    assert result["nb-b"].outputs == ("rows",)
    assert result["nb-a"].outputs == ("rows",)


def test_in_place_pandas_mutation_is_carried_forward():
    result = by_name(split(("md", "## Load"), "import pandas as pd\ndf = pd.DataFrame({'a': [1]})",
                           ("md", "## Clean"), "df.drop(columns=['a'], inplace=True)",
                           ("md", "## Report"), "print(df.shape)"))
    assert result["nb-report"].inputs == (("df", "nb-clean"),)
    assert result["nb-clean"].outputs == ("df",)


def test_a_value_only_passed_to_a_function_is_still_carried_forward():
    # f may change `rows` in place; nothing shows it, so the later stage takes it from B.
    result = by_name(split(("md", "## A"), "rows = []\ndef add(r):\n    r.append(1)",
                           ("md", "## B"), "add(rows)",
                           ("md", "## C"), "print(rows)"))
    assert dict(result["nb-c"].inputs)["rows"] == "nb-b"


def test_loop_variables_and_other_binding_forms_cross_stages():
    result = by_name(split(("md", "## A"),
                           "for thr in [1, 2]:\n    pass\n"
                           "with open(__file__) as handle:\n    pass\n"
                           "try:\n    1 / 0\nexcept ZeroDivisionError as err:\n    caught = True\n"
                           "import json as j\n"
                           "(w := 5)\n"
                           "a, *rest = [1, 2, 3]",
                           ("md", "## B"), "print(thr, caught, rest, w, a, j.dumps(1))"))
    inputs = dict(result["nb-b"].inputs)
    assert set(inputs) == {"thr", "caught", "rest", "w", "a"}
    assert result["nb-b"].imports == ("import json as j",)


def test_imports_are_copied_not_passed():
    result = by_name(split(("md", "# T"), "import numpy as np\nfrom os import path as p, sep",
                           ("md", "## A"), "x = np.zeros(2)",
                           ("md", "## B"), "print(np.sum(x), p.join('a', 'b'))"))
    b = result["nb-b"]
    assert dict(b.inputs) == {"x": "nb-a"}
    assert b.imports == ("import numpy as np", "from os import path as p, sep")
    assert "np" not in result["nb-a"].outputs


def test_a_package_comes_with_the_submodules_imported_before():
    # spaghetti's notebook imports `matplotlib_scalebar` and, beside it, `from
    # matplotlib_scalebar.scalebar import ScaleBar`, then calls
    # `matplotlib_scalebar.scalebar.ScaleBar(...)`: a stage with the first import only failed
    # (AttributeError: module 'matplotlib_scalebar' has no attribute 'scalebar').
    result = by_name(split(("md", "# T"),
                           "import scalebar as sb\nimport numpy as np\n"
                           "from scalebar.bar import Bar\nimport numpy.linalg\nimport os.path",
                           ("md", "## A"), "x = 1",
                           ("md", "## B"), "print(sb.bar.Bar(x))"))
    assert result["nb-b"].imports == ("import scalebar as sb", "from scalebar.bar import Bar")


def test_definitions_are_copied_with_what_they_read():
    result = by_name(split(("md", "## A"), "THRESHOLD = 0.5\n\ndef label(p):\n    return p > THRESHOLD",
                           ("md", "## B"), "THRESHOLD = 0.4\nprint(label(0.45))",
                           ("md", "## C"), "print(label(0.45))"))
    b, c = result["nb-b"], result["nb-c"]
    assert any(d.startswith("def label(p):") for d in b.definitions)
    assert dict(b.inputs) == {"THRESHOLD": "nb-a"}  # read by label() when called
    assert dict(c.inputs) == {"THRESHOLD": "nb-b"}  # the latest value


def test_classes_are_always_defined_again_for_pickled_instances():
    result = by_name(split(("md", "## A"), "class Box:\n    pass\n\nbox = Box()",
                           ("md", "## B"), "print(box)"))
    assert any(d.startswith("class Box") for d in result["nb-b"].definitions)
    assert dict(result["nb-b"].inputs) == {"box": "nb-a"}


def test_a_class_defined_again_brings_what_its_methods_read():
    """A stage calling a method of an earlier stage's class (here through a subclass) needs the
    imports the method body reads, not only what the class body reads."""
    result = by_name(split("import math\nN = 4",
                           ("md", "## Define"), "class C:\n    k = N\n    def f(self):\n"
                                                "        return math.sqrt(self.k)",
                           ("md", "## Use"), "class D(C):\n    pass\n\nprint(D().f())"))
    use = result["nb-use"]
    assert any(d.startswith("class C") for d in use.late_definitions)  # it reads N
    assert "import math" in use.imports, use.imports


def test_parameters_used_by_a_stage_and_rebinding_makes_a_value():
    cells = [("code", "n = 3  # rows\nname = 'x'\nlimit = n * 2", ["parameters"]),
             ("md", "## A"), "print(n)",
             ("md", "## B"), "name = name.upper()",
             ("md", "## C"), "print(name, limit)"]
    result = split(*cells, parameters=0)
    assert [(p.name, p.default, p.type) for p in result.parameters] == [("n", 3, "int"),
                                                                       ("name", "x", "str")]
    assert result.parameters_residual == "limit = n * 2"  # not a literal: stays code
    stages = by_name(result)
    assert stages["nb-a"].parameters == ("n",)
    assert stages["nb-b"].parameters == ("name",)
    assert dict(stages["nb-c"].inputs) == {"name": "nb-b", "limit": "nb-a"}


def test_pip_install_stays_first_and_matplotlib_magic_goes_to_plotting_stages():
    result = by_name(split("!pip install -q something",
                           "import matplotlib.pyplot as plt\nimport json\n%matplotlib inline\n"
                           "%load_ext autoreload",
                           ("md", "## A"), "x = json.dumps(1)",
                           ("md", "## B"), "plt.plot([1])"))
    a, b = result["nb-a"], result["nb-b"]
    assert a.magics == ()  # the first stage has the cells themselves
    assert "%matplotlib inline" in b.magics and "%load_ext autoreload" in b.magics
    assert not any("pip" in m for m in b.magics)


def test_magics_inside_cells_do_not_confuse_the_analysis():
    result = by_name(split(("md", "## A"), "%%time\ntotal = sum(range(3))",
                           ("md", "## B"), "files = !ls\nprint(total, len(files))"))
    assert dict(result["nb-b"].inputs) == {"total": "nb-a"}


@pytest.mark.parametrize("title, expected", [("Load & clean!", "load_clean"), ("", "stage"),
                                             ("Über uns ✓", "uber_uns")])
def test_slug(title, expected):
    assert slug(title) == expected


def test_definitions_that_read_inputs_when_defined_come_after_loading():
    result = by_name(split(("md", "## A"), "K = 2\n\ndef scale(x, k=K):\n    return x * k",
                           ("md", "## B"), "print(scale(3))"))
    b = result["nb-b"]
    assert dict(b.inputs) == {"K": "nb-a"}
    assert b.definitions == () and b.late_definitions[0].startswith("def scale(x, k=K):")


def test_an_import_a_formula_string_uses_is_copied():
    # statsmodels' predict example: `ols("y ~ x1 + np.sin(x1)", data)` in a later stage failed
    # (patsy: name 'np' is not defined); the formula's other names are data, not inputs.
    result = by_name(split(("md", "# T"), "import numpy as np\nimport pandas as pd\nnp = np",
                           ("md", "## A"), "x1 = pd.Series([1.0])\nnp2 = 1",
                           ("md", "## B"), "fit = ols('y ~ x1 + np.sin(x1) + I(x1.mean())', data)"))
    b = result["nb-b"]
    assert "import numpy as np" not in b.imports  # `np` was rebound as a value after
    result = by_name(split(("md", "# T"), "import numpy as np\nimport pandas as pd",
                           ("md", "## A"), "data = pd.DataFrame({'x1': [1.0]})",
                           ("md", "## B"), "fit = ols('y ~ x1 + np.sin(x1) + I(x1.mean())', data)"))
    b = result["nb-b"]
    assert b.imports == ("import numpy as np",) and dict(b.inputs) == {"data": "nb-a"}


# -- joining stages (--join-stage, and what --verify finds cannot be saved) --------------------
SECTIONS = (("md", "## Load"), "rows = [1, 2]\ngen = iter(rows)",
            ("md", "## Plot"), "", "total = sum(gen)",
            ("md", "## Plot"), "print(total, rows)",
            ("md", "## Report"), "print(total)")


def test_a_joined_stage_runs_in_the_stage_before_and_no_other_is_renamed():
    plain = split(*SECTIONS)
    assert [s.name for s in plain.stages] == ["nb-load", "nb-plot", "nb-plot_2", "nb-report"]
    assert by_name(plain)["nb-plot"].inputs == (("gen", "nb-load"),)

    joined = split(*SECTIONS, join={"nb-plot"})
    assert joined.joined == ("nb-plot",)
    # The second "Plot" keeps its name: names come from the split without joins.
    assert [s.name for s in joined.stages] == ["nb-load", "nb-plot_2", "nb-report"]
    load = by_name(joined)["nb-load"]
    assert load.cells == (0, 1, 2, 3, 4)
    assert load.outputs == ("rows", "total")  # `gen` no longer crosses
    assert by_name(joined)["nb-plot_2"].inputs == (("total", "nb-load"), ("rows", "nb-load"))
    assert [s.index for s in joined.stages] == [0, 1, 2]  # file names follow: 02_plot_2...


def test_joining_every_stage_leaves_one_and_unknown_or_first_names_join_nothing():
    everything = split(*SECTIONS, join={"nb-plot", "nb-plot_2", "nb-report"})
    assert [s.name for s in everything.stages] == ["nb-load"]
    assert everything.level is None and everything.stages[0].inputs == ()
    nothing = split(*SECTIONS, join={"nb-load", "nb-elsewhere"})
    assert nothing.joined == () and len(nothing.stages) == 4


def test_boundaries_count_cells_as_nbclient_runs_them_and_list_what_may_cross():
    from nb2pkg.pipeline.stages import boundaries

    cells = node(*SECTIONS)
    found = boundaries(split_notebook("nb", cells), cells)
    # Ordinals skip markdown and the blank code cell: 1 is "rows = ...", 2 "total = ...".
    assert found == {1: ("nb-plot", ("gen", "rows")),
                     2: ("nb-plot_2", ("rows", "total")),
                     3: ("nb-report", ("total",))}
    joined = split_notebook("nb", cells, join={"nb-plot"})
    assert boundaries(joined, cells) == {2: ("nb-plot_2", ("rows", "total")),
                                         3: ("nb-report", ("total",))}


# -- cells that raise on purpose ----------------------------------------------------------------
def test_a_cell_tagged_to_raise_is_left_out_when_nothing_after_reads_what_it_changes():
    result = split(("md", "## Fit"), "model = [1]",
                   ("code", "int(bad)  # shows the error", ["raises-exception"]),
                   ("code", "y = int('x')", ["raises-exception"]),
                   ("code", "model.append(2)\nmodel[5]", ["raises-exception"]),
                   ("md", "## Use"), "print(model, y)",
                   ("code", "model.clear()\n1 / 0", ["raises-exception"]))
    # Cell 2 changes nothing. Cell 3 binds `y` and cell 4 may change `model` (a method
    # call), both read by cell 6: they stay (and the stage fails there, saying so). Cell 7
    # changes `model`, but nothing reads it after.
    assert result.left_out == (2, 7)
    # What a left-out cell reads is no input: `bad` is nowhere.
    assert [n for s in result.stages for n, _ in s.inputs] == ["model", "y"]


def test_a_cell_marked_by_nbvals_comment_is_left_out_as_one_tagged():
    # pvlib's tracking tutorial marks a cell that raises on purpose with nbval's comment, not
    # the tag; papermill stopped the pipeline there.
    result = split(("md", "## Fit"), "model = [1]",
                   "# NBVAL_RAISES_EXCEPTION\nmodel[5]",
                   "## NBVAL_RAISES_EXCEPTION  \nmodel[6]",
                   "model[7]  # NBVAL_RAISES_EXCEPTION",  # not a comment line: nbval ignores it
                   "text = 'NBVAL_RAISES_EXCEPTION'",
                   ("md", "## Use"), "print(model, text)")
    assert result.left_out == (2, 3)


# -- session settings ---------------------------------------------------------------------------
def test_settings_earlier_stages_made_are_made_again_after_the_imports():
    # sksurv's coxnet example: `set_config(display="text")` in the first cell; a later stage
    # in a kernel of its own showed the HTML repr, which raised with that scikit-learn.
    result = split(("md", "## Load"),
                   "import warnings\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
                   "from sklearn import set_config\nset_config(display='text')\n"
                   "pd.set_option('display.max_rows', 5)\npd.options.display.precision = 2\n"
                   "plt.rcParams['figure.figsize'] = (4, 3)\nplt.style.use('ggplot')\n"
                   "warnings.filterwarnings('ignore')",
                   "rows = 5\npd.set_option('display.max_columns', rows)\nrows.set_option(1)",
                   ("md", "## Fit"), "model = 1\nprint(model)",
                   ("md", "## Show"), "print(model)")
    fit, show = result.stages[1], result.stages[2]
    # Not those reading a notebook value (`rows`): that would make it an input.
    assert fit.settings == show.settings == (
        "set_config(display='text')", "pd.set_option('display.max_rows', 5)",
        "pd.options.display.precision = 2", "plt.rcParams['figure.figsize'] = (4, 3)",
        "plt.style.use('ggplot')", "warnings.filterwarnings('ignore')")
    assert fit.imports == ("import warnings", "import pandas as pd",
                           "import matplotlib.pyplot as plt", "from sklearn import set_config")
    assert result.stages[0].settings == () and fit.inputs == ()


def test_a_plotting_backend_chosen_for_the_session_is_chosen_again():
    # colorcet's user guide: `hv.extension('bokeh')` (`hv.notebook_extension('matplotlib')` on
    # its Continuous page) in the first cell; the second stage's `swatch(...)` raised "No entry
    # for 'Image' registered" in a kernel without it.
    result = split(("md", "## Setup"),
                   "import holoviews as hv\nimport panel as pn\nimport seaborn as sns\n"
                   "from bokeh.io import output_notebook\nhv.extension('bokeh')\n"
                   "pn.extension()\noutput_notebook()\nhv.opts.defaults(hv.opts.Curve(width=4))\n"
                   "sns.set()\nhv.notebook_extension('matplotlib')\nrows = [1]\n"
                   "rows.extension([2])",
                   ("md", "## Show"), "hv.Curve(rows)")
    assert result.stages[1].settings == (
        "hv.extension('bokeh')", "pn.extension()", "output_notebook()",
        "hv.opts.defaults(hv.opts.Curve(width=4))", "sns.set()",
        "hv.notebook_extension('matplotlib')")
