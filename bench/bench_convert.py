"""Time of ``nb2pkg convert`` against ``jupyter nbconvert --to script`` and against the floor,
and how it scales.

    python bench/bench_convert.py            # 4 example notebooks x 7 runs, then 60/200/600/2000 cells
    python bench/bench_convert.py --quick    # 1 notebook x 1 run, then 60 cells (~15 s)

The three commands run as a user runs them, in a fresh process each time (``python -m nb2pkg
convert NB -o DIR --force``, ``jupyter nbconvert --to script NB --output-dir DIR`` and the floor,
``python bench/_floor.py NB OUT.py``: a process that reads the notebook JSON, ``ast``-parses every
code cell and writes one file), in turn, the order rotating every round. Reported: median wall and
CPU time per command, the ratios nb2pkg/nbconvert and nb2pkg/floor per notebook and overall
(geometric mean of the per-notebook ratios), then the same on generated notebooks of 60, 200, 600
and 2,000 code cells (``bench/_synth.py``; written to a temporary folder, never into the
repository), with the growth exponent from 600 to 2,000 cells. A helper process measures the same conversion in
process (``nb2pkg.api.convert``: first call, then warm calls) and by stage, so interpreter start-up
and imports are separated from the work; ``python -X importtime`` shows which imports cost most.
The result goes to ``bench/results/convert-<timestamp>.json`` (and ``convert-latest.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synth  # noqa: E402
from _common import (REPO, BenchmarkFailed, figure, figure_table, loglog_slope,  # noqa: E402
                     machine, median, now_iso, require_written, shown, snapshot, table,
                     versions, wait_for_idle, warn_if_busy, write_result)

EXAMPLES = REPO / "examples" / "notebooks"
SIZES = (60, 200, 600, 2000)
QUICK_SIZES = (60,)
GOAL_RATIO = 0.75
GOAL_FLOOR = 5.0  # typical notebook: at most 5x the floor (issue 16)
GOAL_CPU = {600: 1.5, 2000: 5.0}  # CLI CPU seconds (issue 16)
GOAL_LINEAR = 1.15  # growth exponent from 600 to 2,000 cells called linear
TYPICAL = "sales_report.ipynb"
FLOOR = Path(__file__).resolve().parent / "_floor.py"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # A checkout need not be installed: make `python -m nb2pkg` import this tree.
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONHASHSEED", "0")
    # An installed nb2pkg has its .pyc files; without them every run would compile nb2pkg's
    # sources again (~0.2 s), a cost no user pays. (This workplace sets the variable.)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _jupyter() -> str:
    # The jupyter of this interpreter's environment (not a pyenv/conda shim in front of it).
    beside = Path(sys.executable).parent / "jupyter"
    return str(beside) if beside.exists() else (shutil.which("jupyter") or "jupyter")


def run_timed(command: list[str], env: dict[str, str], writes=(), cwd: Path = REPO
              ) -> dict[str, float]:
    """Run ``command``; wall seconds and CPU seconds (user+sys of it and its children).

    Fails the benchmark when the command exits non-zero or does not (re)write every file of
    ``writes``: a command that does nothing must not be timed as a fast success.
    """
    written = snapshot(writes)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchmarkFailed(f"`{' '.join(command)}` exited with status {done.returncode}\n"
                              f"{done.stderr[-2000:]}")
    require_written(written, " ".join(command))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu}


def commands(notebook: Path, work: Path) -> dict[str, tuple[list[str], list[Path]]]:
    """Each tool's command and the files it must write (checked after every run)."""
    out = work / "nb2pkg_out"
    return {
        "nb2pkg": ([sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o", str(out),
                    "--force"], [out / "pyproject.toml", out / "notebooks" / notebook.name]),
        "nbconvert": ([_jupyter(), "nbconvert", "--to", "script", str(notebook), "--output-dir",
                       str(work / "nbconvert_out")],
                      [work / "nbconvert_out" / f"{notebook.stem}.py"]),
        "floor": ([sys.executable, str(FLOOR), str(notebook), str(work / "floor_out.py")],
                  [work / "floor_out.py"]),
    }


def compare(notebook: Path, runs: int, warmup: bool, work: Path, env: dict[str, str]) -> dict:
    """Run the three commands ``runs`` times each, in turn (the order rotates every round)."""
    tools = commands(notebook, work)
    if warmup:  # file cache, .pyc files: not what we want to time
        for command, writes in tools.values():
            run_timed(command, env, writes)
    names = list(tools)
    times: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_ in range(runs):
        shift = round_ % len(names)
        for tool in names[shift:] + names[:shift]:
            command, writes = tools[tool]
            times[tool].append(run_timed(command, env, writes))
    summary: dict = {tool: {"wall": median(r["wall"] for r in rs),
                            "cpu": median(r["cpu"] for r in rs),
                            "min_wall": min(r["wall"] for r in rs), "runs": rs}
                     for tool, rs in times.items()}
    summary["ratio"] = summary["nb2pkg"]["wall"] / summary["nbconvert"]["wall"]
    summary["ratio_cpu"] = summary["nb2pkg"]["cpu"] / summary["nbconvert"]["cpu"]
    summary["floor_ratio"] = summary["nb2pkg"]["wall"] / summary["floor"]["wall"]
    summary["floor_ratio_cpu"] = summary["nb2pkg"]["cpu"] / summary["floor"]["cpu"]
    return summary


# The in-process measurement runs in a fresh interpreter so its first call pays the imports
# exactly as the CLI does. It prints one JSON line.
CHILD = r"""
import gc, json, sys, time
t0 = time.perf_counter()
notebook, output, repeat, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if "as-cli" in flags:
    # nb2pkg.cli.main() keeps jsonschema's optional rfc3987_syntax out of the process before
    # anything else; do the same so the first call pays the imports the CLI pays.
    sys.modules.setdefault("rfc3987_syntax", None)
import nb2pkg.cli  # what `python -m nb2pkg` imports before parsing arguments
from nb2pkg import api
t_import = time.perf_counter() - t0
options = api.ConvertOptions(force=True)
start = time.perf_counter()
api.convert([notebook], output, options)
first = time.perf_counter() - start
warm, warm_cpu = [], []
for _ in range(repeat):
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    api.convert([notebook], output, options)
    warm.append(time.perf_counter() - start)
    warm_cpu.append(time.process_time() - cpu)
stages = None
if "stages" in flags:
  try:  # the same conversion stage by stage (internals: skipped if they change shape)
    from pathlib import Path
    from nb2pkg.analysis import analyze
    from nb2pkg.generate import render
    from nb2pkg.write import check_output, write_project
    from nb2pkg.gc_pause import gc_paused
    from nb2pkg.notebook import read_notebook
    from nb2pkg.plan import PlanOptions, plan_package
    gc_time = [0.0, 0.0]
    def on_gc(phase, info):
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]
    gc.collect()
    gc.callbacks.append(on_gc)
    stages = {}
    marks = [time.perf_counter(), time.process_time()]
    def mark(name):
        wall, cpu = time.perf_counter(), time.process_time()
        stages[name] = [wall - marks[0], cpu - marks[1]]
        marks[:] = [wall, cpu]
    check_output(Path(output), True, [Path(notebook)])
    with gc_paused():  # as api.convert runs these stages
        notebooks = [read_notebook(notebook)]; mark("read")
        analysis = analyze(notebooks, options.min_clone_statements, options.min_clone_lines)
        mark("analyze")
        plan = plan_package(analysis, PlanOptions(name=options.name, extract=options.extract,
                                                  min_statements=options.min_clone_statements,
                                                  overrides=options.names))
        mark("plan (extract, hoist, rewrite)")
        files = render(plan); mark("render (templates, formatting)")
    write_project(files, Path(output), True); mark("write")
    gc.callbacks.remove(on_gc)
    stages["total"] = [sum(v[0] for v in stages.values()), sum(v[1] for v in stages.values())]
    stages["(gc, all stages)"] = [gc_time[0], None]
    stages["clone groups"] = len(analysis.clones)
    stages["extracted"] = len(plan.extractions)
  except Exception as exc:
    stages = {"error": repr(exc)}
profile = None
if "profile" in flags:
    import cProfile, pstats, io
    profiler = cProfile.Profile()
    gc.collect()
    profiler.enable()
    api.convert([notebook], output, options)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats
    rows = [{"function": f"{f}:{l}({n})", "calls": nc, "tottime": tt, "cumtime": ct}
            for (f, l, n), (cc, nc, tt, ct, _) in stats.items()]
    profile = {"by_self_time": sorted(rows, key=lambda r: -r["tottime"])[:15],
               "by_cumulative": sorted(rows, key=lambda r: -r["cumtime"])[:40]}
print(json.dumps({"import": t_import, "first_call": first, "warm": warm, "warm_cpu": warm_cpu,
                  "stages": stages,
                  "profile": profile}))
"""


def in_process(notebook: Path, work: Path, repeat: int, env: dict[str, str],
               flags: str = "as-cli,stages") -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(notebook), str(work / "inproc_out"),
                           str(repeat), flags], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise BenchmarkFailed(f"in-process measurement failed:\n{done.stderr[-2000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    data["warm_median"] = median(data["warm"]) if data["warm"] else float("nan")
    data["warm_min"] = min(data["warm"]) if data["warm"] else float("nan")
    data["warm_cpu_min"] = min(data["warm_cpu"]) if data["warm_cpu"] else float("nan")
    if data.get("profile"):
        for rows in data["profile"].values():
            for r in rows:
                r["function"] = _short(r["function"])
    return data


def _short(where: str) -> str:
    where = where.replace(str(REPO) + "/", "")
    marker = "site-packages/"
    if marker in where:
        return where.split(marker, 1)[1]
    if "/lib/python" in where:
        return "stdlib/" + where.rsplit("/", 1)[-1]
    return where


def interpreter_startup(runs: int, env: dict[str, str]) -> float:
    return median(run_timed([sys.executable, "-c", "pass"], env)["wall"] for _ in range(runs))


def import_profile(notebook: Path, work: Path, env: dict[str, str], top: int = 12) -> dict:
    """``python -X importtime -m nb2pkg convert``: import time per top-level package.

    ``self`` sums the time spent executing the package's own modules (what removing the package
    from the run would save at most); ``entry`` is the cumulative time of its outermost imports.
    """
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "nb2pkg", "convert",
                           str(notebook), "-o", str(work / "importtime_out"), "--force"],
                          cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    own: dict[str, float] = {}
    total = 0.0
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        self_time = int(parts[0].split(":")[1].strip()) / 1e6
        root = parts[2].strip().split(".")[0]
        own[root] = own.get(root, 0.0) + self_time
        total += self_time
    ranked = sorted(own.items(), key=lambda kv: -kv[1])[:top]
    return {"total": total, "top": ranked,
            "note": "sum of -X importtime 'self' per top-level package; -X importtime adds overhead"}


def convert_figures(examples: dict, scaling: dict, overall: float, overall_cpu: float
                    ) -> list[dict]:
    """The issue-16 figures of this benchmark, each with its goal (``_common.figure``)."""
    figures = [figure("convert / nbconvert, examples (geometric mean, wall)", overall, "x",
                      GOAL_RATIO),
               figure("convert / nbconvert, examples (geometric mean, cpu)", overall_cpu, "x",
                      GOAL_RATIO)]
    typical = examples.get(TYPICAL) or next(iter(examples.values()))
    name = TYPICAL if TYPICAL in examples else next(iter(examples))
    figures.append(figure(f"convert / floor, {name} (cpu)", typical["floor_ratio_cpu"], "x",
                          GOAL_FLOOR))
    figures.append(figure(f"convert / floor, {name} (wall)", typical["floor_ratio"], "x",
                          GOAL_FLOOR))
    figures.append(figure("convert / floor, examples (geometric mean, cpu)",
                          geomean([r["floor_ratio_cpu"] for r in examples.values()]), "x", None))
    for size, limit in GOAL_CPU.items():
        if size in scaling:
            figures.append(figure(f"{size:,} generated cells, CLI cpu", scaling[size]["nb2pkg"]["cpu"],
                                  "s", limit))
            figures.append(figure(f"{size:,} generated cells, CLI wall",
                                  scaling[size]["nb2pkg"]["wall"], "s", None))
    big = [s for s in scaling if s >= 600]
    if len(big) >= 2:
        slope = loglog_slope(big, [scaling[s]["nb2pkg"]["cpu"] for s in big])
        figures.append(figure(f"growth exponent {min(big)} -> {max(big)} cells (CLI cpu)", slope,
                              "", GOAL_LINEAR))
    return figures


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="one example notebook, one run, size 60: a smoke test")
    parser.add_argument("-n", "--runs", type=int, help="runs per tool and notebook (default 7)")
    parser.add_argument("--sizes", help="comma-separated cell counts (default 60,200,600,2000)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the generated notebooks")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated notebooks")
    parser.add_argument("--no-profile", action="store_true",
                        help="skip the cProfile run on the largest generated notebook")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS for the load average to drop")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="work in DIR and keep what the commands wrote (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)

    runs = args.runs or (1 if args.quick else 7)
    warmup = not args.quick
    sizes = () if args.no_scaling else (tuple(int(s) for s in args.sizes.split(",")) if args.sizes
                                        else QUICK_SIZES if args.quick else SIZES)
    notebooks = sorted(EXAMPLES.glob("*.ipynb"))
    if args.quick:
        notebooks = [n for n in notebooks if n.stem == "sales_report"] or notebooks[:1]
    env = _env()
    wait_for_idle(args.wait_idle)
    started = now_iso()
    host = machine()  # load average at the start
    busy = warn_if_busy()
    inproc_repeat = 1 if args.quick else 5

    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep.resolve())) if args.keep
          else tempfile.TemporaryDirectory(prefix="nb2pkg-bench-")) as folder:
        work = Path(folder)
        startup = interpreter_startup(3 if args.quick else 7, env)

        print(f"example notebooks: {len(notebooks)} x {runs} run(s) per tool, alternating",
              flush=True)
        examples = {}
        for notebook in notebooks:
            print(f"  {notebook.name}", end="", flush=True)
            result = compare(notebook, runs, warmup, work, env)
            result["in_process"] = in_process(notebook, work, inproc_repeat, env)
            result["code_cells"] = sum(1 for c in json.loads(notebook.read_text())["cells"]
                                       if c["cell_type"] == "code")
            examples[notebook.name] = result
            print(f": nb2pkg {result['nb2pkg']['wall']:.3f} s, nbconvert "
                  f"{result['nbconvert']['wall']:.3f} s", flush=True)
        importtime = import_profile(notebooks[0], work, env)
        # The library's first call as an API user (the lab extension) makes it, without the
        # CLI's import guard.
        library_first = in_process(notebooks[0], work, 0, env, flags="")["first_call"]

        scaling = {}
        if sizes:
            print(f"generated notebooks: {', '.join(map(str, sizes))} code cells", flush=True)
        for size in sizes:
            path = _synth.write_notebook(work / f"synthetic_{size}.ipynb", size, args.seed)
            print(f"  {size} cells", end="", flush=True)
            scale_runs = runs if size < 600 else max(1, min(runs, 5 if size < 2000 else 3))
            result = compare(path, scale_runs, warmup, work, env)
            result["in_process"] = in_process(path, work, 1 if args.quick else 3, env)
            if size == max(sizes) and not args.quick and not args.no_profile:
                print(", profiling", end="", flush=True)
                result["profile"] = in_process(path, work, 0, env, "as-cli,profile")["profile"]
            scaling[size] = result
            print(f": nb2pkg {result['nb2pkg']['wall']:.3f} s, nbconvert "
                  f"{result['nbconvert']['wall']:.3f} s", flush=True)

    # -- tables --------------------------------------------------------------------------------
    def row(name, cells, r):
        ip = r["in_process"]
        return [name, cells, r["nb2pkg"]["wall"], r["nbconvert"]["wall"], r["ratio"],
                r["nb2pkg"]["cpu"], r["nbconvert"]["cpu"], r["ratio_cpu"], r["floor"]["wall"],
                r["floor"]["cpu"], r["floor_ratio"], r["floor_ratio_cpu"], ip["warm_median"],
                ip["warm_cpu_min"], ip["first_call"], r["nb2pkg"]["wall"] - ip["warm_median"]]

    headers = ["notebook", "code cells", "nb2pkg wall", "nbconvert wall", "ratio",
               "nb2pkg cpu", "nbconvert cpu", "ratio cpu", "floor wall", "floor cpu",
               "x floor", "x floor cpu", "in-process warm",
               "in-process warm cpu", "in-process 1st call", "start-up+imports"]
    rows = [row(name, r["code_cells"], r) for name, r in examples.items()]
    ratios = [r["ratio"] for r in examples.values()]
    overall = geomean(ratios)
    summed = (sum(r["nb2pkg"]["wall"] for r in examples.values())
              / sum(r["nbconvert"]["wall"] for r in examples.values()))
    print()
    print(f"example notebooks: median of {runs} run(s), seconds "
          f"(interpreter start-up alone: {startup:.3f} s)")
    print(table(headers, rows))
    print(f"overall ratio nb2pkg/nbconvert: {overall:.3f} (geometric mean of per-notebook ratios); "
          f"{summed:.3f} (sum of medians); cpu: "
          f"{geomean([r['ratio_cpu'] for r in examples.values()]):.3f}")

    print()
    print("where the time of one warm in-process conversion goes (seconds, wall / cpu)")
    stage_names = [k for k in next(iter(examples.values()))["in_process"]["stages"] or {}]
    all_inproc = {**{n: r for n, r in examples.items()},
                  **{f"synthetic {s}": r for s, r in scaling.items()}}

    def stage_cell(value) -> str:
        if isinstance(value, list):
            return " / ".join("-" if v is None else f"{v:.3f}" for v in value)
        return str(value)

    print(table(["stage"] + list(all_inproc), [
        [stage] + [stage_cell(r["in_process"]["stages"].get(stage)) for r in all_inproc.values()]
        for stage in stage_names]))

    print(f"first call of nb2pkg.api.convert in a fresh process, as the CLI imports: "
          f"{next(iter(examples.values()))['in_process']['first_call']:.3f} s; as a library user "
          f"(no rfc3987_syntax guard): {library_first:.3f} s ({notebooks[0].name})")

    print()
    print(f"imports of one `python -m nb2pkg convert` (python -X importtime; total "
          f"{importtime['total']:.3f} s)")
    print(table(["package", "own import time s"], [list(t) for t in importtime["top"]]))

    if scaling:
        print()
        print("generated notebooks (medians, seconds)")
        print(table(["code cells", "nb2pkg wall", "nb2pkg cpu", "nbconvert wall", "ratio",
                     "ratio cpu", "floor cpu", "x floor cpu", "in-process warm",
                     "in-process warm cpu", "in-process 1st call", "ms/cell (CLI cpu)"],
                    [[s, r["nb2pkg"]["wall"], r["nb2pkg"]["cpu"], r["nbconvert"]["wall"],
                      r["ratio"], r["ratio_cpu"], r["floor"]["cpu"], r["floor_ratio_cpu"],
                      r["in_process"]["warm_median"], r["in_process"]["warm_cpu_min"],
                      r["in_process"]["first_call"], 1e3 * r["nb2pkg"]["cpu"] / s]
                     for s, r in scaling.items()]))

    largest = scaling.get(max(sizes)) if sizes else None
    if largest and largest.get("profile"):
        print()
        print(f"profile of one in-process conversion of {max(sizes)} cells (cProfile, ~2x overhead)")
        print(table(["function (cumulative)", "calls", "self s", "cumulative s"],
                    [[r["function"], r["calls"], r["tottime"], r["cumtime"]]
                     for r in largest["profile"]["by_cumulative"]
                     if r["function"].startswith("nb2pkg/")][:15]))
        print(table(["function (self time)", "calls", "self s", "cumulative s"],
                    [[r["function"], r["calls"], r["tottime"], r["cumtime"]]
                     for r in largest["profile"]["by_self_time"][:10]]))

    overall_cpu = geomean([r["ratio_cpu"] for r in examples.values()])
    figures = convert_figures(examples, scaling, overall, overall_cpu)
    print()
    print(figure_table(figures, args.quick))

    path = write_result("convert", {
        "benchmark": "convert", "date": started, "quick": args.quick, "machine": host,
        "versions": versions("nbconvert", "nbformat", "libcst", "ruff", "jinja2"),
        "busy_warning": busy,
        "settings": {"runs": runs, "warmup": warmup, "sizes": sizes, "seed": args.seed,
                     "in_process_repeat": inproc_repeat,
                     "nb2pkg_command": "python -m nb2pkg convert NB -o DIR --force",
                     "nbconvert_command": "jupyter nbconvert --to script NB --output-dir DIR"},
        "interpreter_startup": startup, "library_first_call": library_first,
        "examples": examples, "overall_ratio": overall,
        "summed_ratio": summed, "importtime": importtime,
        "scaling": {str(k): v for k, v in scaling.items()}, "figures": figures,
    }, args.results)
    print(f"\nwrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
