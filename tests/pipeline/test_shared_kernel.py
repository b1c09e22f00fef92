"""``nb2pkg run --shared-kernel``: the stages of a notebook on one kernel, on real kernels.

What must hold: the same artifacts and printed output as fresh kernels, no variable crossing
stages except through the artifacts, and a failing middle stage that a later run (fresh kernel)
resumes from. That the kernel really is shared is seen from the kernel's process id, which each
stage prints.
"""

from __future__ import annotations


import nbformat
import pytest

from helpers import printed, run_json
from nb2pkg.errors import PipelineError
from nb2pkg.pipeline.runner import run_pipeline

PID = "import os\nprint('pid', os.getpid())"
# `hidden` is set behind the splitter's back: with fresh kernels stage two never sees it, and
# a shared kernel must not show it either (its variables are reset between stages).
CELLS = [("code", "n = 3", ["parameters"]),
         ("markdown", "## Make"), "rows = list(range(n))\n" + "globals()['hidden'] = 1", PID,
         ("markdown", "## Grow"), "rows.append(99)\nprint('hidden' in globals())", PID,
         ("markdown", "## Show"), "print(rows, len(rows))", PID]


def outputs(project, stages):
    """Per stage: printed lines without the process id, the process id, the artifact files."""
    found = {}
    for stage in stages:
        lines = printed(project, stage).splitlines()
        folder = project / "artifacts" / stage
        found[stage] = ([line for line in lines if not line.startswith("pid ")],
                        [line for line in lines if line.startswith("pid ")],
                        {p.name: p.read_bytes() for p in sorted(folder.iterdir())})
    return found


@pytest.mark.kernel
def test_same_artifacts_and_output_as_fresh_kernels_on_one_kernel(project):
    out = project(CELLS)
    stages = ["nb-make", "nb-grow", "nb-show"]
    code, _, ran = run_json(out)
    assert code == 0 and ran == stages
    fresh = outputs(out, stages)
    code, _, ran = run_json(out, "--force", "--shared-kernel")
    assert code == 0 and ran == stages
    shared = outputs(out, stages)

    for stage in stages:
        assert shared[stage][0] == fresh[stage][0]  # printed the same
        assert shared[stage][2] == fresh[stage][2]  # the same artifacts, byte for byte
    assert shared["nb-grow"][0] == ["False"]  # `hidden` did not cross the shared kernel
    assert shared["nb-show"][0] == ["[0, 1, 2, 99] 4"]
    assert len({fresh[s][1][0] for s in stages}) == 3  # three kernels by default ...
    assert len({shared[s][1][0] for s in stages}) == 1  # ... one with --shared-kernel
    # The executed notebooks look as on a fresh kernel: execution counts start at 1.
    node = nbformat.read(str(out / "runs" / "nb-show.ipynb"), as_version=4)
    counts = [c.execution_count for c in node.cells if c.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1))


@pytest.mark.kernel
def test_a_failing_middle_stage_stops_the_shared_kernel_and_the_next_run_resumes(project):
    out = project([("markdown", "## Make"), "x = 41",
                   ("markdown", "## Check"), "import os\n"
                   "if not os.path.exists('go.txt'):\n    raise RuntimeError('no go.txt here')\n"
                   "x += 1",
                   ("markdown", "## Show"), "print(x)"])
    code, result, ran = run_json(out, "--shared-kernel")
    assert code == 1 and ran == ["nb-make"]
    status = {s["name"]: s["status"] for s in result["stages"]}
    assert status == {"nb-make": "ran", "nb-check": "failed", "nb-show": "not run"}
    assert "RuntimeError: no go.txt here" in result["stages"][1]["error"]

    (out / "notebooks" / "go.txt").write_text("")
    code, result, ran = run_json(out, "--shared-kernel")
    assert code == 0 and ran == ["nb-check", "nb-show"]  # resumed, on a fresh kernel
    assert printed(out, "nb-show") == "42\n"  # x came from nb-make's artifacts


@pytest.mark.kernel
def test_two_notebooks_side_by_side_keep_a_kernel_each(tmp_path):
    from helpers import write_notebook

    from nb2pkg.api import ConvertOptions, convert

    notebooks = [write_notebook(tmp_path / "input" / f"{name}.ipynb", [
        ("markdown", "## One"), f"value = {start}", PID,
        ("markdown", "## Two"), "value += 1\nprint('value', value)", PID])
        for name, start in (("left", 10), ("right", 20))]
    out = tmp_path / "project"
    convert(notebooks, out, ConvertOptions(pipeline=True, extract=False))
    code, _, ran = run_json(out, "--shared-kernel", "--jobs", "2")
    assert code == 0 and sorted(ran) == ["left-one", "left-two", "right-one", "right-two"]
    pids = {stage: [line for line in printed(out, stage).splitlines() if line.startswith("pid ")]
            for stage in ran}
    assert pids["left-one"] == pids["left-two"] and pids["right-one"] == pids["right-two"]
    assert pids["left-one"] != pids["right-one"]  # a kernel per notebook, never swapped
    assert "value 11" in printed(out, "left-two") and "value 21" in printed(out, "right-two")


def test_shared_kernel_is_refused_with_another_executor(tmp_path):
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("version: 1\nname: x\nstages: []\n")
    with pytest.raises(PipelineError, match="--shared-kernel is an option of the local executor"):
        run_pipeline(pipeline, executor="dask", shared_kernel=True)
