"""Data files on real kernels: a hand-written pipeline whose stages read and write CSV files.

Also: what ``nb2pkg run`` imports (never the converter: libcst, the splitter, the analyses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nb2pkg.cli import main
from nb2pkg.pipeline import state as state_module

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = """\
version: 1
name: csv
stages:
  - name: clean
    notebook: clean.ipynb
    deps: [data/raw.csv]
    outs: [data/clean.csv]
  - name: show
    notebook: show.ipynb
    deps: [data/clean.csv]
  - name: other
    notebook: other.ipynb
"""
CODE = {
    "clean": "text = open('data/raw.csv').read()\nopen('data/clean.csv', 'w').write(text.upper())",
    "show": "print(open('data/clean.csv').read(), end='')",
    "other": "print('independent')",
}


def write_stage(path: Path, code: str) -> None:
    node = nbformat.v4.new_notebook()
    node.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                   "language": "python"}
    parameters = nbformat.v4.new_code_cell(
        'nb2pkg_stage = ""\nnb2pkg_inputs = {}\nnb2pkg_outputs = ""')
    parameters.metadata["tags"] = ["parameters"]
    node.cells = [parameters, nbformat.v4.new_code_cell(code)]
    nbformat.write(node, str(path))


@pytest.fixture
def project(tmp_path):
    for name, code in CODE.items():
        write_stage(tmp_path / f"{name}.ipynb", code)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "raw.csv").write_text("a,1\n")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    return tmp_path


def run_json(project: Path, *args: str):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["run", str(project / "pipeline.yaml"), "--json", *args])
    result = json.loads(buffer.getvalue())
    return code, [s["name"] for s in result["stages"] if s["status"] == "ran"], result


def printed(project: Path, stage: str) -> str:
    node = nbformat.read(str(project / "runs" / f"{stage}.ipynb"), as_version=4)
    return "".join(o.get("text", "") for c in node.cells for o in c.get("outputs", [])
                   if o.get("output_type") == "stream")


def test_a_changed_data_file_reruns_exactly_its_readers(project, monkeypatch, capsys):
    # Reuse recorded hashes as soon as size, times and inode match: what is shown here is
    # caught by the change time, not by the "recently changed" re-check.
    monkeypatch.setattr(state_module, "RACY_NS", -(10 ** 18))
    code, ran, _ = run_json(project)
    assert code == 0 and ran == ["clean", "show", "other"]
    assert printed(project, "show") == "A,1\n"

    code, ran, _ = run_json(project)
    assert code == 0 and ran == []

    raw = project / "data" / "raw.csv"
    before = raw.stat()
    raw.write_text("b,2\n")  # same size
    os.utime(raw, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
    code, ran, result = run_json(project)
    assert code == 0 and ran == ["clean", "show"]
    assert {s["name"]: s["reason"] for s in result["stages"]}["show"] == \
        "data changed: data/clean.csv"
    assert printed(project, "show") == "B,2\n"

    raw.unlink()
    assert main(["run", str(project / "pipeline.yaml"), "-q"]) == 2
    assert capsys.readouterr().err == (
        f"nb2pkg: error: {project / 'pipeline.yaml'}: stage clean reads data/raw.csv, which does "
        "not exist (create it, or remove it from the stage's deps)\n")


RUN_AND_LIST_MODULES = """\
import sys
from nb2pkg.cli import main
code = main(["run", sys.argv[1], "-q"])
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "libcst" or m.startswith((
    "nb2pkg.pipeline.split", "nb2pkg.pipeline.stages", "nb2pkg.analysis", "nb2pkg.refactor",
    "nb2pkg.plan", "nb2pkg.generate")))
print(code, loaded)
"""


def test_run_does_not_import_the_converter(project):
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES,
                           str(project / "pipeline.yaml")], capture_output=True, text=True,
                          cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr
