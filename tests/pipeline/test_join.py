"""Stages run together: ``--join-stage``, and the values ``convert --verify`` finds cannot be
saved between stages (a generator, an open file, a model holding a lambda).

The notebook below runs, and its refactored copy prints the same, but its pipeline as split at
the headings fails: the stage "Load" cannot save ``batches`` for the stage "Sum". Verifying
tries every value at every boundary in the kernel (``runtime/crossing.py``), and the
conversion runs "Sum" as part of "Load"; the pipeline then runs, through ``nb2pkg run``.
"""

from __future__ import annotations

import json

import pytest

from helpers import printed, run_json, write_notebook
from nb2pkg.cli import main

CELLS = [("markdown", "## Load"), "rows = [3, 1, 2]\nbatches = (r * 10 for r in rows)",
         ("markdown", "## Sum"), "total = sum(batches)",
         ("markdown", "## Report"), "print(total, sorted(rows))"]


def convert(tmp_path, *args: str, name: str = "project") -> tuple[int, str]:
    notebook = tmp_path / "input" / "nb.ipynb"
    if not notebook.exists():
        write_notebook(notebook, CELLS)
    out = tmp_path / name
    code = main(["convert", str(notebook), "-o", str(out), "--no-record",
                 "--no-isolated-run", *args])
    return code, out


def stages(project) -> list[str]:
    spec = (project / "pipeline.yaml").read_text()
    return [line.split(":", 1)[1].strip() for line in spec.splitlines()
            if line.strip().startswith("- name:")]


@pytest.mark.kernel
def test_verify_runs_together_the_stages_a_value_cannot_cross(tmp_path, capsys):
    # Without verifying, nothing knows: the pipeline fails where the notebook did not.
    code, plain = convert(tmp_path, name="plain")
    assert code == 0 and stages(plain) == ["nb-load", "nb-sum", "nb-report"]
    code, result, _ = run_json(plain)
    assert code == 1
    (failed,) = [s for s in result["stages"] if s["status"] == "failed"]
    assert failed["name"] == "nb-load" and "cannot save variable `batches`" in failed["error"]

    capsys.readouterr()
    code, out = convert(tmp_path, "--verify", "--json")
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    (notebook,) = report["verification"]["notebooks"]
    assert notebook["uncrossable"] == [{
        "stage": "nb-sum", "variable": "batches", "type": "generator",
        "error": "TypeError: cannot pickle 'generator' object"}]
    # Only the boundary the generator crosses goes: `rows` and `total` cross the other.
    assert stages(out) == ["nb-load", "nb-report"]
    assert "- `nb-sum`: `batches` (generator) cannot be saved" in (out / "REPORT.md").read_text()
    code, result, ran = run_json(out)
    assert code == 0 and ran == ["nb-load", "nb-report"]
    assert printed(out, "nb-report") == "60 [1, 2, 3]\n"


def test_join_stage_is_kept_by_update_and_an_unknown_stage_is_an_error(tmp_path, capsys):
    code, out = convert(tmp_path, "--join-stage", "nb-sum")
    assert code == 0 and stages(out) == ["nb-load", "nb-report"]
    printed_lines = capsys.readouterr().out.splitlines()
    assert "pipeline of 2 stages: nb-load, nb-report" in printed_lines
    assert "  nb-sum runs as part of the stage before it: asked for with --join-stage" \
        in printed_lines
    assert "- `nb-sum`: asked for with --join-stage" in (out / "REPORT.md").read_text()
    manifest = json.loads((out / ".nb2pkg" / "manifest.json").read_text())
    assert manifest["options"]["join_stages"] == {"nb-sum": "asked for with --join-stage"}

    assert main(["update", str(out), "--no-git"]) == 0
    assert stages(out) == ["nb-load", "nb-report"]

    capsys.readouterr()
    for wrong in ("nb-elsewhere", "nb-load"):  # no such stage; the first has none before it
        code, _ = convert(tmp_path, "--join-stage", wrong, name=f"out-{wrong}")
        err = [line for line in capsys.readouterr().err.splitlines()
               if not line.startswith("…")]  # progress lines
        assert code == 2 and len(err) == 1
        assert err[0].startswith(f"nb2pkg: error: no stage `{wrong}` to join")
        assert "nb-load, nb-sum, nb-report" in err[0]
        assert not (tmp_path / f"out-{wrong}").exists()
