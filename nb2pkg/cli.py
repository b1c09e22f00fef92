"""The ``nb2pkg`` command. The only place that prints, and that turns errors into exit codes.

Exit status: 0 success; 1 a verification found different outputs (or a pipeline stage failed);
2 bad input or usage, or an original notebook that fails when verifying (the message names the
file, the cell and what to do).
Heavy modules are imported inside the commands that need them, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from . import __version__
from .cliargs import given_path
from .errors import Nb2pkgError, Terminated
from .pipeline.cli import add_commands as add_pipeline_commands
from .pipeline.cli import cmd_run, run_parser

DESCRIPTION = """\
Turn Jupyter notebooks into an installable, tested Python package and a papermill pipeline.

  nb2pkg analyze NB...            report cells, dataflow, repeated code and hygiene findings
  nb2pkg convert NB... -o DIR     write a package: modules, refactored notebooks, tests
  nb2pkg verify NB... DIR         run originals and refactored notebooks, compare outputs
  nb2pkg update [NB...] DIR       convert again into DIR, keeping hand edits (three-way merge)
  nb2pkg check [NB...] [DIR]      exit 1 when DIR is out of date with its notebooks
  nb2pkg run [pipeline.yaml]      run the notebook pipeline (unchanged stages are skipped)
  nb2pkg export dvc [pipeline.yaml]   write dvc.yaml and params.yaml
  nb2pkg export airflow [pipeline.yaml]   write an Airflow DAG of the pipeline

Converting never executes notebook code; only verify (and convert --verify) does.
"""


def _add_clone_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--min-clone-size", type=int, default=3, metavar="N",
                        help="smallest repeated block to report or extract, in statements "
                             "(nested ones count; default: 3)")
    parser.add_argument("--min-clone-lines", type=int, default=3, metavar="N",
                        help="smallest repeated block in source lines (default: 3)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nb2pkg", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nb2pkg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    analyze = sub.add_parser("analyze", help="report what a notebook defines, uses and repeats",
                             description="Analyse notebooks without running them: per-cell "
                             "names defined and used, where each name comes from, sections, the "
                             "parameters cell, repeated code and hygiene findings.")
    analyze.add_argument("notebooks", nargs="+", type=given_path, metavar="NB",
                         help="notebooks (or folders of notebooks) to analyse together")
    analyze.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                         help="read and analyse N notebooks in parallel (default 1)")
    analyze.add_argument("--json", action="store_true",
                         help="print one JSON document (format: docs/json.md)")
    _add_clone_options(analyze)

    convert = sub.add_parser("convert", help="write a package from notebooks",
                             description="Convert notebooks into one package: imports, functions, "
                             "classes and constants move into src/PKG modules; repeated code "
                             "becomes functions; the notebooks import them; tests check the "
                             "package and that each notebook prints what the original printed. "
                             "The input notebooks are never modified.")
    convert.add_argument("notebooks", nargs="+", type=given_path, metavar="NB",
                         help="notebooks or folders; together they make one package")
    convert.add_argument("--each", action="store_true",
                         help="one package per notebook, in DIR/<name> (batch conversion)")
    convert.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                         help="work on N notebooks in parallel (default 1)")
    convert.add_argument("-o", "--output", type=given_path, required=True, metavar="DIR",
                         help="folder to create (refused if it exists, unless --force)")
    convert.add_argument("--name", help="package name (default: from the first notebook's name)")
    convert.add_argument("--force", action="store_true", help="replace an existing output folder")
    convert.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    convert.add_argument("--no-extract", dest="extract", action="store_false",
                         help="do not turn repeated code into functions")
    convert.add_argument("--verify", action="store_true",
                         help="execute original and refactored notebooks and fail unless their "
                              "outputs match (needs a Jupyter kernel); then run each refactored "
                              "notebook once more where only the project's dependencies can be "
                              "imported, and add what a library needed there")
    convert.add_argument("--no-pipeline", dest="pipeline", action="store_false",
                         help="do not write pipeline stages (stages/, pipeline.yaml, CI workflow)")
    convert.add_argument("--single-stage", action="store_true",
                         help="one pipeline stage per notebook (when values cannot cross sections)")
    convert.add_argument("--join-stage", action="append", default=[], metavar="STAGE",
                         help="run pipeline stage STAGE (a name pipeline.yaml lists) as part of "
                              "the stage before it, so no value crosses between them; repeat for "
                              "more. --verify does this itself for a value that cannot be saved "
                              "between stages (a generator, an open file, a model holding a "
                              "lambda)")
    convert.add_argument("--no-record", dest="record", action="store_false",
                         help="with --verify: do not record package calls as regression tests")
    convert.add_argument("--timeout", type=int, default=600,
                         help="with --verify: seconds a cell may run (default 600)")
    convert.add_argument("--no-isolated-run", dest="isolated_run", action="store_false",
                         help="with --verify: do not run each refactored notebook again with "
                              "only the project's dependencies importable (faster; a package a "
                              "library needs for one call may then be missing)")
    convert.add_argument("--names", type=given_path, metavar="FILE",
                         help="JSON or YAML mapping of clone group id (C1, ...; REPORT.md "
                              "lists them) to {name: function name, params: {generated: "
                              "wanted}}, or to skip to leave that group alone")
    convert.add_argument("--max-data-size", type=_megabytes, default=50, metavar="MB",
                         help="data files the notebooks read are copied into the project up to "
                              "this size; larger ones are listed in REPORT.md (default: 50)")
    convert.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_clone_options(convert)

    verify = sub.add_parser("verify", help="prove refactored notebooks print what originals print",
                            description="Execute each original notebook and the refactored one in "
                            "DIR/notebooks on a real Jupyter kernel, compare their outputs in "
                            "order (normalizing execution counts, memory addresses and timings) "
                            "and print the differences. When they match, the calls the notebooks "
                            "made to the package are recorded into DIR/tests/data/recorded as "
                            "regression tests, and each matching notebook runs once more where only "
                            "the dependencies DIR/pyproject.toml lists can be imported: what it "
                            "needs beyond them is printed as a warning. Exit status 0 when "
                            "equivalent, 1 when not, 2 when the original notebook itself fails "
                            "here (a missing package or data file): two failures are never "
                            "called equivalent.")
    verify.add_argument("paths", nargs="+", type=given_path, metavar="NB... DIR")
    verify.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    verify.add_argument("--no-record", dest="record", action="store_false",
                        help="do not refresh DIR/tests/data/recorded (the recorded-value tests)")
    verify.add_argument("--no-isolated-run", dest="isolated_run", action="store_false",
                        help="do not run each refactored notebook again with only the "
                             "dependencies DIR/pyproject.toml lists importable (it catches a "
                             "dependency the project does not list; it costs one more run)")
    verify.add_argument("--json", action="store_true")
    COMMANDS.update(add_pipeline_commands(sub))
    from .update_cli import add_commands as add_update_commands

    COMMANDS.update(add_update_commands(sub))
    return parser


# Imported only by jsonschema's format checkers (and jupyter_events, which a jupyter server
# imports, never this command); kept out of the CLI process by ``main``.
FORMAT_CHECKER_MODULES = ("rfc3987_syntax", "isoduration", "rfc3986_validator",
                          "rfc3339_validator", "uri_template", "webcolors", "fqdn", "jsonpointer")


def main(argv: Sequence[str] | None = None) -> int:
    # jsonschema (imported by nbformat) imports the optional checkers of string formats at
    # import time: rfc3987_syntax builds a grammar (0.9 s of a 1.2 s run here), isoduration
    # pulls in arrow and dateutil (~0.05 s). nbformat validates without a format checker, so this
    # process goes without them (jsonschema treats each as optional and skips that format).
    for name in FORMAT_CHECKER_MODULES:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]
    # A file name with bytes that are not UTF-8 reaches reports as lone surrogates, which strict
    # encoding refuses: show them escaped rather than end in a UnicodeEncodeError traceback.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="backslashreplace")
    argv = sys.argv[1:] if argv is None else list(argv)
    # `nb2pkg run` builds its own parser only: a run with nothing to do should cost little more
    # than starting Python (docs/bench.md), and the other commands' parsers import more.
    run_only = argv[:1] == ["run"]
    parser = run_parser() if run_only else build_parser()
    try:
        try:
            args = parser.parse_args(argv[1:] if run_only else argv)
        except SystemExit:  # --help and --version printed: the reader may have left already
            sys.stdout.flush()
            raise
        if args.command is None:
            parser.print_help()
            sys.stdout.flush()
            return 2
        status = cmd_run(args) if run_only else COMMANDS[args.command](args)
        # Flush here, not at exit: a reader that left (`| head -1`) raises BrokenPipeError
        # below instead of "Exception ignored ... BrokenPipeError" and exit status 120.
        sys.stdout.flush()
        return status
    except Nb2pkgError as exc:
        print(f"nb2pkg: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated:
        print("nb2pkg: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("nb2pkg: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `nb2pkg analyze ... | head -1`: the reader left. Like a tool killed by SIGPIPE the
        # status is 128 + 13 = 141 and nothing is said; stdout goes to devnull so that the flush
        # at exit cannot fail again. (Not SIG_DFL: being killed mid-write would skip cleanup.)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _progress(enabled: bool = True):
    def say(message: str) -> None:
        if enabled:
            print(f"… {message}", file=sys.stderr, flush=True)
    return say


def _status(results) -> int:
    """Exit status of a batch: 0 all done, 1 some refused, 2 some failed."""
    from .batch import worst

    return {"refused": 1, "failed": 2}.get(worst(results), 0)


def _print_skipped(results) -> None:
    for result in results:
        print(f"nb2pkg: {result.status}: {result.reason}", file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> int:
    from .api import analyze

    report = analyze(args.notebooks, args.min_clone_size, args.min_clone_lines,
                     progress=_progress(not args.json), jobs=args.jobs)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
    else:
        from .report import format_analysis

        print(format_analysis(report))
    _print_skipped(report.failures)
    return _status(report.failures)


def _load_names(path: Path | None) -> dict:
    if path is None:
        return {}
    from .notebook import read_regular_file

    data = read_regular_file(path, Nb2pkgError, "names file")  # a FIFO must not hang convert
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Nb2pkgError(f"names file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                          path=path) from None
    try:
        import yaml

        data = yaml.safe_load(text)
    except Exception as exc:
        raise Nb2pkgError(f"names file is not valid JSON or YAML: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise Nb2pkgError("names file must map group ids to {name, params} or skip", path=path)
    # `C2: skip` (or false, or nothing) leaves group C2 alone; `C1: name` renames its function.
    return {str(k): ({"skip": True} if v is None or v is False or v == "skip"
                     else v if isinstance(v, dict) else {"name": v}) for k, v in data.items()}


def _megabytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of megabytes: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be 0 or more: {text!r}")
    return value


def cmd_convert(args: argparse.Namespace) -> int:
    from .api import JOIN_ASKED, ConvertOptions, convert

    options = ConvertOptions(name=args.name, extract=args.extract, verify=args.verify,
                             record=args.record, isolated_run=args.isolated_run,
                             timeout=args.timeout,
                             pipeline=args.pipeline, single_stage=args.single_stage,
                             join_stages=dict.fromkeys(args.join_stage, JOIN_ASKED),
                             force=args.force, dry_run=args.dry_run,
                             min_clone_statements=args.min_clone_size,
                             min_clone_lines=args.min_clone_lines, names=_load_names(args.names),
                             max_data_bytes=int(args.max_data_size * 1024 * 1024))
    if args.each:
        return _convert_each(args, options)
    report = convert(args.notebooks, args.output, options, progress=_progress(not args.json),
                     jobs=args.jobs)
    _print_skipped(report.failures)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
    else:
        from .report import format_conversion

        print(format_conversion(report))
    if report.verification is not None and not report.verification.equivalent:
        return 1
    return _status(report.failures)


def _convert_each(args: argparse.Namespace, options) -> int:
    from .api import convert_each
    from .batch import expand

    results = convert_each(expand(args.notebooks), args.output, options, args.jobs,
                           _progress(not args.json))
    if args.json:
        json.dump({"version": 1, "results": [r.to_dict() for r in results]}, sys.stdout, indent=2)
        print()
    else:
        for r in results:  # a reason already names the file
            print(f"{r.status:9} " + (r.reason or f"{r.path} -> {r.output}"))
        counts = {s: sum(1 for r in results if r.status == s) for s in ("converted", "refused", "failed")}
        print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" of {len(results)} notebooks")
    return _status(results)


def cmd_verify(args: argparse.Namespace) -> int:
    from .verify import verify_paths

    if len(args.paths) < 2:
        raise Nb2pkgError("verify needs the original notebooks and the generated folder",
                          hint="nb2pkg verify original.ipynb out/")
    *originals, project = args.paths
    from .notebook import read_notebook

    for original in originals:  # a FIFO, a link loop, bad text: one line before any kernel starts
        read_notebook(original)
    result = verify_paths(originals, project, timeout=args.timeout, progress=_progress(not args.json),
                          record=args.record, alone=args.isolated_run)
    if args.record and result.equivalent:
        from .write import write_recordings

        written = write_recordings(project, result.calls, result.recorded_functions)
        _progress(not args.json)(f"refreshed {len(written)} recorded-test files in {project}/tests "
                                 "and their section of REPORT.md")
    if args.json:
        json.dump(result.to_dict(), sys.stdout, indent=2)
        print()
    else:
        print(result.describe())
        for line in result.standalone_problems():
            print(f"warning: {line}")
    return 0 if result.equivalent else 1


COMMANDS = {"analyze": cmd_analyze, "convert": cmd_convert, "verify": cmd_verify}
