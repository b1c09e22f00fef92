"""After a run: ``metrics.json`` and the Markdown report (Mermaid graph, timings, metrics).

``metrics.json``::

    {"version": 1, "pipeline": "sales", "parameters": {...},
     "stages": {"sales-model": {"auc": 0.91}, ...}}

A baseline is a ``metrics.json`` of an earlier run; the report compares each metric with it.
The report is GitHub-flavoured Markdown, fit for ``$GITHUB_STEP_SUMMARY``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, TypeGuard

from ..atomic import write_atomic
from ..errors import PipelineError

METRICS_VERSION = 1
# Where a run writes them by default, in the pipeline's runs folder.
METRICS_FILE = "metrics.json"
REPORT_FILE = "report.md"
STATUS_MARK = {"ran": "✅ ran", "skipped": "⏭️ up to date", "failed": "❌ failed",
               "not run": "⛔ not run"}


def metrics_document(result: Any) -> dict[str, Any]:
    return {"version": METRICS_VERSION, "pipeline": result.pipeline.name,
            "parameters": dict(result.parameters),
            "stages": {s.name: dict(s.metrics) for s in result.stages if s.metrics}}


def load_baseline(path: Path | str) -> dict[str, dict[str, Any]]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PipelineError("no such baseline file", path=path,
                            hint="pass a metrics.json written by an earlier `nb2pkg run`") from None
    except (OSError, ValueError) as exc:
        raise PipelineError(f"baseline is not readable JSON: {exc}", path=path) from None
    stages = data.get("stages") if isinstance(data, dict) else None
    if not isinstance(stages, dict):
        raise PipelineError("not a metrics.json of nb2pkg (no \"stages\" mapping)", path=path)
    return {str(k): dict(v) for k, v in stages.items() if isinstance(v, dict)}


def compare(current: Mapping[str, Mapping[str, Any]],
            baseline: Mapping[str, Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """One row per (stage, metric) in either: value, baseline, change."""
    rows = []
    stages = list(current) + [s for s in (baseline or {}) if s not in current]
    for stage in stages:
        now = current.get(stage, {})
        before = (baseline or {}).get(stage, {})
        for metric in list(now) + [m for m in before if m not in now]:
            value, old = now.get(metric), before.get(metric)
            change = ""
            if baseline is not None:
                if metric not in before:
                    change = "new"
                elif metric not in now:
                    change = "missing"
                elif _number(value) and _number(old):
                    delta = value - old
                    change = "=" if delta == 0 else f"{delta:+.4g}"
                    if old and delta:
                        change += f" ({delta / abs(old):+.1%})"
                else:
                    change = "=" if value == old else "changed"
            rows.append({"stage": stage, "metric": metric, "value": _show(value),
                         "baseline": _show(old) if metric in before else "",
                         "change": change})
    return rows


def mermaid(result: Any) -> str:
    """The pipeline graph, stages coloured by what happened to them in this run."""
    stages = result.pipeline.stages
    ids = {s.name: f"s{i}" for i, s in enumerate(stages)}
    runs = {s.name: s for s in result.stages}
    lines = ["flowchart LR"]
    groups: dict[str, list] = {}
    for stage in stages:  # one box per source notebook (the stage notebooks' folder)
        groups.setdefault(Path(stage.notebook).parent.name, []).append(stage)
    for group, members in groups.items():
        indent = "  "
        if len(groups) > 1:
            lines.append(f'  subgraph g_{ids[members[0].name]}["{_mermaid_text(group)}"]')
            indent = "    "
        for stage in members:
            run = runs.get(stage.name)
            label = stage.name
            if run is not None and run.seconds is not None and run.status in ("ran", "failed"):
                label += f"<br/>{run.seconds:.1f} s"
            css = {"ran": "ran", "skipped": "skipped", "failed": "failed",
                   "not run": "notrun"}.get(run.status if run else "", "other")
            lines.append(f'{indent}{ids[stage.name]}["{label}"]:::{css}')
        if len(groups) > 1:
            lines.append("  end")
    for upstream, downstream in _reduced_edges(stages):
        lines.append(f"  {ids[upstream]} --> {ids[downstream]}")
    lines += ["  classDef ran fill:#d9f2d9,stroke:#2e7d32",
              "  classDef skipped fill:#eeeeee,stroke:#9e9e9e",
              "  classDef failed fill:#f8d7da,stroke:#c62828",
              "  classDef notrun fill:#ffffff,stroke:#9e9e9e,stroke-dasharray:4 3",
              "  classDef other fill:#ffffff,stroke:#cccccc,color:#999999"]
    return "\n".join(lines)


def _mermaid_text(text: str) -> str:
    """A Mermaid label: one line, quotes and markup as entities (folder names are data)."""
    from ..templating import one_line

    return "".join(f"#{ord(c)};" if c in '"<>&#`' else c for c in one_line(text))


def _reduced_edges(stages: Any) -> list[tuple[str, str]]:
    """Dependency edges without the ones implied by a longer path (a readable graph)."""
    reach: dict[str, set[str]] = {}
    edges = []
    for stage in stages:  # in dependency order
        direct = list(stage.upstream)
        implied = set().union(*(reach[u] for u in direct)) if direct else set()
        edges += [(u, stage.name) for u in direct if u not in implied]
        reach[stage.name] = set(direct) | implied
    return edges


def render_report(result: Any, report_path: Path, baseline: Mapping[str, Any] | None,
                  baseline_name: str | None, *, seconds: str | None = None) -> str:
    """The Markdown report; ``seconds`` replaces the run's time (a mark, for the cache)."""
    # Not through .stages, which imports the splitter: `nb2pkg run` must not load it.
    from ..templating import environment as template_environment

    pipeline = result.pipeline
    defaults = {p.name: p.default for p in pipeline.parameters}

    def relative(path: str | None) -> str | None:
        if not path:
            return None
        try:
            return Path(os.path.relpath(path, report_path.parent)).as_posix()
        except ValueError:  # another drive (Windows)
            return path

    stages = [{"name": s.name, "status": STATUS_MARK[s.status], "reason": s.reason,
               "seconds": "" if s.seconds is None else f"{s.seconds:.1f} s",
               "notebook": relative(s.notebook)} for s in result.stages]
    current = {s.name: dict(s.metrics) for s in result.stages if s.metrics}
    context = {
        "name": pipeline.name, "ok": result.ok,
        "seconds": seconds if seconds is not None else _seconds(result),
        "counts": {k: result.count(k) for k in ("ran", "skipped", "failed", "not run")},
        "failures": [str(f) for f in result.failures],
        "parameters": [{"name": k, "value": _show(v), "changed": v != defaults.get(k)}
                       for k, v in result.parameters.items()],
        "graph": mermaid(result), "stages": stages,
        "metrics": compare(current, baseline), "baseline": baseline_name,
    }
    return template_environment().get_template("pipeline/report.md.j2").render(**context)


def write_outputs(result: Any, *, baseline: Path | str | None = None,
                  metrics: Path | str | None = None, report: Path | str | None = None,
                  cache: dict[str, Any] | None = None) -> Any:
    """Write ``metrics.json`` and the report (default: in the pipeline's runs folder).

    ``cache`` (the state file's): the report of a run with nothing to do is taken from it when
    everything it shows but the run's time is what the cached text shows, so that such a run
    needs no Jinja; after a successful run of every stage, the report the next run with nothing
    to do will write is rendered ahead into it (Jinja is loaded then anyway).
    """
    pipeline = result.pipeline
    runs = pipeline.root / pipeline.runs
    metrics_path = Path(metrics) if metrics else runs / METRICS_FILE
    report_path = Path(report) if report else runs / REPORT_FILE
    compared = load_baseline(baseline) if baseline else None
    name = str(baseline) if baseline else None
    for path in (metrics_path, report_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(metrics_path, json.dumps(metrics_document(result), indent=2, default=str) + "\n")
    key = _report_key(result, report_path, compared, name) if cache is not None else None
    entry = (cache or {}).get(REPORT_KEY)
    if key is not None and isinstance(entry, dict) and entry.get("key") == key and isinstance(
            entry.get("text"), str):
        text = entry["text"].replace(SECONDS_MARK, _seconds(result))
    else:
        marked = render_report(result, report_path, compared, name, seconds=SECONDS_MARK)
        text = marked.replace(SECONDS_MARK, _seconds(result))
        if cache is not None:
            upcoming = _next_run_with_nothing_to_do(result)
            if upcoming is not None and upcoming is not result:
                key = _report_key(upcoming, report_path, compared, name)
                marked = render_report(upcoming, report_path, compared, name,
                                       seconds=SECONDS_MARK)
            if key is not None and upcoming is not None and marked.count(SECONDS_MARK) == 1:
                cache[REPORT_KEY] = {"key": key, "text": marked}
    write_atomic(report_path, text)
    return dataclasses.replace(result, metrics_path=str(metrics_path),
                               report_path=str(report_path))


REPORT_KEY = "report"  # cache: {"key": digest of what the report shows, "text": with the mark}
# Stands for the run's time in a cached report: letters only, so the `md` filter the template
# applies to the time leaves it as it is (as it leaves the digits and the point of a time).
SECONDS_MARK = "NbpkgSecondsOfTheRunQx7"


def _seconds(result: Any) -> str:
    return f"{result.seconds:.1f}"


def _report_key(result: Any, report_path: Path, baseline: Mapping[str, Any] | None,
                baseline_name: str | None) -> str | None:
    """A digest of everything the report shows but the run's time, and of the code that writes
    it; None when it cannot be made (a pipeline not read from a file)."""
    import hashlib

    from .state import code_stamp, template_file

    stamp = code_stamp(Path(__file__), Path(__file__).parent.parent / "templating.py",
                       template_file("pipeline/report.md.j2"))
    if stamp is None or not result.pipeline.digest:
        return None
    shown = [stamp, result.pipeline.digest, str(result.pipeline.path), str(report_path),
             [[s.name, s.status, s.reason, s.seconds, s.notebook, dict(s.metrics),
               str(s.failure) if s.failure else None] for s in result.stages],
             dict(result.parameters), baseline, baseline_name]
    text = json.dumps(shown, sort_keys=True, default=repr, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _next_run_with_nothing_to_do(result: Any) -> Any:
    """The result the next run would have if nothing changed (``result`` itself when nothing
    ran), or None when that cannot be told: a stage failed, or not every stage took part."""
    if not result.ok or {s.name for s in result.stages} != {
            s.name for s in result.pipeline.stages}:
        return None
    if all(s.status == "skipped" for s in result.stages):
        return result
    # As the runner reports a stage that is up to date: the time the state file recorded.
    stages = tuple(dataclasses.replace(s, status="skipped", reason="up to date",
                                       seconds=None if s.seconds is None else
                                       float(round(s.seconds, 3)),
                                       notebook=s.notebook if s.notebook and os.path.exists(
                                           s.notebook) else None)
                   if s.status == "ran" else s for s in result.stages)
    return dataclasses.replace(result, stages=stages)


def _number(value: Any) -> TypeGuard[float]:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value) if not isinstance(value, str) else value
    return text.replace("|", "\\|")
