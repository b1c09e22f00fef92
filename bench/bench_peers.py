"""``nb2pkg convert`` against Kale and soorgeon on the same generated notebook of 600 code cells.

    python bench/bench_peers.py            # 600 cells, 3 rounds (installs the peers first)
    python bench/bench_peers.py --quick    # 60 cells, 1 round; peers only if already installed

Each peer runs from its own virtual environment, made by this script under
``bench/results/peer-venvs/`` (git-ignored; ``--venvs DIR`` elsewhere) with ``pip install
kubeflow-kale`` and ``pip install soorgeon``; a peer that cannot be installed (no network, a
failed build) is skipped with a message, and so is one that refuses the notebook. The commands:

- ``python -m nb2pkg convert NB -o DIR --force`` (package, refactored notebook, tests, pipeline);
- ``kale --nb NB --experiment_name bench --pipeline_name bench`` (a Kubeflow pipeline script,
  ``.kale/bench.kale.py``, one step per tagged part, data passed between steps);
- ``soorgeon refactor NB`` (a Ploomber pipeline, one task per H2 section); soorgeon rewrites the
  notebook it is given, so every run gets a fresh copy. When soorgeon refuses the sectioned
  notebook it is timed with ``--single-task`` instead, and the figure says so.

"The same notebook" is a variant every tool accepts, given to all three: ``bench/_synth.py``'s
notebook with IPython syntax commented out (neither peer reads magics), a markdown H2 heading and
a Kale ``step:``/``prev:`` tag every 50 cells, and the global names a function reads passed as
keyword parameters (soorgeon refuses functions that read globals). CPU time (user + system of
the command and its children) is the measure; the goal (issue 16) is at most 0.4x the faster
peer.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synth  # noqa: E402
from _common import (RESULTS, BenchmarkFailed, figure, figure_table, load_note,  # noqa: E402
                     machine, median, now_iso, shown, table, versions, warn_if_busy,
                     write_result)
from bench_convert import _env, run_timed  # noqa: E402

GOAL_PEERS = 0.4
EVERY = 50  # cells per part (heading, Kale step)
PEERS = {"kale": ("kubeflow-kale", "kale"), "soorgeon": ("soorgeon", "soorgeon")}


# -- the notebook every tool accepts -------------------------------------------------------------
_ASSIGNED_MAGIC = re.compile(r"^(\s*)([A-Za-z_][\w, ]*?)\s*=\s*[!%](.*)$")
_TIMED = re.compile(r"^(\s*)%(?:time|timeit)\s+(.*)$")
_BUILTINS = set(dir(builtins))


def _free_reads(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    bound = {a.arg for a in ast.walk(function.args) if isinstance(a, ast.arg)}
    loads = set()
    for node in ast.walk(function):
        if node is function:
            continue
        if isinstance(node, ast.Name):
            (loads if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
    return loads - bound - _BUILTINS


def _globals_as_parameters(tree: ast.Module) -> bool:
    """Give every function the globals it reads (or declares) as keyword parameters."""
    changed = False
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        declared = {n for g in ast.walk(node) if isinstance(g, (ast.Global, ast.Nonlocal))
                    for n in g.names}
        for parent in ast.walk(node):
            for name in ("body", "orelse", "finalbody"):
                block = getattr(parent, name, None)
                if isinstance(block, list) and any(isinstance(x, (ast.Global, ast.Nonlocal))
                                                   for x in block):
                    block[:] = [x for x in block
                                if not isinstance(x, (ast.Global, ast.Nonlocal))] or [ast.Pass()]
        for name in sorted(_free_reads(node) | declared):
            node.args.kwonlyargs.append(ast.arg(arg=name))
            node.args.kw_defaults.append(ast.Constant(None))
            changed = True
    return changed


def _plain_python(source: str) -> str:
    lines = []
    for line in source.splitlines():
        timed, assigned = _TIMED.match(line), _ASSIGNED_MAGIC.match(line)
        if timed:
            lines.append(timed[1] + timed[2])
        elif assigned:
            lines.append(f"{assigned[1]}{assigned[2]} = None  # {line.strip()}")
        elif line.lstrip().startswith(("%", "!")) or line.rstrip().endswith("?"):
            lines.append("# " + line)
        else:
            lines.append(line)
    code = "\n".join(lines)
    try:
        tree = ast.parse(code)
    except SyntaxError:  # a cell magic's body (%%bash): all of it commented out
        return "\n".join("# " + line for line in source.splitlines())
    return ast.unparse(tree) if _globals_as_parameters(tree) else code


def peer_notebook(path: Path, cells: int, seed: int) -> Path:
    """The generated notebook of ``cells`` code cells, in the form every tool accepts."""
    _synth.write_notebook(path, cells, seed)
    node = json.loads(path.read_text(encoding="utf-8"))
    out = []
    for index, cell in enumerate(node["cells"]):
        cell.setdefault("metadata", {}).pop("tags", None)  # Kale refuses tags it does not know
        if cell["cell_type"] == "code":
            source = cell["source"]
            cell["source"] = _plain_python("".join(source) if isinstance(source, list) else source)
        if index % EVERY == 0:
            part = index // EVERY + 1
            out.append({"cell_type": "markdown", "id": f"part-{part}", "metadata": {},
                        "source": f"## Part {part}"})
            cell["metadata"]["tags"] = [f"step:part{part}"] + ([f"prev:part{part - 1}"]
                                                               if part > 1 else [])
        out.append(cell)
    node["cells"] = out
    path.write_text(json.dumps(node, indent=1), encoding="utf-8")
    return path


# -- the peers' environments -------------------------------------------------------------------
def install(venvs: Path, peer: str, allowed: bool) -> tuple[Path | None, str]:
    """The peer's command in its own venv, installed when missing: (path or None, message)."""
    distribution, command = PEERS[peer]
    venv = venvs / peer
    executable = venv / ("Scripts" if sys.platform == "win32" else "bin") / command
    if executable.exists():
        return executable, "installed"
    if not allowed:
        return None, "not installed (quick mode installs nothing; run without --quick)"
    print(f"installing {distribution} into {shown(venv)} ...", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True,
                          text=True)
    pip = venv / ("Scripts" if sys.platform == "win32" else "bin") / "pip"
    if made.returncode == 0:
        made = subprocess.run([str(pip), "install", "-q", distribution], capture_output=True,
                              text=True)
    if made.returncode != 0 or not executable.exists():
        tail = (made.stderr or made.stdout).strip().splitlines()[-1:] or ["no output"]
        return None, f"pip install {distribution} failed: {tail[0][:300]}"
    return executable, "installed now"


def _version(venv: Path, distribution: str) -> str:
    python = venv / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    done = subprocess.run([str(python), "-c", "import importlib.metadata as m; "
                           f"print(m.version({distribution!r}))"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def tool_runs(tools: dict, rounds: int, env: dict) -> dict[str, list[dict[str, float]]]:
    """Each tool ``rounds`` times, in turn (the order rotates), a fresh copy of the notebook
    in a fresh folder for every run (soorgeon rewrites its input, Kale writes into the cwd)."""
    names = list(tools)
    times: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(tools[name]())
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="60 cells, 1 round, no warm-up; peers only if already installed")
    parser.add_argument("--cells", type=int, help="code cells (default 600)")
    parser.add_argument("--rounds", type=int, help="runs per tool (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--venvs", type=Path, default=RESULTS / "peer-venvs",
                        help="where the peers' virtual environments are (default: "
                             "bench/results/peer-venvs)")
    parser.add_argument("--no-install", action="store_true", help="never install a peer")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)
    cells = args.cells or (60 if args.quick else 600)
    rounds = args.rounds or (1 if args.quick else 3)
    started = now_iso()
    host = machine()
    busy = warn_if_busy()
    env = _env()
    peers: dict[str, dict] = {}
    for peer in PEERS:
        executable, message = install(args.venvs, peer, not (args.quick or args.no_install))
        peers[peer] = {"command": executable, "status": message}
        if executable is None:
            print(f"skipped {peer}: {message}", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="nb2pkg-bench-peers-") as folder:
        work = Path(folder)
        notebook = peer_notebook(work / f"peer_{cells}.ipynb", cells, args.seed)
        counter = iter(range(10**6))

        def fresh() -> tuple[Path, Path]:
            run = work / f"run-{next(counter)}"
            run.mkdir()
            copy = run / notebook.name
            shutil.copyfile(notebook, copy)
            return run, copy

        def nb2pkg() -> dict[str, float]:
            run, copy = fresh()
            out = run / "out"
            return run_timed([sys.executable, "-m", "nb2pkg", "convert", str(copy), "-o",
                              str(out), "--force"], env,
                             [out / "pyproject.toml", out / "notebooks" / copy.name])

        def peer_runner(peer: str, extra: list[str]):
            executable = peers[peer]["command"]

            def run_peer() -> dict[str, float]:
                run, copy = fresh()
                if peer == "kale":
                    command = [str(executable), "--nb", copy.name, "--experiment_name", "bench",
                               "--pipeline_name", "bench"]
                    writes = [run / ".kale" / "bench.kale.py"]
                else:
                    command = [str(executable), "refactor", *extra, copy.name]
                    writes = [run / "pipeline.yaml"]
                return run_timed(command, dict(env, PYTHONPATH=""), writes, cwd=run)
            return run_peer

        tools = {"nb2pkg": nb2pkg}
        for peer in PEERS:
            if peers[peer]["command"] is None:
                continue
            runner = peer_runner(peer, [])
            try:  # the warm-up run: does the peer accept the notebook at all?
                runner()
                peers[peer]["mode"] = "default"
            except BenchmarkFailed as refused:
                reason = str(refused).strip().splitlines()[-1][:300]
                if peer == "soorgeon":
                    runner = peer_runner(peer, ["--single-task"])
                    try:
                        runner()
                        peers[peer]["mode"] = "--single-task"
                        peers[peer]["refused_default"] = reason
                        print(f"soorgeon refused the sectioned notebook ({reason}); timing "
                              "--single-task", file=sys.stderr)
                    except BenchmarkFailed as again:
                        reason = str(again).strip().splitlines()[-1][:300]
                        runner = None
                else:
                    runner = None
                if runner is None:
                    peers[peer]["status"] = f"refused the notebook: {reason}"
                    print(f"skipped {peer}: refused the notebook: {reason}", file=sys.stderr)
                    continue
            tools[peer] = runner
        if not args.quick:
            nb2pkg()  # warm-up: file cache, .pyc files
        print(f"{cells} code cells: {', '.join(tools)} x {rounds} round(s)", flush=True)
        times = tool_runs(tools, rounds, env)

    summary = {name: {"wall": median(r["wall"] for r in rs), "cpu": median(r["cpu"] for r in rs),
                      "runs": rs} for name, rs in times.items()}
    timed_peers = [p for p in PEERS if p in summary]
    print()
    print(table(["tool", "mode", "wall s", "cpu s", "nb2pkg / tool (cpu)"],
                [[name, peers.get(name, {}).get("mode", "convert"), r["wall"], r["cpu"],
                  summary["nb2pkg"]["cpu"] / r["cpu"]] for name, r in summary.items()]))
    for peer in PEERS:
        if peer not in summary:
            print(f"{peer}: {peers[peer]['status']}")
    figures = []
    if timed_peers:
        fastest = min(timed_peers, key=lambda p: summary[p]["cpu"])
        mode = peers[fastest].get("mode", "default")
        label = fastest + ("" if mode == "default" else f" {mode}")
        figures.append(figure(f"convert / faster peer ({label}), {cells} cells (cpu)",
                              summary["nb2pkg"]["cpu"] / summary[fastest]["cpu"], "x",
                              GOAL_PEERS))
        for peer in timed_peers:
            figures.append(figure(f"{peer} cpu, {cells} cells", summary[peer]["cpu"], "s", None))
    figures.append(figure(f"nb2pkg cpu, {cells} cells (peer notebook)",
                          summary["nb2pkg"]["cpu"], "s", None))
    print()
    print(figure_table(figures, args.quick))
    print(load_note())
    path = write_result("peers", {
        "benchmark": "peers", "date": started, "quick": args.quick, "machine": host,
        "busy_warning": busy, "cells": cells, "rounds": rounds, "seed": args.seed,
        "versions": {**versions("nbformat", "libcst", "ruff"),
                     **{PEERS[p][0]: _version(args.venvs / p, PEERS[p][0]) for p in timed_peers}},
        "peers": {p: {k: str(v) for k, v in info.items()} for p, info in peers.items()},
        "tools": summary, "figures": figures}, args.results)
    print(f"\nwrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
