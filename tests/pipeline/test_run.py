"""``nb2pkg run`` on real kernels with tiny notebooks: skipping, resuming, errors, parameters, metrics.

Each test converts a notebook written here (``project`` fixture), then runs the pipeline through
the command-line entry point, as a user would.
"""

from __future__ import annotations

import json

import nbformat
import pytest

from helpers import printed, run_json
from nb2pkg.cli import main

pytestmark = pytest.mark.kernel

CHAIN = [("code", "n = 2", ["parameters"]),
         ("markdown", "## Make"), "rows = list(range(n))",
         ("markdown", "## Grow"), "rows.append(99)",
         ("markdown", "## Show"), "print(rows)"]


def run(project, *args, capsys=None):
    code = main(["run", str(project / "pipeline.yaml"), "-q", *args])
    out = capsys.readouterr() if capsys is not None else None
    return code, out


def ran(project):
    report = json.loads((project / "runs" / "last.json").read_text())
    return [s["name"] for s in report["stages"] if s["status"] == "ran"]


def test_skip_when_unchanged_and_rerun_what_changed(project):
    out = project(CHAIN)
    code, _, stages = run_json(out)
    assert code == 0 and stages == ["nb-make", "nb-grow", "nb-show"]
    assert printed(out, "nb-show") == "[0, 1, 99]\n"  # the in-place append crossed stages

    code, result, stages = run_json(out)
    assert code == 0 and stages == []  # nothing changed: nothing runs
    assert {s["reason"] for s in result["stages"]} == {"up to date"}

    code, result, stages = run_json(out, "-p", "n", "3")
    assert stages == ["nb-make", "nb-grow", "nb-show"]
    assert printed(out, "nb-show") == "[0, 1, 2, 99]\n"
    assert result["parameters"] == {"n": 3}

    show = out / "stages" / "nb" / "03_show.ipynb"
    node = nbformat.read(str(show), as_version=4)
    node.cells[-2].source = "print(len(rows))"
    nbformat.write(node, str(show))
    code, _, stages = run_json(out, "-p", "n", "3")
    assert stages == ["nb-show"] and printed(out, "nb-show") == "4\n"


def test_failure_reports_stage_cell_error_and_notebook_then_resumes(project, capsys):
    out = project([("markdown", "## Make"), "x = 41",
                   ("markdown", "## Check"), "import os\n"
                   "if not os.path.exists('go.txt'):\n    raise RuntimeError('no go.txt here')\n"
                   "x += 1",
                   ("markdown", "## Show"), "print(x)"])
    code, streams = run(out, capsys=capsys)
    assert code == 1
    error = next(line for line in streams.out.splitlines() if line.startswith("error:"))
    kept = out / "runs" / "nb-check.ipynb"
    assert ("error: stage nb-check, cell 4 (cell 3 of the original notebook): RuntimeError: no "
            f"go.txt here; executed notebook kept at {kept}") == error
    assert kept.exists()
    assert "nb-show" in streams.out and "not run" in streams.out
    assert (out / "artifacts" / "nb-make" / "index.json").exists()  # finished work stays

    (out / "notebooks" / "go.txt").write_text("")  # stages run in notebooks/, like the notebook
    code, result, stages = run_json(out)
    assert code == 0 and stages == ["nb-check", "nb-show"]  # resumed at the failed stage
    assert printed(out, "nb-show") == "42\n"


def test_unserializable_value_is_named_with_its_stage_and_the_fix(project, capsys):
    out = project([("markdown", "## Open"), "import threading\nlock = threading.Lock()",
                   ("markdown", "## Use"), "print(lock.locked())"])
    code, streams = run(out, capsys=capsys)
    assert code == 1
    assert ("ArtifactError: stage nb-open: cannot save variable `lock` (_thread.lock)"
            in streams.out)
    assert "--single-stage" in streams.out
    assert "(the generated save cell)" in streams.out

    single = project([("markdown", "## Open"), "import threading\nlock = threading.Lock()",
                      ("markdown", "## Use"), "print(lock.locked())"],
                     single_stage=True, output="single")
    code, _, stages = run_json(single)
    assert code == 0 and stages == ["nb"]


def test_bad_input_exits_2_with_a_one_line_message(project, capsys):
    out = project(CHAIN)
    code, streams = run(out, "-p", "m", "1", capsys=capsys)
    assert code == 2
    assert streams.err.strip() == (f"nb2pkg: error: {out / 'pipeline.yaml'}: unknown parameter "
                                   "'m' (-p m ...) (known parameters: n)")
    code, streams = run(out, "-p", "n", "two", capsys=capsys)
    assert code == 2 and "parameter n is an int (default 2)" in streams.err


def test_metrics_and_report_with_baseline(project, tmp_path):
    out = project([("code", "k = 3", ["parameters"]),
                   ("markdown", "## Score"),
                   ("code", "score = k / 4\n{'score': score, 'k': k}", ["metrics"])])
    code, result, _ = run_json(out)
    assert code == 0
    metrics = json.loads((out / "runs" / "metrics.json").read_text())
    assert metrics["stages"] == {"nb": {"score": 0.75, "k": 3}}
    node = nbformat.read(str(out / "runs" / "nb.ipynb"), as_version=4)
    shown = [o for c in node.cells for o in c.get("outputs", []) if o["output_type"] == "execute_result"]
    assert shown[0]["data"]["text/plain"] == "{'score': 0.75, 'k': 3}"  # displayed as before
    baseline = tmp_path / "baseline.json"
    baseline.write_text((out / "runs" / "metrics.json").read_text())
    code, result, _ = run_json(out, "-p", "k", "2", "--baseline", str(baseline))
    report = (out / "runs" / "report.md").read_text()
    # (text in the report is Markdown-escaped: a leading minus is written `\-`)
    assert "| `nb` | score | 0.5 | 0.75 | -0.25 (-33.3%) |" in report.replace("\\-", "-")
    assert "```mermaid" in report
    assert (out / "artifacts" / "nb.metrics.json").exists()  # for `dvc metrics`


def test_a_cell_that_raises_on_purpose_does_not_fail_its_stage(project):
    # papermill fails a run on any error output, also one nbclient ran past.
    out = project([("markdown", "## Make"), "rows = [1, 2]",
                   ("code", "rows[5]  # IndexError, shown on purpose", ["raises-exception"]),
                   ("markdown", "## Show"), "print(rows)"])
    code, _, stages = run_json(out)
    assert code == 0 and stages == ["nb-make", "nb-show"]
    assert printed(out, "nb-show") == "[1, 2]\n"
    stage = nbformat.read(str(out / "stages" / "nb" / "01_make.ipynb"), as_version=4)
    (raw,) = [c for c in stage.cells if c.cell_type == "raw"]
    assert raw.source.endswith("rows[5]  # IndexError, shown on purpose")


def test_a_later_stage_gets_the_settings_an_earlier_one_made(project):
    out = project([("markdown", "## Make"),
                   "import pandas as pd\npd.set_option('display.precision', 1)\n"
                   "frame = pd.DataFrame({'x': [0.123]})",
                   ("markdown", "## Show"), "print(frame)"])
    code, _, stages = run_json(out)
    assert code == 0 and stages == ["nb-make", "nb-show"]
    assert printed(out, "nb-show").split() == ["x", "0", "0.1"]  # not 0.123
