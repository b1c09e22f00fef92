"""Executors and exporters by name: built-ins, plugins through entry points, missing extras."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from fake_executor import FakeExecutor

from nb2pkg.errors import PipelineError
from nb2pkg.pipeline import registry
from nb2pkg.pipeline.runner import run_pipeline

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """\
version: 1
name: p
stages:
  - {name: a, notebook: a.ipynb, outputs: [x]}
  - {name: b, notebook: b.ipynb, inputs: {x: a}}
"""
MADE: list = []


def make_fake(options):
    """A plugin's executor factory."""
    MADE.append(options)
    return FakeExecutor(PIPELINE)


def fake_export(pipeline_path, options):
    """A plugin's exporter."""
    target = Path(options.output) / "exported.txt"
    target.write_text(f"{Path(pipeline_path).name} {options.force}")
    return [target]


@pytest.fixture
def plugins(monkeypatch):
    points = {registry.EXECUTORS: [EntryPoint("fake", "test_registry:make_fake",
                                              registry.EXECUTORS)],
              registry.EXPORTERS: [EntryPoint("fake", "test_registry:fake_export",
                                              registry.EXPORTERS),
                                   EntryPoint("broken", "no_such_module:x", registry.EXPORTERS)]}
    monkeypatch.setattr(registry, "_entry_points", lambda group: points[group])


@pytest.fixture
def pipeline(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.ipynb").write_text("{}")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def test_a_plugin_executor_runs_the_pipeline(plugins, pipeline):
    MADE.clear()
    assert registry.names(registry.EXECUTORS) == ["local", "dask", "fake"]
    result = run_pipeline(pipeline, executor="fake", jobs=3)
    assert result.ok and result.count("ran") == 2
    assert MADE[0].jobs == 3 and MADE[0].scheduler is None


def test_a_plugin_exporter_is_a_command(plugins, pipeline, tmp_path, capsys):
    from nb2pkg.cli import main

    assert main(["export", "fake", str(pipeline), "-o", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "exported.txt").read_text() == "pipeline.yaml True"
    assert main(["export", "broken", str(pipeline)]) == 2
    err = capsys.readouterr().err
    assert "the exporter 'broken' (no_such_module:x) cannot be loaded" in err
    assert len(err.strip().splitlines()) == 1


def test_an_unknown_name_lists_the_available_ones(plugins, pipeline):
    with pytest.raises(PipelineError, match=r"no executor named 'slurm' \(available: local, "
                                            r"dask, fake\)"):
        run_pipeline(pipeline, executor="slurm")


def test_a_missing_extra_is_named_in_one_line(monkeypatch, pipeline):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(PipelineError) as caught:
        run_pipeline(pipeline, executor="dask")
    message = str(caught.value)
    assert "pip install 'nb2pkg[dask]'" in message and "\n" not in message


def test_the_local_executor_loads_no_plugin_and_no_dask():
    code = ("import sys\n"
            "from nb2pkg.pipeline import registry\n"
            "from nb2pkg.pipeline.registry import EXECUTORS, ExecutorOptions, load\n"
            "load(EXECUTORS, 'local')(ExecutorOptions())\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'importlib_metadata', 'airflow')))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(ROOT), check=True)
    assert done.stdout.strip() == "[]"


def test_a_scheduler_without_a_cluster_executor_is_refused(pipeline):
    with pytest.raises(PipelineError, match="add --executor dask, or drop --scheduler"):
        run_pipeline(pipeline, scheduler="tcp://127.0.0.1:8786")
