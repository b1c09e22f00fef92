"""POST /nb2pkg/convert and friends against a real jupyter server (see conftest.lab_server)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.jupyter_server, pytest.mark.timeout(180)]


def assert_refused(answer, status: int, *fragments: str) -> None:
    assert answer.status == status, answer
    assert isinstance(answer.data, dict) and isinstance(answer.data.get("message"), str), answer
    for fragment in fragments:
        assert fragment in answer.data["message"], answer
    assert "Traceback" not in answer.data["message"]


def test_version_answers(lab_server) -> None:
    answer = lab_server.request("GET", "version")
    assert answer.status == 200 and "version" in answer.data


def test_without_token_is_refused(lab_server, workdir: tuple[Path, str],
                                  demo_notebook) -> None:
    folder, rel = workdir
    demo_notebook(folder / "demo.ipynb")
    body = {"path": f"{rel}/demo.ipynb", "output": f"{rel}/demo_pkg"}
    assert lab_server.request("POST", "convert", body, token=False).status in (401, 403)
    assert lab_server.request("GET", "version", token=False).status in (401, 403)
    assert lab_server.request("GET", "progress/abc", token=False).status in (401, 403)
    assert not (folder / "demo_pkg").exists()


def test_converts_and_writes_files(lab_server, workdir: tuple[Path, str],
                                   demo_notebook) -> None:
    folder, rel = workdir
    demo_notebook(folder / "demo.ipynb")
    answer = lab_server.convert(path=f"{rel}/demo.ipynb", output=f"{rel}/out/demo_pkg",
                                name="demo_pkg", options={"extract": True, "pipeline": False,
                                                          "verify": False, "force": False},
                                job="test-job-1")
    assert answer.status == 200, answer
    summary = answer.data
    assert summary["package"] == "demo_pkg"
    for key in ("files", "extracted", "refused", "hoisted", "findings"):
        assert isinstance(summary[key], list), key
    assert summary["verification"] is None
    # The repeated block of the demo notebook became a function.
    assert [e["function"] for e in summary["extracted"]], summary
    output = folder / "out" / "demo_pkg"
    assert summary["lab"] == {"output": f"{rel}/out/demo_pkg",
                              "readme": f"{rel}/out/demo_pkg/README.md"}
    assert "README.md" in summary["files"]
    for name in summary["files"]:
        assert (output / name).is_file(), name
    assert any(name.endswith(".py") for name in summary["files"])
    # The notebook itself is left alone, and the job's progress is forgotten once answered.
    assert sorted(p.name for p in folder.iterdir()) == ["demo.ipynb", "out"]
    assert lab_server.request("GET", "progress/test-job-1").data == {"messages": []}


def test_existing_output_needs_force(lab_server, workdir: tuple[Path, str],
                                     demo_notebook) -> None:
    folder, rel = workdir
    demo_notebook(folder / "demo.ipynb")
    output = folder / "demo_pkg"
    output.mkdir()
    (output / "old.txt").write_text("from before")
    body = {"path": f"{rel}/demo.ipynb", "output": f"{rel}/demo_pkg", "name": "demo_pkg"}
    answer = lab_server.convert(**body)
    assert_refused(answer, 409, f"{rel}/demo_pkg", "already exists")
    assert str(lab_server.root) not in answer.data["message"]
    assert sorted(p.name for p in output.iterdir()) == ["old.txt"]

    answer = lab_server.convert(**body, options={"force": True})
    assert answer.status == 200, answer
    assert (output / "README.md").is_file()
    assert not (output / "old.txt").exists()


@pytest.mark.parametrize("path, output, fragment", [
    ("../x.ipynb", "{rel}/p", "outside the Jupyter root"),
    ("{rel}/../../x.ipynb", "{rel}/p", "outside the Jupyter root"),
    ("/etc/hosts.ipynb", "{rel}/p", "not absolute"),
    ("", "{rel}/p", "relative to the Jupyter root"),
    ("{rel}/escape.ipynb", "{rel}/p", "outside the Jupyter root"),
    ("{rel}/demo.ipynb", "../p", "outside the Jupyter root"),
    ("{rel}/demo.ipynb", "/tmp/p", "not absolute"),
    ("{rel}/demo.ipynb", "{rel}/outside/p", "outside the Jupyter root"),
    ("{rel}/notes.txt", "{rel}/p", "not a notebook"),
])
def test_refused_paths(lab_server, workdir: tuple[Path, str], tmp_path: Path,
                       demo_notebook, notebook, path: str, output: str, fragment: str) -> None:
    folder, rel = workdir
    demo_notebook(folder / "demo.ipynb")
    (folder / "notes.txt").write_text("not a notebook")
    outside = tmp_path / "outside"
    notebook(outside / "secret.ipynb", "x = 1")
    (folder / "escape.ipynb").symlink_to(outside / "secret.ipynb")
    (folder / "outside").symlink_to(outside, target_is_directory=True)
    answer = lab_server.convert(path=path.format(rel=rel), output=output.format(rel=rel))
    assert_refused(answer, 400, fragment)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.ipynb"]
    assert not (folder / "p").exists()


def test_missing_notebook_is_404(lab_server, workdir: tuple[Path, str]) -> None:
    folder, rel = workdir
    answer = lab_server.convert(path=f"{rel}/missing.ipynb", output=f"{rel}/p")
    assert_refused(answer, 404, "does not exist")
    assert not (folder / "p").exists()


def test_malformed_json(lab_server) -> None:
    assert_refused(lab_server.request("POST", "convert", raw=b"{'path': 1"), 400, "not valid JSON")
    assert_refused(lab_server.request("POST", "convert", raw=b"[]"), 400, "JSON object")


def test_unreadable_notebook_is_a_readable_422(lab_server,
                                               workdir: tuple[Path, str]) -> None:
    folder, rel = workdir
    (folder / "broken.ipynb").write_text("{ this is not json")
    answer = lab_server.convert(path=f"{rel}/broken.ipynb", output=f"{rel}/broken_pkg")
    assert_refused(answer, 422, "broken.ipynb")
    assert str(lab_server.root) not in answer.data["message"]
