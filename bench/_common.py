"""Helpers shared by the benchmark scripts: statistics, tables, machine facts, result files."""

from __future__ import annotations

import datetime as _dt
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results"
if str(REPO) not in sys.path:  # run from a checkout: nb2pkg need not be installed
    sys.path.insert(0, str(REPO))


def median(values) -> float:
    return statistics.median(values)


def loglog_slope(sizes, times) -> float:
    """Least-squares slope of log(time) against log(size): 1.0 is linear, 2.0 quadratic."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(max(t, 1e-9)) for t in times]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den if den else float("nan")


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain-text table (also valid Markdown)."""
    cells = [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h)
              for i, h in enumerate(headers)]
    line = lambda values: "| " + " | ".join(v.rjust(w) if i else v.ljust(w)  # noqa: E731
                                           for i, (v, w) in enumerate(zip(values, widths))) + " |"
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def versions(*modules: str) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in modules:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, object]:
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def warn_if_busy() -> str | None:
    """A warning when other processes are using the CPUs (timings would be inflated)."""
    if not hasattr(os, "getloadavg"):
        return None
    load = os.getloadavg()[0]
    cpus = os.cpu_count() or 1
    if load > 0.5 * cpus:
        message = (f"warning: 1-minute load average is {load:.2f} on {cpus} CPUs; other "
                   "processes are running, wall times will be inflated (CPU times less so)")
        print(message, file=sys.stderr)
        return message
    return None


def write_result(name: str, data: dict, folder: Path | None = None) -> Path:
    """Write ``data`` to ``<folder>/<name>-<timestamp>.json`` and ``<name>-latest.json``
    (``folder`` defaults to ``bench/results``).

    ``data["machine"]`` must be the ``machine()`` taken when the benchmark started: only the load
    average at the end is added here.
    """
    folder = folder or RESULTS
    folder.mkdir(parents=True, exist_ok=True)
    if "load_average_at_start" not in data.get("machine", {}):
        raise ValueError("write_result: pass machine() taken at the start as data['machine']")
    if hasattr(os, "getloadavg"):
        data["machine"]["load_average_at_end"] = list(os.getloadavg())
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    text = json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"
    path = folder / f"{name}-{stamp}.json"
    path.write_text(text, encoding="utf-8")
    (folder / f"{name}-latest.json").write_text(text, encoding="utf-8")
    return path


def shown(path: Path) -> str:
    """``path`` relative to the repository when inside it (for messages), else as is."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


class BenchmarkFailed(SystemExit):
    """A measured command failed or did nothing: the numbers would be meaningless.

    A ``SystemExit`` so that the script stops with status 1 and the message, without a
    traceback, whichever function noticed.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"benchmark failed: {message}")


def sorted_counts(counts, out: Path, bad: list[str]) -> int:
    """Print how many notebooks fell into each class and where the details are; exit status 1
    when any of the ``bad`` classes occurred (the sweeps of real notebooks)."""
    width = max((len(kind) for kind in counts), default=0) + 2
    print()
    for kind, count in sorted(counts.items()):
        print(f"{kind:{width}} {count}")
    print(f"details: {out}")
    return 1 if sum(counts[kind] for kind in bad) else 0


def file_state(path: Path) -> tuple[int, int] | None:
    """(inode, mtime in ns) of ``path``, or None when it does not exist."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_ino, stat.st_mtime_ns)


def snapshot(paths) -> dict[Path, tuple[int, int] | None]:
    """The state of files a command is expected to write (see ``require_written``)."""
    return {Path(p): file_state(Path(p)) for p in paths}


def require_written(before: dict[Path, tuple[int, int] | None], command: str) -> None:
    """Fail unless every file of ``before`` exists now and was (re)written since the snapshot.

    A command that exits 0 without doing its work (a missing entry point, a wrong argument that
    is silently ignored) would otherwise be timed as a very fast success. Comparing inode and
    mtime (not mtime against the clock) works whatever the file system's timestamp granularity.
    """
    stale = [p for p, old in before.items() if file_state(p) is None or file_state(p) == old]
    if stale:
        missing = [p for p in stale if not p.exists()]
        what = "did not write" if missing else "did not rewrite"
        raise BenchmarkFailed(f"`{command}` exited 0 but {what} "
                              + ", ".join(shown(p) for p in (missing or stale)[:3])
                              + (f" (and {len(stale) - 3} more)" if len(stale) > 3 else ""))


def figure(name: str, measured: float, unit: str, limit: float | None) -> dict:
    """One measured figure and its goal ("at most ``limit``"; None: reported, no goal).

    Every script puts its list in its result file under ``figures``; ``run_all.py`` prints them
    all in one table.
    """
    met = None if limit is None or measured != measured else measured <= limit
    return {"figure": name, "measured": measured, "unit": unit,
            "goal": None if limit is None else f"<= {limit:g}{unit and ' ' + unit}",
            "limit": limit, "met": met}


def figure_table(figures: list[dict], quick: bool = False) -> str:
    """The figures as a table: measured, goal, met or missed (not judged in quick mode)."""
    def verdict(f: dict) -> str:
        if f.get("met") is None:
            return ""
        if quick:
            return "(quick: not judged)"
        return "met" if f["met"] else "MISSED"

    return table(["figure", "measured", "goal", "verdict"],
                 [[f["figure"], f"{f['measured']:.3f}{f['unit'] and ' ' + f['unit']}",
                   f.get("goal") or "-", verdict(f)] for f in figures])


def load_note() -> str:
    """The load average now, as text (for result tables)."""
    if not hasattr(os, "getloadavg"):
        return "load average: unknown"
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} CPUs"


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


class GcTimer:
    """Time spent in the cyclic garbage collector while installed (via ``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections[info.get("generation", 0)] += 1

    @contextmanager
    def installed(self):
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)


@contextmanager
def gc_disabled():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def wait_for_idle(max_seconds: float, threshold: float | None = None) -> float:
    """Wait (up to ``max_seconds``) until the 1-minute load average drops below ``threshold``
    (default: a quarter of the CPUs); return the load average when starting."""
    if not hasattr(os, "getloadavg") or max_seconds <= 0:
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    limit = threshold if threshold is not None else 0.25 * (os.cpu_count() or 1)
    deadline = time.monotonic() + max_seconds
    load = os.getloadavg()[0]
    if load >= limit:
        print(f"waiting for the machine to be idle (load {load:.2f} >= {limit:.2f}) ...",
              file=sys.stderr, flush=True)
    while load >= limit and time.monotonic() < deadline:
        time.sleep(5)
        load = os.getloadavg()[0]
    return load
