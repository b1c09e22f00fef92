"""Wall and CPU time of the split pipeline (``nb2pkg run``) against one papermill run of the original.

    python bench/bench_pipeline.py              # 4 example notebooks x 5 rounds, --jobs 1 and 2
    python bench/bench_pipeline.py --quick      # 1 notebook x 1 round, no warm-up (~30-60 s)
    python bench/bench_pipeline.py --rounds 3 --jobs 2 --notebook sales_report
    python bench/bench_pipeline.py --before /tmp/old-checkout   # also time another nb2pkg

Each example notebook is converted (with its pipeline) into a temporary folder. Then, round by
round and alternating which goes first, these commands run as a user runs them, each in a fresh
process:

* ``papermill NB OUT -k python3 --cwd <the notebook's folder>``        (the original, one kernel)
* ``python -m nb2pkg run pipeline.yaml --force --jobs J``   (every stage, each on its own kernel)
* the same with ``--shared-kernel`` (the stages of a notebook on one kernel; ``--no-shared``
  leaves it out)
* with ``--before DIR``: the default run again with the nb2pkg of the checkout ``DIR`` (another
  version, timed in the same rounds, so under the same load)

Every timed command must exit 0 and write what it is expected to write, or the benchmark stops
with an error: papermill's output notebook, and every stage's executed notebook
(``runs/<stage>.ipynb``) and artifact index, each rewritten by that very run, with every code cell
executed. The run with nothing to do must rewrite ``runs/metrics.json`` and no stage notebook. A
command that "succeeds" in 0.08 s without running anything would otherwise be timed.

Commands run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` dropped, the caches under a
``PYTHONPYCACHEPREFIX`` in the scratch folder, filled by the warm-up run), as for an installed
nb2pkg: otherwise every run would compile nb2pkg and the generated package again.

``--force`` makes every round execute every stage (otherwise the second round would skip them
all). Reported: median wall time of each, their ratio per notebook and the geometric mean of the
ratios, the same for CPU time (user + system of the command and the kernels it waited for: less
sensitive to other load on the machine, which is recorded per round), and the time of a run with
nothing to do (every stage up to date). The goal is a wall-time ratio of at most 1.25.
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


PYCACHE: Path | None = None  # set by main(): where the timed commands keep their bytecode


def _env(checkout: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(checkout or REPO),
                                         *filter(None, [env.get("PYTHONPATH")])])
    if PYCACHE is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def timed(command: list[str], cwd: Path, writes: list[Path] = (),
          keeps: list[Path] = (), checkout: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and the kernels it started and waited for).

    Fails the benchmark when ``command`` exits non-zero, does not rewrite every file of
    ``writes`` or rewrites one of ``keeps``. ``checkout``: the nb2pkg to run (default this one).
    """
    written, kept = snapshot(writes), snapshot(keeps)
    before = _children_cpu()
    started = time.perf_counter()
    done = subprocess.run(command, cwd=str(cwd), env=_env(checkout), capture_output=True,
                          text=True)
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
    parser.add_argument("--no-shared", dest="shared", action="store_false",
                        help="do not time --shared-kernel")
    parser.add_argument("--before", type=Path, metavar="CHECKOUT",
                        help="also time the default run with the nb2pkg of this checkout")
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
    global PYCACHE
    PYCACHE = scratch / ".pycache"
    before_checkout = args.before.resolve() if args.before else None
    if args.quick:
        args.shared = False
    rows, results = [], {}
    labels: list[str] = []
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
            run = NB2PKG + ["run", "pipeline.yaml", "--force", "-q", "--jobs"]
            commands: dict[str, tuple] = {"papermill": (
                papermill + [str(notebook), str(papermill_out), "--cwd", str(EXAMPLES)],
                EXAMPLES, [papermill_out], [papermill_out], None)}
            for j in jobs:
                commands[f"jobs {j}"] = (run + [str(j)], project, run_writes, executed, None)
            for j in jobs if args.shared else []:
                commands[f"shared {j}"] = (run + [str(j), "--shared-kernel"], project,
                                           run_writes, executed, None)
            for j in jobs if before_checkout else []:
                commands[f"before jobs {j}"] = (run + [str(j)], project, run_writes, executed,
                                                before_checkout)
            labels = list(commands)
            times: dict[str, list[float]] = {label: [] for label in commands}
            cpu: dict[str, list[float]] = {label: [] for label in commands}
            loads: list[float] = []
            if not args.quick:  # warm the file and bytecode caches, build the state
                for label in (f"jobs {jobs[-1]}", f"before jobs {jobs[-1]}"):
                    if label in commands:
                        command, cwd, writes, _, checkout = commands[label]
                        timed(command, cwd, writes, checkout=checkout)
                timed(*commands["papermill"][:3])
            for index in range(rounds):
                order = list(commands) if index % 2 == 0 else list(reversed(commands))
                for label in order:
                    command, cwd, writes, notebooks, checkout = commands[label]
                    wall, used = timed(command, cwd, writes, checkout=checkout)
                    for path in notebooks:
                        require_executed(path)
                    times[label].append(wall)
                    cpu[label].append(used)
                if hasattr(os, "getloadavg"):
                    loads.append(os.getloadavg()[0])
                print(f"{name} round {index + 1}/{rounds} (load {loads[-1] if loads else '-'}): "
                      + ", ".join(f"{label} {times[label][-1]:.2f} s" for label in commands),
                      file=sys.stderr)
            # Every stage is up to date now: the run rewrites metrics.json, no stage notebook.
            noop, _ = timed(NB2PKG + ["run", "pipeline.yaml", "-q"], project,
                            writes=[project / "runs" / "metrics.json"], keeps=executed)
            medians = {label: median(values) for label, values in times.items()}
            cpu_medians = {label: median(values) for label, values in cpu.items()}
            results[name] = {"stages": len(stages), "stage_names": stages, "seconds": times,
                             "median": medians, "cpu_seconds": cpu, "median_cpu": cpu_medians,
                             "ratio": {label: medians[label] / medians["papermill"]
                                       for label in labels[1:]},
                             "cpu_ratio": {label: cpu_medians[label] / cpu_medians["papermill"]
                                           for label in labels[1:]},
                             "load_average_per_round": loads,
                             "nothing_to_do_seconds": noop,
                             "checked": "exit status 0; executed notebooks and artifact "
                                        "indexes rewritten by each run, every code cell "
                                        "executed"}
            rows.append([name, len(stages), medians["papermill"], cpu_medians["papermill"],
                         *[f"{results[name]['ratio'][label]:.2f} / "
                           f"{results[name]['cpu_ratio'][label]:.2f}" for label in labels[1:]],
                         noop])
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)

    def geometric(key: str, label: str) -> float:
        return math.exp(sum(math.log(results[n][key][label]) for n in names) / len(names))

    geo = {label: geometric("ratio", label) for label in labels[1:]}
    geo_cpu = {label: geometric("cpu_ratio", label) for label in labels[1:]}
    headers = ["notebook", "stages", "papermill wall s", "papermill CPU s",
               *[f"{label} wall / CPU ratio" for label in labels[1:]], "no-op run s"]
    rows.append(["**geometric mean**", "", "", "",
                 *[f"**{geo[label]:.2f}** / {geo_cpu[label]:.2f}" for label in labels[1:]], ""])
    print(table(headers, rows))
    for label in labels[1:]:
        verdict = ("quick mode: one run, not a measurement of the goal" if args.quick else
                   ("meets" if geo[label] <= GOAL_RATIO else "misses")
                   + f" the goal of <= {GOAL_RATIO}")
        print(f"geometric mean ratio, {label}: wall {geo[label]:.2f} ({verdict}), "
              f"CPU {geo_cpu[label]:.2f}")
    path = write_result("pipeline", {
        "benchmark": "pipeline", "when": started, "quick": args.quick, "machine": host,
        "busy_warning": busy,
        "versions": versions("nb2pkg", "papermill", "nbclient", "ipykernel", "jupyter_client"),
        "rounds": rounds, "jobs": jobs, "labels": labels, "before": str(before_checkout or ""),
        "warm_up_run": not args.quick, "goal_ratio": GOAL_RATIO, "bytecode_cache": True,
        "notebooks": results, "geometric_mean_ratio": geo,
        "geometric_mean_cpu_ratio": geo_cpu}, args.results)
    print(f"result: {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
