"""Wall time of the split pipeline (``nb2pkg run``) against one papermill run of the original.

    python bench/bench_pipeline.py              # 4 example notebooks x 5 rounds, --jobs 1 and 2
    python bench/bench_pipeline.py --quick      # 1 notebook x 1 round, no warm-up (~30-60 s)
    python bench/bench_pipeline.py --rounds 3 --jobs 2 --notebook sales_report

Each example notebook is converted (with its pipeline) into a temporary folder. Then, round by
round and alternating which goes first, two commands run as a user runs them, each in a fresh
process:

* ``papermill NB OUT -k python3 --cwd <the notebook's folder>``        (the original, one kernel)
* ``python -m nb2pkg run pipeline.yaml --force --jobs J``   (every stage, each on its own kernel)

Every timed command must exit 0 and write what it is expected to write, or the benchmark stops
with an error: papermill's output notebook, and every stage's executed notebook
(``runs/<stage>.ipynb``) and artifact index, each rewritten by that very run, with every code cell
executed. The run with nothing to do must rewrite ``runs/metrics.json`` and no stage notebook. A
command that "succeeds" in 0.08 s without running anything would otherwise be timed.

``--force`` makes every round execute every stage (otherwise the second round would skip them
all). Reported: median wall time of each, their ratio per notebook and the geometric mean of the
ratios, the CPU time ratio (less sensitive to other load on the machine), and the time of a run
with nothing to do (every stage up to date). The goal is a wall-time ratio of at most 1.25: kernel
start-up and imports are paid per stage, which is why the runner starts the next stages' kernels
(and their imports) while the current stage runs.
The result goes to ``bench/results/pipeline-<timestamp>.json`` (and ``pipeline-latest.json``).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (REPO, BenchmarkFailed, machine, median, now_iso, require_written,  # noqa: E402
                     shown, snapshot, table, versions, warn_if_busy, write_result)

EXAMPLES = REPO / "examples" / "notebooks"
GOAL_RATIO = 1.25


# `nb2pkg run` as a user runs it. (An earlier version looked for `run` in nb2pkg.cli.COMMANDS,
# which is only filled once the parser is built, and fell back to a module without a __main__
# block: it timed an interpreter that imported a module and exited 0.)
NB2PKG = [sys.executable, "-m", "nb2pkg"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def timed(command: list[str], cwd: Path, writes: list[Path] = (),
          keeps: list[Path] = ()) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the kernels it started and waited for).

    Fails the benchmark when ``command`` exits non-zero, does not rewrite every file of
    ``writes`` or rewrites one of ``keeps``.
    """
    written, kept = snapshot(writes), snapshot(keeps)
    before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=str(cwd), env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    text = " ".join(command[2:] if command[:2] == [sys.executable, "-m"] else command)
    if done.returncode != 0:
        raise BenchmarkFailed(f"`{text}` exited with status {done.returncode}\n"
                              f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    require_written(written, text)
    touched = [path for path, old in kept.items() if snapshot([path])[path] != old]
    if touched:
        raise BenchmarkFailed(f"`{text}` should have had nothing to do, but rewrote "
                              + ", ".join(shown(p) for p in touched[:3]))
    return seconds, _children_cpu() - before


def require_executed(notebook: Path) -> None:
    """Fail unless every non-empty code cell of ``notebook`` has an execution count."""
    import json

    cells = [c for c in json.loads(notebook.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    idle = [i for i, c in enumerate(cells) if c.get("execution_count") is None]
    if not cells or idle:
        raise BenchmarkFailed(f"{shown(notebook)}: code cells not executed: {idle or 'no cells'}")


def _children_cpu() -> float:
    try:
        import resource
    except ImportError:  # Windows: no CPU times, wall times only
        return float("nan")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wait_for_idle(limit: float) -> None:
    """Wait up to ``limit`` seconds for the 1-minute load average to drop below half the CPUs."""
    deadline = time.monotonic() + limit
    while (hasattr(os, "getloadavg") and time.monotonic() < deadline
           and os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)):
        time.sleep(5)


def convert(notebook: Path, folder: Path) -> Path:
    from nb2pkg.api import ConvertOptions, convert as convert_notebooks

    project = folder / notebook.stem
    convert_notebooks([notebook], project, ConvertOptions(pipeline=True, force=True))
    return project


def stage_names(project: Path) -> list[str]:
    import yaml

    return [s["name"] for s in yaml.safe_load((project / "pipeline.yaml").read_text())["stages"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, action="append", help="--jobs values (default 1 and 2)")
    parser.add_argument("--notebook", action="append", help="example notebook names (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="sales_report only, one round, --jobs 2, no warm-up run: a smoke test")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS for the load average to drop")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="convert the projects into DIR and keep them (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)
    wait_for_idle(args.wait_idle)
    host = machine()  # the load average at the start
    started = now_iso()
    sys.path.insert(0, str(REPO))
    names = args.notebook or sorted(p.stem for p in EXAMPLES.glob("*.ipynb"))
    rounds, jobs = args.rounds, args.jobs or [1, 2]
    if args.quick:
        names = [n for n in names if n == "sales_report"] or names[:1]
        rounds, jobs = 1, args.jobs or [2]
    busy = warn_if_busy()
    papermill = [sys.executable, "-m", "papermill", "-k", "python3", "--no-progress-bar"]
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    scratch = args.keep.resolve() if args.keep else Path(
        tempfile.mkdtemp(prefix="nb2pkg-bench-pipeline-"))
    rows, results = [], {}
    try:
        for name in names:
            notebook = EXAMPLES / f"{name}.ipynb"
            project = convert(notebook, scratch)
            stages = stage_names(project)
            executed = [project / "runs" / f"{stage}.ipynb" for stage in stages]
            # What each command must rewrite: its executed notebooks and the stages' outputs.
            run_writes = executed + [project / "artifacts" / stage / "index.json"
                                     for stage in stages]
            papermill_out = scratch / f"{name}.out.ipynb"
            times: dict[str, list[float]] = {"papermill": []}
            times.update({f"jobs {j}": [] for j in jobs})
            cpu: dict[str, list[float]] = {label: [] for label in times}
            commands = {"papermill": (papermill + [str(notebook), str(papermill_out),
                                                   "--cwd", str(EXAMPLES)], EXAMPLES,
                                      [papermill_out], [papermill_out])}
            for j in jobs:
                commands[f"jobs {j}"] = (NB2PKG + ["run", "pipeline.yaml", "--force", "-q",
                                                   "--jobs", str(j)], project, run_writes,
                                         executed)
            if not args.quick:  # warm the file caches, build the state
                timed(*commands[f"jobs {jobs[-1]}"][:3])
            for index in range(rounds):
                order = list(commands) if index % 2 == 0 else list(reversed(commands))
                for label in order:
                    command, cwd, writes, notebooks = commands[label]
                    wall, used = timed(command, cwd, writes)
                    for path in notebooks:
                        require_executed(path)
                    times[label].append(wall)
                    cpu[label].append(used)
                print(f"{name} round {index + 1}/{rounds}: " + ", ".join(
                    f"{label} {times[label][-1]:.2f} s" for label in commands), file=sys.stderr)
            # Every stage is up to date now: the run rewrites metrics.json, no stage notebook.
            noop, _ = timed(NB2PKG + ["run", "pipeline.yaml", "-q"], project,
                            writes=[project / "runs" / "metrics.json"], keeps=executed)
            medians = {label: median(values) for label, values in times.items()}
            cpu_medians = {label: median(values) for label, values in cpu.items()}
            results[name] = {"stages": len(stages), "stage_names": stages, "seconds": times,
                             "median": medians, "cpu_seconds": cpu, "median_cpu": cpu_medians,
                             "nothing_to_do_seconds": noop,
                             "checked": "exit status 0; executed notebooks and artifact "
                                        "indexes rewritten by each run, every code cell "
                                        "executed"}
            rows.append([name, len(stages), medians["papermill"],
                         *[medians[f"jobs {j}"] for j in jobs],
                         *[medians[f"jobs {j}"] / medians["papermill"] for j in jobs],
                         cpu_medians[f"jobs {jobs[-1]}"] / cpu_medians["papermill"], noop])
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    geo = {j: math.exp(sum(math.log(results[n]["median"][f"jobs {j}"] / results[n]["median"]["papermill"])
                           for n in names) / len(names)) for j in jobs}
    geo_cpu = math.exp(sum(math.log(results[n]["median_cpu"][f"jobs {jobs[-1]}"]
                                    / results[n]["median_cpu"]["papermill"])
                           for n in names) / len(names))
    headers = ["notebook", "stages", "papermill s", *[f"run -j{j} s" for j in jobs],
               *[f"ratio -j{j}" for j in jobs], f"CPU ratio -j{jobs[-1]}", "no-op run s"]
    print(table(headers, rows))
    for j in jobs:
        verdict = ("quick mode: one run, not a measurement of the goal" if args.quick else
                   ("meets" if geo[j] <= GOAL_RATIO else "misses") + f" the goal of <= {GOAL_RATIO}")
        print(f"geometric mean ratio, --jobs {j}: {geo[j]:.2f} ({verdict})")
    path = write_result("pipeline", {
        "benchmark": "pipeline", "when": started, "quick": args.quick, "machine": host,
        "busy_warning": busy,
        "versions": versions("nb2pkg", "papermill", "nbclient", "ipykernel", "jupyter_client"),
        "rounds": rounds, "jobs": jobs, "warm_up_run": not args.quick, "goal_ratio": GOAL_RATIO,
        "notebooks": results, "geometric_mean_ratio": {str(j): geo[j] for j in jobs},
        "geometric_mean_cpu_ratio": {str(jobs[-1]): geo_cpu}}, args.results)
    print(f"result: {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
