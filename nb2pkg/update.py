"""Keep a converted project in step with its notebooks: ``update`` (a three-way merge) and
``check`` (is the project out of date?).

Every conversion also writes ``.nb2pkg/`` into the project (``baseline.baseline_files``): a manifest
(the notebooks, the options, a hash of every file written) and a copy of each text file as
written (``.nb2pkg/base/``). That copy is the base of the next update's merge:

- ours: the project as it is now (hand edits); theirs: what converting the notebooks gives now;
- a file one side left as the base takes the other side; text files merge line by line
  (``nb2pkg.merge``), notebooks cell by cell; binary files and files without a base that
  differ are conflicts, resolved by keeping ours in place and theirs beside it
  (``name.nb2pkg-new.ext``);
- a file no longer generated goes only when it is exactly as generated; recorded-value test
  data (made by ``verify``, which update does not run) is never regenerated here;
- every other file of the project (added tests, modules, data) is carried over unchanged.

The merged project is written like a conversion (staged beside, renamed into place under the
lock); the project as it was moves to ``.nb2pkg/previous/`` inside it (``write.write_update``).
docs/update.md is the user's description.
"""

from __future__ import annotations

import difflib
import json
import os
import posixpath
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .baseline import (BASE, MANIFEST, PREVIOUS, STATE, Manifest, NotConvertedError, as_bytes,
                       sha256_of, as_text, baseline_files, parse_manifest)
from .errors import Nb2pkgError

# Made by `verify` from a notebook run, not by converting: an update (which runs nothing)
# leaves them as they are, however they were refreshed since.
RECORDED = ("tests/data/recorded/", "tests/test_recorded.py", "tests/_recorded.py")
# Files whose content depends on where nb2pkg runs (installed versions, the Python version,
# findings about installed packages) or that copy the notebook byte for byte (outputs
# included): `check` does not call a project stale over them. `update` still merges them.
VOLATILE = ("constraints.txt", "pyproject.toml", "REPORT.md", ".github/", "tests/originals/")
NEW_SUFFIX = ".nb2pkg-new"

Files = Mapping[str, "str | bytes"]
Progress = Callable[[str], None]


def read_manifest(project: Path) -> Manifest:
    """The manifest of a converted project; ``NotConvertedError`` when there is none."""
    path = Path(project, MANIFEST)
    data = _read(project, MANIFEST)
    if data is None:
        raise NotConvertedError("not a project nb2pkg converted (no .nb2pkg/manifest.json)",
                                path=project, hint="convert the notebook into it first, or "
                                "convert again with --force (this replaces hand edits)")
    if not isinstance(data, bytes):
        raise NotConvertedError("the manifest is not a regular file", path=path,
                                hint="restore it from version control")
    return parse_manifest(data, path)


def _options(manifest: Manifest) -> Any:
    from .api import ConvertOptions

    known = {"name", "extract", "pipeline", "single_stage", "join_stages", "min_clone_statements",
             "min_clone_lines", "max_data_bytes", "names"}
    options = {k: v for k, v in manifest.options.items() if k in known}
    join = options.get("join_stages")
    # Stage name -> why: a hand-edited manifest may hold anything else.
    options["join_stages"] = ({str(k): str(v) for k, v in join.items()}
                              if isinstance(join, dict) else {})
    return ConvertOptions(**options)


def _notebooks(project: Path, manifest: Manifest, given: Sequence[Path | str]) -> list[Path]:
    if given:
        return [Path(p) for p in given]
    return [Path(os.path.normpath(Path(project, p))) for p in manifest.notebooks]


# -- reading the project -----------------------------------------------------------------------

_SPECIAL = object()  # something other than a regular file at a generated path: left alone


def _read(project: Path, relative: str) -> bytes | None | object:
    """The bytes of a project file; None when missing; ``_SPECIAL`` for a link, a folder, ...
    Opened without following links (a link is the user's, never merged through); under
    ``write.confined_to(root)`` (the lab) walked from that root, so a folder on the way
    swapped for a link cannot lead out of it."""
    from .beneath import open_beneath
    from .write import confinement

    root = confinement()
    if root is None:
        root, parts = os.path.realpath(project), relative.split("/")
    else:
        parts = [*os.path.relpath(os.path.abspath(project), root).split(os.sep),
                 *relative.split("/")]
        if parts[0] == os.pardir:
            return _SPECIAL
    try:
        fd, _ = open_beneath(root, parts)
    except FileNotFoundError:
        return None
    except OSError:  # a link on the way or at the name, a file where a folder is expected
        return _SPECIAL
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return _SPECIAL
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)


def _base(project: Path, manifest: Manifest, relative: str) -> bytes | None:
    """The previous conversion's bytes of ``relative``, if kept and untouched since."""
    if relative not in manifest.based:
        return None
    content = _read(project, f"{BASE}/{relative}")
    if not isinstance(content, bytes) or sha256_of(content) != manifest.files[relative]:
        return None  # a base copy edited by hand is no base: treat the file as unknown
    return content


# -- update --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileResult:
    path: str
    action: str  # generated, kept, merged, conflict, removed, kept-removed, deleted, added-both
    detail: str = ""
    copy: str | None = None  # where the notebook's version went when ours stayed in place


@dataclass(frozen=True)
class UpdateReport:
    project: str
    package: str
    files: tuple[FileResult, ...]
    previous: str  # where the project as it was is kept (relative to the project)
    dry_run: bool = False
    failures: tuple[Any, ...] = ()

    @property
    def conflicts(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.action == "conflict")

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "project": self.project, "package": self.package,
                "dry_run": self.dry_run, "previous": self.previous,
                "files": [{"path": f.path, "action": f.action, "detail": f.detail,
                           "copy": f.copy} for f in self.files],
                "conflicts": [f.path for f in self.conflicts],
                "skipped": [f.to_dict() for f in self.failures]}


@dataclass(frozen=True)
class _Plan:
    files: dict[str, str | bytes] = field(default_factory=dict)  # what the project gets
    removed: set[str] = field(default_factory=set)  # generated files that go
    results: list[FileResult] = field(default_factory=list)


def update(project: Path | str, notebooks: Sequence[Path | str] = (), *,
           progress: Progress | None = None, dry_run: bool = False,
           use_git: bool | None = None, confine_to: Path | str | None = None,
           source_folder: Path | str | None = None, allow_hidden: bool = True,
           _confine_assets: Path | str | None = None) -> UpdateReport:
    """Convert the notebooks again (those of the manifest unless ``notebooks`` are given) and
    merge the result into ``project`` (see the module's docstring). Conflicts are written with
    markers (or both versions kept) and listed in the report; they raise nothing.

    ``confine_to`` (the lab: the server root): the project is read and written only beneath it
    (``write.confined_to``), and no data file or module is carried from outside it;
    ``source_folder`` and ``allow_hidden`` as for ``api.convert``."""
    from .api import render_project
    from .write import write_update

    if confine_to is not None:
        from .write import confined_to

        with confined_to(confine_to):
            return update(project, notebooks, progress=progress, dry_run=dry_run,
                          use_git=use_git, source_folder=source_folder,
                          allow_hidden=allow_hidden, _confine_assets=confine_to)
    say = progress or (lambda message: None)
    project = Path(project)
    manifest = read_manifest(project)
    paths = _notebooks(project, manifest, notebooks)
    options = _options(manifest)
    plan, theirs, failures = render_project(paths, options, say, source_folder=source_folder,
                                            confine_to=_confine_assets,
                                            allow_hidden=allow_hidden)
    theirs = _with_projects_recorded_section(project, theirs)
    say(f"merging {len(theirs)} generated files with {project}")
    merged = merge_project(project, manifest, theirs, use_git)
    # Recorded-value files update did not regenerate stay in the base as they were.
    record = dict(theirs)
    for relative in manifest.files:
        if relative.startswith(RECORDED) and relative not in theirs:
            base = _base(project, manifest, relative)
            if base is not None:
                record[relative] = base
    state = baseline_files(plan, record, options, project, source_folder)
    # Hashes of recorded files kept without a base copy (binary values) stay as they were.
    if any(r.startswith(RECORDED) and r not in record for r in manifest.files):
        data = json.loads(str(state[MANIFEST]))
        for relative, sha256 in manifest.files.items():
            if relative.startswith(RECORDED) and relative not in record:
                data["files"][relative] = {"sha256": sha256, "base": False}
        state[MANIFEST] = json.dumps(data, indent=1, sort_keys=True) + "\n"
    report = UpdateReport(str(project), plan.name, tuple(merged.results), PREVIOUS, dry_run,
                          tuple(failures))
    if dry_run:
        return report
    written = {**merged.files, **state}

    def leave(relative: str) -> bool:  # not carried from the project as it is
        return (relative in written or relative in merged.removed
                or relative == STATE or relative.startswith(STATE + "/"))

    write_update(written, project, leave, PREVIOUS)
    say(f"updated {project}; the project as it was is in {project / PREVIOUS}")
    return report


def _with_projects_recorded_section(project: Path, theirs: Files) -> Files:
    """REPORT.md's section on the recorded-value tests is made by ``verify`` from a notebook
    run, which update does not do: like the tests, the project's section stays as it is."""
    ours = _read(project, "REPORT.md")
    if "REPORT.md" not in theirs or not isinstance(ours, bytes):
        return theirs
    from .generate import recorded_section_of, with_recorded_section

    section = recorded_section_of(ours.decode("utf-8", errors="replace"))
    if not section:
        return theirs
    report = theirs["REPORT.md"]
    text = report if isinstance(report, str) else report.decode("utf-8")
    return {**theirs, "REPORT.md": with_recorded_section(text, section)}


def merge_project(project: Path, manifest: Manifest, theirs: Files,
                  use_git: bool | None = None) -> _Plan:
    """Decide every generated file (of the previous conversion or of this one)."""
    plan = _Plan()
    for relative in sorted(set(manifest.files) | set(theirs)):
        _merge_file(plan, project, manifest, relative, theirs.get(relative), use_git)
    return plan


def _merge_file(plan: _Plan, project: Path, manifest: Manifest, relative: str,
                new: str | bytes | None, use_git: bool | None) -> None:
    ours = _read(project, relative)
    result = plan.results.append
    if ours is _SPECIAL:
        result(FileResult(relative, "kept", "not a regular file in the project: left alone"))
        return
    assert ours is None or isinstance(ours, bytes)
    digest = manifest.files.get(relative)
    untouched = ours is not None and digest is not None and sha256_of(ours) == digest
    if new is None:  # no longer generated (or recorded data, which update never makes)
        if relative.startswith(RECORDED):
            return  # carried as it is
        if untouched:
            plan.removed.add(relative)
            result(FileResult(relative, "removed", "no longer generated"))
        elif ours is not None:
            result(FileResult(relative, "kept", "no longer generated, but edited: kept"))
        return
    theirs = as_bytes(new)
    if ours is None:
        if digest is not None and sha256_of(theirs) == digest:
            result(FileResult(relative, "deleted", "deleted in the project: stays deleted"))
            return
        plan.files[relative] = new
        if digest is None:
            result(FileResult(relative, "generated", "new"))
        else:  # deleted by hand, changed by the notebook: back, and said
            result(FileResult(relative, "conflict", "deleted in the project but changed by "
                              "the notebook: written again; delete it again if unwanted"))
        return
    if untouched or ours == theirs:
        plan.files[relative] = new
        if ours != theirs:
            result(FileResult(relative, "generated", "regenerated"))
        return
    if digest is not None and sha256_of(theirs) == digest:
        plan.files[relative] = ours  # only the project changed it
        result(FileResult(relative, "kept", "edited in the project"))
        return
    base = _base(project, manifest, relative)
    texts = [as_text(x) if x is not None else None for x in (base, ours, theirs)]
    if base is not None and None not in texts:
        from .merge import merge_notebook, merge_text

        b, o, t = texts
        assert b is not None and o is not None and t is not None
        merged = merge_notebook(b, o, t, use_git) if relative.endswith(".ipynb") else \
            merge_text(b, o, t, use_git)
        if merged is not None:
            plan.files[relative] = merged.content
            if merged.conflicts:
                result(FileResult(relative, "conflict",
                                  f"{merged.conflicts} conflicting change(s), marked in the file"))
            else:
                result(FileResult(relative, "merged", "both sides' changes"))
            return
    # Whole-file conflict: binary, too large for a base, no base, or notebooks that do not
    # merge. Ours stays in place; the notebook's version is written beside it.
    copy = conflict_copy(relative)
    plan.files[relative] = ours
    plan.files[copy] = new
    why = "no base to merge with" if base is None else "cannot be merged line by line"
    result(FileResult(relative, "conflict", f"changed on both sides ({why}): the notebook's "
                      f"version is in {copy}", copy))


def conflict_copy(relative: str) -> str:
    """Where the notebook's version of a file goes when the project's stays: beside it, the
    extension kept (``x.nb2pkg-new.ipynb`` opens as a notebook)."""
    folder, name = posixpath.split(relative)
    stem, dot, suffix = name.rpartition(".")
    named = f"{stem}{NEW_SUFFIX}.{suffix}" if dot and stem else f"{name}{NEW_SUFFIX}"
    return posixpath.join(folder, named)


# -- check ---------------------------------------------------------------------------------------

SEVERITIES = ("none", "info", "warning", "error")


@dataclass(frozen=True)
class Difference:
    path: str
    kind: str  # changed, added, removed
    diff: str = ""  # unified diff from the previous conversion to now (text files with a base)


@dataclass(frozen=True)
class CheckReport:
    project: str
    stale_notebooks: tuple[str, ...]  # notebooks changed since the conversion (by hash)
    differences: tuple[Difference, ...]  # generated files that would change
    findings: tuple[Any, ...]  # findings at or above the severity asked for
    severity: str = "none"

    @property
    def up_to_date(self) -> bool:
        return not self.differences

    @property
    def ok(self) -> bool:
        return not self.differences and not self.findings

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"version": 1, "project": self.project, "up_to_date": self.up_to_date,
                "stale_notebooks": list(self.stale_notebooks),
                "differences": [asdict(d) for d in self.differences],
                "severity": self.severity, "findings": [asdict(f) for f in self.findings]}


def check(project: Path | str, notebooks: Sequence[Path | str] = (), *,
          severity: str = "none", progress: Progress | None = None) -> CheckReport:
    """Whether ``project`` is what converting its notebooks gives now (apart from ``VOLATILE``
    files), and the notebooks' findings at or above ``severity``. Writes nothing.

    Notebooks whose bytes are those converted need no conversion: the project is up to date
    with them whatever nb2pkg's version. Otherwise the conversion is rendered in memory and
    compared with the previous one (the manifest's hashes), not with hand edits: a project
    edited by hand is up to date as long as its notebooks did not change what is generated.
    """
    from .notebook import read_regular_file

    say = progress or (lambda message: None)
    project = Path(project)
    manifest = read_manifest(project)
    paths = _notebooks(project, manifest, notebooks)
    stale = []
    for path in paths:
        if sha256_of(read_regular_file(path, Nb2pkgError, "notebook")) not in manifest.notebook_hashes:
            stale.append(str(path))
    differences: list[Difference] = []
    findings: list[Any] = []
    if stale or notebooks:
        from .api import render_project

        say(f"converting {len(paths)} notebook(s) in memory to compare with {project}")
        plan, files, _ = render_project(paths, _options(manifest), say)
        differences = _differences(project, manifest, files)
        findings = list(plan.findings)
    elif severity != "none":
        from .api import analyze

        findings = [f for a in analyze(paths).analysis.notebooks for f in a.findings]
    findings = at_or_above(findings, severity)
    return CheckReport(str(project), tuple(stale), tuple(differences), tuple(findings),
                       severity)


def at_or_above(findings: Sequence[Any], severity: str) -> list[Any]:
    from .analysis.findings import severity_of

    if severity == "none":
        return []
    floor = SEVERITIES.index(severity)
    return [f for f in findings if SEVERITIES.index(severity_of(f.code)) >= floor]


def _differences(project: Path, manifest: Manifest, files: Files) -> list[Difference]:
    found = []
    for relative in sorted(set(manifest.files) | set(files)):
        if relative.startswith(VOLATILE) or relative.startswith(RECORDED):
            continue
        new = files.get(relative)
        old = manifest.files.get(relative)
        if new is None:
            found.append(Difference(relative, "removed"))
        elif old is None:
            found.append(Difference(relative, "added"))
        elif sha256_of(new) != old:
            base = _base(project, manifest, relative)
            if relative.endswith(".ipynb") and base is not None and \
                    _without_outputs(base) == _without_outputs(as_bytes(new)):
                continue  # the notebook was run again: outputs are not generated code
            texts = (as_text(base) if base is not None else None, as_text(as_bytes(new)))
            diff = ""
            if texts[0] is not None and texts[1] is not None:
                diff = "".join(difflib.unified_diff(
                    texts[0].splitlines(keepends=True), texts[1].splitlines(keepends=True),
                    f"a/{relative}", f"b/{relative}", n=2))
            found.append(Difference(relative, "changed", diff))
    return found


def _without_outputs(content: bytes) -> Any:
    """A notebook without what running it changes (outputs, execution counts and times)."""
    try:
        node = json.loads(content)
        for cell in node["cells"]:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
            if isinstance(cell.get("metadata"), dict):
                cell["metadata"].pop("execution", None)
        return node
    except (ValueError, KeyError, TypeError, AttributeError):
        return content


def find_projects(folder: Path | str) -> list[Path]:
    """Projects beneath ``folder`` (``.nb2pkg/manifest.json`` in them), hidden folders,
    ``node_modules`` and the backups of updates skipped."""
    found = []
    for here, folders, names in os.walk(folder):
        if os.path.isfile(os.path.join(here, MANIFEST)):
            found.append(Path(here))
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f != "node_modules")
    return found
