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


# -- the notebook's surroundings: data files and local modules (read from its real folder) -------
HELPERS = "def total(rows):\n    return sum(int(row[1]) for row in rows[1:])\n"
READS_DATA = ("import csv\nimport helpers",
              "with open('data/values.csv') as handle:\n    rows = list(csv.reader(handle))\n"
              "print(helpers.total(rows))")


@pytest.mark.parametrize("verify", [False, True])
def test_data_files_and_local_modules_are_carried(lab_server, workdir: tuple[Path, str],
                                                  notebook, verify: bool) -> None:
    """Before: the lab converted a private copy alone, so the project had neither file, and
    `verify` ran the original where data/values.csv did not resolve (422)."""
    folder, rel = workdir
    notebook(folder / "nb" / "sales.ipynb", *READS_DATA)
    (folder / "nb" / "data").mkdir()
    (folder / "nb" / "data" / "values.csv").write_text("name,value\na,2\nb,3\n")
    (folder / "nb" / "helpers.py").write_text(HELPERS)
    answer = lab_server.convert(path=f"{rel}/nb/sales.ipynb", output=f"{rel}/sales_pkg",
                                options={"pipeline": False, "verify": verify})
    assert answer.status == 200, answer
    project = folder / "sales_pkg"
    assert (project / "notebooks" / "data" / "values.csv").read_text() == \
        "name,value\na,2\nb,3\n"
    assert (project / "notebooks" / "helpers.py").read_text() == HELPERS
    assert {"notebooks/data/values.csv", "notebooks/helpers.py"} <= set(answer.data["files"])
    report = (project / "REPORT.md").read_text()
    assert "`notebooks/data/values.csv`: copied" in report
    assert "`notebooks/helpers.py`: the local module `helpers`" in report
    if verify:  # the original ran in its own folder, and printed what the project prints
        result = answer.data["verification"]
        assert result["equivalent"] is True, result
        assert result["notebooks"][0]["original"] == f"{rel}/nb/sales.ipynb"
    # Nothing was left in the notebook's folder but what the test put there.
    assert sorted(p.relative_to(folder / "nb").as_posix() for p in (folder / "nb").rglob("*")) \
        == ["data", "data/values.csv", "helpers.py", "sales.ipynb"]


def test_a_requirements_file_the_notebook_installs_is_read_and_carried(
        lab_server, workdir: tuple[Path, str], notebook) -> None:
    """`%pip install -r requirements.txt`: before, the lab converted a private copy alone, so
    the file was not read (no dependency) nor carried (the project's notebook could not run
    its own install line). A requirements file that links out of the root is neither."""
    folder, rel = workdir
    beyond = lab_server.root.parent / f"reqs_{rel}"
    beyond.mkdir()
    (beyond / "secret.txt").write_text("outside-the-root-package\n")
    notebook(folder / "nb.ipynb", "%pip install -r requirements.txt", "%pip install -r linked.txt",
             "import packaging\nprint(packaging.__name__)")
    (folder / "requirements.txt").write_text("packaging>=20  # parsing\n")
    (folder / "linked.txt").symlink_to(beyond / "secret.txt")
    answer = lab_server.convert(path=f"{rel}/nb.ipynb", output=f"{rel}/pkg",
                                options={"pipeline": False})
    assert answer.status == 200, answer
    project = folder / "pkg"
    assert (project / "notebooks" / "requirements.txt").read_text() == "packaging>=20  # parsing\n"
    pyproject = (project / "pyproject.toml").read_text()
    assert '"packaging>=20"' in pyproject and "outside-the-root" not in pyproject
    assert not (project / "notebooks" / "linked.txt").exists()
    assert "`linked.txt`: **not carried**: it is a symbolic link leading out of" in \
        (project / "REPORT.md").read_text()


def test_modules_outside_the_root_are_not_carried(lab_server, workdir: tuple[Path, str],
                                                   notebook) -> None:
    """A folder added to sys.path beyond the root, a link out of the root and a hidden file:
    none is read; REPORT.md says what was left out and why."""
    folder, rel = workdir
    beyond = lab_server.root.parent / f"outside_{rel}"  # beside the root
    beyond.mkdir()
    (beyond / "outmod.py").write_text("SECRET = 'outside the root'\n")
    (beyond / "secret.csv").write_text("outside the root\n")
    notebook(folder / "nb.ipynb", "import sys\nsys.path.append('../../outside_" + rel + "')",
             "import outmod\nprint(outmod.SECRET)",
             "linked = open('linked.csv').read()\nhidden = open('.env').read()")
    (folder / "linked.csv").symlink_to(beyond / "secret.csv")
    (folder / ".env").write_text("TOKEN=outside nothing, but hidden\n")
    answer = lab_server.convert(path=f"{rel}/nb.ipynb", output=f"{rel}/pkg",
                                options={"pipeline": False})
    assert answer.status == 200, answer
    project = folder / "pkg"
    assert not (project / "notebooks" / "outmod.py").exists()
    assert not any("outside the root" in p.read_text(errors="ignore") or p.name == ".env"
                   for p in project.rglob("*") if p.is_file())
    report = (project / "REPORT.md").read_text()
    assert f"`../../outside_{rel}`: **not carried**: a folder the notebook adds to `sys.path`, " \
           "outside the folder the conversion may read" in report
    assert "`linked.csv`: **not carried**: it is a symbolic link leading out of" in report
    assert "`.env`: **not carried**: it is hidden" in report
    assert str(lab_server.root) not in report and str(beyond) not in report


def test_an_earlier_conversion_is_offered_for_update_and_updated(
        lab_server, workdir: tuple[Path, str], demo_notebook) -> None:
    """`update` in the defaults when the folder holds a conversion of this notebook; the update
    option merges (hand edits kept, the notebook's changes in, the previous project kept)."""
    import nbformat

    folder, rel = workdir
    notebook = demo_notebook(folder / "demo.ipynb")
    other = demo_notebook(folder / "other.ipynb")
    defaults = lab_server.request("GET", f"defaults?path={rel}/demo.ipynb")
    assert defaults.status == 200 and defaults.data["update"] is False
    assert lab_server.convert(path=f"{rel}/demo.ipynb", output=f"{rel}/demo_pkg").status == 200
    defaults = lab_server.request("GET", f"defaults?path={rel}/demo.ipynb")
    assert defaults.data["update"] is True, defaults
    # Another notebook, or this one with another folder named: no update offered.
    assert lab_server.request("GET", f"defaults?path={rel}/other.ipynb&output={rel}/demo_pkg"
                              ).data["update"] is False
    assert lab_server.request("GET", f"defaults?path={rel}/demo.ipynb&output={rel}/elsewhere"
                              ).data["update"] is False
    answer = lab_server.convert(path=f"{rel}/other.ipynb", output=f"{rel}/demo_pkg",
                                options={"update": True})
    assert_refused(answer, 409, "holds no earlier conversion")
    assert other.exists()

    project = folder / "demo_pkg"
    (project / "tests" / "test_mine.py").write_text("def test_mine():\n    assert True\n")
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\nEdited in the lab.\n")
    node = nbformat.read(notebook, as_version=4)
    node.cells.append(nbformat.v4.new_code_cell("print('added in the notebook')"))
    nbformat.write(node, notebook)
    answer = lab_server.convert(path=f"{rel}/demo.ipynb", output=f"{rel}/demo_pkg",
                                options={"update": True})
    assert answer.status == 200, answer
    assert answer.data["conflicts"] == [] and answer.data["lab"]["output"] == f"{rel}/demo_pkg"
    assert str(lab_server.root) not in str(answer.data)
    assert (project / "tests" / "test_mine.py").exists()
    assert "Edited in the lab." in readme.read_text()
    assert "added in the notebook" in (project / "notebooks" / "demo.ipynb").read_text()
    assert (project / ".nb2pkg" / "previous" / "tests" / "test_mine.py").exists()
