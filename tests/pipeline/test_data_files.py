"""Data files as stage ``deps`` and ``outs``: validated paths, content-hashed cache, DVC export.

The cache tests run hand-written pipelines with the kernel-less executor of ``fake_executor``:
each stage's "code" is a Python function that reads and writes the data files. The same
behaviour on real kernels is in ``test_data_files_kernel.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from fake_executor import FakeExecutor
from nb2pkg.cli import main
from nb2pkg.errors import PipelineError
from nb2pkg.pipeline import state as state_module
from nb2pkg.pipeline.runner import run_pipeline
from nb2pkg.pipeline.spec import data_path, load_pipeline

PIPELINE = """\
version: 1
name: data
stages:
  - name: clean
    notebook: clean.ipynb
    deps: [data/raw.csv]
    outs: [data/clean.csv]
    outputs: [x]
  - name: model
    notebook: model.ipynb
    deps: [data/clean.csv]
    inputs: {x: clean}
  - name: lookup
    notebook: lookup.ipynb
    deps: [data/tables]
  - name: other
    notebook: other.ipynb
"""


def clean(job):  # what the notebook of stage `clean` does
    raw = (job.cwd / "data" / "raw.csv").read_text()
    (job.cwd / "data" / "clean.csv").write_text(raw.upper())


def model(job):
    (job.cwd / "data" / "clean.csv").read_text()


ACTIONS = {"clean": clean, "model": model}


@pytest.fixture
def project(tmp_path):
    for name in ("clean", "model", "lookup", "other"):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(
            {"cells": [{"cell_type": "code", "source": name}]}))
    (tmp_path / "data" / "tables").mkdir(parents=True)
    (tmp_path / "data" / "raw.csv").write_text("a,1\n")
    (tmp_path / "data" / "tables" / "one.csv").write_text("1\n")
    (tmp_path / "data" / "tables" / "two.csv").write_text("2\n")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def run(path, **options):
    executor = FakeExecutor(PIPELINE, actions=ACTIONS)
    result = run_pipeline(path, executor=executor, **options)
    return executor.order, {s.name: s.reason for s in result.stages}, result


def rewrite_keeping_size_and_mtime(path: Path, text: str) -> None:
    before = path.stat()
    assert len(text.encode()) == before.st_size
    path.write_text(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.fixture
def trust_stat(monkeypatch):
    """Reuse a recorded hash as soon as size, times and inode match (no "racy" re-check), so
    that the tests show what those stat fields alone catch."""
    monkeypatch.setattr(state_module, "RACY_NS", -(10 ** 18))


# -- the cache ----------------------------------------------------------------------------------
def test_untouched_data_skips_every_stage(project):
    order, _, result = run(project)
    assert order == ["clean", "model", "lookup", "other"] and result.ok
    order, reasons, _ = run(project)
    assert order == [] and set(reasons.values()) == {"up to date"}


def test_changed_content_with_same_size_and_mtime_reruns_readers_and_downstream(project,
                                                                                 trust_stat):
    run(project)
    rewrite_keeping_size_and_mtime(project.parent / "data" / "raw.csv", "b,2\n")
    order, reasons, _ = run(project)
    # exactly the stage that reads it and the one that reads what that one wrote
    assert order == ["clean", "model"]
    assert reasons == {"clean": "data changed: data/raw.csv", "model": "data changed: data/clean.csv",
                       "lookup": "up to date", "other": "up to date"}
    assert (project.parent / "data" / "clean.csv").read_text() == "B,2\n"


def test_a_changed_file_in_a_folder_dep_reruns_its_reader_only(project, trust_stat):
    run(project)
    tables = project.parent / "data" / "tables"
    rewrite_keeping_size_and_mtime(tables / "two.csv", "3\n")
    assert run(project)[0] == ["lookup"]
    (tables / "two.csv").rename(tables / "zwei.csv")  # same content, another name
    assert run(project)[0] == ["lookup"]
    (tables / "three.csv").write_text("")
    order, reasons, _ = run(project)
    assert order == ["lookup"] and reasons["lookup"] == "data changed: data/tables"
    assert run(project)[0] == []


def test_missing_or_changed_outs_rerun_the_writer_only(project):
    run(project)
    written = project.parent / "data" / "clean.csv"
    written.unlink()
    order, reasons, _ = run(project)
    # rewritten with the same content: the stage reading it stays up to date
    assert order == ["clean"] and reasons["clean"] == "outs missing: data/clean.csv"
    written.write_text("edited by hand\n")
    order, reasons, _ = run(project)
    assert order == ["clean"] and reasons["clean"] == "outs changed"
    assert written.read_text() == "A,1\n"  # what model read last time: model stays up to date


def test_a_stage_that_does_not_write_its_outs_fails(project, capsys):
    executor = FakeExecutor(PIPELINE, actions={"clean": lambda job: None})
    result = run_pipeline(project, executor=executor)
    statuses = {s.name: s.status for s in result.stages}
    assert statuses == {"clean": "failed", "model": "not run", "lookup": "ran", "other": "ran"}
    assert str(result.failures[0]).startswith(
        "stage clean: it did not write data/clean.csv (listed in its outs); executed notebook "
        "kept at ")
    assert str(result.failures[0]).endswith("(write it in the stage, or remove it from outs in "
                                            "pipeline.yaml)")


def test_missing_dep_is_an_error_before_anything_runs(project, capsys):
    (project.parent / "data" / "tables" / "one.csv").unlink()
    (project.parent / "data" / "tables" / "two.csv").unlink()
    (project.parent / "data" / "tables").rmdir()
    executor = FakeExecutor(PIPELINE, actions=ACTIONS)
    with pytest.raises(PipelineError) as info:
        run_pipeline(project, executor=executor)
    assert executor.order == []
    assert str(info.value) == (f"{project}: stage lookup reads data/tables, which does not exist "
                               "(create it, or remove it from the stage's deps)")
    assert main(["run", str(project), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "stage lookup reads data/tables" in err


def test_a_file_another_stage_writes_may_be_missing_unless_that_stage_is_left_out(project):
    order, _, result = run(project, stages=["model"])  # clean writes data/clean.csv first
    assert order == ["clean", "model"] and result.ok
    (project.parent / "data" / "clean.csv").unlink()
    with pytest.raises(PipelineError, match="stage model reads data/clean.csv, which does not "
                                            "exist: stage clean writes it and is not part of "
                                            "this run .run clean first"):
        run(project, stages=["model"], only=True)


def test_a_file_passed_on_orders_stages_like_an_input(tmp_path):
    text = """\
version: 1
name: files
stages:
  - {name: write, notebook: a.ipynb, outs: [out/table.csv]}
  - {name: read, notebook: b.ipynb, deps: [out]}
"""
    for name in ("a", "b"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    pipeline = load_pipeline(path)
    assert pipeline.stage("read").upstream == ("write",)

    def write(job):
        (job.cwd / "out").mkdir(exist_ok=True)
        (job.cwd / "out" / "table.csv").write_text("x\n")

    def read(job):
        assert (job.cwd / "out" / "table.csv").read_text() == "x\n"

    executor = FakeExecutor(text, actions={"write": write, "read": read}, seconds=0.2)
    result = run_pipeline(path, executor=executor, jobs=2)  # not side by side: read waits
    assert result.ok and executor.order == ["write", "read"] and executor.max_running == 1


# -- pipeline.yaml ------------------------------------------------------------------------------
def test_paths_are_normalized(project):
    text = PIPELINE.replace("[data/raw.csv]", "[./data//raw.csv]").replace(
        "deps: [data/tables]", "deps: [data/tables/]")
    project.write_text(text)
    pipeline = load_pipeline(project)
    assert pipeline.stage("clean").deps == ("data/raw.csv",)
    assert pipeline.stage("lookup").deps == ("data/tables",)
    assert pipeline.stage("model").upstream == ("clean",)


@pytest.mark.parametrize("bad, problem", [
    ("/etc/passwd", "is not relative to the project"),
    ("~/data.csv", "is not relative to the project"),
    ("C:/data.csv", "is not relative to the project"),
    ("../data.csv", "leaves the project (..)"),
    ("data/../../data.csv", "leaves the project (..)"),
    (".", "is the whole project"),
    ("data/./..", "is the whole project"),
    ("data\\\\raw.csv", "uses backslashes (write paths with /)"),
])
def test_paths_outside_the_project_are_refused_with_line_and_field(project, bad, problem):
    project.write_text(PIPELINE.replace("deps: [data/raw.csv]", f'deps: ["{bad}"]'))
    with pytest.raises(PipelineError) as info:
        load_pipeline(project)
    shown = bad.replace("\\\\", "\\")
    assert str(info.value) == (f"{project}: line 6: stages[0].deps[0]: path {shown!r} {problem} "
                               "(give a path relative to the pipeline file, inside the project)")


@pytest.mark.parametrize("old, new, expected", [
    ("deps: [data/tables]", "deps: [artifacts/clean]",
     "line 15: stages[2].deps[0]: path 'artifacts/clean' overlaps the artifacts folder "
     "(artifacts), which `nb2pkg run` writes itself"),
    ("outs: [data/clean.csv]", "outs: [runs]",
     "line 7: stages[0].outs[0]: path 'runs' overlaps the runs folder"),
    ("deps: [data/tables]", "deps: [pipeline.state.json]", "overlaps the state file"),
    ("    notebook: other.ipynb\n", "    notebook: other.ipynb\n    outs: [data/clean.csv/../clean.csv]\n",
     "line 18: stages[3].outs[0]: data/clean.csv is also written by stage 'clean' "
     "(data/clean.csv) (each file is the output of one stage)"),
    ("deps: [data/raw.csv]", "deps: [data/clean.csv/]",
     "line 6: stages[0].deps[0]: data/clean.csv is both read and written by this stage"),
    ("deps: [data/raw.csv]", "deps: [data/other.csv]\n    needs: []",
     None),
])
def test_conflicting_data_paths_are_refused(project, old, new, expected):
    text = PIPELINE.replace(old, new)
    project.write_text(text)
    if expected is None:
        load_pipeline(project)
        return
    with pytest.raises(PipelineError) as info:
        load_pipeline(project)
    assert expected in str(info.value)


def test_a_dep_written_by_a_later_stage_is_refused(project):
    project.write_text(PIPELINE.replace("    notebook: other.ipynb\n",
                                        "    notebook: other.ipynb\n    outs: [data/tables]\n"))
    with pytest.raises(PipelineError) as info:
        load_pipeline(project)
    assert ("line 15: stages[2].deps[0]: data/tables is written by stage 'other', which comes "
            "later in the file") in str(info.value)


def test_pipeline_deps_are_checked_too(project):
    project.write_text(PIPELINE.replace("stages:\n", "deps: [../src]\nstages:\n", 1))
    with pytest.raises(PipelineError, match=r"line 3: deps\[0\]: path '../src' leaves the project"):
        load_pipeline(project)
    project.write_text(PIPELINE.replace("stages:\n", "deps: [src]\nstages:\n", 1))
    with pytest.raises(PipelineError, match=r"deps: src does not exist \(create it, or remove "
                                            r"it from the pipeline's deps\)"):
        run(project)


def test_a_pipeline_dep_written_by_a_stage_is_refused(project):
    project.write_text(PIPELINE.replace("stages:\n", "deps: [data/clean.csv]\nstages:\n", 1))
    with pytest.raises(PipelineError) as info:
        load_pipeline(project)
    assert str(info.value) == (f"{project}: line 3: deps[0]: data/clean.csv is written by stage "
                               "'clean', and every stage depends on the pipeline's deps (list it "
                               "in the deps of the stages that read it instead)")


def test_data_path_helper_for_the_convert_side():
    assert data_path("notebooks/data/../data/x.csv") == "notebooks/data/x.csv"
    with pytest.raises(ValueError, match="leaves the project"):
        data_path("notebooks/../../x.csv")


# -- DVC ----------------------------------------------------------------------------------------
def test_dvc_export_lists_data_deps_and_outs(project):
    assert main(["export", "dvc", str(project)]) == 0
    stages = yaml.safe_load((project.parent / "dvc.yaml").read_text())["stages"]
    assert stages["clean"]["deps"] == ["clean.ipynb", "data/raw.csv"]
    assert stages["clean"]["outs"] == ["artifacts/clean", "data/clean.csv",
                                       {"runs/clean.ipynb": {"cache": False}}]
    assert stages["model"]["deps"] == ["model.ipynb", "data/clean.csv", "artifacts/clean"]
    assert stages["lookup"]["deps"] == ["lookup.ipynb", "data/tables"]
