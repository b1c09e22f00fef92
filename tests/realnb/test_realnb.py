"""Real third-party notebooks, end to end (../shared/realnb: notebooks by others, with their data).

For each notebook, as a new user would: `nb2pkg convert` with defaults into a folder outside the
notebook's own; the input folder is byte-identical afterwards; `nb2pkg verify` runs the original
in (a copy of) its folder and the refactored notebook from the project and finds the same
outputs (leaving out what varies between two runs of the original); `nb2pkg run` runs the
pipeline, a second run executes nothing, and after a data file changes the next run executes
the stages that read it (and what depends on them) and no other.

Each case appends its measurements to ``$NB2PKG_REALNB_REPORT`` (JSON lines) when set: the
per-notebook table of the closing note comes from there.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REALNB = Path(__file__).resolve().parents[3] / "shared" / "realnb"
MANIFEST = REALNB / "MANIFEST.tsv"
pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def _cases() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


CASES = _cases()


def _tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _nb2pkg(*args: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout)


def _run(project: Path) -> tuple[subprocess.CompletedProcess, set[str]]:
    """`nb2pkg run --json` in the project, and the names of the stages it executed."""
    result = _nb2pkg("run", "--json", cwd=project)
    try:
        stages = json.loads(result.stdout)["stages"]
    except (ValueError, KeyError):
        return result, set()
    return result, {s["name"] for s in stages if s["status"] in ("ran", "failed")}


@pytest.mark.skipif(not CASES, reason=f"no real notebooks: {REALNB} is absent "
                    "(it ships beside the repository as ../shared/realnb)")
@pytest.mark.parametrize("case", CASES, ids=[c["case"] for c in CASES])
def test_real_notebook_end_to_end(case: dict[str, str], tmp_path: Path) -> None:
    folder = REALNB / "cases" / case["case"]
    notebook = next(p for p in sorted(folder.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts)
    record: dict[str, object] = {"case": case["case"]}
    before = _tree_digest(folder)

    project = tmp_path / "project"
    converted = _nb2pkg("convert", str(notebook), "-o", str(project), "--json", cwd=tmp_path)
    assert converted.returncode == 0, converted.stderr[-2000:]
    report = json.loads(converted.stdout)
    record["extracted"] = [e["function"] for e in report["extracted"]]
    record["moved"] = len(report["hoisted"])
    assert _tree_digest(folder) == before, "convert changed the input folder"

    # The original runs in a copy of its folder: running it may write files beside it.
    original_folder = tmp_path / "original"
    shutil.copytree(folder, original_folder)
    original = original_folder / notebook.relative_to(folder)
    verified = _nb2pkg("verify", str(original), str(project), "--no-record", cwd=tmp_path)
    record["verified"] = verified.returncode == 0
    assert verified.returncode == 0, verified.stdout[-3000:] + verified.stderr[-2000:]

    first, ran = _run(project)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-2000:]
    stages = yaml.safe_load((project / "pipeline.yaml").read_text())["stages"]
    record["stages"] = len(stages)
    assert ran == {s["name"] for s in stages}
    again, ran = _run(project)
    assert again.returncode == 0 and ran == set(), again.stdout[-2000:]
    record["pipeline"] = True

    readers = {s["name"]: s.get("deps", []) for s in stages}
    csv_deps = sorted({d for deps in readers.values() for d in deps if d.endswith(".csv")})
    if csv_deps:
        changed = csv_deps[0]
        with (project / changed).open("a", encoding="utf-8") as handle:
            handle.write("\n")  # a blank line: same data for most readers, different bytes
        third, ran = _run(project)
        assert third.returncode == 0, third.stdout[-3000:] + third.stderr[-2000:]
        direct = {name for name, deps in readers.items() if changed in deps}
        downstream = _downstream(stages, direct)
        assert direct <= ran <= direct | downstream, (changed, ran, direct)
        record["data_change_detected"] = sorted(ran)
    else:
        record["data_change_detected"] = "no csv input"
    out = os.environ.get("NB2PKG_REALNB_REPORT")
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _downstream(stages: list[dict], names: set[str]) -> set[str]:
    found = set(names)
    for stage in stages:  # in dependency order
        upstream = set(stage.get("needs", [])) | set((stage.get("inputs") or {}).values())
        if upstream & found:
            found.add(stage["name"])
    return found
