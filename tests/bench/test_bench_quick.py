"""The benchmark scripts measure real work: each ``--quick`` run is checked for what it wrote,
and the harness fails loudly on a command that fails or does nothing (issue 17 item 1: the
pipeline benchmark once timed an interpreter that imported a module and exited 0).

Tests never time anything: they check that the scripts did the work they report on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
sys.path.insert(0, str(BENCH))

import _common  # noqa: E402
import bench_pipeline  # noqa: E402


def quick(script: str, tmp_path: Path, *args: str) -> dict:
    """Run ``bench/<script> --quick``; its result (JSON) written into ``tmp_path``."""
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--results",
                           str(results), *args], capture_output=True, text=True, cwd=str(ROOT),
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (latest,) = results.glob("*-latest.json")
    return json.loads(latest.read_text())


def executed(path: Path) -> bool:
    node = nbformat.read(str(path), as_version=4)
    code = [c for c in node.cells if c.cell_type == "code" and c.source.strip()]
    return bool(code) and all(c.execution_count is not None for c in code)


@pytest.mark.kernel
@pytest.mark.slow
def test_dask_quick_runs_both_executors(tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    result = quick("bench_dask.py", tmp_path)
    measured = result["pipelines"]["sales_report"]
    # Each timed run was checked for its executed notebooks and artifacts (bench_pipeline.timed).
    assert measured["stages"] > 1 and set(measured["seconds"]) == {"local", "dask"}
    assert measured["ratio_dask_to_local"] == measured["median"]["dask"] / measured["median"]["local"]
    assert result["geometric_mean_ratio"] > 0


@pytest.mark.kernel
def test_pipeline_quick_runs_every_stage_on_a_kernel(tmp_path):
    work = tmp_path / "work"
    result = quick("bench_pipeline.py", tmp_path, "--keep", str(work))
    measured = result["notebooks"]["sales_report"]
    project = work / "sales_report"
    stages = measured["stage_names"]
    assert len(stages) == measured["stages"] > 1
    for stage in stages:  # every stage ran on a kernel, in the measured run
        assert executed(project / "runs" / f"{stage}.ipynb"), stage
        assert (project / "artifacts" / stage / "index.json").is_file()
    assert executed(work / "sales_report.out.ipynb")  # the papermill run of the original
    # A stage costs a kernel start: eight of them cannot take less than a run with nothing to do.
    assert measured["median"]["jobs 2"] > measured["nothing_to_do_seconds"] > 0
    assert result["machine"]["load_average_at_start"] is not None
    assert "load_average_at_end" in result["machine"] and result["quick"] is True


def test_convert_quick_converts_for_real(tmp_path):
    work = tmp_path / "work"
    result = quick("bench_convert.py", tmp_path, "--keep", str(work))
    assert (work / "nb2pkg_out" / "pyproject.toml").is_file()
    assert (work / "nb2pkg_out" / "notebooks" / "synthetic_60.ipynb").is_file()
    assert (work / "nbconvert_out" / "sales_report.py").is_file()
    assert (work / "nbconvert_out" / "synthetic_60.py").is_file()
    assert (work / "floor_out.py").is_file()  # the floor wrote its file too
    example = result["examples"]["sales_report.ipynb"]
    assert example["nb2pkg"]["wall"] > result["interpreter_startup"]
    assert example["in_process"]["stages"]["clone groups"] >= 0
    assert result["scaling"]["60"]["in_process"]["stages"]["extracted"] > 0
    # The floor does a fraction of the work: the ratio is computed from the two medians.
    assert example["floor_ratio_cpu"] == example["nb2pkg"]["cpu"] / example["floor"]["cpu"]
    figures = {f["figure"]: f for f in result["figures"]}
    floor = figures["convert / floor, sales_report.ipynb (cpu)"]
    assert floor["measured"] == example["floor_ratio_cpu"] and floor["limit"] == 5.0


def test_clones_quick_analyses_the_generated_notebooks(tmp_path):
    result = quick("bench_clones.py", tmp_path, "--no-profile")
    assert [r["cells"] for r in result["results"]] == [250, 500, 1000]
    for entry in result["results"]:
        assert entry["analysis"]["clone_groups"] > 0 and entry["analysis"]["wall"] > 0
        assert set(entry["breakdown"]["stages"]) >= {"mask", "ast.parse", "clones"}


# -- the harness --------------------------------------------------------------------------------
def test_a_command_that_does_nothing_fails_the_benchmark(tmp_path):
    expected = tmp_path / "runs" / "stage.ipynb"
    with pytest.raises(_common.BenchmarkFailed, match="exited 0 but did not write .*stage.ipynb"):
        bench_pipeline.timed([sys.executable, "-c", "pass"], tmp_path, [expected])
    expected.parent.mkdir()
    expected.write_text("{}")  # there from an earlier run: not rewritten is not good enough
    with pytest.raises(_common.BenchmarkFailed, match="exited 0 but did not rewrite"):
        bench_pipeline.timed([sys.executable, "-c", "pass"], tmp_path, [expected])
    # what the benchmark used to time: a module without a __main__ block
    with pytest.raises(_common.BenchmarkFailed, match="did not rewrite"):
        bench_pipeline.timed([sys.executable, "-m", "nb2pkg.pipeline.cli", "run",
                              "pipeline.yaml"], tmp_path, [expected])


def test_a_failing_command_or_unexpected_work_fails_the_benchmark(tmp_path):
    with pytest.raises(_common.BenchmarkFailed, match="exited with status 3"):
        bench_pipeline.timed([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path)
    kept = tmp_path / "kept.txt"
    kept.write_text("")
    touch = f"import pathlib; pathlib.Path({str(kept)!r}).write_text('again')"
    with pytest.raises(_common.BenchmarkFailed, match="should have had nothing to do, but "
                                                      "rewrote .*kept.txt"):
        bench_pipeline.timed([sys.executable, "-c", touch], tmp_path, keeps=[kept])


def test_a_notebook_with_unexecuted_cells_fails_the_benchmark(tmp_path):
    node = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    path = tmp_path / "out.ipynb"
    nbformat.write(node, str(path))
    with pytest.raises(_common.BenchmarkFailed, match=r"code cells not executed: \[0\]"):
        bench_pipeline.require_executed(path)
    node.cells[0].execution_count = 1
    nbformat.write(node, str(path))
    bench_pipeline.require_executed(path)


def test_the_floor_parses_every_code_cell_and_writes_them(tmp_path):
    import ast

    out = tmp_path / "floor.py"
    notebook = ROOT / "examples" / "notebooks" / "sales_report.ipynb"
    subprocess.run([sys.executable, str(BENCH / "_floor.py"), str(notebook), str(out)],
                   check=True, timeout=60)
    code_cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    ast.parse(out.read_text())
    first_line = "".join(code_cells[-1]["source"]).splitlines()[0]
    assert first_line in out.read_text()  # the last cell's code is in the file


@pytest.mark.slow
def test_lab_quick_converts_through_a_real_server(tmp_path):
    result = quick("bench_lab.py", tmp_path)
    (round_,) = result["rounds"]
    # Each conversion was checked for the project it wrote; the server did work for it.
    assert round_["first"]["cpu"] > 0 and round_["warm"]["cpu"] > 0
    assert result["ratio"] == result["first"]["wall"] / result["cli"]["wall"]
    assert {f["limit"] for f in result["figures"]} == {1.5}


def test_peers_quick_converts_the_peer_notebook(tmp_path):
    # Quick mode installs nothing: the peers are timed only where already installed.
    result = quick("bench_peers.py", tmp_path, "--venvs", str(tmp_path / "no-venvs"))
    assert result["tools"]["nb2pkg"]["cpu"] > 0
    assert all("not installed" in p["status"] for p in result["peers"].values())


def test_the_peer_notebook_is_plain_python_with_parts_every_tool_accepts(tmp_path):
    import ast

    import bench_peers

    path = bench_peers.peer_notebook(tmp_path / "peer.ipynb", 120, 0)
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert len(code) == 120
    headings = [c for c in cells if c["cell_type"] == "markdown"]
    assert [h["source"] for h in headings] == ["## Part 1", "## Part 2", "## Part 3"]
    tags = [t for c in code for t in c["metadata"].get("tags", [])]
    assert tags == ["step:part1", "step:part2", "prev:part1", "step:part3", "prev:part2"]
    for cell in code:
        tree = ast.parse(cell["source"])  # no IPython syntax left
        for node in ast.walk(tree):  # no function reads a global (soorgeon's rule)
            if isinstance(node, ast.FunctionDef):
                assert not bench_peers._free_reads(node), ast.unparse(node)
                assert not any(isinstance(n, ast.Global) for n in ast.walk(node))


def test_results_keep_the_load_average_taken_at_the_start(tmp_path):
    with pytest.raises(ValueError, match="machine"):
        _common.write_result("x", {"benchmark": "x"}, tmp_path)
    start = _common.machine()
    start["load_average_at_start"] = [9.0, 9.0, 9.0]
    path = _common.write_result("x", {"machine": start}, tmp_path)
    machine = json.loads(path.read_text())["machine"]
    assert machine["load_average_at_start"] == [9.0, 9.0, 9.0]
    assert len(machine["load_average_at_end"]) == 3


@pytest.mark.kernel
def test_run_quick_times_a_run_with_nothing_to_do_after_a_real_one(tmp_path):
    result = quick("bench_run.py", tmp_path)
    measured = result["notebooks"]["sales_report"]
    # Each timed run was checked (bench_pipeline.timed): the first wrote every executed stage
    # notebook; each run with nothing to do rewrote metrics.json and report.md and no notebook.
    assert measured["stages"] > 1
    assert set(measured["wall"]) == {"python -c pass", "import yaml", "nothing to do"}
    assert all(len(runs) == 3 for runs in measured["wall"].values())
    noop = measured["median_wall"]["nothing to do"]
    assert measured["first_run"]["wall"] > noop > 0
    assert measured["nothing_to_do_over_first_run"] == noop / measured["first_run"]["wall"]
    assert result["machine"]["load_average_at_start"] is not None


def test_run_all_quick_collects_every_figure(tmp_path):
    results = tmp_path / "results"
    # The cheapest script (bench_convert's --quick has its own test above).
    done = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--quick", "--only",
                           "peers", "--results", str(results)], capture_output=True,
                          text=True, cwd=str(ROOT), timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((results / "summary.json").read_text())
    assert [r["script"] for r in summary["runs"]] == ["bench_peers.py"]
    (written,) = summary["runs"][0]["results"]
    assert Path(written).name == "peers-latest.json"
    names = [f["figure"] for f in summary["figures"]]
    assert names == [f["figure"] for f in json.loads(Path(written).read_text())["figures"]]
    assert "nb2pkg cpu, 60 cells (peer notebook)" in done.stdout.split("issue 16 figures")[1]


def test_run_all_reports_a_failing_script(tmp_path, monkeypatch):
    import run_all

    monkeypatch.setattr(run_all, "BENCH", tmp_path)
    (tmp_path / "bench_convert.py").write_text("import sys; sys.exit(4)\n")
    results = tmp_path / "results"
    assert run_all.main(["--quick", "--results", str(results), "--only", "convert"]) == 1
    summary = json.loads((results / "summary.json").read_text())
    assert summary["runs"][0]["status"] == 4
    assert summary["figures"][0]["measured"] == "FAILED (exit 4)"


def test_the_sweep_copies_the_root_for_notebooks_reading_beside_their_folder(tmp_path):
    import standalone_sweep

    root = tmp_path / "examples"
    (root / "assets").mkdir(parents=True)
    (root / "assets" / "a.csv").write_text("x\n1\n")
    (root / "guide").mkdir()
    notebook = root / "guide" / "nb.ipynb"
    notebook.write_text("{}")
    copy = standalone_sweep._copy_input(notebook, tmp_path / "with", root)
    assert copy == tmp_path / "with" / "guide" / "nb.ipynb" and copy.exists()
    assert (copy.parent / ".." / "assets" / "a.csv").exists()
    alone = standalone_sweep._copy_input(notebook, tmp_path / "alone")
    assert alone == tmp_path / "alone" / "nb.ipynb" and not (tmp_path / "assets").exists()
