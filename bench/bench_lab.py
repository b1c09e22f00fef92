"""The JupyterLab endpoint's first conversion after the server starts, against the CLI.

    python bench/bench_lab.py            # 3 server starts, 5 CLI runs, sales_report
    python bench/bench_lab.py --quick    # 1 server start, 1 CLI run

A real ``jupyter server`` (``python -m jupyter_server`` with the ``nb2pkg.labext`` extension, in
isolated Jupyter config/data/runtime folders, on a free port of 127.0.0.1, with a token) is
started by the script; once it answers, ``POST /nb2pkg/convert`` converts the notebook (what the
toolbar button sends), then a second time (warm). Timed: the wall time of the request, and the
CPU time the server process spent meanwhile (``/proc/<pid>/stat``). The CLI,
``python -m nb2pkg convert NB -o DIR --force``, converts the same notebook in a fresh process.
Goal (issue 16): first conversion at most 1.5x the CLI's time. Each request is checked: status
200 and the project written (pyproject.toml and the refactored notebook, rewritten).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (REPO, BenchmarkFailed, figure, figure_table, load_note,  # noqa: E402
                     machine, median, now_iso, require_written, shown, snapshot, table,
                     versions, warn_if_busy, write_result)
from bench_convert import _env, run_timed  # noqa: E402

EXAMPLES = REPO / "examples" / "notebooks"
GOAL_FIRST = 1.5
TOKEN = "nb2pkg-bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(url: str, body: dict) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"token {TOKEN}")
    try:
        with urllib.request.urlopen(req, timeout=600) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


class Server:
    """``python -m jupyter_server`` with the nb2pkg extension, in ``base``."""

    def __init__(self, base: Path) -> None:
        self.root = base / "root"
        self.root.mkdir(parents=True)
        env = _env()
        for name in ("config", "data", "runtime"):
            (base / name).mkdir()
            env[f"JUPYTER_{name.upper()}_DIR"] = str(base / name)
        env.pop("JUPYTER_TOKEN", None)
        env["JUPYTER_PREFER_ENV_PATH"] = "0"
        self.port = _free_port()
        self.log = base / "server.log"
        command = [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root",
                   "--ip", "127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={self.root}",
                   "--ServerApp.jpserver_extensions={'nb2pkg.labext': True}"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=self.root, env=env, stdout=out,
                                         stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait(self, seconds: float = 120) -> float:
        """Wait until ``/nb2pkg/version`` answers; seconds it took."""
        start = time.perf_counter()
        while True:
            if self.proc.poll() is not None:
                raise BenchmarkFailed(f"jupyter server exited with {self.proc.returncode}:\n"
                                      + self.log.read_text()[-2000:])
            try:
                req = urllib.request.Request(f"{self.url}/nb2pkg/version")
                req.add_header("Authorization", f"token {TOKEN}")
                with urllib.request.urlopen(req, timeout=5) as answer:
                    if answer.status == 200:
                        return time.perf_counter() - start
            except OSError:
                pass
            if time.perf_counter() - start > seconds:
                self.stop()
                raise BenchmarkFailed(f"jupyter server did not answer within {seconds} s:\n"
                                      + self.log.read_text()[-2000:])
            time.sleep(0.1)

    def convert(self, notebook: str, output: str, project: Path, name: str) -> dict[str, float]:
        """One conversion through the endpoint: wall seconds and the server's CPU seconds."""
        written = snapshot([project / "pyproject.toml", project / "notebooks" / name])
        cpu = _cpu_of(self.proc.pid)
        start = time.perf_counter()
        status, text = _request(f"{self.url}/nb2pkg/convert",
                                {"path": notebook, "output": output, "options": {"force": True}})
        wall = time.perf_counter() - start
        cpu = _cpu_of(self.proc.pid) - cpu
        if status != 200:
            raise BenchmarkFailed(f"POST /nb2pkg/convert answered {status}: {text[-1500:]}")
        require_written(written, f"POST /nb2pkg/convert {notebook}")
        return {"wall": wall, "cpu": cpu}

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def lab_round(notebook: Path, work: Path, index: int) -> dict:
    """Start a server, convert twice (first and warm), stop it."""
    base = work / f"server-{index}"
    server = Server(base)
    try:
        ready = server.wait()
        folder = server.root / "nb"
        shutil.copytree(notebook.parent, folder)  # the notebook and what lies beside it
        project = server.root / "out"
        first = server.convert(f"nb/{notebook.name}", "out", project, notebook.name)
        warm = server.convert(f"nb/{notebook.name}", "out", project, notebook.name)
    finally:
        server.stop()
    return {"server_ready_seconds": ready, "first": first, "warm": warm}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one server start, one CLI run")
    parser.add_argument("--rounds", type=int, help="server starts (default 3)")
    parser.add_argument("-n", "--runs", type=int, help="CLI runs (default 5)")
    parser.add_argument("--notebook", default="sales_report.ipynb",
                        help="example notebook (default sales_report.ipynb)")
    parser.add_argument("--results", type=Path, metavar="DIR",
                        help="folder of the result files (default: bench/results)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    runs = args.runs or (1 if args.quick else 5)
    notebook = EXAMPLES / args.notebook
    started = now_iso()
    host = machine()
    busy = warn_if_busy()
    env = _env()
    with tempfile.TemporaryDirectory(prefix="nb2pkg-bench-lab-") as folder:
        work = Path(folder)
        out = work / "cli_out"
        cli_command = [sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o", str(out),
                       "--force"]
        writes = [out / "pyproject.toml", out / "notebooks" / notebook.name]
        run_timed(cli_command, env, writes)  # warm-up: file cache, .pyc files
        cli, lab = [], []
        for index in range(max(rounds, runs)):  # alternate: a server round, then a CLI run
            if index < rounds:
                print(f"  server start {index + 1}", end="", flush=True)
                lab.append(lab_round(notebook, work, index))
                print(f": first conversion {lab[-1]['first']['wall']:.3f} s", flush=True)
            if index < runs:
                cli.append(run_timed(cli_command, env, writes))
    result = {
        "cli": {"wall": median(r["wall"] for r in cli), "cpu": median(r["cpu"] for r in cli),
                "runs": cli},
        "first": {"wall": median(r["first"]["wall"] for r in lab),
                  "cpu": median(r["first"]["cpu"] for r in lab)},
        "warm": {"wall": median(r["warm"]["wall"] for r in lab),
                 "cpu": median(r["warm"]["cpu"] for r in lab)},
        "server_ready_seconds": median(r["server_ready_seconds"] for r in lab),
        "rounds": lab,
    }
    result["ratio"] = result["first"]["wall"] / result["cli"]["wall"]
    result["ratio_cpu"] = result["first"]["cpu"] / result["cli"]["cpu"]
    print()
    print(f"{notebook.name}: medians of {rounds} server start(s) and {runs} CLI run(s), seconds")
    print(table(["", "wall", "cpu"], [
        ["CLI (python -m nb2pkg convert)", result["cli"]["wall"], result["cli"]["cpu"]],
        ["lab endpoint, first conversion", result["first"]["wall"], result["first"]["cpu"]],
        ["lab endpoint, second conversion", result["warm"]["wall"], result["warm"]["cpu"]],
        ["first / CLI", result["ratio"], result["ratio_cpu"]]]))
    figures = [figure(f"lab first conversion / CLI, {notebook.name} (wall)", result["ratio"], "x",
                      GOAL_FIRST),
               figure(f"lab first conversion / CLI, {notebook.name} (cpu)", result["ratio_cpu"],
                      "x", GOAL_FIRST)]
    print()
    print(figure_table(figures, args.quick))
    print(load_note())
    path = write_result("lab", {
        "benchmark": "lab", "date": started, "quick": args.quick, "machine": host,
        "busy_warning": busy, "notebook": notebook.name,
        "versions": versions("jupyter_server", "tornado"),
        "settings": {"rounds": rounds, "runs": runs,
                     "endpoint": "POST /nb2pkg/convert {path, output, options: {force: true}}"},
        **result, "figures": figures}, args.results)
    print(f"\nwrote {shown(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
