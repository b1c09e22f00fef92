"""Wall time of the split pipeline (``nb2pkg run``) against one papermill run of the original.

    python bench/bench_pipeline.py              # 4 example notebooks x 5 rounds, --jobs 1 and 2
    python bench/bench_pipeline.py --quick      # 1 notebook x 1 round
    python bench/bench_pipeline.py --rounds 3 --jobs 2 --notebook sales_report

Each example notebook is converted (with its pipeline) into a temporary folder. Then, round by
round and alternating which goes first, two commands run as a user runs them, each in a fresh
process:

* ``papermill NB OUT -k python3 --cwd <the notebook's folder>``        (the original, one kernel)
* ``nb2pkg run pipeline.yaml --force --jobs J``       (every stage, each on its own kernel)

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

from _common import REPO, machine, median, now_iso, table, versions, warn_if_busy, write_result  # noqa: E402

EXAMPLES = REPO / "examples" / "notebooks"
GOAL_RATIO = 1.25


def nb2pkg_command() -> list[str]:
    """``python -m nb2pkg run`` once the command is wired into nb2pkg.cli, else the pipeline
    commands' own entry point (same code, same messages)."""
    probe = subprocess.run([sys.executable, "-c", "import nb2pkg.cli as c; "
                            "print('run' in getattr(c, 'COMMANDS', {}))"],
                           capture_output=True, text=True, cwd=str(REPO), env=_env())
    wired = probe.stdout.strip() == "True"
    return [sys.executable, "-m", "nb2pkg" if wired else "nb2pkg.pipeline.cli"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the kernels it started and waited for)."""
    before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=str(cwd), env=_env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-2000:]}\n"
                 f"{done.stderr[-2000:]}")
    return seconds, _children_cpu() - before


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


def stage_count(project: Path) -> int:
    import yaml

    return len(yaml.safe_load((project / "pipeline.yaml").read_text())["stages"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, action="append", help="--jobs values (default 1 and 2)")
    parser.add_argument("--notebook", action="append", help="example notebook names (default all)")
    parser.add_argument("--quick", action="store_true", help="one notebook, one round, --jobs 2")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS for the load average to drop")
    args = parser.parse_args()
    wait_for_idle(args.wait_idle)
    sys.path.insert(0, str(REPO))
    names = args.notebook or sorted(p.stem for p in EXAMPLES.glob("*.ipynb"))
    rounds, jobs = args.rounds, args.jobs or [1, 2]
    if args.quick:
        names, rounds, jobs = names[:1], 1, [2]
    busy = warn_if_busy()
    run = nb2pkg_command()
    papermill = [sys.executable, "-m", "papermill", "-k", "python3", "--no-progress-bar"]
    scratch = Path(tempfile.mkdtemp(prefix="nb2pkg-bench-pipeline-"))
    rows, results = [], {}
    try:
        for name in names:
            notebook = EXAMPLES / f"{name}.ipynb"
            project = convert(notebook, scratch)
            stages = stage_count(project)
            times: dict[str, list[float]] = {"papermill": []}
            times.update({f"jobs {j}": [] for j in jobs})
            cpu: dict[str, list[float]] = {label: [] for label in times}
            commands = {"papermill": (papermill + [str(notebook), str(scratch / f"{name}.out.ipynb"),
                                                   "--cwd", str(EXAMPLES)], EXAMPLES)}
            for j in jobs:
                commands[f"jobs {j}"] = (run + ["run", "pipeline.yaml", "--force", "-q", "--jobs",
                                                str(j)], project)
            timed(*commands[f"jobs {jobs[-1]}"])  # warm the file caches, build the state
            for index in range(rounds):
                order = list(commands) if index % 2 == 0 else list(reversed(commands))
                for label in order:
                    wall, used = timed(*commands[label])
                    times[label].append(wall)
                    cpu[label].append(used)
                print(f"{name} round {index + 1}/{rounds}: " + ", ".join(
                    f"{label} {times[label][-1]:.2f} s" for label in commands), file=sys.stderr)
            noop, _ = timed(run + ["run", "pipeline.yaml", "-q"], project)
            medians = {label: median(values) for label, values in times.items()}
            cpu_medians = {label: median(values) for label, values in cpu.items()}
            results[name] = {"stages": stages, "seconds": times, "median": medians,
                             "cpu_seconds": cpu, "median_cpu": cpu_medians,
                             "nothing_to_do_seconds": noop}
            rows.append([name, stages, medians["papermill"],
                         *[medians[f"jobs {j}"] for j in jobs],
                         *[medians[f"jobs {j}"] / medians["papermill"] for j in jobs],
                         cpu_medians[f"jobs {jobs[-1]}"] / cpu_medians["papermill"], noop])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    geo = {j: math.exp(sum(math.log(results[n]["median"][f"jobs {j}"] / results[n]["median"]["papermill"])
                           for n in names) / len(names)) for j in jobs}
    headers = ["notebook", "stages", "papermill s", *[f"run -j{j} s" for j in jobs],
               *[f"ratio -j{j}" for j in jobs], f"CPU ratio -j{jobs[-1]}", "no-op run s"]
    print(table(headers, rows))
    for j in jobs:
        verdict = "meets" if geo[j] <= GOAL_RATIO else "misses"
        print(f"geometric mean ratio, --jobs {j}: {geo[j]:.2f} ({verdict} the goal of "
              f"<= {GOAL_RATIO})")
    path = write_result("pipeline", {
        "benchmark": "pipeline", "when": now_iso(), "machine": machine(), "busy_warning": busy,
        "versions": versions("nb2pkg", "papermill", "nbclient", "ipykernel", "jupyter_client"),
        "rounds": rounds, "jobs": jobs, "goal_ratio": GOAL_RATIO, "notebooks": results,
        "geometric_mean_ratio": {str(j): geo[j] for j in jobs}})
    print(f"result: {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
