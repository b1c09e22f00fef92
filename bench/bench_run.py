"""What a run with nothing to do costs: ``nb2pkg run`` once every stage is up to date, against
starting Python and against the first run.

    python bench/bench_run.py                   # 4 examples, 15 runs of each command
    python bench/bench_run.py --quick           # sales_report, 3 runs (a smoke test)
    python bench/bench_run.py --before /tmp/old-checkout   # also time another nb2pkg

Each example notebook is converted into a scratch folder and run once (``nb2pkg run``: the
first run, timed, every stage on a kernel). Then, alternating, each in a fresh process:

* ``python -c pass``                 (starting Python)
* ``python -c "import yaml"``        (starting Python and reading YAML: the least a run needs)
* ``python -m nb2pkg run pipeline.yaml -q``     (every stage up to date)
* with ``--before DIR``: the same run with the nb2pkg of the checkout ``DIR``

A run with nothing to do must exit 0, rewrite ``runs/metrics.json`` and ``runs/report.md`` and
leave every executed stage notebook as it was, or the benchmark fails. Commands run with
bytecode caching on (``PYTHONDONTWRITEBYTECODE`` dropped, caches under a
``PYTHONPYCACHEPREFIX`` in the scratch folder, filled by an untimed run), as for an installed
nb2pkg. Goals (issue 16): a run with nothing to do at most 0.05x the first run on every example,
and at most 3x ``python -c "import yaml"``. Reported: medians, wall and CPU (user + system of
the process), and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_pipeline  # noqa: E402
from _common import machine, median, now_iso, shown, table, warn_if_busy, write_result  # noqa: E402
from bench_pipeline import EXAMPLES, NB2PKG, convert, stage_names, timed  # noqa: E402

GOAL_FIRST = 0.05
GOAL_YAML = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (default 15)")
    parser.add_argument("--notebook", action="append", help="example notebook names (default all)")
    parser.add_argument("--quick", action="store_true", help="sales_report, 3 runs: a smoke test")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also time the run with nothing to do with this checkout's nb2pkg")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)
    host = machine()
    started = now_iso()
    names = args.notebook or sorted(p.stem for p in EXAMPLES.glob("*.ipynb"))
    runs = args.runs
    if args.quick:
        names, runs = [n for n in names if n == "sales_report"] or names[:1], 3
    busy = warn_if_busy()
    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-bench-run-"))
    bench_pipeline.PYCACHE = scratch / ".pycache"
    before = args.before.resolve() if args.before else None
    python = [sys.executable, "-c"]
    results, rows = {}, []
    try:
        for name in names:
            project = convert(EXAMPLES / f"{name}.ipynb", scratch)
            stages = stage_names(project)
            executed = [project / "runs" / f"{stage}.ipynb" for stage in stages]
            outputs = [project / "runs" / "metrics.json", project / "runs" / "report.md"]
            first, first_cpu = timed(NB2PKG + ["run", "pipeline.yaml", "-q"], project,
                                     writes=executed + outputs)
            commands = {"python -c pass": (python + ["pass"], [], [], None),
                        "import yaml": (python + ["import yaml"], [], [], None),
                        "nothing to do": (NB2PKG + ["run", "pipeline.yaml", "-q"], outputs,
                                          executed, None)}
            if before:
                commands["before: nothing to do"] = (NB2PKG + ["run", "pipeline.yaml", "-q"],
                                                     outputs, executed, before)
            for command, writes, keeps, checkout in commands.values():  # caches, bytecode
                timed(command, project, writes, keeps, checkout=checkout)
            wall: dict[str, list[float]] = {label: [] for label in commands}
            cpu: dict[str, list[float]] = {label: [] for label in commands}
            loads = []
            for index in range(runs):
                order = list(commands) if index % 2 == 0 else list(reversed(commands))
                for label in order:
                    command, writes, keeps, checkout = commands[label]
                    seconds, used = timed(command, project, writes, keeps, checkout=checkout)
                    wall[label].append(seconds)
                    cpu[label].append(used)
                if hasattr(os, "getloadavg"):
                    loads.append(os.getloadavg()[0])
            med = {label: median(values) for label, values in wall.items()}
            med_cpu = {label: median(values) for label, values in cpu.items()}
            noop = med["nothing to do"]
            results[name] = {
                "stages": len(stages), "first_run": {"wall": first, "cpu": first_cpu},
                "wall": wall, "cpu": cpu, "median_wall": med, "median_cpu": med_cpu,
                "nothing_to_do_over_first_run": noop / first,
                "nothing_to_do_over_import_yaml": noop / med["import yaml"],
                "nothing_to_do_over_python": noop / med["python -c pass"],
                "load_average_per_round": loads}
            rows.append([name, len(stages), first, med["python -c pass"], med["import yaml"],
                         noop, med_cpu["nothing to do"],
                         *([med["before: nothing to do"]] if before else []),
                         noop / med["python -c pass"], noop / med["import yaml"], noop / first])
            print(f"{name}: nothing to do {noop * 1000:.0f} ms, first run {first:.2f} s "
                  f"(load {loads[-1] if loads else '-'})", file=sys.stderr)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    headers = ["notebook", "stages", "first run s", "python -c pass s", "import yaml s",
               "nothing to do s", "nothing to do CPU s",
               *(["before: nothing to do s"] if before else []),
               "/ pass", "/ import yaml", "/ first run"]
    print(table(headers, rows))
    worst_first = max(r["nothing_to_do_over_first_run"] for r in results.values())
    worst_yaml = max(r["nothing_to_do_over_import_yaml"] for r in results.values())
    for what, worst, goal in (("first run", worst_first, GOAL_FIRST),
                              ("import yaml", worst_yaml, GOAL_YAML)):
        verdict = "quick mode: not a measurement" if args.quick else (
            "meets" if worst <= goal else "misses") + f" the goal of <= {goal}"
        print(f"worst ratio to {what}: {worst:.3f} ({verdict})")
    path = write_result("run", {
        "benchmark": "run", "when": started, "quick": args.quick, "machine": host,
        "busy_warning": busy, "runs": runs, "before": str(before or ""),
        "bytecode_cache": True, "notebooks": results,
        "worst_ratio_to_first_run": worst_first, "worst_ratio_to_import_yaml": worst_yaml,
        "goals": {"first_run": GOAL_FIRST, "import_yaml": GOAL_YAML}}, args.results)
    print(f"result: {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
