"""``nb2pkg update`` and ``nb2pkg check``: the commands of ``nb2pkg.update`` (they print here).

Exit status of update: 0 merged cleanly, 1 conflicts (written with markers or beside, listed),
2 an error (nothing written). Of check: 0 up to date (and no finding at or above
``--severity``), 1 out of date or such findings, 2 an error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable

from .cliargs import given_path
from .errors import Nb2pkgError


def add_commands(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    update = sub.add_parser(
        "update", help="convert again into an existing project, keeping hand edits",
        description="Convert the notebooks again and merge the result into DIR three ways, "
        "with the previous conversion (DIR/.nb2pkg) as the base: files nobody edited are "
        "regenerated, a change on one side is taken, hand edits to modules, tests, README "
        "and parameters stay, and files the project added are carried over. Conflicts are "
        "written with <<<<<<< markers (or, for binary files and notebooks that cannot merge, "
        "the notebook's version beside yours as NAME.nb2pkg-new.EXT) and listed; exit status "
        "1 then. The project as it was is kept in DIR/.nb2pkg/previous. Without NB, the "
        "notebooks of the last conversion.")
    update.add_argument("paths", nargs="+", type=given_path, metavar="[NB...] DIR")
    update.add_argument("--dry-run", action="store_true",
                        help="say what would be merged, write nothing")
    update.add_argument("--no-git", dest="git", action="store_false",
                        help="merge text with nb2pkg's own diff3 instead of `git merge-file`")
    update.add_argument("--json", action="store_true", help="print the report as JSON")

    check = sub.add_parser(
        "check", help="fail when a project is out of date with its notebooks",
        description="Exit 1 when converting the notebooks now would change the generated "
        "code of the project (compared with the last conversion, DIR/.nb2pkg; hand edits do "
        "not count) or when a notebook has findings at or above --severity; print what "
        "differs. Files that depend on the environment (pyproject.toml, constraints.txt, "
        "REPORT.md, the CI workflow, tests/originals) are not compared. Without DIR, every "
        "project under the current folder (for pre-commit).")
    check.add_argument("paths", nargs="*", type=given_path, metavar="[NB...] [DIR]")
    check.add_argument("--severity", choices=("none", "info", "warning", "error"),
                       default="none", help="also fail on findings at or above this level "
                       "(error: cells that do not parse, names used before definition; "
                       "warning: results that differ between machines or runs; info: "
                       "tidiness; default: none)")
    check.add_argument("--diff", action="store_true", help="print the diff of each changed file")
    check.add_argument("--json", action="store_true", help="print the report as JSON")
    return {"update": cmd_update, "check": cmd_check}


def _say(enabled: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if enabled:
            print(f"… {message}", file=sys.stderr, flush=True)
    return say


def cmd_update(args: argparse.Namespace) -> int:
    from .update import update

    *notebooks, project = args.paths
    report = update(project, notebooks, progress=_say(not args.json), dry_run=args.dry_run,
                    use_git=None if args.git else False)
    if args.json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        print()
    else:
        counts: dict[str, int] = {}
        for result in report.files:
            counts[result.action] = counts.get(result.action, 0) + 1
        verb = "would update" if report.dry_run else "updated"
        print(f"{verb} {report.project} (package {report.package}): "
              + (", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing changed"))
        for result in report.files:
            if result.action != "generated":
                print(f"  {result.action:12} {result.path}: {result.detail}")
        if report.conflicts:
            print(f"{len(report.conflicts)} conflict(s): resolve them (search for <<<<<<<, or "
                  "compare with the .nb2pkg-new files), then commit")
        if not report.dry_run:
            print(f"the project as it was: {Path(report.project, report.previous)}")
    for failure in report.failures:
        print(f"nb2pkg: {failure.status}: {failure.reason}", file=sys.stderr)
    return 1 if report.conflicts else 0


def cmd_check(args: argparse.Namespace) -> int:
    from .update import check, find_projects

    paths = list(args.paths)
    if paths and paths[-1].is_dir():
        projects, notebooks = [paths.pop()], paths
    elif paths:
        raise Nb2pkgError("check needs the project folder after the notebooks",
                          hint="nb2pkg check notebook.ipynb project/")
    else:
        projects, notebooks = find_projects(Path.cwd()), []
        if not projects:
            raise Nb2pkgError("no project converted by nb2pkg here (no .nb2pkg/manifest.json "
                              "below the current folder)", hint="pass the project folder")
    reports = [check(p, notebooks, severity=args.severity, progress=_say(not args.json))
               for p in projects]
    if args.json:
        json.dump({"version": 1, "projects": [r.to_dict() for r in reports]}, sys.stdout,
                  indent=2)
        print()
    for report in reports:
        if args.json:
            continue
        if report.up_to_date:
            print(f"{report.project}: up to date with its notebooks")
        else:
            print(f"{report.project}: out of date: converting "
                  f"{', '.join(report.stale_notebooks) or 'the notebooks'} now changes "
                  f"{len(report.differences)} file(s); run `nb2pkg update {report.project}`")
            for difference in report.differences:
                print(f"  {difference.kind:8} {difference.path}")
                if args.diff and difference.diff:
                    print(difference.diff.rstrip("\n"))
        for finding in report.findings:
            where = f"{Path(finding.notebook).name}" + (
                f": cell {finding.cell}" if finding.cell is not None else "")
            print(f"  finding  {where}: {finding.code}: {finding.message}")
    return 0 if all(r.ok for r in reports) else 1
