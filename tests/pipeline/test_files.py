"""Generated files: pipeline.yaml, the CI workflow and the DVC export agree with each other."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import nbformat
import pytest
import yaml

from helpers import write_notebook
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.cli import main
from nb2pkg.pipeline.spec import load_pipeline

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def two_notebooks(tmp_path_factory):
    base = tmp_path_factory.mktemp("files")
    first = write_notebook(base / "in" / "prep.ipynb", [
        ("code", "seed = 1\nrate = 0.5", ["parameters"]),
        ("markdown", "## Load"), "data = [seed] * 3",
        ("markdown", "## Score"), ("code", "{'mean': sum(data) / len(data) * rate}", ["metrics"])])
    second = write_notebook(base / "in" / "other.ipynb", [
        ("code", "seed = 2", ["parameters"]), ("markdown", "## Only"), "print(seed)"])
    out = base / "project"
    convert([first, second], out, ConvertOptions(pipeline=True, extract=False))
    return out


def test_pipeline_yaml_is_valid_and_namespaces_parameters(two_notebooks):
    pipeline = load_pipeline(two_notebooks / "pipeline.yaml")
    assert [p.name for p in pipeline.parameters] == ["prep.seed", "prep.rate", "other.seed"]
    assert pipeline.stage("prep-score").parameters == (("rate", "prep.rate"),)
    assert pipeline.stage("prep-score").inputs == (("data", "prep-load"),)
    assert pipeline.stage("prep-score").metrics == ("mean",)
    assert pipeline.workdir == "notebooks" and pipeline.python_path == ("src",)
    for stage in pipeline.stages:
        nbformat.validate(nbformat.read(str(two_notebooks / stage.notebook), as_version=4))
        node = json.loads((two_notebooks / stage.notebook).read_text())
        first = node["cells"][0]
        assert "parameters" in first["metadata"]["tags"]
        assert first["metadata"]["nb2pkg"] == {"pipeline": "parameters"}
        assert node["cells"][-1]["metadata"]["nb2pkg"] == {"pipeline": "save"}


def test_workflow_runs_the_pipeline_with_least_privilege(two_notebooks):
    text = (two_notebooks / ".github" / "workflows" / "pipeline.yml").read_text()
    workflow = yaml.safe_load(text)
    assert workflow["permissions"] == {"contents": "read"}
    (job,) = workflow["jobs"].values()
    assert "permissions" not in job or job["permissions"] == {"contents": "read"}
    steps = job["steps"]
    scripts = [s["run"] for s in steps if "run" in s]
    for script in scripts:
        assert "${{" not in script, script  # untrusted values arrive through env, not here
    assert "nb2pkg" not in "\n".join(scripts)  # the project runs without nb2pkg
    assert "dvc repro" in "\n".join(scripts)
    assert any("pytest" in s for s in scripts)
    assert any('pip install -c constraints.txt -e ".[test,pipeline]"' in s for s in scripts)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"].startswith("runs/\n")
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False


def test_dvc_yaml_has_the_same_stages_as_papermill_calls(two_notebooks, tmp_path, capsys):
    assert main(["export", "dvc", str(two_notebooks / "pipeline.yaml"), "--force"]) == 0
    assert "dvc.yaml" in capsys.readouterr().out
    pipeline = load_pipeline(two_notebooks / "pipeline.yaml")
    dvc = yaml.safe_load((two_notebooks / "dvc.yaml").read_text())
    assert list(dvc["stages"]) == [s.name for s in pipeline.stages]
    # Two notebooks: a flat file of variables for each, which papermill reads with -f.
    assert yaml.safe_load((two_notebooks / "params" / "prep.yaml").read_text()) == {
        "seed": 1, "rate": 0.5}
    assert yaml.safe_load((two_notebooks / "params" / "other.yaml").read_text()) == {"seed": 2}
    score = dvc["stages"]["prep-score"]
    assert shlex.split(score["cmd"]) == [
        "python", "-m", "papermill", "stages/prep/02_score.ipynb", "runs/prep-score.ipynb",
        "--cwd", "notebooks", "-k", "python3", "--no-progress-bar", "-f", "params/prep.yaml",
        "-r", "nb2pkg_stage", "prep-score", "-r", "nb2pkg_outputs", "../artifacts/prep-score",
        "-y", '{"nb2pkg_inputs": {"data": "../artifacts/prep-load"}}']
    assert score["deps"] == ["stages/prep/02_score.ipynb", "src", "artifacts/prep-load"]
    assert score["params"] == [{"params/prep.yaml": ["rate"]}]
    assert score["outs"] == ["artifacts/prep-score", {"runs/prep-score.ipynb": {"cache": False}}]
    assert dvc["metrics"] == ["artifacts/prep-score/index.json"]
    assert "wdir" not in score
    for stage in pipeline.stages:  # every input's provider output is a dependency
        deps = dvc["stages"][stage.name]["deps"]
        assert all(f"artifacts/{provider}" in deps for _, provider in stage.inputs)

    elsewhere = tmp_path / "dvc"
    assert main(["export", "dvc", str(two_notebooks / "pipeline.yaml"), "-o", str(elsewhere)]) == 0
    moved = yaml.safe_load((elsewhere / "dvc.yaml").read_text())["stages"]["prep-score"]
    assert moved["wdir"] == Path(os.path.relpath(two_notebooks, elsewhere)).as_posix()
    assert moved["params"] == [{Path(os.path.relpath(elsewhere / "params" / "prep.yaml",
                                                     two_notebooks)).as_posix(): ["rate"]}]


def test_help_and_convert_do_not_import_papermill(tmp_path):
    notebook = write_notebook(tmp_path / "n.ipynb", [("markdown", "## A"), "x = 1",
                                                     ("markdown", "## B"), "print(x)"])
    code = (
        "import sys, argparse\n"
        "from nb2pkg.pipeline.cli import add_commands\n"
        "parser = argparse.ArgumentParser(); add_commands(parser.add_subparsers())\n"
        "from nb2pkg.api import ConvertOptions, convert\n"
        f"convert([{str(notebook)!r}], {str(tmp_path / 'out')!r}, ConvertOptions(pipeline=True))\n"
        "heavy = [m for m in ('papermill', 'nbclient', 'jupyter_client') if m in sys.modules]\n"
        "print(heavy)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(ROOT), check=True)
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out" / "pipeline.yaml").exists()


def test_warm_up_runs_only_the_imports_and_magics_of_the_setup_cell(two_notebooks):
    from nb2pkg.pipeline.executor import warmup_source

    node = nbformat.read(str(two_notebooks / "stages" / "prep" / "02_score.ipynb"), as_version=4)
    setup = next(c for c in node.cells if c.metadata["nb2pkg"].get("pipeline") == "setup")
    setup.source += "\n%matplotlib inline\nimport json\n\n\ndef f():\n    return 1\nx = f()\n"
    path = two_notebooks / "warm.ipynb"
    nbformat.write(node, str(path))
    (package,) = [p.name for p in (two_notebooks / "src").iterdir()]
    assert warmup_source(path) == (f"from {package} import _stage_io\n"
                                   "%matplotlib inline\nimport json")


def test_unknown_kernel_is_bad_input(two_notebooks, capsys):
    text = (two_notebooks / "pipeline.yaml").read_text().replace("kernel: python3",
                                                                 "kernel: no-such-kernel")
    (two_notebooks / "other.yaml").write_text(text)
    assert main(["run", str(two_notebooks / "other.yaml")]) == 2
    assert "no Jupyter kernel named 'no-such-kernel'" in capsys.readouterr().err


def test_data_files_become_deps_and_outs_that_run_accepts(tmp_path):
    """Files each stage reads and writes are declared when run can order them, and left out
    when it cannot (two writers; read before the stage that writes it)."""
    folder = tmp_path / "in"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "raw.csv").write_text("a\n1\n")
    (folder / "data" / "twice.csv").write_text("a\n1\n")
    write_notebook(folder / "files.ipynb", [
        ("markdown", "## Load"),
        "import pandas as pd\nraw = pd.read_csv('data/raw.csv')\nearly = pd.read_csv('data/twice.csv')",
        "raw.to_csv('data/twice.csv')",
        ("markdown", "## Clean"),
        "raw.to_csv('data/clean.csv')\nraw.to_csv('data/twice.csv')",
        ("markdown", "## Report"),
        "print(pd.read_csv('data/clean.csv').shape)",
    ])
    convert([folder / "files.ipynb"], tmp_path / "out", ConvertOptions())
    stages = {s.name: s for s in load_pipeline(tmp_path / "out" / "pipeline.yaml").stages}
    load, clean, report = (stages[f"files-{n}"] for n in ("load", "clean", "report"))
    assert load.deps == ("notebooks/data/raw.csv",) and load.outs == ()
    assert clean.outs == ("notebooks/data/clean.csv",)
    assert report.deps == ("notebooks/data/clean.csv",)
    assert "notebooks/data/twice.csv" not in {*load.outs, *clean.outs, *load.deps}


def test_convert_writes_the_dvc_files_export_would_write(two_notebooks, capsys):
    from nb2pkg.pipeline.export import dvc_files

    written = {name: (two_notebooks / name).read_text()
               for name in dvc_files(two_notebooks / "pipeline.yaml")}
    assert sorted(written) == ["dvc.yaml", "params/other.yaml", "params/prep.yaml"]
    assert written == dvc_files(two_notebooks / "pipeline.yaml")
    assert main(["export", "dvc", str(two_notebooks / "pipeline.yaml"), "--check"]) == 0
    assert "matches pipeline.yaml" in capsys.readouterr().out
    assert (two_notebooks / "runs" / ".gitignore").exists()  # papermill needs the folder
    assert "__pycache__/" in (two_notebooks / ".dvcignore").read_text().splitlines()


def test_the_plan_holds_the_pipeline_that_pipeline_yaml_writes_down(tmp_path):
    """One source of truth: the stages, parameters and data files are decided in the plan
    (``PackagePlan.pipeline.spec``); the pipeline.yaml written from it loads back as the same
    record, and dvc.yaml is made from that record, not from the text."""
    from nb2pkg.api import plan_project
    from nb2pkg.generate import render
    from nb2pkg.pipeline.export import render_dvc
    from nb2pkg.pipeline.spec import parse_pipeline

    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "data.csv").write_text("x\n1\n2\n")
    notebook = write_notebook(tmp_path / "in" / "flow.ipynb", [
        ("code", "rate = 0.5", ["parameters"]),
        ("markdown", "## Load"), "rows = open('data.csv').read().splitlines()[1:]",
        ("markdown", "## Score"), "total = sum(int(r) for r in rows) * rate\nprint(total)",
        ("markdown", "## Save"), "open('total.txt', 'w').write(str(total))"])
    plan, _ = plan_project([notebook], ConvertOptions(), lambda message: None)
    spec = plan.pipeline.spec
    assert [s.name for s in spec.stages] == ["flow-load", "flow-score", "flow-save"]
    assert spec.stage("flow-load").deps == ("notebooks/data.csv",)  # project-relative
    assert spec.stage("flow-save").outs == ("notebooks/total.txt",)
    assert spec.stage("flow-score").inputs == (("rows", "flow-load"),)
    assert spec.stage("flow-score").parameters == (("rate", "rate"),)
    files = render(plan)
    loaded = parse_pipeline(files["pipeline.yaml"], spec.path, check_files=False)
    assert replace(loaded, path=spec.path) == spec  # loading makes the path absolute
    for name, text in render_dvc(spec).items():
        assert files[name] == text


def test_verify_renders_the_runnable_files_once_and_the_rest_after(tmp_path):
    """`convert --verify` runs `render_runnable` (what verification executes), then renders
    the rest once with what it recorded: the two parts never overlap and together are the
    project."""
    from nb2pkg.api import plan_project
    from nb2pkg.generate import render, render_rest, render_runnable

    notebook = write_notebook(tmp_path / "nb.ipynb", [
        "import math", "def area(r):\n    return math.pi * r * r", "print(area(2))"])
    plan, _ = plan_project([notebook], ConvertOptions(), lambda message: None)
    runnable, rest = render_runnable(plan), render_rest(plan)
    assert not set(runnable) & set(rest)
    assert {**runnable, **rest} == render(plan)
    assert {"src/nb/core.py", "notebooks/nb.ipynb", "src/nb/_stage_io.py"} <= set(runnable)
    assert {"pyproject.toml", "REPORT.md", "pipeline.yaml", "dvc.yaml"} <= set(rest)
