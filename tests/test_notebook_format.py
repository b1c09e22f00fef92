"""Notebook files read, written and checked without nbformat: the same nodes, bytes and verdicts
as nbformat's (tests/data/notebook_format/)."""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import nbformat
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import DATA, EXAMPLES
from nb2pkg.notebook import read_notebook
from nb2pkg.notebook_format import notebook_json, read_node, schema_accepts

BASE = json.loads((DATA / "notebook_format" / "base.ipynb").read_text(encoding="utf-8"))
CHANGES = yaml.safe_load((DATA / "notebook_format" / "changes.yaml").read_text(encoding="utf-8"))
NOTEBOOKS = [*sorted(EXAMPLES.glob("*.ipynb")), *sorted((DATA / "read").glob("*.ipynb")),
             *sorted((DATA / "robustness").glob("*.ipynb"))]


def _nbformat_accepts(data) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nbformat.validate(nbformat.from_dict(copy.deepcopy(data)))
        return True
    except Exception:  # a ValidationError, or nbformat tripping over the damage
        return False


def _changed(change: dict):
    data = copy.deepcopy(BASE)
    *path, last = change["at"] or [None]
    target = data
    for step in path:
        target = target[step]
    if change.get("delete"):
        del target[last]
    elif "set" in change:
        target[last] = change["set"]
    return data


# -- the schema check ----------------------------------------------------------------------------
@pytest.mark.parametrize("change", CHANGES, ids=lambda c: "/".join(map(str, c["at"])) + (
    " deleted" if c.get("delete") else f" = {json.dumps(c.get('set'))}" if "set" in c else ""))
def test_the_schema_check_agrees_with_nbformat(change: dict) -> None:
    data = _changed(change)
    assert _nbformat_accepts(data) == change["valid"]
    assert schema_accepts(data) == change["valid"]


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2, 2) | st.floats(0, 2)
                    | st.sampled_from(["", "x", "a,b", "code", "text/plain", "stream"]),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.sampled_from(["name", "text", "data", "x", "id"]), inner,
                                      max_size=3), max_leaves=6)


@st.composite
def damaged(draw):
    """The base notebook with a few values replaced, keys added or removed anywhere."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        target = data  # walk down to a dict or list, then change one of its entries
        while True:
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            key = draw(st.sampled_from(keys)) if keys else None
            if key is None or not isinstance(target[key], (dict, list)) or draw(st.booleans()):
                break
            target = target[key]
        what = draw(st.sampled_from(["set", "delete", "add"]))
        if what == "set" and key is not None:
            target[key] = draw(JSON)
        elif what == "delete" and key is not None:
            del target[key]
        elif isinstance(target, dict):
            target[draw(st.sampled_from(["extra", "tags", "collapsed", "id"]))] = draw(JSON)
    return data


@settings(max_examples=300, deadline=None)
@given(damaged())
def test_the_schema_check_accepts_only_what_nbformat_accepts(data) -> None:
    if schema_accepts(data):
        assert _nbformat_accepts(data)


def test_the_schema_check_hands_a_future_minor_version_to_nbformat() -> None:
    assert schema_accepts(BASE)
    assert not schema_accepts(dict(BASE, nbformat_minor=6))  # nbformat relaxes its schema then
    assert not schema_accepts(dict(BASE, nbformat=3))


# -- reading and writing ---------------------------------------------------------------------------
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_notebook_reads_as_nbformat_reads_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return  # (not JSON: the reader's own error, tests/test_notebook.py)
    if not isinstance(data, dict) or not schema_accepts(data):
        return
    from nbformat.reader import reads

    assert read_node(data) == nbformat.convert(reads(text), 4)


def _every_kind_of_field() -> nbformat.NotebookNode:
    """A notebook with each part nbformat splits into lines or drops when it writes."""
    v4 = nbformat.v4
    node = v4.new_notebook(metadata={"orig_nbformat": 3, "orig_nbformat_minor": 0,
                                     "signature": "sha256:0", "title": "Ünïcode\nand lines"})
    markdown = v4.new_markdown_cell("# Title\nwith ![a](attachment:a.png)\n")
    markdown.attachments = {"a.png": {"image/png": "iVBORw0K", "text/plain": "one\ntwo"}}
    code = v4.new_code_cell("print('a')\nx = 1\n", metadata={"trusted": True, "tags": ["t"]})
    code.outputs = [
        v4.new_output("stream", name="stdout", text="a\nb\n"),
        v4.new_output("execute_result", execution_count=1, data={
            "text/plain": "1\n2", "image/svg+xml": "<svg>\n</svg>",
            "application/json": {"k": ["v\nw"]}, "image/png": "aGVsbG8="}),
        v4.new_output("display_data", data={"application/javascript": "f();\ng();"}),
        v4.new_output("error", ename="E", evalue="bad\nvalue", traceback=["line 1\nline 2"]),
    ]
    raw = v4.new_raw_cell("raw\ntext")
    node.cells = [markdown, code, raw, v4.new_code_cell(["already ", "split\n"])]
    return node


@pytest.mark.parametrize("source", [*sorted(EXAMPLES.glob("*.ipynb")), "every kind of field"],
                         ids=lambda s: getattr(s, "name", s))
def test_notebook_json_writes_the_bytes_nbformat_writes_and_changes_nothing(source) -> None:
    node = _every_kind_of_field() if isinstance(source, str) else read_notebook(source).node
    before = copy.deepcopy(node)
    assert notebook_json(node) == nbformat.writes(node)
    assert node == before


def test_the_notebooks_of_a_project_are_valid(tmp_path: Path) -> None:
    # nbformat checked each notebook it wrote (and only logged what it found); nb2pkg writes
    # them itself, so this is where a generated notebook's schema is checked.
    from nb2pkg import api

    out = tmp_path / "out"
    api.convert([EXAMPLES / "sales_report.ipynb"], out, api.ConvertOptions())
    written = sorted(out.rglob("*.ipynb"))
    assert len(written) >= 2 and any("stages" in p.parts for p in written)
    for path in written:
        text = path.read_text(encoding="utf-8")
        node = nbformat.reads(text, as_version=4)
        nbformat.validate(node)
        assert notebook_json(node) + "\n" == text, path
