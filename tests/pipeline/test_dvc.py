"""dvc.yaml from pipeline.yaml: papermill commands (no nb2pkg), parameters files, one source of
truth (a dvc.yaml that differs is reported), and bad input that must not hang or crash.

The end-to-end test with DVC itself is tests/pipeline/test_dvc_repro.py.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_executor import FakeExecutor
from nb2pkg.cli import main
from nb2pkg.errors import PipelineError
from nb2pkg.pipeline import export
from nb2pkg.pipeline.export import dvc_mismatch, render_dvc, write_dvc
from nb2pkg.pipeline.runner import run_pipeline
from nb2pkg.pipeline.spec import load_pipeline, resolve_parameters

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = """\
version: 1
name: fake
workdir: notebooks
deps: [src]
parameters:
  n: {type: int, default: 1}
  names: {type: list, default: [a, "b c"]}
stages:
  - {name: a1, notebook: stages/a1.ipynb, parameters: [n, names], outputs: [x], deps: [data/in.csv]}
  - {name: a2, notebook: stages/a2.ipynb, inputs: {x: a1}, metrics: [auc], outs: [data/out.csv]}
  - {name: b1, notebook: stages/b1.ipynb, parameters: [n], needs: [a2]}
"""


@pytest.fixture
def pipeline(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "stages").mkdir()
    for name in ("a1", "a2", "b1"):
        (tmp_path / "stages" / f"{name}.ipynb").write_text(json.dumps(
            {"cells": [{"cell_type": "code", "source": name}]}))
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def stages_of(folder: Path) -> dict:
    return yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]


def test_each_stage_is_a_papermill_call_with_its_parameters_inputs_and_outputs(pipeline):
    files = render_dvc(load_pipeline(pipeline))
    assert sorted(files) == ["dvc.yaml", "params.yaml"]
    dvc = yaml.safe_load(files["dvc.yaml"])
    a1, a2, b1 = (dvc["stages"][name] for name in ("a1", "a2", "b1"))
    assert shlex.split(a1["cmd"]) == [
        "python", "-m", "papermill", "stages/a1.ipynb", "runs/a1.ipynb", "--cwd", "notebooks",
        "-k", "python3", "--no-progress-bar", "-f", "params.yaml",
        "-r", "nb2pkg_stage", "a1", "-r", "nb2pkg_outputs", "../artifacts/a1"]
    words = shlex.split(a2["cmd"])
    assert "-f" not in words and "nb2pkg" not in words[:3]
    assert json.loads(words[words.index("-y") + 1]) == {"nb2pkg_inputs": {"x": "../artifacts/a1"}}
    assert a1["deps"] == ["stages/a1.ipynb", "src", "data/in.csv"]
    assert a1["params"] == [{"params.yaml": ["n", "names"]}]
    assert a2["deps"] == ["stages/a2.ipynb", "src", "artifacts/a1"]
    assert a2["outs"] == ["artifacts/a2", "data/out.csv", {"runs/a2.ipynb": {"cache": False}}]
    assert b1["params"] == [{"params.yaml": ["n"]}]
    assert b1["deps"] == ["stages/b1.ipynb", "src", "artifacts/a2"]  # needs: DVC orders by deps
    assert dvc["metrics"] == ["artifacts/a2/index.json"]
    # papermill reads the same file: notebook variables with their defaults, types kept.
    assert yaml.safe_load(files["params.yaml"]) == {"n": 1, "names": ["a", "b c"]}


def test_several_notebooks_get_one_flat_parameters_file_each(pipeline):
    pipeline.write_text(PIPELINE.replace("n: {type", "nb_a.n: {type").replace(
        "names: {type", "nb_a.names: {type").replace("parameters: [n, names]",
                                                     "parameters: {n: nb_a.n, names: nb_a.names}")
        .replace("parameters: [n],", "parameters: {n: nb_b.n},").replace(
        "stages:", "  nb_b.n: {type: int, default: 5}\nstages:"))
    files = render_dvc(load_pipeline(pipeline))
    assert sorted(files) == ["dvc.yaml", "params/nb_a.yaml", "params/nb_b.yaml"]
    assert yaml.safe_load(files["params/nb_b.yaml"]) == {"n": 5}
    b1 = yaml.safe_load(files["dvc.yaml"])["stages"]["b1"]
    assert b1["params"] == [{"params/nb_b.yaml": ["n"]}]
    assert "-f params/nb_b.yaml" in b1["cmd"]


def test_a_parameter_not_named_after_its_variable_cannot_be_exported(pipeline):
    pipeline.write_text(PIPELINE.replace("parameters: [n],", "parameters: {k: n},"))
    with pytest.raises(PipelineError, match="variable `k` takes parameter 'n'"):
        render_dvc(load_pipeline(pipeline))


def test_exported_elsewhere_stages_run_in_the_pipeline_folder(pipeline, tmp_path):
    elsewhere = tmp_path / "dvc"
    assert main(["export", "dvc", str(pipeline), "-o", str(elsewhere)]) == 0
    a1 = stages_of(elsewhere)["a1"]
    assert a1["wdir"] == ".."
    assert a1["params"] == [{"dvc/params.yaml": ["n", "names"]}]
    assert "-f dvc/params.yaml" in a1["cmd"]
    assert yaml.safe_load((elsewhere / "dvc.yaml").read_text())["metrics"] == [
        "../artifacts/a2/index.json"]


def test_force_keeps_the_parameter_values_that_still_fit(pipeline, capsys):
    folder = pipeline.parent
    assert main(["export", "dvc", str(pipeline)]) == 0
    (folder / "params.yaml").write_text("n: 7  # mine\nnames: not a list\ngone: 1\n")
    assert main(["export", "dvc", str(pipeline)]) == 2
    assert "(pass --force to replace them (parameter values are kept))" in \
        capsys.readouterr().err
    assert main(["export", "dvc", str(pipeline), "--force"]) == 0
    assert yaml.safe_load((folder / "params.yaml").read_text()) == {"n": 7, "names": ["a", "b c"]}
    assert resolve_parameters(load_pipeline(pipeline), files=[folder / "params.yaml"])["n"] == 7


# -- one source of truth ------------------------------------------------------------------------
def test_run_warns_when_dvc_yaml_no_longer_matches_pipeline_yaml(pipeline, capsys, monkeypatch):
    folder = pipeline.parent
    (folder / "data").mkdir()
    (folder / "data" / "in.csv").write_text("x\n")
    (folder / "src").mkdir()
    pipeline.write_text(PIPELINE.replace(", outs: [data/out.csv]", ""))

    def run():
        result = run_pipeline(pipeline, executor=FakeExecutor(pipeline.read_text()))
        assert result.ok
        return result

    assert run().warnings == ()  # no dvc.yaml: nothing to compare
    write_dvc(pipeline)
    assert run().warnings == ()
    assert dvc_mismatch(load_pipeline(pipeline)) is None

    pipeline.write_text(pipeline.read_text().replace("deps: [data/in.csv]", "deps: []"))
    (warning,) = run().warnings
    assert warning == (f"{folder / 'dvc.yaml'}: does not match pipeline.yaml: stage a1 differs "
                       "(deps) (run `nb2pkg export dvc --force` to write it again from "
                       "pipeline.yaml)")
    # The command line prints it once, as a warning, and the run still succeeds.
    import nb2pkg.pipeline.runner as runner_module

    real = runner_module.run_pipeline
    monkeypatch.setattr(runner_module, "run_pipeline", lambda *a, **k: real(
        *a, **{**k, "executor": FakeExecutor(pipeline.read_text())}))
    assert main(["run", str(pipeline), "-q"]) == 0
    assert capsys.readouterr().err == f"nb2pkg: warning: {warning}\n"
    assert main(["export", "dvc", str(pipeline), "--check"]) == 1
    assert capsys.readouterr().err == f"nb2pkg: error: {warning}\n"

    assert main(["export", "dvc", str(pipeline), "--force"]) == 0
    assert main(["export", "dvc", str(pipeline), "--check"]) == 0
    capsys.readouterr()
    dvc = yaml.safe_load((folder / "dvc.yaml").read_text())
    dvc["stages"]["mine"] = {"cmd": "echo hi"}
    (folder / "dvc.yaml").write_text(yaml.safe_dump(dvc))  # reformatted: still the same stages
    assert "stage mine is not in pipeline.yaml" in dvc_mismatch(load_pipeline(pipeline))
    del dvc["stages"]["b1"], dvc["stages"]["mine"]
    (folder / "dvc.yaml").write_text(yaml.safe_dump(dvc))
    assert ": stage b1 is missing (" in dvc_mismatch(load_pipeline(pipeline))
    (folder / "dvc.yaml").write_text("stages: [\n")
    assert "dvc.yaml: line 2: not valid YAML" in dvc_mismatch(load_pipeline(pipeline))
    (folder / "dvc.yaml").write_text("stages: {a1: 5}\n")
    assert "stage a1 differs (cmd, deps, params, outs)" in dvc_mismatch(load_pipeline(pipeline))
    # A pipeline DVC cannot run (a parameter not named after its variable) still runs here.
    pipeline.write_text(pipeline.read_text().replace("parameters: [n],", "parameters: {k: n},"))
    (warning,) = run().warnings
    assert "pipeline.yaml makes no dvc.yaml: stage b1: variable `k` takes parameter 'n'" in warning


# -- bad input ----------------------------------------------------------------------------------
def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("command", ["run", "export"])
def test_a_fifo_as_pipeline_file_is_a_one_line_error(tmp_path, command):
    fifo = tmp_path / "pipeline.yaml"
    os.mkfifo(fifo)
    args = ["run", str(fifo)] if command == "run" else ["export", "dvc", str(fifo)]
    done = _cli(*args, cwd=tmp_path)  # used to wait forever for a writer
    assert done.returncode == 2
    assert done.stderr == (f"nb2pkg: error: {fifo}: is a FIFO, not a regular file (nb2pkg reads "
                           "regular files only)\n")


def test_a_fifo_as_parameters_file_is_a_one_line_error(pipeline, tmp_path):
    fifo = tmp_path / "values.yaml"
    os.mkfifo(fifo)
    done = _cli("run", str(pipeline), "-f", str(fifo), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (f"nb2pkg: error: {fifo}: is a FIFO, not a regular file (nb2pkg reads "
                           "regular files only)\n")


@pytest.mark.parametrize("which", ["pipeline", "parameters"])
def test_yaml_nested_50000_deep_is_a_one_line_error(pipeline, tmp_path, capsys, which):
    deep = "[" * 50_000 + "]" * 50_000 + "\n"
    target = pipeline if which == "pipeline" else tmp_path / "values.yaml"
    target.write_text(deep)
    args = ["run", str(pipeline)] + (["-f", str(target)] if which == "parameters" else [])
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"nb2pkg: error: {target}: not readable: nested thousands of levels deep (such a file is "
        "a few levels deep; check what wrote it)\n")


def test_export_to_a_folder_name_too_long_is_a_one_line_error(pipeline, capsys):
    long = pipeline.parent / ("d" * 300)
    assert main(["export", "dvc", str(pipeline), "-o", str(long)]) == 2
    err = capsys.readouterr().err
    assert err == (f"nb2pkg: error: {long}: cannot look at the folder: File name too long\n")


_names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
_parameter_values = (st.integers() | st.booleans() | st.none() | st.floats() | _names
                     | st.text(max_size=6) | st.lists(st.integers(), max_size=2))


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(_names | st.sampled_from(["yes", "null", "On"]), _parameter_values,
                       min_size=1, max_size=4))
def test_parameters_files_hold_what_pyyaml_writes(values) -> None:
    # Names and numbers are written without PyYAML (a fast path): byte for byte what it writes.
    expected = yaml.safe_dump(values, sort_keys=False, default_flow_style=False,
                              allow_unicode=True, width=100).rstrip("\n")
    assert export._dump(values) == expected
