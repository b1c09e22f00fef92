"""Request validation of POST /nb2pkg/convert and the progress board, without a server."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from nb2pkg.labext.request import OPTION_NAMES, RequestError, parse_convert_request


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "nb.ipynb").write_text("{}")
    (root / "notes.txt").write_text("x")
    return root


def parse(root: Path, **body: object):
    body.setdefault("path", "sub/nb.ipynb")
    body.setdefault("output", "sub/nb_pkg")
    return parse_convert_request(json.dumps(body).encode(), str(root))


def refused(root: Path, **body: object) -> str:
    with pytest.raises(RequestError) as caught:
        parse(root, **body)
    return str(caught.value)


def test_defaults_and_resolved_paths(root: Path) -> None:
    request = parse(root)
    assert request.notebook.absolute == root.resolve() / "sub" / "nb.ipynb"
    assert request.output.absolute == root.resolve() / "sub" / "nb_pkg"
    assert (request.notebook.relative, request.output.relative) == ("sub/nb.ipynb", "sub/nb_pkg")
    assert request.notebook_path == "sub/nb.ipynb"
    assert (request.name, request.options, request.job) == (None, {}, None)


def test_options_name_and_dotdot_inside_root(root: Path) -> None:
    request = parse(root, path="sub/../sub/nb.ipynb", output="out/pkg", name=" demo ",
                    options={"extract": False, "verify": True, "force": True}, job="a-1")
    assert request.notebook.absolute == root.resolve() / "sub" / "nb.ipynb"
    assert (request.name, request.options, request.job) == (
        "demo", {"extract": False, "verify": True, "force": True}, "a-1")


@pytest.mark.parametrize("raw, expected", [
    (b"{not json", "not valid JSON"),
    (b"[" * 30000 + b"]" * 30000, "nested too deeply"),
    (b" " * 70000, "over 65536 bytes"),
    (b"", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
])
def test_malformed_bodies(root: Path, raw: bytes, expected: str) -> None:
    with pytest.raises(RequestError, match=expected):
        parse_convert_request(raw, str(root))


@pytest.mark.parametrize("path, expected", [
    ("", "relative to the Jupyter root"),
    ("   ", "relative to the Jupyter root"),
    (None, "relative to the Jupyter root"),
    (7, "relative to the Jupyter root"),
    ("/etc/passwd.ipynb", "not absolute"),
    ("\\\\server\\share\\x.ipynb", "not absolute"),
    ("sub/nb\0.ipynb", "NUL"),
    ("sub/\ud800.ipynb", "not valid Unicode"),
    ("a" * 300 + ".ipynb", "longer than 255 bytes"),
    ("a/" * 2100 + "x.ipynb", "at most 4096"),
    ("../x.ipynb", "outside the Jupyter root"),
    ("sub/../../x.ipynb", "outside the Jupyter root"),
    ("notes.txt", "not a notebook"),
    ("missing.ipynb", "does not exist"),
])
def test_notebook_paths_refused(root: Path, path: object, expected: str) -> None:
    assert expected in refused(root, path=path)


def test_directory_named_like_a_notebook(root: Path) -> None:
    (root / "folder.ipynb").mkdir()
    assert "is not a file" in refused(root, path="folder.ipynb")


def test_symlinks_are_resolved(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_text("{}")
    (root / "escape.ipynb").symlink_to(outside / "secret.ipynb")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "alias.ipynb").symlink_to(root / "sub" / "nb.ipynb")
    assert "outside the Jupyter root" in refused(root, path="escape.ipynb")
    assert "outside the Jupyter root" in refused(root, path="linkdir/secret.ipynb")
    assert "outside the Jupyter root" in refused(root, output="linkdir/pkg")
    request = parse(root, path="alias.ipynb")
    assert request.notebook.absolute == root.resolve() / "sub" / "nb.ipynb"
    assert request.notebook_path == "alias.ipynb"  # the name the user gave: the package's


@pytest.mark.parametrize("output, expected", [
    ("", "output folder as a path"),
    ("/tmp/pkg", "not absolute"),
    ("../pkg", "outside the Jupyter root"),
    ("a\0b", "NUL"),
    (".", "cannot be the Jupyter root"),
    ("sub/..", "cannot be the Jupyter root"),
    ("sub", "contains the notebook"),
    ("notes.txt", "is not a folder"),
])
def test_output_folders_refused(root: Path, output: str, expected: str) -> None:
    assert expected in refused(root, output=output)


@pytest.mark.parametrize("body, expected", [
    ({"name": 3}, "name must be a string"),
    ({"name": "2 bad"}, "'2 bad' cannot name a package; nb2pkg would call it 'nb_2_bad'"),
    ({"name": "json"}, "cannot name a package"),
    ({"name": "x" * 101}, "over 100 characters"),
    ({"name": "a\ud800"}, "not valid Unicode"),
    ({"options": []}, "'options' must be a JSON object"),
    ({"options": {"extract": "yes"}}, "'extract' must be true or false"),
    ({"options": {"fast": True}}, "Unknown option 'fast'"),
    ({"job": "../../x"}, "'job' must be"),
    ({"job": "abc\n"}, "'job' must be"),
])
def test_other_fields_refused(root: Path, body: dict, expected: str) -> None:
    assert expected in refused(root, **body)


def test_root_given_unresolved(tmp_path: Path, root: Path) -> None:
    (tmp_path / "rootlink").symlink_to(root, target_is_directory=True)
    request = parse_convert_request(
        json.dumps({"path": "sub/nb.ipynb", "output": "p"}).encode(),
        os.fspath(tmp_path / "rootlink"))
    assert request.output.absolute == root.resolve() / "p"


def test_options_are_convert_options() -> None:
    from dataclasses import fields

    from nb2pkg.api import ConvertOptions

    # `update` is not a conversion option: it runs nb2pkg.update instead (conversion.run_update).
    assert set(OPTION_NAMES) - {"update"} <= {f.name for f in fields(ConvertOptions)}


def test_progress_board_keeps_messages_while_the_job_runs() -> None:
    from nb2pkg.labext.handlers import ProgressBoard

    board = ProgressBoard()
    with board.track("job-1") as report:
        report("reading")
        report("writing")
        assert board.messages("job-1") == ["reading", "writing"]
        assert board.messages("other") == []
    assert board.messages("job-1") == []
    with board.track(None) as report:
        report("nobody asks")


def test_hidden_paths_follow_the_contents_manager(root: Path) -> None:
    (root / ".hidden").mkdir()
    (root / ".hidden" / "nb.ipynb").write_text("{}")
    (root / "visible").symlink_to(root / ".hidden", target_is_directory=True)
    body = {"path": "sub/nb.ipynb", "output": "proj/.git"}
    for changes in ({"path": ".hidden/nb.ipynb"}, {"path": "visible/nb.ipynb"}, {}):
        with pytest.raises(RequestError, match="hidden") as caught:
            parse_convert_request(json.dumps({**body, **changes}).encode(), str(root),
                                  allow_hidden=False)
        assert caught.value.status == 403
    # allow_hidden=True (the contents manager allows them): accepted, as the contents API does.
    assert parse(root, path=".hidden/nb.ipynb", output="proj/.git").output.relative == "proj/.git"


@pytest.mark.parametrize("stem", ["2024 report", "json", "SalesReport", "class", "Über Analyse",
                                  "demo notebook"])
def test_defaults_are_the_command_lines(stem: str) -> None:
    from nb2pkg.labext.request import defaults
    from nb2pkg.refactor.naming import package_name

    assert defaults(f"a/b/{stem}.ipynb") == {"name": package_name(stem),
                                            "output": f"a/b/{stem}_pkg"}
    assert defaults(f"{stem}.ipynb")["output"] == f"{stem}_pkg"


def test_the_request_says_where_the_notebook_reads_from(root: Path) -> None:
    """The notebook's real folder and the hidden-file rule go to the converter with the copy."""
    request = parse_convert_request(json.dumps({"path": "sub/nb.ipynb", "output": "o"}).encode(),
                                    str(root), allow_hidden=False)
    assert request.folder.absolute == root.resolve() / "sub"
    assert request.allow_hidden is False and parse(root).allow_hidden is True
    (root / "top.ipynb").write_text("{}")
    assert parse(root, path="top.ipynb").folder.absolute == root.resolve()


def test_answers_name_the_root_itself_relative(root: Path) -> None:
    """A notebook at the root runs from the root: messages say '.', not the server's path."""
    from nb2pkg.labext.conversion import path_names

    request = parse(root, path="sub/nb.ipynb")
    names = path_names(request)
    assert names.relative(f"the notebook runs from {root.resolve()}: put it there") == \
        "the notebook runs from .: put it there"
    assert names.relative(f"{root.resolve()}/sub/x.csv") == "sub/x.csv"
    # A server whose root is "/" keeps absolute paths rather than cutting every "/".
    at_top = path_names(replace(request, output=replace(request.output, root="/")))
    assert at_top.relative("sub/x.csv and /etc/x") == "sub/x.csv and /etc/x"
