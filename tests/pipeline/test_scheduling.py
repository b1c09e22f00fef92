"""Scheduling without kernels: order, parallelism, skipping and failures, with a fake executor."""

from __future__ import annotations

import json

import pytest

from fake_executor import FakeExecutor  # tests/pipeline/fake_executor.py
from nb2pkg.errors import PipelineError
from nb2pkg.pipeline.runner import run_pipeline

PIPELINE = """\
version: 1
name: fake
parameters:
  n: {type: int, default: 1}
stages:
  - {name: a1, notebook: a1.ipynb, parameters: [n], outputs: [x]}
  - {name: a2, notebook: a2.ipynb, inputs: {x: a1}, outputs: [x]}
  - {name: a3, notebook: a3.ipynb, inputs: {x: a2}}
  - {name: b1, notebook: b1.ipynb, outputs: [y]}
  - {name: b2, notebook: b2.ipynb, inputs: {y: b1}}
"""


@pytest.fixture
def pipeline(tmp_path):
    for name in ("a1", "a2", "a3", "b1", "b2"):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code",
                                                                       "source": name}]}))
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def run(path, executor, **options):
    return run_pipeline(path, executor=executor, **options)


def statuses(result):
    return {s.name: s.status for s in result.stages}


def test_dependency_order_and_parallel_chains(pipeline):
    executor = FakeExecutor(PIPELINE, seconds=0.2)
    result = run(pipeline, executor, jobs=2)
    assert result.ok
    order = executor.order
    assert order.index("a1") < order.index("a2") < order.index("a3")
    assert order.index("b1") < order.index("b2")
    assert executor.max_running == 2  # the two chains ran side by side
    assert "a2" in executor.prepared  # its kernel would start while a1 runs


def test_jobs_limit(pipeline):
    executor = FakeExecutor(PIPELINE)
    run(pipeline, executor, jobs=1)
    assert executor.max_running == 1


def test_unchanged_stages_are_skipped_and_changes_propagate(pipeline):
    run(pipeline, FakeExecutor(PIPELINE))
    again = FakeExecutor(PIPELINE)
    result = run(pipeline, again)
    assert again.order == [] and set(statuses(result).values()) == {"skipped"}
    changed = FakeExecutor(PIPELINE)
    result = run(pipeline, changed, overrides=[("n", "2")])
    # a2 ran on the new x, but wrote the same value as before: a3 is still up to date
    assert changed.order == ["a1", "a2"]
    reasons = {s.name: s.reason for s in result.stages}
    assert reasons["a1"] == "parameters changed" and reasons["a2"] == "inputs changed"
    assert reasons["a3"] == "up to date"
    forced = FakeExecutor(PIPELINE)
    run(pipeline, forced, overrides=[("n", "2")], force=True, stages=["b2"])
    assert forced.order == ["b2"]  # --force applies to the selected stage, b1 is up to date


def test_deleted_outputs_rerun_the_stage(pipeline):
    run(pipeline, FakeExecutor(PIPELINE))
    (pipeline.parent / "artifacts" / "b1" / "index.json").unlink()
    executor = FakeExecutor(PIPELINE)
    result = run(pipeline, executor)
    assert executor.order == ["b1"]  # b2's input is identical again, so it is skipped
    assert {s.name: s.reason for s in result.stages}["b1"] == "outputs changed or missing"


def test_failure_stops_downstream_only_and_the_next_run_resumes(pipeline):
    failing = FakeExecutor(PIPELINE, fail={"a2"})
    result = run(pipeline, failing)
    assert statuses(result) == {"a1": "ran", "a2": "failed", "a3": "not run", "b1": "ran",
                                "b2": "ran"}
    assert not result.ok
    assert str(result.failures[0]).startswith("stage a2, cell 3 (cell 7 of the original notebook): "
                                              "RuntimeError: boom; executed notebook kept at ")
    resumed = FakeExecutor(PIPELINE)
    result = run(pipeline, resumed)
    assert resumed.order == ["a2", "a3"] and result.ok


def test_stage_selection(pipeline):
    executor = FakeExecutor(PIPELINE)
    run(pipeline, executor, stages=["a2"])
    assert executor.order == ["a1", "a2"]  # what a2 needs, then a2
    with pytest.raises(PipelineError, match="no stage named 'zz'"):
        run(pipeline, FakeExecutor(PIPELINE), stages=["zz"])
    only = FakeExecutor(PIPELINE)
    run(pipeline, only, stages=["a3"], only=True)
    assert only.order == ["a3"]


def test_only_refuses_when_upstream_never_ran(pipeline):
    with pytest.raises(PipelineError, match="stage a2 needs a1, which has not run"):
        run(pipeline, FakeExecutor(PIPELINE), stages=["a2"], only=True)


def test_report_and_metrics_files(pipeline):
    result = run(pipeline, FakeExecutor(PIPELINE, fail={"b1"}))
    report = (pipeline.parent / "runs" / "report.md").read_text()
    assert "```mermaid" in report and "s0 --> s1" in report and ":::failed" in report
    assert "stage b1, cell 3" in report
    assert json.loads((pipeline.parent / "runs" / "metrics.json").read_text())["stages"] == {}
    assert result.report_path.endswith("report.md")


def test_a_kernel_started_ahead_is_told_what_loading_the_inputs_will_import(pipeline):
    from fractions import Fraction

    from nb2pkg.pipeline.artifacts import save_outputs

    class Recording(FakeExecutor):
        def __init__(self, text):
            super().__init__(text, seconds=0.3)
            self.jobs = {}

        def prepare(self, job):
            self.jobs[job.stage] = job
            return super().prepare(job)

    run(pipeline, FakeExecutor(PIPELINE))
    # a1's last outputs hold a Fraction: a2 (prepared while a1 runs again, its artifacts
    # deleted) will unpickle one, and its kernel started ahead imports `fractions` too.
    save_outputs(str(pipeline.parent / "artifacts" / "a1"), ["x"], {"x": Fraction(1, 3)},
                 stage="a1")
    executor = Recording(PIPELINE)
    result = run(pipeline, executor, jobs=1)
    assert statuses(result)["a1"] == "ran"
    assert executor.jobs["a2"].warm == ("fractions",)
