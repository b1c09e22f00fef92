"""The distributions a generated package depends on, from what its notebooks import and install.

A dependency is only ever an **installed distribution that provides the import** (or that a
``pip install`` in the notebook names and that is installed here). An import nothing installed
provides is a finding, never a guessed name: a guess like ``utils`` or ``helpers`` would be a
dependency-confusion hole (anyone may register that name on PyPI). Local modules beside the
notebook are carried into the project instead (``nb2pkg.assets``).
"""

from __future__ import annotations

import contextlib
import re
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from .analysis import Analysis, Finding
from .analysis.files import pip_install_arguments, requirement_lines
from .magics import Magic


@dataclass(frozen=True)
class Dependency:
    name: str  # distribution name, as installed
    version: str | None  # installed version
    source: str  # "import", "pip install" or "run" (running the notebook showed it is needed)
    specifier: str = ""  # as the notebook's `pip install` wrote it (">=2"), else ""

    @property
    def requirement(self) -> str:
        """The PEP 508 line for pyproject.toml: the notebook's own specifier, else the installed
        version as a lower bound (a library accepts newer releases; the exact versions the
        notebook ran with are in constraints.txt, see ``constraints``)."""
        if self.specifier:
            return f"{self.name}{self.specifier}"
        return f"{self.name}>={self.version}" if self.version else self.name



def dependencies(analysis: Analysis, package: str, local: Iterable[str] = (),
                 extra_imports: Iterable[str] = (),
                 requirement_file: Callable[[int, str], str | None] = lambda nb, name: None,
                 ) -> tuple[list[Dependency], list[Finding]]:
    """Dependencies of the package, and findings about imports and installs that gave none.

    ``local`` are import names that local modules provide; ``extra_imports`` are the imports of
    those local modules (their own dependencies are the project's too);
    ``requirement_file(notebook, name)`` is the text of the file a ``pip install -r name`` of
    that notebook reads, when it was carried (``nb2pkg.assets`` read it, confined as every
    file it reads), else None.
    """
    skip = set(local) | {package, "__future__"}
    imports: dict[str, tuple[str, int | None]] = {}  # name -> (notebook path, cell)
    installs: list[tuple[str, str, int]] = []  # (requirement text, notebook path, cell)
    for nb, result in enumerate(analysis.notebooks):
        where = str(result.notebook.path)
        for cell in result.cells:
            for name in cell.imports:
                imports.setdefault(name, (where, cell.cell))
            for magic in cell.masked.magics:
                for name in _loaded_by(magic):
                    imports.setdefault(name, (where, cell.cell))
                requirements, files = pip_install_arguments(magic)
                for file in files:
                    text = requirement_file(nb, file)
                    requirements += requirement_lines(text) if text is not None else []
                installs += [(text, where, cell.cell) for text in requirements]
    for name in extra_imports:
        imports.setdefault(name, ("", None))

    found: dict[str, Dependency] = {}
    findings: list[Finding] = []
    environment = _environment()
    for name, (where, at_cell) in sorted(imports.items()):
        if name in skip or name in sys.stdlib_module_names or name in sys.builtin_module_names:
            continue
        distribution = _providing(environment, name)
        if distribution is None:
            if where:
                findings.append(Finding(
                    "unknown-import", f"no installed distribution provides `{name}`; it is not "
                    "listed as a dependency", where, at_cell,
                    hint="install it and convert again, or add it to pyproject.toml yourself"))
            continue
        key = _key(distribution)
        facts = environment.distribution(distribution)
        found.setdefault(key, Dependency(distribution, facts.version if facts else None, "import"))

    if installs:  # (packaging takes ~0.01 s to import: constraints rarely needs it)
        from packaging.requirements import InvalidRequirement, Requirement
    for text, where, install_cell in installs:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            findings.append(Finding("pip-install-unparsed", f"`{text}` is not a requirement "
                                    "nb2pkg can read; it is not listed as a dependency", where,
                                    install_cell, hint="add it to pyproject.toml yourself"))
            continue
        facts = environment.distribution(requirement.name)
        version = facts.version if facts else None
        if requirement.url or version is None:
            why = "names a URL" if requirement.url else "is not installed here"
            findings.append(Finding("pip-install-unparsed", f"`{text}` {why}; it is not listed "
                                    "as a dependency", where, install_cell,
                                    hint="install it and convert again, or add it yourself"))
            continue
        key = _key(requirement.name)
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        name = (facts.name if facts else requirement.name) + extras
        found[key] = Dependency(name, version, "pip install", str(requirement.specifier))
    environment.save()
    return sorted(found.values(), key=lambda d: d.name.lower()), findings


# Line magics that load a module the notebook never imports: (magic, its first argument) ->
# the module. `%matplotlib widget` needs ipympl; without it the cell raises "'widget' is not
# a recognised GUI loop or backend name" (dspda-timeseries).
MAGIC_IMPORTS = {("matplotlib", "widget"): "ipympl", ("matplotlib", "ipympl"): "ipympl"}


def _loaded_by(magic: Magic) -> list[str]:
    if magic.kind != "line":
        return []
    words = magic.text.lstrip("%").split()
    wanted = (words[0], words[1]) if len(words) > 1 else None
    return [MAGIC_IMPORTS[wanted]] if wanted in MAGIC_IMPORTS else []


def constraints(requirements: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """``name==version`` of every installed distribution that ``requirements`` (PEP 508 lines)
    need, transitively, sorted by name: a pip constraints file of this environment.

    Each distribution's requirements are read from its installed metadata; markers are
    evaluated here, with the extras asked for. Requirements that are not installed are left out
    (nothing is guessed), and so are the names in ``exclude`` (the project itself).
    """
    environment = _environment()
    requirements, exclude = list(requirements), list(exclude)
    asked = repr((requirements, sorted(exclude)))
    known = environment.constraints(asked)
    if known is not None:
        return known
    from packaging.requirements import InvalidRequirement, Requirement

    skip = {canonical_name(name) for name in exclude}
    pinned: dict[str, str] = {}  # canonical name -> "Name==version"
    extras_seen: dict[str, set[str]] = {}
    todo: list[tuple[str, frozenset[str]]] = []
    for text in requirements:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            todo.append((requirement.name, frozenset(requirement.extras)))
    while todo:
        name, extras = todo.pop()
        key = canonical_name(name)
        if key in skip:
            continue
        seen = extras_seen.setdefault(key, set())
        if key in pinned and extras <= seen:
            continue
        seen |= extras
        found = environment.distribution(name)
        if found is None:
            continue
        line = _pin(found.name, found.version)
        if line is None:
            continue
        pinned[key] = line
        for text in found.requires:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({"extra": extra}) for extra in ("", *sorted(seen))):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    found_all = [pinned[key] for key in sorted(pinned)]
    environment.remember_constraints(asked, found_all)
    environment.save()
    return found_all


def _pin(name: str, version: str) -> str | None:
    """``name==version`` when both are what they claim (metadata is text anyone can write)."""
    import re

    from packaging.version import InvalidVersion, Version

    if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,200}[A-Za-z0-9])?", name or ""):
        return None
    try:
        return f"{name}=={Version(version)}"
    except (InvalidVersion, TypeError):
        return None


def providing_distribution(import_name: str) -> str | None:
    """The installed distribution whose files provide the top-level ``import_name``."""
    environment = _environment()
    found = _providing(environment, import_name)
    environment.save()
    return found


def import_providers() -> Mapping[str, list[str]]:
    """Every top-level import name of this environment -> the distributions providing it."""
    environment = _environment()
    found = environment.providers()
    environment.save()
    return found


def needed_at_run_time(import_name: str) -> Dependency | None:
    """The dependency on the installed distribution providing ``import_name``, which running
    the notebook showed it needs (``nb2pkg.isolation``), or None."""
    environment = _environment()
    distribution = _providing(environment, import_name)
    facts = environment.distribution(distribution) if distribution else None
    environment.save()
    return Dependency(facts.name, facts.version, "run") if facts else None


def _providing(environment: _Environment, import_name: str) -> str | None:
    # Most imports are named like their distribution (pandas, numpy): checking that one
    # distribution's files spares the scan of every installed one (~0.15 s), and gives the same
    # answer, since the scan prefers the distribution named alike too.
    alike = environment.namesake(import_name)
    if alike is not None:
        return alike
    providers = environment.providers().get(import_name)
    if not providers:
        return None
    # Several distributions can ship one name (namespace packages): prefer the one named alike.
    same = [d for d in providers if _key(d) == _key(import_name)]
    return (same or sorted(providers))[0]


@dataclass(frozen=True)
class _Distribution:
    """What nb2pkg reads of an installed distribution's metadata."""

    name: str  # as its metadata spells it
    version: str
    requires: tuple[str, ...]  # Requires-Dist lines


class _Environment:
    """What nb2pkg learned about the distributions installed in one environment, kept in
    memory and in the user's cache folder under a key of everything it is read from.

    Reading metadata costs: ``packages_distributions()`` reads every installed distribution's
    file list (0.12 s here), and each distribution's metadata is a parse of a mail-like file
    (constraints.txt walks 50 of them for a typical notebook). The key is a digest of the
    interpreter, ``sys.path``, and the name and modification time of every distribution's
    metadata folder on it: installing, upgrading, reinstalling or uninstalling anything adds,
    replaces or removes such a folder, so the key changes and every fact is read again. Facts
    are never stale, in a long-running process (the lab's server) either. A missing, damaged or
    unwritable cache costs the reading, never an error.
    """

    def __init__(self, key: str, data: Mapping[str, Any] | None = None) -> None:
        data = data or {}
        self.key = key
        self._providers: dict[str, list[str]] | None = data.get("providers")
        self._namesakes: dict[str, str | None] = dict(data.get("namesakes", {}))
        self._distributions: dict[str, list | None] = dict(data.get("distributions", {}))
        # What ``constraints`` found for each list of requirements, and the name and summary of
        # each distribution ``installed_summary`` was asked about.
        self._constraints: dict[str, list[str]] = dict(data.get("constraints", {}))
        self._summaries: dict[str, list[str] | None] = dict(data.get("summaries", {}))
        self._changed = False

    def providers(self) -> Mapping[str, list[str]]:
        """``importlib.metadata.packages_distributions()``."""
        if self._providers is None:
            import importlib.metadata as metadata

            try:
                self._providers = {name: list(dists) for name, dists in
                                   metadata.packages_distributions().items()}
            except Exception:  # a broken environment must not stop a conversion
                return {}
            self._changed = True
        return self._providers

    def namesake(self, import_name: str) -> str | None:
        """The distribution called ``import_name``, if it provides that module."""
        if import_name not in self._namesakes:
            self._namesakes[import_name] = _provided_by_namesake(import_name)
            self._changed = True
        return self._namesakes[import_name]

    def distribution(self, name: str) -> _Distribution | None:
        """The installed distribution called ``name`` (any spelling pip accepts), or None."""
        if name not in self._distributions:
            self._distributions[name] = _read_distribution(name)
            self._changed = True
        facts = self._distributions[name]
        return _Distribution(facts[0], facts[1], tuple(facts[2])) if facts else None

    def constraints(self, asked: str) -> list[str] | None:
        known = self._constraints.get(asked)
        return list(known) if known is not None else None

    def remember_constraints(self, asked: str, found: list[str]) -> None:
        self._constraints[asked] = list(found)
        self._changed = True

    def summary(self, name: str) -> tuple[str, str] | None:
        """The name and summary of the installed distribution called ``name``, or None."""
        if name not in self._summaries:
            self._summaries[name] = _read_summary(name)
            self._changed = True
        found = self._summaries[name]
        return (found[0], found[1]) if found else None

    def save(self) -> None:
        """Write what was learned since reading, atomically (``dependencies`` and
        ``constraints`` call this once, at their end)."""
        if not self._changed:
            return
        self._changed = False
        _write_cache({"key": self.key, "providers": self._providers,
                      "namesakes": self._namesakes, "distributions": self._distributions,
                      "constraints": self._constraints, "summaries": self._summaries})


_memo: list[_Environment] = []  # the last environment seen in this process
# The environment of the planning in progress (``one_environment``), or None.
_planning: ContextVar[_Environment | None] = ContextVar("nb2pkg_environment", default=None)


@contextlib.contextmanager
def one_environment() -> Iterator[None]:
    """Within: one look at the installed distributions (their metadata folders' names and
    times) serves every question, instead of one look per question (~5 ms each). For the
    planning of one conversion, a few seconds at most: a long-running process (the lab) looks
    again at its next conversion."""
    token = _planning.set(_environment())
    try:
        yield
    finally:
        _planning.reset(token)


def _environment() -> _Environment:
    planning = _planning.get()
    if planning is not None:
        return planning
    key = _environment_key()
    if _memo and _memo[0].key == key:
        return _memo[0]
    data = _read_cache(key)
    environment = _Environment(key, data)
    _memo[:] = [environment]
    return environment


def _provided_by_namesake(import_name: str) -> str | None:
    """The name of the distribution called ``import_name`` if it provides that module."""
    import importlib.metadata as metadata
    import inspect

    try:
        distribution = metadata.distribution(import_name)
    except (metadata.PackageNotFoundError, ValueError):
        return None
    declared = (distribution.read_text("top_level.txt") or "").split()
    if declared:
        provides = import_name in declared
    else:  # the file list, as text: building a path object per file costs more than the scan
        listed = distribution.read_text("RECORD") or distribution.read_text("SOURCES.txt") or ""
        package = import_name + "/"
        provides = any(path.startswith(package) or ("/" not in path and
                                                    inspect.getmodulename(path) == import_name)
                       for path in (line.split(",", 1)[0] for line in listed.splitlines()))
    return _field(distribution.metadata, "Name") or import_name if provides else None


def installed_summary(name: str) -> tuple[str, str] | None:
    """The metadata name and summary of the installed distribution called ``name`` (any
    spelling pip accepts), or None; kept with this environment's other facts."""
    environment = _environment()
    found = environment.summary(name)
    environment.save()
    return found


def _read_summary(name: str) -> list[str] | None:
    import importlib.metadata as metadata

    try:
        fields = metadata.metadata(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return [_field(fields, "Name") or name, _field(fields, "Summary") or ""]


def _field(fields: Any, name: str) -> str | None:
    """A metadata field's first value, or None. (Not ``fields[name]``: the importlib_metadata
    backport, once something imported it, raises KeyError for a missing field.)"""
    values = fields.get_all(name)
    return str(values[0]) if values else None


def _read_distribution(name: str) -> list | None:
    """``[name, version, requires]`` from the metadata of the distribution called ``name``."""
    import importlib.metadata as metadata

    try:
        distribution = metadata.distribution(name)
        fields = distribution.metadata  # parsed anew on each access: read once
        version = _field(fields, "Version")
        if version is None:
            return None
        return [_field(fields, "Name") or name, version, list(distribution.requires or ())]
    except (metadata.PackageNotFoundError, ValueError):
        return None


# Metadata folders of installed distributions (importlib.metadata finds them by these suffixes).
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def _environment_key() -> str:
    """A digest of everything the facts of ``_Environment`` are read from."""
    import hashlib
    import os

    parts: list[object] = [sys.version, sys.prefix]
    for entry in sys.path:
        folder = entry or "."
        try:
            with os.scandir(folder) as found:
                names = sorted(e.name for e in found if e.name.endswith(_METADATA_SUFFIXES))
            # A folder without distributions adds nothing to learn (so `python -m nb2pkg` run
            # from another folder, the first entry, keeps the key); one added there changes it.
            # A reinstall of the same version writes the folder anew: its time changes.
            if names:
                parts.append([entry, [(n, os.stat(os.path.join(folder, n)).st_mtime_ns)
                                      for n in names]])
        except OSError:  # missing, a file (a zip archive), unreadable
            try:
                parts.append([entry, os.stat(folder).st_mtime_ns])
            except OSError:
                parts.append([entry, None])
    return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()


def _cache_file(key: str) -> Path | None:
    """Where the facts of the environment ``key`` are kept: the user's cache folder
    (``usercache``), when only this user can write there (the facts decide what a generated
    project depends on). One file per key: the CLI, the lab's server and a script see the same
    interpreter through different ``sys.path``s, and must not overwrite each other's facts."""
    from .usercache import cache_folder, private_folder

    folder = cache_folder()
    if folder is None or not private_folder(folder):  # no cache: the metadata is read each time
        return None
    return folder / f"{_CACHE_PREFIX}{key[:32]}.json"


_CACHE_PREFIX = "distributions-"
_CACHE_KEPT = 8  # files of environments seen last; older ones are removed on writing


def _read_cache(key: str) -> dict[str, Any] | None:
    import json

    path = _cache_file(key)
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or not _well_formed(data):
        return None  # damaged or written by something else: read again
    return data


def _well_formed(data: Mapping[str, Any]) -> bool:
    def strings(value: object) -> bool:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)

    providers = data.get("providers")
    namesakes = data.get("namesakes", {})
    distributions = data.get("distributions", {})
    constraints = data.get("constraints", {})
    summaries = data.get("summaries", {})
    return ((providers is None or isinstance(providers, dict) and all(
                strings(v) for v in providers.values()))
            and isinstance(namesakes, dict)
            and all(v is None or isinstance(v, str) for v in namesakes.values())
            and isinstance(distributions, dict)
            and all(v is None or isinstance(v, list) and len(v) == 3 and isinstance(v[0], str)
                    and isinstance(v[1], str) and strings(v[2]) for v in distributions.values())
            and isinstance(constraints, dict) and all(strings(v) for v in constraints.values())
            and isinstance(summaries, dict) and all(
                v is None or strings(v) and len(v) == 2 for v in summaries.values()))


def _write_cache(data: Mapping[str, Any]) -> None:
    """Write the facts atomically, and remove the files of environments not seen for longest
    (every install makes a new key); a cache that cannot be written is no error."""
    import json

    from .atomic import write_atomic

    path = _cache_file(data["key"])
    if path is None:
        return
    try:
        write_atomic(path, json.dumps(data))
        kept = sorted(path.parent.glob(f"{_CACHE_PREFIX}*.json"),
                      key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[_CACHE_KEPT:]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def canonical_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``packaging.utils.canonicalize_name``,
    whose import costs ~0.01 s)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
