"""Run every benchmark script and print one summary of the issue-16 figures with their goals.

    python bench/run_all.py            # the full runs (about an hour on 2 CPUs)
    python bench/run_all.py --quick    # every script's --quick: does everything work? (~3 min)
    python bench/run_all.py --only convert,lab

Runs, one after the other, each with ``--results DIR`` (one folder for the whole run, default
``bench/results/run-<timestamp>/``): ``bench_convert.py`` (nbconvert, the floor, 60 to 2,000
cells), ``bench_peers.py`` (Kale and soorgeon), ``bench_lab.py`` (the JupyterLab endpoint's first
conversion), ``bench_pipeline.py`` and any ``bench_run*.py`` (the pipeline's figures). A script
that fails is reported and the others still run; the exit status is 1 if any failed. Then every
``figures`` list of the result files (``_common.figure``) goes into one table, with the load
average before and after each script. ``bench_clones.py`` and ``bench_dask.py`` measure other
issues' goals and run only when named with ``--only``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BENCH, REPO, RESULTS, load_note, shown, table  # noqa: E402

# In this order: the cheap and telling ones first.
SCRIPTS = ["bench_convert.py", "bench_peers.py", "bench_lab.py", "bench_pipeline.py"]
ON_REQUEST = ["bench_clones.py", "bench_dask.py"]


def _short(script: str) -> str:
    return script.removesuffix(".py").removeprefix("bench_")


def scripts(only: set[str] | None) -> list[str]:
    found = list(SCRIPTS)
    found += [p.name for p in sorted(BENCH.glob("bench_run*.py"))]  # the pipeline's re-runs
    if only is None:
        return found
    every = found + ON_REQUEST
    unknown = only - set(every) - {_short(s) for s in every}
    if unknown:
        raise SystemExit(f"run_all: unknown benchmark(s): {', '.join(sorted(unknown))}")
    return [s for s in every if s in only or _short(s) in only]


def figures_of(result: dict) -> list[dict]:
    """The figures a result file holds; for a script that does not list them (bench_pipeline
    before it did), the ones its known keys give."""
    if isinstance(result.get("figures"), list):
        return result["figures"]
    if result.get("benchmark") == "pipeline" and "geometric_mean_ratio" in result:
        goal = result.get("goal_ratio")
        out = []
        for jobs, ratio in result["geometric_mean_ratio"].items():
            out.append({"figure": f"nb2pkg run / papermill, --jobs {jobs} (geometric mean, wall)",
                        "measured": ratio, "unit": "x", "goal": goal and f"<= {goal:g} x",
                        "limit": goal, "met": None if goal is None else ratio <= goal})
        for jobs, ratio in result.get("geometric_mean_cpu_ratio", {}).items():
            out.append({"figure": f"nb2pkg run / papermill, --jobs {jobs} (geometric mean, cpu)",
                        "measured": ratio, "unit": "x", "goal": None, "limit": None, "met": None})
        return out
    return []


def _latest(folder: Path) -> dict[Path, int]:
    """Every ``*-latest.json`` of ``folder`` and its modification time."""
    return {p: p.stat().st_mtime_ns for p in folder.glob("*-latest.json")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="every script's --quick mode")
    parser.add_argument("--only", help="comma-separated scripts (convert,peers,lab,pipeline,...)")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder for every result file (default bench/results/run-<time>)")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()} if args.only else None
    chosen = scripts(only)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = args.results or RESULTS / f"run-{'quick-' if args.quick else ''}{stamp}"
    folder.mkdir(parents=True, exist_ok=True)

    runs = []
    for script in chosen:
        command = [sys.executable, str(BENCH / script), "--results", str(folder)]
        if args.quick:
            command.append("--quick")
        before = load_note()
        seen = _latest(folder)
        print(f"== {script}{' --quick' if args.quick else ''} ({before})", flush=True)
        start = time.perf_counter()
        # Output goes straight to the terminal: the full tables of each script stay visible.
        status = subprocess.run(command, cwd=REPO).returncode
        written = [str(p) for p, stamp in _latest(folder).items() if seen.get(p) != stamp]
        runs.append({"script": script, "status": status, "seconds": time.perf_counter() - start,
                     "load_before": before, "load_after": load_note(), "results": written})
        print(f"== {script}: exit {status} in {runs[-1]['seconds']:.0f} s "
              f"({runs[-1]['load_after']})\n", flush=True)

    rows = []
    for run in runs:
        # The result files the script wrote (whatever it names them).
        figures = [f for path in run["results"] if run["status"] == 0
                   for f in figures_of(json.loads(Path(path).read_text()))]
        if run["status"] != 0:
            rows.append([run["script"], f"FAILED (exit {run['status']})", "", ""])
        elif not figures:
            rows.append([run["script"], "no figures in its result file", "", ""])
        for f in figures:
            measured = f["measured"]
            text = "-" if measured != measured else f"{measured:.3f}{f['unit'] and ' ' + f['unit']}"
            verdict = ("" if f.get("met") is None else "(quick: not judged)" if args.quick
                       else "met" if f["met"] else "MISSED")
            rows.append([f["figure"], text, f.get("goal") or "-", verdict])
    print(f"issue 16 figures{' (quick mode: smoke test, not measurements)' if args.quick else ''}")
    print(table(["figure", "measured", "goal", "verdict"], rows))
    print()
    print(table(["script", "exit", "seconds", "load before", "load after"],
                [[r["script"], r["status"], r["seconds"], r["load_before"], r["load_after"]]
                 for r in runs]))
    summary = folder / "summary.json"
    summary.write_text(json.dumps({"quick": args.quick, "date": stamp, "cpus": os.cpu_count(),
                                   "runs": runs, "figures": [dict(zip(
                                       ["figure", "measured", "goal", "verdict"], r))
                                       for r in rows]}, indent=2) + "\n")
    print(f"\nwrote {shown(summary)} (and each script's result file beside it)")
    return 1 if any(r["status"] != 0 for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
