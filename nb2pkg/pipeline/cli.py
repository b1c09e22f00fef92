"""The ``nb2pkg run`` and ``nb2pkg export`` commands. The only module of the pipeline that prints.

``nb2pkg.cli`` wires them in with ``add_commands(subparsers)``, which returns the handlers by
command name. Handlers return the exit status: 0 success, 1 a stage failed, 2 bad input (raised
as ``PipelineError`` and printed by ``nb2pkg.cli``). Nothing heavy is imported until a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

from ..cliargs import given_path

RUN_DESCRIPTION = """\
Run a notebook pipeline (pipeline.yaml, written by `nb2pkg convert`) with papermill.

Stages run in dependency order, independent ones in parallel (--jobs). A stage whose notebook,
parameters, inputs and data files (deps) are unchanged since its last successful run, and whose
outputs are still there, is skipped; after a failure, the next run starts again at the failed
stage. Parameters are cast to the type of their default in the notebook. Writes the executed
notebooks, metrics.json and report.md (Markdown, with the pipeline graph) to the pipeline's
runs/ folder. One run of a pipeline at a time: another one is refused, or waits with --wait.

exit status: 0 all stages ran or were up to date, 1 a stage failed, 2 bad input
"""

EXPORT_DESCRIPTION = """\
Export the pipeline for another tool.

  nb2pkg export dvc [pipeline.yaml] [-o DIR] [--force]   dvc.yaml and params.yaml (DVC stages
                                                        that run papermill; no nb2pkg needed)
  nb2pkg export dvc [pipeline.yaml] --check              does dvc.yaml match pipeline.yaml?
  nb2pkg export airflow [pipeline.yaml] [-o DIR]         <pipeline>_dag.py: an Airflow DAG, one
                                                        task per stage running papermill
  nb2pkg export NAME ...                                 an exporter a plugin registers (entry
                                                        points group nb2pkg.exporters)

Existing files are not replaced without --force; --force keeps the values in params.yaml.
`nb2pkg convert` writes both already; export again after editing pipeline.yaml.

exit status: 0 written (or matching), 1 --check found a difference, 2 bad input
"""


def add_commands(subparsers: argparse._SubParsersAction) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``run`` and ``export`` to the ``nb2pkg`` parser; return their handlers."""
    run = subparsers.add_parser("run", help="run a notebook pipeline (pipeline.yaml) with papermill",
                                description=RUN_DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    _run_arguments(run)
    export = subparsers.add_parser("export", help="export the pipeline for another tool "
                                   "(dvc, airflow)", description=EXPORT_DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("format", metavar="FORMAT",
                        help="what to export to: dvc, airflow, or a plugin's exporter")
    export.add_argument("pipeline", nargs="?", type=given_path, default=Path("pipeline.yaml"),
                        help="the pipeline file (default: pipeline.yaml)")
    export.add_argument("-o", "--output", type=given_path, metavar="DIR",
                        help="folder for dvc.yaml and params.yaml (default: the pipeline's)")
    export.add_argument("--force", action="store_true",
                        help="replace an existing dvc.yaml and parameters files (their values "
                             "are kept)")
    export.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 naming the first stage where the dvc.yaml "
                             "beside the pipeline differs from what pipeline.yaml makes")
    export.add_argument("--python", metavar="PATH",
                        help="airflow: the Python that runs papermill and the kernels, with the "
                             "notebooks' libraries (default: the one running nb2pkg)")
    return {"run": cmd_run, "export": cmd_export}


def run_parser() -> argparse.ArgumentParser:
    """The parser of ``nb2pkg run`` alone: ``nb2pkg.cli`` uses it for ``run`` instead of building
    every command's parser (a run with nothing to do should cost little more than Python)."""
    parser = argparse.ArgumentParser(prog="nb2pkg run", description=RUN_DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _run_arguments(parser)
    parser.set_defaults(command="run")
    return parser


def _run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("pipeline", nargs="?", type=given_path, default=Path("pipeline.yaml"),
                     help="the pipeline file (default: pipeline.yaml)")
    run.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"),
                     help="set a parameter; VALUE is cast to the parameter's type (repeatable)")
    run.add_argument("-f", "--parameters-file", action="append", default=[], type=given_path,
                     metavar="FILE", help="YAML file of parameter values (repeatable; -p wins)")
    run.add_argument("--stage", action="append", default=[], metavar="NAME",
                     help="run this stage (or all stages of this notebook) and the stages it "
                          "needs that are out of date (repeatable)")
    run.add_argument("--only", action="store_true",
                     help="with --stage: run only the named stages, not the stages they need")
    run.add_argument("-j", "--jobs", type=int, metavar="N",
                     help="stages to run at the same time (default: 1; with --executor dask, "
                          "one per worker thread, and without --scheduler the number of local "
                          "workers, default 2)")
    run.add_argument("--executor", default="local", metavar="NAME",
                     help="where stages run: local (default), dask (needs nb2pkg[dask]), or an "
                          "executor a plugin registers (entry points group nb2pkg.executors)")
    run.add_argument("--scheduler", metavar="ADDRESS",
                     help="with --executor dask: the scheduler of a running cluster "
                          "(tcp://host:8786); default: a LocalCluster on this machine")
    run.add_argument("--force", action="store_true",
                     help="run the selected stages even if they are up to date")
    run.add_argument("--shared-kernel", action="store_true",
                     help="run each stage on the kernel of the stage before it (same notebook) "
                          "instead of a fresh one: faster, less isolated (docs/pipeline.md)")
    run.add_argument("--baseline", type=given_path, metavar="METRICS",
                     help="metrics.json of an earlier run to compare the metrics with")
    run.add_argument("--metrics", type=given_path, metavar="FILE",
                     help="where to write metrics.json (default: RUNS/metrics.json)")
    run.add_argument("--report", type=given_path, metavar="FILE",
                     help="where to write the Markdown report (default: RUNS/report.md)")
    run.add_argument("--wait", action="store_true",
                     help="when another run of this pipeline is running, wait for it to finish "
                          "(default: refuse)")
    run.add_argument("--json", action="store_true", help="print the result as JSON")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress messages")


def _progress(enabled: bool):
    def say(message: str) -> None:
        if enabled:
            print(f"… {message}", file=sys.stderr, flush=True)
    return say


def cmd_run(args: argparse.Namespace) -> int:
    from ..errors import PipelineError
    from .runner import run_pipeline

    if args.only and not args.stage:
        raise PipelineError("--only needs --stage NAME")
    result = run_pipeline(
        args.pipeline, overrides=[tuple(p) for p in args.parameter],
        parameter_files=args.parameters_file, stages=args.stage, only=args.only, jobs=args.jobs,
        force=args.force, baseline=args.baseline, metrics=args.metrics, report=args.report,
        executor=args.executor, scheduler=args.scheduler, shared_kernel=args.shared_kernel,
        wait=args.wait, progress=_progress(not (args.quiet or args.json)))
    for warning in result.warnings:
        print(f"nb2pkg: warning: {warning}", file=sys.stderr)
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2, default=str)
        print()
    else:
        print(format_result(result))
    return 0 if result.ok else 1


def format_result(result) -> str:
    width = max((len(s.name) for s in result.stages), default=5)
    lines = [f"pipeline {result.pipeline.name}: {'ok' if result.ok else 'FAILED'} "
             f"({result.count('ran')} ran, {result.count('skipped')} up to date, "
             f"{result.count('failed')} failed, {result.count('not run')} not run) "
             f"in {result.seconds:.1f} s"]
    for stage in result.stages:
        seconds = f"{stage.seconds:6.1f} s" if stage.seconds is not None and stage.status in (
            "ran", "failed") else " " * 8
        lines.append(f"  {stage.name:<{width}}  {stage.status:<8} {seconds}  {stage.reason}")
    for failure in result.failures:
        lines.append(f"error: {failure}")
    if not result.ok:
        lines.append("fix the error and run again: finished stages are kept and skipped")
    lines.append(f"metrics: {result.metrics_path}")
    lines.append(f"report:  {result.report_path}")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from ..errors import PipelineError
    from .registry import EXPORTERS, ExportOptions, load

    if args.check:
        if args.format != "dvc":
            raise PipelineError(f"--check compares dvc.yaml; export {args.format} has no --check")
        return _check_dvc(args)
    export = load(EXPORTERS, args.format)
    for path in export(args.pipeline, ExportOptions(output=args.output, force=args.force,
                                                    python=args.python)):
        print(f"wrote {path}")
    return 0


def _check_dvc(args: argparse.Namespace) -> int:
    from ..errors import PipelineError
    from .export import dvc_mismatch
    from .spec import load_pipeline

    if args.output is not None:
        raise PipelineError("--check compares the dvc.yaml beside the pipeline; drop -o")
    pipeline = load_pipeline(args.pipeline)
    problem = dvc_mismatch(pipeline)
    if problem is None and not (pipeline.root / "dvc.yaml").exists():
        problem = f"{pipeline.root / 'dvc.yaml'}: no such file (run `nb2pkg export dvc`)"
    if problem:
        print(f"nb2pkg: error: {problem}", file=sys.stderr)
        return 1
    print(f"{pipeline.root / 'dvc.yaml'} matches {pipeline.path.name}")
    return 0
