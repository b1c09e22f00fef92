"""Wall time of ``nb2pkg run --executor dask`` (a LocalCluster of 2 workers) against the local executor.

    python bench/bench_dask.py              # each example notebook, then all 4 in one pipeline, 3 rounds
    python bench/bench_dask.py --quick      # sales_report, 1 round (~1 min)

Each example is converted (with its pipeline) into a temporary folder, and so are all four
together (one pipeline of 27 stages, where stages of different notebooks can run side by side).
Round by round, alternating which goes first, two commands run as a user runs them, each in a
fresh process, both with 2 stages at a time:

* ``python -m nb2pkg run pipeline.yaml --force -q --jobs 2``                    (local kernels)
* ``python -m nb2pkg run pipeline.yaml --force -q --jobs 2 --executor dask``   (2 worker processes)

The Dask time includes starting and stopping the LocalCluster (about 2 s), as a user pays it;
the local executor starts the next stages' kernels ahead, the Dask executor does not (kernels
start on the workers when a task runs). Every command must exit 0 and rewrite every stage's
executed notebook and artifact index, every code cell executed (``bench_pipeline.timed``).
Reported: median wall time of each, the ratio dask/local per pipeline, and the geometric mean
of the ratios. The result goes to ``bench/results/dask-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (REPO, machine, median, now_iso, table, versions,  # noqa: E402
                     warn_if_busy, write_result)
from bench_pipeline import (EXAMPLES, NB2PKG, require_executed, stage_names,  # noqa: E402
                            timed, wait_for_idle)


def convert(notebooks: list[Path], project: Path) -> Path:
    from nb2pkg.api import ConvertOptions, convert as convert_notebooks

    convert_notebooks(notebooks, project, ConvertOptions(pipeline=True, force=True,
                                                         name=project.name))
    return project


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true",
                        help="sales_report only, one round: a smoke test")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)
    wait_for_idle(args.wait_idle)
    host = machine()
    started = now_iso()
    sys.path.insert(0, str(REPO))
    examples = sorted(EXAMPLES.glob("*.ipynb"))
    pipelines = {p.stem: [p] for p in examples}
    pipelines["all_examples"] = examples
    rounds = args.rounds
    if args.quick:
        pipelines, rounds = {"sales_report": [EXAMPLES / "sales_report.ipynb"]}, 1
    busy = warn_if_busy()
    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-bench-dask-"))
    run = NB2PKG + ["run", "pipeline.yaml", "--force", "-q", "--jobs", "2"]
    commands = {"local": run, "dask": run + ["--executor", "dask"]}
    rows, results = [], {}
    try:
        for name, notebooks in pipelines.items():
            project = convert(notebooks, scratch / name)
            stages = stage_names(project)
            executed = [project / "runs" / f"{stage}.ipynb" for stage in stages]
            writes = executed + [project / "artifacts" / s / "index.json" for s in stages]
            times: dict[str, list[float]] = {label: [] for label in commands}
            for index in range(rounds):
                order = list(commands) if index % 2 == 0 else list(reversed(commands))
                for label in order:
                    wall, _ = timed(commands[label], project, writes)
                    for path in executed:
                        require_executed(path)
                    times[label].append(wall)
                print(f"{name} round {index + 1}/{rounds}: " + ", ".join(
                    f"{label} {times[label][-1]:.2f} s" for label in commands), file=sys.stderr)
            medians = {label: median(values) for label, values in times.items()}
            ratio = medians["dask"] / medians["local"]
            results[name] = {"stages": len(stages), "seconds": times, "median": medians,
                             "ratio_dask_to_local": ratio}
            rows.append([name, len(stages), f"{medians['local']:.2f}",
                         f"{medians['dask']:.2f}", f"{ratio:.2f}"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratios = [r["ratio_dask_to_local"] for r in results.values()]
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(table(["pipeline", "stages", "local s", "dask s", "dask/local"], rows))
    print(f"geometric mean of dask/local: {geomean:.2f} ({rounds} round(s), --jobs 2, "
          "2 Dask workers)")
    if busy:
        print(busy, file=sys.stderr)
    path = write_result("dask", {
        "benchmark": "dask", "started": started, "machine": host, "rounds": rounds,
        "versions": versions("nb2pkg", "papermill", "dask", "distributed"),
        "pipelines": results, "geometric_mean_ratio": geomean}, args.results)
    print(f"result: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
