"""How the analysis (parse, scope, dataflow, findings, clone detection) grows with notebook size.

    python bench/bench_clones.py            # 1,250 / 2,500 / 5,000 / 10,000 cells (several minutes)
    python bench/bench_clones.py --quick    # 250 / 500 / 1,000 cells, a smoke run (~10 s)

For every size it times ``nb2pkg.analysis.analyze`` on a notebook of that many code cells
(generated from the example notebooks, see ``bench/_synth.py``), reports time per cell, fits the
growth exponent (slope of log time against log cells: 1.0 is linear), compares the whole analysis
with ONE ``libcst.parse_module`` of the same code (every cell masked with ``nb2pkg.magics.mask``,
concatenated into one module), and breaks the time down by stage (mask, ast.parse, scope,
dataflow, findings, clones) and by time spent in Python's cyclic garbage collector.
The result goes to ``bench/results/clones-<timestamp>.json`` (and ``clones-latest.json``).
"""

from __future__ import annotations

import argparse
import ast
import atexit
import cProfile
import gc
import io
import pstats
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synth  # noqa: E402
from _common import (BenchmarkFailed, GcTimer, gc_disabled, loglog_slope, machine,  # noqa: E402
                     median, now_iso, shown, table, versions, warn_if_busy, wait_for_idle,
                     write_result)

FULL_SIZES = (1250, 2500, 5000, 10000)
QUICK_SIZES = (250, 500, 1000)


def load_notebook(cells: list[dict], folder: Path):
    """Write ``cells`` as a notebook and read it back with the library's reader (not timed)."""
    import json

    from nb2pkg.notebook import read_notebook

    path = folder / f"synthetic_{len(cells)}.ipynb"
    path.write_text(json.dumps(_synth.notebook_node(cells, validate=False)), encoding="utf-8")
    return read_notebook(path)


def masked_module(notebook) -> str:
    """Every code cell masked, concatenated into one module (what one libcst parse would see)."""
    from nb2pkg.magics import mask

    parts = []
    for cell in notebook.cells:
        if cell.is_code:
            code = mask(cell.source).code
            parts.append(code if code.endswith("\n") else code + "\n")
    return "".join(parts)


def time_analysis(notebook, repeat: int, collector: bool = True) -> dict:
    """``repeat`` runs of ``analyze``; min and median of wall and CPU time, collector time.

    The minimum is the estimate least disturbed by other processes (their interference only
    ever adds time); the median is given too.
    """
    from nb2pkg.analysis import analyze

    runs = []
    for _ in range(repeat):
        gc.collect()
        timer = GcTimer()
        with timer.installed(), (nullcontext() if collector else gc_disabled()):
            cpu, wall = time.process_time(), time.perf_counter()
            result = analyze([notebook])
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        runs.append({"wall": wall, "cpu": cpu, "gc": timer.seconds,
                     "collections": timer.collections, "clone_groups": len(result.clones)})
        del result
    best = min(runs, key=lambda r: r["wall"])
    return {"runs": runs, "wall": best["wall"], "wall_median": median(r["wall"] for r in runs),
            "cpu": min(r["cpu"] for r in runs), "gc": best["gc"],
            "collections": best["collections"], "clone_groups": runs[0]["clone_groups"]}


def stage_breakdown(notebook) -> dict:
    """The analysis of ``nb2pkg.analysis.analyze``, stage by stage, with the library's functions.

    Mirrors ``analyze`` (parse each code cell once: mask + ast.parse + scope; then dataflow,
    findings and sections per notebook; then clones across notebooks), keeping every
    intermediate result alive as ``analyze`` does, so the garbage collector sees the same heap.
    """
    from nb2pkg.analysis.clones import find_clones
    from nb2pkg.analysis.dataflow import dataflow
    from nb2pkg.analysis.findings import findings
    from nb2pkg.analysis.parse import ParsedCell
    from nb2pkg.analysis.scope import block_io
    from nb2pkg.magics import mask
    from nb2pkg.notebook import sections

    stages: dict[str, dict] = {}
    code_cells = [c for c in notebook.cells if c.is_code]

    def run(name, function):
        timer = GcTimer()
        with timer.installed():
            cpu, start = time.process_time(), time.perf_counter()
            value = function()
            stages[name] = {"wall": time.perf_counter() - start, "cpu": time.process_time() - cpu,
                            "gc": timer.seconds}
        return value

    def parse_all(masks):
        trees = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for m in masks:
                try:
                    trees.append(ast.parse(m.code))
                except (SyntaxError, ValueError):
                    trees.append(None)
        return trees

    gc.collect()
    masks = run("mask", lambda: [mask(c.source) for c in code_cells])
    trees = run("ast.parse", lambda: parse_all(masks))
    ios = run("scope (block_io)", lambda: [block_io(t.body) if t is not None else None
                                           for t in trees])
    cells = tuple(ParsedCell(0, c.index, c.source, m, t, io, None if t else "syntax error")
                  for c, m, t, io in zip(code_cells, masks, trees, ios))
    flow = run("dataflow", lambda: dataflow(cells))
    found = run("findings", lambda: findings(notebook, cells, flow))
    run("sections", lambda: sections(notebook))
    groups = run("clones", lambda: find_clones(list(cells)))
    del found, groups
    return stages


def stage_breakdowns(notebook, repeat: int) -> dict:
    """:func:`stage_breakdown` ``repeat`` times; per stage the run with the least wall time."""
    try:
        runs = [stage_breakdown(notebook) for _ in range(repeat)]
    except Exception as exc:  # library internals changed shape: the table would be empty
        raise BenchmarkFailed(f"the stage breakdown no longer matches the library ({exc!r}): "
                              "update stage_breakdown() in bench/bench_clones.py") from None
    stages = {}
    for name in runs[0]:
        best = dict(min((r[name] for r in runs), key=lambda s: s["wall"]))
        best["cpu"] = min(r[name]["cpu"] for r in runs)
        stages[name] = best
    total = sum(s["cpu"] for s in stages.values())
    for s in stages.values():
        s["share"] = s["cpu"] / total if total else 0.0  # CPU time: less disturbed by a busy machine
    total = sum(s["wall"] for s in stages.values())
    return {"stages": stages, "total": total, "total_cpu": sum(s["cpu"] for s in stages.values())}


def time_libcst(code: str, repeat: int) -> dict:
    import libcst

    times, cpus = [], []
    for _ in range(repeat):
        gc.collect()
        cpu, start = time.process_time(), time.perf_counter()
        module = libcst.parse_module(code)
        times.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
        del module
    gc.collect()
    start = time.perf_counter()
    ast.parse(code)
    ast_time = time.perf_counter() - start
    return {"libcst_parse_module": min(times), "libcst_parse_module_cpu": min(cpus),
            "runs": times, "ast_parse_one_module": ast_time}


def profile(notebook, top: int = 15) -> dict:
    from nb2pkg.analysis import analyze

    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    analyze([notebook])
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO()).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, function), (_, nc, tt, ct, _) in stats.items():
        short = filename.replace(str(_synth.REPO) + "/", "")
        if "site-packages" in short or "/lib/python" in short:
            short = "stdlib/" + Path(short).name
        rows.append({"function": f"{short}:{line}({function})", "calls": nc, "tottime": tt,
                     "cumtime": ct})
    by_self = sorted(rows, key=lambda r: -r["tottime"])[:top]
    by_cum = [r for r in sorted(rows, key=lambda r: -r["cumtime"])
              if r["function"].startswith("nb2pkg/")][:top]
    return {"by_self_time": by_self, "by_cumulative_nb2pkg": by_cum,
            "note": "cProfile adds overhead (about 2x); use the shares, not the absolute times"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run: a smoke test")
    parser.add_argument("--sizes", help="comma-separated cell counts (default 1250,2500,5000,10000)")
    parser.add_argument("--repeat", type=int, help="analysis runs per size (default 3; quick 1)")
    parser.add_argument("--libcst-repeat", type=int, default=1,
                        help="libcst.parse_module runs per size (default 1: it is slow)")
    parser.add_argument("--no-libcst", action="store_true", help="skip the libcst comparison")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated notebook")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to SECONDS for the load average to drop")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)

    sizes = tuple(int(s) for s in args.sizes.split(",")) if args.sizes else (
        QUICK_SIZES if args.quick else FULL_SIZES)
    repeat = args.repeat or (1 if args.quick else 3)
    wait_for_idle(args.wait_idle)
    started = now_iso()
    host = machine()  # load average at the start
    busy = warn_if_busy()
    print(f"generating a notebook of {max(sizes)} code cells from examples/notebooks ...",
          flush=True)
    all_cells = _synth.synth_cells(max(sizes), args.seed)
    folder = Path(tempfile.mkdtemp(prefix="nb2pkg-bench-"))
    atexit.register(shutil.rmtree, folder, True)

    rows, results = [], []
    for n in sizes:
        # Each size is the first n cells of the largest notebook; only one notebook is alive at
        # a time, so the collector sees a heap proportional to the size measured.
        notebook = load_notebook(all_cells[:n], folder)
        print(f"  {n} cells: analysis x{repeat}", end="", flush=True)
        cells = sum(1 for c in notebook.cells if c.is_code)
        analysis = time_analysis(notebook, repeat)
        # The generated notebook copies blocks of the examples by construction: an analysis
        # that finds no clone group (or sees fewer cells) did not do the work being timed.
        if cells != n or analysis["clone_groups"] == 0:
            raise BenchmarkFailed(f"{n} cells: the analysis saw {cells} code cells and found "
                                  f"{analysis['clone_groups']} clone groups")
        no_gc = time_analysis(notebook, repeat, collector=False)
        print(", stages", end="", flush=True)
        breakdown = stage_breakdowns(notebook, repeat)
        entry = {"cells": n, "lines": sum(c.source.count("\n") + 1 for c in notebook.cells),
                 "analysis": analysis, "analysis_without_gc": no_gc, "breakdown": breakdown}
        if not args.no_libcst:
            print(", libcst.parse_module", end="", flush=True)
            parse = time_libcst(masked_module(notebook), args.libcst_repeat)
            entry["parse"] = parse
            entry["ratio_analysis_to_libcst"] = analysis["wall"] / parse["libcst_parse_module"]
            entry["ratio_analysis_to_libcst_cpu"] = analysis["cpu"] / parse["libcst_parse_module_cpu"]
        print(flush=True)
        results.append(entry)
        if n != sizes[-1]:
            del notebook
    del all_cells

    # -- tables --------------------------------------------------------------------------------
    nan = float("nan")
    for entry in results:
        a, off = entry["analysis"], entry["analysis_without_gc"]
        parse = entry.get("parse", {})
        rows.append([entry["cells"], entry["lines"], a["wall"], a["wall_median"], a["cpu"],
                     a["gc"], 1e3 * a["wall"] / entry["cells"], off["wall"],
                     1e3 * off["wall"] / entry["cells"], a["clone_groups"],
                     parse.get("libcst_parse_module", nan),
                     entry.get("ratio_analysis_to_libcst", nan),
                     entry.get("ratio_analysis_to_libcst_cpu", nan)])
    print()
    print(f"analysis (nb2pkg.analysis.analyze), {repeat} run(s) per size, seconds: wall = best run, "
          "cpu = least CPU time")
    print(table(["cells", "lines", "wall", "wall median", "cpu", "in gc", "ms/cell",
                 "wall gc off", "ms/cell gc off", "clone groups", "libcst parse",
                 "analysis/parse", "analysis/parse cpu"], rows))

    cells = [e["cells"] for e in results]
    exponents = {
        "analysis (wall)": loglog_slope(cells, [e["analysis"]["wall"] for e in results]),
        "analysis (cpu)": loglog_slope(cells, [e["analysis"]["cpu"] for e in results]),
        "analysis, gc off (wall)": loglog_slope(
            cells, [e["analysis_without_gc"]["wall"] for e in results]),
        "analysis, gc off (cpu)": loglog_slope(
            cells, [e["analysis_without_gc"]["cpu"] for e in results]),
        "time in gc": loglog_slope(cells, [e["analysis"]["gc"] for e in results]),
    }
    stage_names = list(results[0]["breakdown"]["stages"])
    for name in stage_names:
        exponents[f"stage {name} (cpu)"] = loglog_slope(
            cells, [e["breakdown"]["stages"][name]["cpu"] for e in results])
    if not args.no_libcst:
        exponents["libcst.parse_module"] = loglog_slope(
            cells, [e["parse"]["libcst_parse_module"] for e in results])

    if stage_names:
        print()
        print(f"stage breakdown, best of {repeat} per stage, seconds: wall / cpu (gc = wall time "
              "of the collector inside it); share and exponent from CPU time")
    header = ["stage"] + [f"{n} cells" for n in cells] + ["share at max", "exponent (cpu)"]
    stage_rows = []
    for name in stage_names:
        measured = [e["breakdown"]["stages"][name] for e in results]
        stage_rows.append([name] + [f"{m['wall']:.3f} / {m['cpu']:.3f} (gc {m['gc']:.2f})"
                                    for m in measured]
                          + [f"{measured[-1]['share']:.0%}", exponents[f"stage {name} (cpu)"]])
    stage_rows.append(["sum of stages"] + [
        f"{e['breakdown']['total']:.3f} / {e['breakdown']['total_cpu']:.3f}" for e in results]
        + ["100%", loglog_slope(cells, [e["breakdown"]["total_cpu"] for e in results])])
    if stage_names:
        print(table(header, stage_rows))

    print()
    print(table(["growth exponent (log-log slope)", "value"],
                [[k, v] for k, v in exponents.items()]))

    prof = None
    if not args.no_profile:
        print(f"\nprofiling one analysis of {cells[-1]} cells (cProfile) ...", flush=True)
        prof = profile(notebook)
        print(table(["function (by self time)", "calls", "self s", "cumulative s"],
                    [[r["function"], r["calls"], r["tottime"], r["cumtime"]]
                     for r in prof["by_self_time"][:12]]))

    largest = results[-1]
    goals = {
        "growth exponent (wall)": exponents["analysis (wall)"],
        "growth exponent (cpu)": exponents["analysis (cpu)"],
        "linear (both exponents <= 1.15)": max(exponents["analysis (wall)"],
                                               exponents["analysis (cpu)"]) <= 1.15,
    }
    if "ratio_analysis_to_libcst" in largest:
        worst = max(max(e["ratio_analysis_to_libcst"], e["ratio_analysis_to_libcst_cpu"])
                    for e in results)
        goals["analysis/libcst parse at max size (wall)"] = largest["ratio_analysis_to_libcst"]
        goals["analysis/libcst parse at max size (cpu)"] = largest["ratio_analysis_to_libcst_cpu"]
        goals["analysis/libcst parse <= 1.0 at every size"] = worst <= 1.0
    if args.quick:
        goals["note"] = "quick mode: sizes too small for a meaningful exponent"
    print()
    print(table(["goal", "measured"], [[k, v] for k, v in goals.items()]))

    path = write_result("clones", {
        "benchmark": "clones", "date": started, "quick": args.quick, "machine": host,
        "versions": versions("libcst", "nbformat"), "busy_warning": busy,
        "settings": {"sizes": sizes, "repeat": repeat, "libcst_repeat": args.libcst_repeat,
                     "seed": args.seed, "notebooks": 1,
                     "generator": "bench/_synth.py (episodes of example cells, renamed)"},
        "results": results, "exponents": exponents, "profile": prof, "goals": goals,
    }, args.results)
    print(f"\nwrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
