"""The example notebooks, converted with a pipeline and run end to end on real kernels.

Together the stages of a notebook must print what the original notebook printed, output by
output (``nb2pkg.verify.outputs_of``, cells mapped through ``metadata.nb2pkg.source_cell``; the
generated parameters/setup/load/save cells print nothing and are left out). A second run with
nothing changed must execute no stage.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from nb2pkg.api import ConvertOptions, convert
from nb2pkg.pipeline.runner import run_pipeline
from nb2pkg.verify import execute, outputs_of

pytestmark = [pytest.mark.kernel, pytest.mark.xdist_group("pipeline-examples")]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "notebooks"
NOTEBOOKS = sorted(p.stem for p in EXAMPLES.glob("*.ipynb"))


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    out = tmp_path_factory.mktemp("examples") / "project"
    convert(sorted(EXAMPLES.glob("*.ipynb")), out, ConvertOptions(name="examples_nb", pipeline=True))
    first = run_pipeline(out / "pipeline.yaml", jobs=2)
    second = run_pipeline(out / "pipeline.yaml", jobs=2)
    with ThreadPoolExecutor(2) as pool:
        originals = dict(zip(NOTEBOOKS, pool.map(_original_outputs, NOTEBOOKS)))
    return out, first, second, originals


def _original_outputs(name: str):
    from jupyter_core.utils import ensure_event_loop

    try:
        return outputs_of(execute(EXAMPLES / f"{name}.ipynb"))
    finally:
        ensure_event_loop().close()  # nbclient made one for this worker thread


def stage_outputs(project: Path, notebook: str):
    """The outputs of the notebook's stages, in order, without the generated cells."""
    outputs = []
    pipeline_stages = [s for s in _stages(project) if s["notebook"].startswith(f"stages/{notebook}/")]
    for stage in pipeline_stages:
        node = nbformat.read(str(project / "runs" / f"{stage['name']}.ipynb"), as_version=4)
        node.cells = [c for c in node.cells if "pipeline" not in c.metadata.get("nb2pkg", {})
                      and "injected-parameters" not in c.metadata.get("tags", [])]
        outputs += outputs_of(node)
    return tuple(outputs)


def _stages(project: Path):
    import yaml

    return yaml.safe_load((project / "pipeline.yaml").read_text())["stages"]


def test_every_stage_ran(examples):
    project, first, _, _ = examples
    assert first.ok, "\n".join(str(f) for f in first.failures)
    assert first.count("ran") == len(_stages(project)) >= 4 * 5


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_stages_print_what_the_original_printed(examples, notebook):
    project, first, _, originals = examples
    assert first.ok
    expected = originals[notebook]
    actual = stage_outputs(project, notebook)
    if expected != actual and len(expected) == len(actual):
        # Outputs that differ between two runs of the original itself (an unseeded random
        # jitter in a plot) say nothing about the pipeline: leave them out.
        again = outputs_of(execute(EXAMPLES / f"{notebook}.ipynb"))
        varying = {i for i, (a, b) in enumerate(zip(expected, again)) if a != b}
        expected = tuple(o for i, o in enumerate(expected) if i not in varying)
        actual = tuple(o for i, o in enumerate(actual) if i not in varying)
    assert len(expected) > 5
    assert expected == actual


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_no_code_cell_is_lost(examples, notebook):
    project = examples[0]
    refactored = nbformat.read(str(project / "notebooks" / f"{notebook}.ipynb"), as_version=4)
    wanted = [c.metadata["nb2pkg"].get("source_cell") for c in refactored.cells
              if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    found = []
    for path in sorted((project / "stages" / notebook).glob("*.ipynb")):
        node = nbformat.read(str(path), as_version=4)
        found += [c.metadata["nb2pkg"].get("source_cell") for c in node.cells
                  if c.cell_type == "code" and "pipeline" not in c.metadata["nb2pkg"]]
    assert found == wanted


def test_second_run_executes_no_stage(examples):
    _, first, second, _ = examples
    assert second.ok
    assert second.count("ran") == 0
    assert second.count("skipped") == len(first.stages)


def test_report_and_metrics_written(examples):
    project, first, _, _ = examples
    report = (project / "runs" / "report.md").read_text()
    assert "```mermaid" in report and "subgraph" in report
    assert json.loads((project / "runs" / "metrics.json").read_text())["pipeline"] == "examples_nb"
