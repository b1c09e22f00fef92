"""Tests for nb2pkg.magics: masking IPython syntax into parseable Python and back."""

from __future__ import annotations

import ast
import random
import re
import subprocess
import sys
import warnings

import hypothesmith
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from IPython.core.inputtransformer2 import TransformerManager

from nb2pkg import magics
from nb2pkg.magics import (
    PLACEHOLDER_PREFIX,
    PYTHON_BODY_CELL_MAGICS,
    Magic,
    Masked,
    is_placeholder_name,
    mask,
    unmask,
)

EOL = re.compile(r"\r\n|\r|\n")

# hypothesmith compiles the code it generates; its warnings are noise here
pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


def check(source: str, *, parse: bool | None = True) -> Masked:
    """mask() + the invariants every result must satisfy."""
    m = magics._mask(source)  # strict: no safety net hiding bugs
    assert mask(source) == m
    assert unmask(m.code, m.replacements) == source
    assert len(m.replacements) == len(m.magics)
    # the masked code keeps the cell's line numbering
    assert len(EOL.findall(m.code)) == len(EOL.findall(source))
    for placeholder, original in m.replacements:
        assert m.code.count(placeholder) == 1
        assert original in source
    names = [n for n in placeholder_names(m.code) if n not in source]
    assert len(names) == len(set(names)) == len(m.magics)
    if not m.magics:
        assert m.code == source and m.replacements == ()
    if parse is not None:
        assert parses(m.code) is parse, m.code
    return m


def placeholder_names(code: str) -> list[str]:
    return [n for n in re.findall(r"\w+", code) if is_placeholder_name(n)]


def summary(m: Masked) -> list[tuple[str, str, int]]:
    return [(g.kind, g.name, g.line) for g in m.magics]


def assigned_names(code: str) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.add(node.id)
    return out


def loaded_names(code: str) -> set[str]:
    return {
        n.id
        for n in ast.walk(ast.parse(code))
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


# --------------------------------------------------------------------------
# examples: every form
# --------------------------------------------------------------------------

EXAMPLES = [
    # line magics
    ("%matplotlib inline", [("line", "matplotlib", 1)]),
    (
        "import os\n%load_ext autoreload\n%autoreload 2\n",
        [("line", "load_ext", 2), ("line", "autoreload", 3)],
    ),
    ("%%time?", [("help", "pinfo", 1)]),
    ("x = %who_ls", [("line", "who_ls", 1)]),
    ("t = %timeit -o f()", [("line", "timeit", 1)]),
    ("for i in range(3): x = %time f()", [("line", "time", 1)]),
    # "!=", "==", "<=" ... are not the assignment "="
    ("if a != b: files = !ls", [("shell", "ls", 1)]),
    ("if a == b <= c >= d: t = %time f()", [("line", "time", 1)]),
    ("if a != b: x = %x", [("line", "x", 1)]),
    # shell
    ("!pip install numpy", [("shell", "pip", 1)]),
    ("!!ls -la", [("shell", "ls", 1)]),
    ("! ls", [("shell", "ls", 1)]),
    ("files = !ls *.csv", [("shell", "ls", 1)]),
    ("x: list = !ls", [("shell", "ls", 1)]),
    ("!{sys.executable} -m pip install x", [("shell", "{sys.executable}", 1)]),
    # help
    ("np.mean?", [("help", "pinfo", 1)]),
    ("np.mean??", [("help", "pinfo2", 1)]),
    ("?np.mean", [("help", "pinfo", 1)]),
    ("??np.mean", [("help", "pinfo2", 1)]),
    ("np.*mean*?", [("help", "psearch", 1)]),
    ("%pinfo np", [("help", "pinfo", 1)]),
    ("%pinfo2 np", [("help", "pinfo2", 1)]),
    ("a[0]?", [("help", "pinfo", 1)]),
    ("%timeit?", [("help", "pinfo", 1)]),
    # as in IPython, a statement ending in `name?` is help about that name
    ("x = y?", [("help", "pinfo", 1)]),
    ("%time x?", [("help", "pinfo", 1)]),
    # indented (inside blocks) -- must still parse
    (
        "if x:\n    %matplotlib inline\n    !ls\n",
        [("line", "matplotlib", 2), ("shell", "ls", 3)],
    ),
    ("for f in fs:\n    out = !wc -l {f}\n    print(out)\n", [("shell", "wc", 2)]),
    ("def f():\n    x = %env HOME\n    return x\n", [("line", "env", 2)]),
    ("while True:\n\tobj?\n", [("help", "pinfo", 2)]),
    # continuation lines
    ("%pip install a \\\n    b \\\n    c\nx = 1\n", [("line", "pip", 1)]),
    ("!echo a \\\n  b\n", [("shell", "echo", 1)]),
    ("x = \\\n  %time f()\n", [("line", "time", 1)]),
    ("files = !ls \\\n  -la\n", [("shell", "ls", 1)]),
    # magic text containing what looks like Python strings/brackets
    ('!echo "(unbalanced\nx = [1]\n', [("shell", "echo", 1)]),
    ("!echo '''\n%ls\n", [("shell", "echo", 1), ("line", "ls", 2)]),
    ("%env X=1 # ?\n", [("line", "env", 1)]),
    # several in one cell, placeholders stay unique
    (
        "%ls\n%ls\n!ls\n!ls\na = !ls\nb = !ls\n",
        [("line", "ls", i) for i in (1, 2)]
        + [("shell", "ls", i) for i in (3, 4, 5, 6)],
    ),
]


@pytest.mark.parametrize("source,expected", EXAMPLES)
def test_examples(source, expected):
    m = check(source)
    assert summary(m) == expected
    assert m.has_magics


@pytest.mark.parametrize("source", [s for s, _ in EXAMPLES])
def test_examples_crlf(source):
    crlf = source.replace("\n", "\r\n")
    m = check(crlf)
    assert [(g.kind, g.name, g.line) for g in m.magics] == summary(mask(source))
    assert "\r\n" not in m.code or m.code.count("\r\n") == crlf.count("\r\n")


def test_line_magic_placeholder_shape():
    m = check("%matplotlib inline\nimport numpy as np\n")
    name = placeholder_names(m.code)[0]
    assert m.code == f"{name}()\nimport numpy as np\n"
    assert re.fullmatch(r"__nb2pkg_m0_[0-9a-f]{8}__", name)
    assert m.replacements == ((f"{name}()", "%matplotlib inline"),)
    assert m.magics == (Magic("line", "matplotlib", "%matplotlib inline", 1),)
    tree = ast.parse(m.code)
    assert isinstance(tree.body[0], ast.Expr) and isinstance(
        tree.body[0].value, ast.Call
    )


@pytest.mark.parametrize(
    "source,target",
    [
        ("files = !ls", "files"),
        ("files = !!ls", "files"),
        ("t = %timeit -o f()", "t"),
        ("x = %env HOME", "x"),
        ("self.out = !ls", None),  # attribute target
        ("a, b = !echo 1 2", "a"),
        ("%%capture out\nprint(1)", "out"),
        ("%%capture --no-stderr cap\nprint(1)", "cap"),
    ],
)
def test_assignment_targets_stay_visible(source, target):
    m = check(source)
    tree = ast.parse(m.code)
    assign = tree.body[0]
    assert isinstance(assign, (ast.Assign, ast.AnnAssign))
    value = assign.value
    assert isinstance(value, ast.Call) and is_placeholder_name(value.func.id)
    if target is not None:
        assert target in assigned_names(m.code)


def test_assignment_keeps_lhs_text_and_records_whole_statement():
    m = check(
        "    files = !ls -la  # comment?\n", parse=False
    )  # indented: not parseable alone
    assert m.code.startswith("    files = __nb2pkg_m0_")
    assert m.replacements[0][1] == "!ls -la  # comment?"
    assert m.magics[0].text == "files = !ls -la  # comment?"
    assert m.magics[0].kind == "shell" and m.magics[0].line == 1


def test_capture_without_target_binds_nothing():
    m = check("%%capture\nx = 1\n")
    assert assigned_names(m.code) == {"x"}
    assert summary(m) == [("cell", "capture", 1)]


def test_time_line_magic_keeps_statement_analyzable():
    m = check("%time df = load(path)\nprint(df)\n")
    assert summary(m) == [("line", "time", 1)]
    assert m.magics[0].text == "%time df = load(path)"
    assert "df" in assigned_names(m.code)
    assert {"load", "path"} <= loaded_names(m.code)
    # not plain Python after %time -> opaque
    for src in ("%time for i in x: f(i)\n", "%time !ls\n", "%time\n", "%time -q x\n"):
        m = check(src)
        assert summary(m) == [("line", "time", 1)]
        assert assigned_names(m.code) == set()


def test_time_with_continuation_and_indentation():
    src = "if ok:\n    %time y = f(1,\\\n  2)\n    print(y)\n"
    m = check(src)
    assert "y" in assigned_names(m.code)
    assert [n.lineno for n in ast.parse(m.code).body[0].body] == [2, 2, 4]


# --------------------------------------------------------------------------
# cell magics
# --------------------------------------------------------------------------

OPAQUE = [
    "%%bash\necho hi\nfor f in *; do echo $f; done\n",
    "%%writefile mod.py\ndef f():\n    return 1\n",
    "%%html\n<b>%bold!</b>?",
    "%%sql\nSELECT * FROM t WHERE a != 'x?'",
    "%%javascript\nconsole.log('!')\n",
    "%%my_unknown_magic --opt\n this is not python :(\n",
    "%%python\nprint(1)\n",
    "%%cython\ncdef int x = 1\n",
    "%%!\nls\n",
    "%%",
]


@pytest.mark.parametrize("source", OPAQUE)
def test_opaque_cell_magic_is_one_statement(source):
    m = check(source)
    assert len(m.magics) == 1
    (g,) = m.magics
    assert g.kind == "cell" and g.line == 1 and g.text == source
    assert g.name == re.match(r"%%(\S*)", source).group(1)
    tree = ast.parse(m.code)
    assert len(tree.body) == 1 and isinstance(tree.body[0].value, ast.Call)
    assert m.replacements == ((m.code, source),)


def test_opaque_cell_magic_after_blank_lines_and_indent():
    src = "\n  \n  %%bash\n  echo hi\n"
    m = check(src)
    assert summary(m) == [("cell", "bash", 3)]
    assert m.magics[0].text == "  %%bash\n  echo hi\n"
    assert m.code.startswith("\n  \n__nb2pkg_m0_")


@pytest.mark.parametrize("name", sorted(PYTHON_BODY_CELL_MAGICS))
def test_python_body_cell_magics_keep_body(name):
    src = f"%%{name}\nimport os\nx = os.getcwd()\n!ls\nif x:\n    %matplotlib inline\n"
    m = check(src)
    assert summary(m) == [
        ("cell", name, 1),
        ("shell", "ls", 4),
        ("line", "matplotlib", 6),
    ]
    assert m.magics[0].text == f"%%{name}"
    assert "x" in assigned_names(m.code)
    tree = ast.parse(m.code)
    assert isinstance(tree.body[1], ast.Import) and tree.body[2].lineno == 3


def test_python_body_cell_magic_args_and_nested_cell_magic():
    m = check("%%timeit -n 10 setup = 1\nf(x)\n")
    assert summary(m) == [("cell", "timeit", 1)]
    assert "f" in loaded_names(m.code)
    # the body of %%time is itself a cell: a %%bash first line is a cell magic
    m = check("%%time\n%%bash\necho 1\n")
    assert summary(m) == [("cell", "time", 1), ("cell", "bash", 2)]


def test_cell_magic_not_on_first_line_is_a_line_escape():
    # IPython: "UsageError: Line magic function `%%time` not found"
    m = check("# comment\n%%time\nx = 1\n")
    assert summary(m) == [("line", "%time", 2)]
    m = check("x = 1\n%%bash\necho hi\n", parse=False)
    assert summary(m) == [("line", "%bash", 2)]


# --------------------------------------------------------------------------
# things that are NOT IPython syntax
# --------------------------------------------------------------------------

NOT_MAGIC = [
    "a != b\nx = y % z\nx %= 3\n",
    "print('?')\nprint(\"!ls\")\ns = '%matplotlib inline'\n",
    "# %matplotlib inline\n# !pip install x\n# what?\n",
    "x = 1  # is this right?\n",
    's = """\n%matplotlib inline\n!pip install x\nwhat?\n"""\n',
    "s = '''\\\n%time\n?\n'''\n",
    "f(a\n  %b)\n",  # continuation line inside brackets
    "x = (1\n     % 2)\n",
    "d = {'a': 1,\n     'b': 2}\n",
    'msg = "50%" if ok else "!"\n',
    "x = f'{a!r} {b!s}'\n",
    "x = '%s' % y\n",
    "value = 10 % 3 != 1\n",
    "s = 'it\\'s %d' % 3\n",
    "x = 1 if a else 2  # ?\n",
    "y = \\\n    '%s?' % a\n",
    "w = r'\\'%'\n",
    "b'%'\nrb'!'\n",
]


@pytest.mark.parametrize("source", NOT_MAGIC)
def test_python_that_looks_like_magics_is_untouched(source):
    m = check(source)
    assert m.code is source or m.code == source
    assert not m.has_magics


def test_strings_containing_magic_text_around_real_magics():
    src = 's = """\n%notmagic\n!notshell\n"""\n%matplotlib inline\nt = "x?"\n'
    m = check(src)
    assert summary(m) == [("line", "matplotlib", 5)]
    assert ast.parse(m.code).body[0].value.value == "\n%notmagic\n!notshell\n"


@pytest.mark.parametrize(
    "source",
    [
        "d['a']?",  # IPython only allows literal int subscripts before ?
        "print(x)?",
        "x = 1; %time f()",  # an escape must start the logical line
        "if x: %time f()",
        "x = %",
        "/f a b",  # autocall escapes are left alone
        "def f(:\n    pass",
        "x = (",
        "%=1",
        "!=1",
    ],
)
def test_syntax_errors_stay_errors(source):
    m = check(source, parse=False)
    assert unmask(m.code, m.replacements) == source


@pytest.mark.parametrize(
    "source,expected",
    [
        # help wins over the escape / assignment on the same statement
        ("!ls -la /tmp?", [("help", "pinfo", 1)]),
        ("x = !ls?", [("help", "pinfo", 1)]),
        # ... but only when "?" ends the line exactly
        ("!echo why? \n!echo why?#\n", [("shell", "echo", 1), ("shell", "echo", 2)]),
        # an unclosed bracket continues the logical line up to a trailing "?"
        ("%matplotlib (\nx = 1\n_._?", [("help", "pinfo", 1)]),
        # a statement may begin with backslash continuation lines
        ("\\\n%ls\n", [("line", "ls", 2)]),
        # only the first top-level "=" is considered
        ("a = b = !ls", []),
        ("f(a=1); x = !ls", [("shell", "ls", 1)]),
        ("x = % time", [("line", "", 1)]),
        ("x = %1", []),
    ],
)
def test_ipython_quirks_are_mirrored(source, expected):
    m = check(source, parse=None)
    assert summary(m) == expected
    if expected:
        agree(source, inside_hypothesis=False)
    else:  # IPython leaves these alone too, so the cell is a syntax error
        assert ipython_magics(source) is None
        assert not parses(m.code)


# Where tokenize (Python 3.11, as IPython uses it) ends a logical line differently from what the
# characters suggest, which decides between help, escape and Python. Each case was a
# disagreement with IPython (the first found by the character-soup test).
@pytest.mark.parametrize(
    "source,expected",
    [
        # A one-quote string continued by a backslash and never closed is one error token up to
        # the end of the next line: no "?" ends the magic's line, it is not help.
        ("%'\\\n*?", [("line", "'", 1)]),
        ("%'\\\n\\\n*?", [("line", "'", 1)]),
        ("%ls\\\n'\\\n*?", [("line", "ls", 1)]),
        ("!echo '\\\n*?", [("shell", "echo", 1)]),
        ("!echo '\\\nx??", [("shell", "echo", 1)]),
        ("x = !echo '\\\nx?", [("shell", "echo", 1)]),
        ("x = %ls '\\\nx?", [("line", "ls", 1)]),
        ('??x "\\\ny?', [("help", "pinfo2", 1)]),  # the escape, not the "?" at the end
        # ... and that token takes the line break: the next line is part of the statement
        ("%'\\\n*?\nx?", [("help", "pinfo", 1)]),
        ("x = '\\\nab\ny?", [("help", "pinfo", 1)]),
        ('pip\'ab. .!![??}\\\n"\n*x*(ab?', [("help", "pinfo", 1)]),
        # ... unless that line is blank or only a comment
        ("%'\\\n*?\n\nx?", [("line", "'", 1), ("help", "pinfo", 4)]),
        ("%'\\\n*?\n# c\nx?", [("line", "'", 1), ("help", "pinfo", 4)]),
        # A triple-quoted string left open stops tokenize: IPython then reads the token before
        # the last one, and the help text up to the end of that token's line.
        ("a ??'''pip?\ny = 1", [("help", "pinfo", 1)]),
        ("a ??rb'''pip?\ny = 1", [("help", "pinfo", 1)]),
        ("%ls ??'''pip?\ny = 1", [("help", "pinfo", 1)]),
        ("(x\"\nab.??:'''{pip?", [("help", "pinfo", 1)]),
        # After a continuation line, spaces before "?" or "!" are a token of their own: no
        # escape there, and help replaces the statement from the spaces on.
        ("\\\n ??(1(pip:!(.\n*x*pipx??", [("help", "pinfo2", 2)]),
        ("x = 1\n\\\n ?x?", [("help", "pinfo", 3)]),
        ("\\\n 'x?", [("help", "pinfo", 2)]),  # a quote no string follows from, "$" too
        ("\\\n $x?", [("help", "pinfo", 2)]),
    ],
)
def test_tokenize_line_ends_are_mirrored(source, expected):
    m = check(source)  # IPython can run each of these, so the masked code parses
    assert summary(m) == expected
    agree(source, inside_hypothesis=False)


@pytest.mark.parametrize("source", ["(x?\n\n", "\\\n !ls", "\\\n ?x"])
def test_tokenize_line_ends_ipython_cannot_run(source):
    # the NL of the blank line is the token IPython looks at; the spaces hide the escape
    m = check(source, parse=False)
    assert m.magics == () and ipython_magics(source) is None


def test_syntax_error_elsewhere_still_masks_magics():
    m = check("%matplotlib inline\ndef f(:\n", parse=False)
    assert summary(m) == [("line", "matplotlib", 1)]


@pytest.mark.parametrize(
    "source", ["", "\n", "   ", "\r\n\r\n", "# only a comment", "pass"]
)
def test_trivial_cells(source):
    m = check(source)
    assert m == Masked(source, (), ())
    assert not m.has_magics


def test_crlf_and_lone_cr_and_tabs():
    src = "a = 1\r\n%ls -la\r\nfiles = !ls \\\r\n  -1\r\n\tx?\r\nb = 2\r"
    m = check(src, parse=False)  # "\tx?" is indented at top level
    assert summary(m) == [("line", "ls", 2), ("shell", "ls", 3), ("help", "pinfo", 5)]
    src = "a = 1\r%ls\rb = 2\r"
    m = check(src)
    assert summary(m) == [("line", "ls", 2)]
    assert ast.parse(m.code).body[-1].lineno == 3


def test_unicode_and_surrogates():
    src = "données = !ls été\n%env ÉTÉ=1\nπ?\n\udcff = 1\n"
    m = check(src, parse=False)
    assert summary(m) == [("shell", "ls", 1), ("line", "env", 2), ("help", "pinfo", 3)]


def test_help_with_trailing_whitespace_is_masked():
    # IPython itself only accepts "obj?" at the very end of the line; we are
    # lenient (a trailing "?" is never valid Python anyway).
    m = check("obj?   \nobj2?\t\r\n")
    assert summary(m) == [("help", "pinfo", 1), ("help", "pinfo", 2)]


# --------------------------------------------------------------------------
# line numbers, placeholders, unmask
# --------------------------------------------------------------------------


def test_line_numbers_are_preserved():
    src = "%pip install a \\\n   b \\\n   c\nx = 1\n!ls\ny = x\n"
    m = check(src)
    body = ast.parse(m.code).body
    assert [n.lineno for n in body] == [1, 4, 5, 6]


def test_placeholders_never_collide_with_user_text():
    # a cell that already contains placeholder-like text (e.g. masked twice)
    first = mask("%ls\n!pwd\n")
    src = first.code + "%matplotlib inline\n" + "__nb2pkg_m0___ = 1\n"
    m = check(src)
    assert summary(m) == [("line", "matplotlib", 3)]
    assert all(p not in src for p, _ in m.replacements)
    # and the inner masked text is restored untouched
    assert unmask(m.code, m.replacements) == src
    assert (
        unmask(unmask(m.code, m.replacements), first.replacements)
        == "%ls\n!pwd\n%matplotlib inline\n__nb2pkg_m0___ = 1\n"
    )


def test_salt_is_deterministic_and_avoids_the_source():
    assert mask("%ls\n").code == mask("%ls\n").code
    assert mask("%ls\n").code != mask("%ls\n\n").code
    for src in ("%ls\n", "x = 1\n!pwd", "a?" * 50):
        salt = magics._salt(src)
        assert re.fullmatch(r"[0-9a-f]{8}", salt) and salt not in src


def test_salt_retries_on_collision(monkeypatch):
    calls = []
    real = magics.zlib.crc32

    def fake_crc32(data, seed=0):
        calls.append(seed)
        return 0xDEADBEEF if seed == 0 else real(data, seed)

    monkeypatch.setattr(magics.zlib, "crc32", fake_crc32)
    src = "x = 'deadbeef'\n%ls\n"
    m = check(src)
    assert calls[:2] == [0, 1]
    assert "deadbeef" not in m.code.replace("x = 'deadbeef'", "")


def test_is_placeholder_name():
    m = mask("%ls\nx = !pwd\n")
    names = placeholder_names(m.code)
    assert len(names) == 2 and all(n.startswith(PLACEHOLDER_PREFIX) for n in names)
    for bad in (
        "files",
        "__nb2pkg_",
        "__nb2pkg_m0__",
        "__nb2pkg_m0_ABCDEF12__",
        "_nb2pkg_m0_abcdef12__",
        "",
    ):
        assert not is_placeholder_name(bad)
    assert is_placeholder_name("__nb2pkg_m12_abcdef12__")


def test_unmask_after_rewrites():
    src = "if x:\n    %pip install a \\\n      b\n    files = !ls\n%time y = 2\n"
    m = check(src)
    # a formatter collapsed the multi-line call and re-indented everything
    code = re.sub(r"\(\n\)", "()", m.code)
    assert code != m.code
    restored = unmask(code, m.replacements)
    assert restored == src
    # statements moved into a function body (re-indented)
    moved = "def f():\n" + "".join("    " + line for line in m.code.splitlines(True))
    assert unmask(moved, m.replacements) == "def f():\n" + "".join(
        "    " + line for line in src.splitlines(True)
    ).replace("          b", "      b")
    # replacements may be any iterable of pairs
    assert unmask(m.code, iter(list(m.replacements))) == src
    assert unmask("no placeholders", m.replacements) == "no placeholders"
    assert unmask(m.code, ()) == m.code


def test_results_are_frozen():
    m = mask("%ls")
    with pytest.raises(AttributeError):
        m.code = ""  # type: ignore[misc]
    with pytest.raises(AttributeError):
        m.magics[0].name = "x"  # type: ignore[misc]


def test_mask_rejects_non_str():
    with pytest.raises(TypeError):
        mask(b"%ls")  # type: ignore[arg-type]


def test_mask_never_raises_even_if_internals_fail(monkeypatch):
    def boom(self):
        raise RuntimeError("bug")

    monkeypatch.setattr(magics._Scanner, "run", boom)
    assert mask("%ls") == Masked("%ls", (), ())


# --------------------------------------------------------------------------
# performance and import cost
# --------------------------------------------------------------------------

TYPICAL = (
    "import pandas as pd\n"
    "df = pd.read_csv('data.csv')\n"
    "df['ratio'] = df['a'] / df['b']\n"
    "# percentages\n"
    "for col in df.columns:\n"
    "    print('%s: %.1f%%' % (col, df[col].mean() * 100))\n"
    "if len(df) != 0:\n"
    "    summary = df.describe()\n"
    "summary.to_csv('out.csv')\n"
    "summary.head()\n"
)


def test_fast_path_returns_input_unchanged():
    src = TYPICAL.replace("%", "pct").replace("!=", "<")
    m = mask(src)
    assert m.code is src and m.replacements == () and m.magics == ()


# Speed is measured in bench/, not here. These inputs made earlier versions quadratic (minutes
# for one cell): the timeout turns such a regression into a failure instead of a hang.
@pytest.mark.timeout(60)
def test_many_magics_are_all_found():
    src = "".join(f"!pip install pkg{i}\nx{i} = f({i})\n" for i in range(500))
    m = check(src)
    assert [magic.text for magic in m.magics] == [f"!pip install pkg{i}" for i in range(500)]


@pytest.mark.timeout(60)
def test_unclosed_brackets_in_many_magics_stay_magics():
    src = "".join(f"!echo ({i}\n" for i in range(2000))
    m = check(src, parse=True)
    assert len(m.magics) == 2000 and all(magic.kind == "shell" for magic in m.magics)


@pytest.mark.timeout(60)
def test_pathological_help_lines_round_trip():
    for src in (
        'x = "' + "A" * 50_000 + '"?',
        "A" * 50_000 + "-?",
        "x." * 20_000 + "y?",
    ):
        check(src, parse=None)


def test_import_does_not_import_ipython():
    code = "import sys, nb2pkg.magics as m; m.mask('%ls\\nx?\\n%time y = 1\\n'); print('IPython' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------
# property-based tests
# --------------------------------------------------------------------------

SLOW = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
FAST = settings(max_examples=150, deadline=None)

# text rich in the characters that matter
SPECIAL = st.lists(
    st.sampled_from(
        list("%!?=#\\'\"()[]{}.*,;/ \t\f\n\r")
        + ["\r\n", "%%", "!!", "??", "'''", '"""', "ab", "x", "1", "é"]
    ),
    max_size=40,
).map("".join)


@FAST
@given(st.text())
def test_round_trip_any_text(source):
    check(source, parse=None)


@FAST
@given(SPECIAL)
def test_round_trip_special_text(source):
    check(source, parse=None)


@FAST
@given(st.lists(SPECIAL, max_size=6).map("\n".join))
def test_round_trip_special_lines(source):
    check(source, parse=None)


def _hypothesmith_module():
    return hypothesmith.from_grammar()


@SLOW
@given(_hypothesmith_module())
def test_valid_python_is_never_masked(source):
    # valid Python never contains IPython syntax, so it must come back as is
    m = check(source, parse=None)
    assert m.code == source and not m.magics, m.magics


# generated IPython lines ------------------------------------------------

IDENT = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: not __import__("keyword").iskeyword(s)
)
ARG_SAFE = st.text(alphabet="abcxyz019 -=./*,:", max_size=15)  # no quotes/brackets/?/\
# No opening brackets: an unclosed one would continue the logical line and
# let a later "obj?" line swallow the magic (IPython does that too, see
# test_ipython_quirks_are_mirrored).
# Nor an unclosed quote: continued by a backslash line it joins the lines below, and a later
# "obj?" swallows the magic, as IPython does (test_tokenize_line_ends_are_mirrored).
ARG_RICH = st.text(alphabet="abc019 -=./*,:'\")]}#$%!&|<>;~`", max_size=20).filter(
    lambda s: not s.endswith("\\") and s.count("'") % 2 == 0 and s.count('"') % 2 == 0
)
MAGIC_NAMES = st.sampled_from(
    [
        "matplotlib",
        "pip",
        "load_ext",
        "env",
        "ls",
        "who",
        "run",
        "timeit",
        "config",
        "sx",
    ]
)


@st.composite
def magic_line(draw, args=ARG_SAFE):
    """(text, kind, name) of one IPython statement fitting on its own lines."""
    form = draw(
        st.sampled_from(
            [
                "line",
                "shell",
                "shell2",
                "assign_line",
                "assign_shell",
                "help_end",
                "help_start",
                "pinfo",
                "continued",
            ]
        )
    )
    a = draw(args).rstrip()
    if form == "line":
        name = draw(MAGIC_NAMES)
        return f"%{name} {a}", "line", name
    if form == "shell":
        cmd = draw(st.sampled_from(["ls", "pip", "echo", "wc"]))
        return f"!{cmd} {a}", "shell", cmd
    if form == "shell2":
        return f"!!echo {a}", "shell", "echo"
    if form == "assign_line":
        name = draw(MAGIC_NAMES)
        return f"{draw(IDENT)} = %{name} {a}", "line", name
    if form == "assign_shell":
        return f"{draw(IDENT)} = !ls {a}", "shell", "ls"
    if form == "help_end":
        q = draw(st.sampled_from(["?", "??"]))
        return (
            f"{draw(IDENT)}.{draw(IDENT)}{q}",
            "help",
            "pinfo" if q == "?" else "pinfo2",
        )
    if form == "help_start":
        q = draw(st.sampled_from(["?", "??"]))
        return f"{q}{draw(IDENT)}", "help", "pinfo" if q == "?" else "pinfo2"
    if form == "pinfo":
        return f"%pinfo {draw(IDENT)}", "help", "pinfo"
    b = draw(args).rstrip()
    return f"%pip install {a} \\\n    {b}", "line", "pip"


PY_LINES = st.sampled_from(
    [
        "x = 1",
        "y = x % 2",
        "if a != b:\n    pass",
        "s = '%d!' % 3",
        "print('?')",
        't = """\n%not_magic\n!not_shell\nnot_help?\n"""',
        "# %comment ?",
        "d = {'k': [1,\n      2]}",
        "z = (1\n     % 2)",
        "for i in range(2):\n    x += i",
        "",
        "msg = 'why?'",
        "u = x if x else -1  # really?",
    ]
)


def ipython_magics(cell: str) -> list[tuple[str, str | None]] | None:
    """(kind, name) of every get_ipython() call IPython itself makes of ``cell``.

    None if IPython rejects the cell or its output is not valid Python (then
    the cell cannot run in Jupyter and there is nothing to agree on).
    """
    try:
        out = TransformerManager().transform_cell(cell)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(out)
    except Exception:
        return None
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Call)
        and getattr(node.func.value.func, "id", None) == "get_ipython"
    ]
    calls.sort(key=lambda c: (c.lineno, c.col_offset))
    word = lambda text: re.match(r"\S*", text).group()  # noqa: E731
    result: list[tuple[str, str | None]] = []
    for call in calls:
        method = call.func.attr
        args = [a.value for a in call.args]
        if method == "run_line_magic":
            kind = "help" if args[0] in ("pinfo", "pinfo2", "psearch") else "line"
            result.append((kind, word(args[0])))
        elif method in ("system", "getoutput"):
            result.append(("shell", word(re.sub(r"\\\n", " ", args[0]).lstrip())))
        elif method == "run_cell_magic":
            result.append(("cell", word(args[0])))
        elif method == "show_usage":
            result.append(("help", None))  # bare "?": any help name is fine
    return result


def agree(source: str, *, inside_hypothesis: bool = True) -> None:
    """Assert that mask() finds exactly what IPython transforms."""
    theirs = ipython_magics(source)
    if inside_hypothesis:
        assume(theirs is not None)
    else:
        assert theirs is not None, "IPython cannot run this cell"
    ours = [(g.kind, g.name) for g in mask(source).magics]
    theirs = [
        (k, n if n is not None else o[1]) for (k, n), o in zip(theirs, ours)
    ] + theirs[len(ours) :]
    assert ours == theirs


@st.composite
def mixed_cell(draw, args=ARG_SAFE):
    parts = []
    expected = []
    for _ in range(draw(st.integers(1, 6))):
        if draw(st.booleans()):
            parts.append(draw(PY_LINES))
        else:
            text, kind, name = draw(magic_line(args))
            if draw(st.booleans()):
                text = "if True:\n    " + text.replace("\n", "\n    ")
                line_offset = 1
            else:
                line_offset = 0
            start = sum(p.count("\n") + 1 for p in parts) + 1 + line_offset
            parts.append(text)
            expected.append((kind, name, start))
    return "\n".join(parts) + draw(st.sampled_from(["", "\n"])), expected


@FAST
@given(mixed_cell(ARG_RICH))
def test_generated_cells_mask_and_parse(case):
    source, expected = case
    m = check(source)
    assert summary(m) == expected
    # same result with Windows line endings
    m2 = check(source.replace("\n", "\r\n"))
    assert summary(m2) == expected


@FAST
@given(mixed_cell(ARG_SAFE))
def test_agrees_with_ipython_on_generated_cells(case):
    source, expected = case
    agree(source)
    assert summary(mask(source)) == expected


# Soup of the characters that matter.  Only cells IPython can run count
# (its output parses); known, documented differences are excluded: a first
# line indented as a whole (IPython dedents the cell), autocall escapes,
# "\r" line endings, and python-body cell magics (IPython does not look
# inside their bodies, we do).
SOUP_PIECES = (
    list("%!?=#'\"()[]{}.*: ")
    + ["\n"] * 4
    + ["ab", "x", "1", "%%", "!!", "??", "'''", "x = ", "    ", "\\\n", "if x:\n    ", "pip",
       "a.b", "*x*"]
)
SOUP = st.lists(st.sampled_from(SOUP_PIECES), max_size=25).map("".join)


def soup_counts(source: str) -> bool:
    """False for the known, documented differences the soup leaves out."""
    if re.match(r"[ \t\n]*[ \t]", source) or re.search(r"(^|\n)[ \t]*[,;/]", source):
        return False
    first = source.lstrip(" \t\n")
    return not (first.startswith("%%")
                and re.match(r"%%(\S*)", first).group(1) in PYTHON_BODY_CELL_MAGICS)


# Derandomized so CI is reproducible (a random run found "%'\\\n*?", a line magic `'` for
# IPython and psearch for us: now in test_tokenize_line_ends_are_mirrored).
@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.filter_too_much],
    derandomize=True,
)
@given(SOUP)
def test_agrees_with_ipython_on_character_soup(source):
    assume(soup_counts(source))
    agree(source)
    m = mask(source)
    assert parses(m.code), m.code  # IPython can run it, so we can parse it


# The same soup, 20,000 cells from a fixed seed (CI sees the same cells; about 3,600 of them
# are cells IPython runs), every disagreement listed at once. Other seeds and longer soups run
# locally, and what they still find, are in docs/development.md ("Magics against IPython").
@pytest.mark.slow
@pytest.mark.parametrize("seed", [1])
def test_agrees_with_ipython_on_a_seeded_soup(seed):
    rng = random.Random(seed)
    differ = []
    for _ in range(20_000):
        source = "".join(rng.choice(SOUP_PIECES) for _ in range(rng.randint(0, 25)))
        if not soup_counts(source) or (theirs := ipython_magics(source)) is None:
            continue
        m = magics._mask(source)
        ours = [(g.kind, g.name) for g in m.magics]
        theirs = [(k, n if n is not None else o[1]) for (k, n), o in zip(theirs, ours)] \
            + theirs[len(ours):]
        if ours != theirs or not parses(m.code):
            differ.append((source, ours, theirs))
    assert differ == []


@SLOW
@given(
    st.lists(
        st.tuples(_hypothesmith_module(), magic_line(ARG_RICH), st.booleans()),
        min_size=1,
        max_size=3,
    )
)
def test_hypothesmith_python_mixed_with_magics_parses(chunks):
    parts, expected, line = [], [], 1
    for py, (text, kind, name), indent in chunks:
        py = py if py.endswith(("\n", "\r")) else py + "\n"
        # the generated module must accept a statement after it (e.g. it does
        # not end with a backslash continuation)
        assume(parses(py + "_()\n") and parses(py + "if True:\n    _()\n"))
        assume(magics._mask(py).code == py)
        parts.append(py)
        line += len(EOL.findall(py))
        if indent:
            text = "if True:\n    " + text.replace("\n", "\n    ")
            expected.append((kind, name, line + 1))
        else:
            expected.append((kind, name, line))
        parts.append(text + "\n")
        line += text.count("\n") + 1
    source = "".join(parts)
    m = check(source)
    assert summary(m) == expected


@FAST
@given(
    st.sampled_from(
        sorted(PYTHON_BODY_CELL_MAGICS)
        + ["bash", "html", "writefile x.py", "sql", "unknown_magic"]
    ),
    mixed_cell(ARG_RICH),
    PY_LINES,
)
def test_generated_cell_magics(header, case, py):
    body, expected = case
    name = header.split()[0]
    source = f"%%{header}\n{py}\n{body}"
    m = check(source)
    if name in PYTHON_BODY_CELL_MAGICS:
        shift = 1 + len(EOL.findall(py)) + 1
        assert summary(m) == [("cell", name, 1)] + [
            (k, n, line + shift) for k, n, line in expected
        ]
    else:
        assert summary(m) == [("cell", name, 1)]
        assert m.magics[0].text == source
