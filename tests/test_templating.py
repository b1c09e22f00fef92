"""Escaping filters: whatever a notebook holds, the generated text reads back as that same data.

Each property is the definition of "escaped" for one language: parse the generated fragment with
that language's own parser and get the original value back, with the surrounding structure intact.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib

import pytest
import yaml as pyyaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nb2pkg import templating
from nb2pkg.templating import Escaped, TemplateEscapeError

# Any text, including line breaks, quotes, backslashes, NUL and the Unicode line separators;
# lone surrogates (which no UTF-8 file can hold) are excluded here and tested on their own.
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
nasty = st.sampled_from(['"""', "'''", '\\', '\n', '\r', '\x85', '\u2028', '\x00', '${{ x }}',
                         '"; import os; os.system("x")  #', '`', '|', '<script>', '[a](b)',
                         '- item', '# h', '\t', '\x1b[31m', 'key: value', '{a: b}', '&amp;'])
mixed = st.lists(st.one_of(text, nasty), max_size=4).map("".join)


@given(mixed)
def test_python_literal_reads_back(value: str) -> None:
    assert ast.literal_eval(templating.py(value)) == value
    assert ast.literal_eval(templating.pydoc(value)) == value


@given(mixed)
def test_docstring_is_one_statement(value: str) -> None:
    module = ast.parse(f"{templating.pydoc(value)}\nx = 1\n")
    assert [type(node) for node in module.body] == [ast.Expr, ast.Assign]


@given(mixed)
def test_toml_string_reads_back_and_adds_no_key(value: str) -> None:
    document = tomllib.loads(f"[project]\nname = {templating.toml(value)}\nafter = 1\n")
    assert document == {"project": {"name": value, "after": 1}}


@given(st.recursive(st.one_of(mixed, st.integers(), st.booleans(), st.none()),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(mixed, inner, max_size=3), max_leaves=8))
def test_yaml_value_reads_back_inside_nested_mapping(value: object) -> None:
    document = pyyaml.safe_load(f"stages:\n  - name: {templating.yaml(value)}\n    after: 1\n")
    assert document == {"stages": [{"name": _yaml_normal(value), "after": 1}]}


def _yaml_normal(value: object) -> object:
    # YAML cannot tell "\r\n" inside a double-quoted string from anything else: it is kept;
    # nothing to normalise except what the dumper itself changes (none for these types).
    return value


@given(mixed)
def test_comments_stay_comments(value: str) -> None:
    assert pyyaml.safe_load(f"# {templating.yamlcomment(value)}\nkey: 1\n") == {"key": 1}
    assert ast.parse(f"# {templating.pycomment(value)}\nx = 1\n").body[0].targets[0].id == "x"


@given(mixed)
def test_shell_word_is_one_word(value: str) -> None:
    if re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", value):
        with pytest.raises(TemplateEscapeError):
            templating.shell(value)
    else:
        assert shlex.split(templating.shell(value)) == [value]


MD_ACTIVE = set("\\`*_[]<>&|~#!$")


@given(mixed)
def test_markdown_text_has_no_active_character(value: str) -> None:
    out = templating.md(value)
    assert "\n" not in out and "\r" not in out
    unescaped = re.sub(r"\\.", "", out)  # what is left once every backslash escape is removed
    assert not MD_ACTIVE & set(unescaped)
    assert out[:1] not in set("-+=.>:")  # a block marker opening the line is escaped


@given(mixed)
def test_markdown_code_span_cannot_be_closed_early(value: str) -> None:
    out = templating.mdcode(value)
    fence = re.match(r"`+", out).group()
    assert out.endswith(fence)
    assert fence not in out[len(fence):-len(fence)]
    assert "\n" not in out


def test_templates_refuse_unescaped_text() -> None:
    env = templating.environment()
    with pytest.raises(TemplateEscapeError, match="without an escaping filter"):
        env.from_string("name = {{ name }}").render(name="x")
    assert env.from_string("n = {{ n }}").render(n=3) == "n = 3"
    assert env.from_string("{{ name | toml }}").render(name='a"b') == '"a\\"b"'


def test_identifier_filter_refuses_anything_else() -> None:
    assert templating.ident("pkg.module") == "pkg.module"
    for bad in ['x"; import os', "a b", "class", "", "1x"]:
        with pytest.raises(TemplateEscapeError):
            templating.ident(bad)


def test_join_keeps_escaped_pieces_escaped() -> None:
    env = templating.environment()
    out = env.from_string("{{ xs | map('mdcode') | join(', ') }}").render(xs=["a`b", "c"])
    assert out == "``a`b``, `c`"
    assert isinstance(templating.FILTERS["join"]([Escaped("a")], ", "), Escaped)


# -- compiled templates kept in the user's cache folder ----------------------------------------
def _environment(folder, cache_dir, monkeypatch):
    """An environment like ``templating.environment``'s, on templates in ``folder``."""
    import jinja2

    monkeypatch.setenv("NB2PKG_CACHE_DIR", str(cache_dir))
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(folder)),
                              bytecode_cache=templating._bytecode_cache())


def _loaded_from_cache(env, name: str) -> bool:
    source, filename, _ = env.loader.get_source(env, name)
    return env.bytecode_cache.get_bucket(env, name, filename, source).code is not None


def test_compiled_templates_are_reused_until_their_source_changes(tmp_path, monkeypatch):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.j2").write_text("one {{ x }}")
    cache = tmp_path / "cache"
    first = _environment(folder, cache, monkeypatch)
    assert not _loaded_from_cache(first, "t.j2")
    assert first.get_template("t.j2").render(x=1) == "one 1"  # compiled, then stored
    again = _environment(folder, cache, monkeypatch)
    assert _loaded_from_cache(again, "t.j2")
    assert again.get_template("t.j2").render(x=2) == "one 2"
    (folder / "t.j2").write_text("two {{ x }}")  # never served stale
    changed = _environment(folder, cache, monkeypatch)
    assert not _loaded_from_cache(changed, "t.j2")
    assert changed.get_template("t.j2").render(x=3) == "two 3"


def test_a_damaged_or_unwritable_template_cache_costs_a_compilation_not_an_error(
        tmp_path, monkeypatch):
    import jinja2.bccache

    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.j2").write_text("one {{ x }}")
    cache = tmp_path / "cache"
    _environment(folder, cache, monkeypatch).get_template("t.j2")
    (stored,) = (cache / "templates").iterdir()
    content = stored.read_bytes()
    magic = len(jinja2.bccache.bc_magic)  # then the source checksum (pickled), then marshal
    for damage in (b"", content[:12], content[:magic + 1], content[:magic] + b"garbage",
                   content[:len(content) // 2], content[:-8] + b"\x00" * 8, b"garbage" * 50):
        stored.write_bytes(damage)
        env = _environment(folder, cache, monkeypatch)
        assert env.get_template("t.j2").render(x=1) == "one 1"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = _environment(folder, blocker / "cache", monkeypatch)
    assert env.bytecode_cache is None and env.get_template("t.j2").render(x=1) == "one 1"


def test_compiled_templates_are_kept_only_in_a_folder_no_one_else_can_write(
        tmp_path, monkeypatch):
    import os

    cache = tmp_path / "cache"
    (cache / "templates").mkdir(parents=True)
    os.chmod(cache / "templates", 0o777)
    monkeypatch.setenv("NB2PKG_CACHE_DIR", str(cache))
    assert templating._bytecode_cache() is None
    os.chmod(cache / "templates", 0o700)
    assert templating._bytecode_cache() is not None


def test_the_environment_renders_the_same_with_its_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NB2PKG_CACHE_DIR", str(tmp_path / "cache"))
    templating.environment.cache_clear()
    try:
        first = templating.render_template("project/gitignore.j2")
        templating.environment.cache_clear()
        env = templating.environment()
        assert _loaded_from_cache(env, "project/gitignore.j2")
        assert templating.render_template("project/gitignore.j2") == first
    finally:
        templating.environment.cache_clear()


@settings(max_examples=400, deadline=None)
@given(st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,12}", fullmatch=True)
       | st.sampled_from(["yes", "No", "TRUE", "off", "On", "null", "Null", "y", "n", "_",
                          "a.b", "x-", "src/pkg", "e5", "inf", "nan", "NaN", "Infinity"])
       | st.integers())
def test_plain_yaml_strings_are_what_pyyaml_writes(value: str | int) -> None:
    # Names, paths and numbers skip PyYAML (a fast path): they must come out as PyYAML writes them.
    text = _pyyaml_flow(value)
    assert templating._yaml_flow(value) == text
    assert pyyaml.safe_load(f"[{text}]") == [value]


# Printable ASCII, rich in what decides YAML's quoting: indicators first, inside and after a
# space, document markers, spaces at the ends, decimals.
_yaml_ascii = st.text(st.sampled_from(list(" -.:,?#'\"[]{}&*!|>%@`_aZ09")), max_size=8) | \
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12) | \
    st.from_regex(r"-?[0-9]{1,3}\.[0-9]{0,3}", fullmatch=True) | \
    st.sampled_from(["", " ", "-", "- a", "-a", "---x", "...", "a #b", "a#b", "3.11", "1_0.5",
                     "python -m x -y '{\"a\": \"b\"}'"])


@settings(max_examples=1500, deadline=None)
@given(_yaml_ascii | st.floats() | st.booleans() | st.none() | st.integers())
def test_quoted_yaml_scalars_are_what_pyyaml_writes(value: object) -> None:
    # Quoted strings (commands, versions), floats, booleans and null skip PyYAML too.
    assert templating._yaml_flow(value) == _pyyaml_flow(value)


def _pyyaml_flow(value: object) -> str:
    return pyyaml.safe_dump([value], default_flow_style=True, width=float("inf"),
                            allow_unicode=True).strip()[1:-1]


def test_a_block_of_one_line_is_at_a_line_not_between_lines() -> None:
    import types

    one, three = (types.SimpleNamespace(first_line=a, last_line=b) for a, b in ((4, 4), (2, 4)))
    assert (templating.lines(one), templating.lines(three)) == ("line 4", "lines 2-4")
    with pytest.raises(ValueError):  # only numbers get through: nothing else is escaped
        templating.lines(types.SimpleNamespace(first_line="1*", last_line=2))
