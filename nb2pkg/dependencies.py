"""The distributions a generated package depends on, from what its notebooks import and install.

A dependency is only ever an **installed distribution that provides the import** (or that a
``pip install`` in the notebook names and that is installed here). An import nothing installed
provides is a finding, never a guessed name: a guess like ``utils`` or ``helpers`` would be a
dependency-confusion hole (anyone may register that name on PyPI). Local modules beside the
notebook are carried into the project instead (``nb2pkg.assets``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .analysis import Analysis, Finding
from .analysis.files import pip_install_arguments, requirement_lines


@dataclass(frozen=True)
class Dependency:
    name: str  # distribution name, as installed
    version: str | None  # installed version
    source: str  # "import" or "pip install"
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
                requirements, files = pip_install_arguments(magic)
                for file in files:
                    text = requirement_file(nb, file)
                    requirements += requirement_lines(text) if text is not None else []
                installs += [(text, where, cell.cell) for text in requirements]
    for name in extra_imports:
        imports.setdefault(name, ("", None))

    found: dict[str, Dependency] = {}
    findings: list[Finding] = []
    for name, (where, at_cell) in sorted(imports.items()):
        if name in skip or name in sys.stdlib_module_names or name in sys.builtin_module_names:
            continue
        distribution = providing_distribution(name)
        if distribution is None:
            if where:
                findings.append(Finding(
                    "unknown-import", f"no installed distribution provides `{name}`; it is not "
                    "listed as a dependency", where, at_cell,
                    hint="install it and convert again, or add it to pyproject.toml yourself"))
            continue
        key = _key(distribution)
        found.setdefault(key, Dependency(distribution, _version(distribution), "import"))

    from packaging.requirements import InvalidRequirement, Requirement

    for text, where, install_cell in installs:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            findings.append(Finding("pip-install-unparsed", f"`{text}` is not a requirement "
                                    "nb2pkg can read; it is not listed as a dependency", where,
                                    install_cell, hint="add it to pyproject.toml yourself"))
            continue
        version = _version(requirement.name)
        if requirement.url or version is None:
            why = "names a URL" if requirement.url else "is not installed here"
            findings.append(Finding("pip-install-unparsed", f"`{text}` {why}; it is not listed "
                                    "as a dependency", where, install_cell,
                                    hint="install it and convert again, or add it yourself"))
            continue
        key = _key(requirement.name)
        extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
        name = _installed_name(requirement.name) + extras
        found[key] = Dependency(name, version, "pip install", str(requirement.specifier))
    return sorted(found.values(), key=lambda d: d.name.lower()), findings


def constraints(requirements: Iterable[str], exclude: Iterable[str] = ()) -> list[str]:
    """``name==version`` of every installed distribution that ``requirements`` (PEP 508 lines)
    need, transitively, sorted by name: a pip constraints file of this environment.

    Each distribution's requirements are read from its installed metadata; markers are
    evaluated here, with the extras asked for. Requirements that are not installed are left out
    (nothing is guessed), and so are the names in ``exclude`` (the project itself).
    """
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    skip = {canonicalize_name(name) for name in exclude}
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
        key = canonicalize_name(name)
        if key in skip:
            continue
        seen = extras_seen.setdefault(key, set())
        if key in pinned and extras <= seen:
            continue
        seen |= extras
        found = _distribution(name)
        if found is None:
            continue
        line = _pin(found.metadata["Name"] or name, found.version)
        if line is None:
            continue
        pinned[key] = line
        for text in found.requires or ():
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not any(
                    requirement.marker.evaluate({"extra": extra}) for extra in ("", *sorted(seen))):
                continue
            todo.append((requirement.name, frozenset(requirement.extras)))
    return [pinned[key] for key in sorted(pinned)]


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


def _distribution(name: str):
    import importlib.metadata as metadata

    try:
        return metadata.distribution(name)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def providing_distribution(import_name: str) -> str | None:
    """The installed distribution whose files provide the top-level ``import_name``."""
    # Most imports are named like their distribution (pandas, numpy): checking that one
    # distribution's files spares the scan of every installed one (~0.15 s), and gives the same
    # answer, since the scan prefers the distribution named alike too.
    alike = _provided_by_namesake(import_name)
    if alike is not None:
        return alike
    providers = _top_level_providers().get(import_name)
    if not providers:
        return None
    # Several distributions can ship one name (namespace packages): prefer the one named alike.
    same = [d for d in providers if _key(d) == _key(import_name)]
    return (same or sorted(providers))[0]


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
    return distribution.metadata["Name"] or import_name if provides else None


def _top_level_providers() -> Mapping[str, list[str]]:
    """``importlib.metadata.packages_distributions()``, cached per environment.

    The scan reads the file list of every installed distribution (0.12 s here, on every
    conversion that imports a module not named like its distribution: sklearn, yaml, PIL). The
    table is kept in memory and in the user's cache folder under a key of what the scan reads:
    the interpreter, ``sys.path``, and the name and modification time of every distribution's
    metadata folder on it. Installing, upgrading, reinstalling or uninstalling anything adds,
    replaces or removes such a folder, so the key changes and the table is scanned again: it is
    never stale, in a long-running process (the lab's server) either.
    """
    import importlib.metadata as metadata

    key = _environment_key()
    if _providers_memo and _providers_memo[0] == key:
        return _providers_memo[1]
    table = _read_providers_cache(key)
    if table is None:
        try:
            table = {name: list(dists) for name, dists in metadata.packages_distributions().items()}
        except Exception:  # a broken environment must not stop a conversion
            return {}
        _write_providers_cache(key, table)
    _providers_memo[:] = [key, table]
    return table


_providers_memo: list = []  # [key, table] of the last environment seen in this process
# Metadata folders of installed distributions (importlib.metadata finds them by these suffixes).
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


def _environment_key() -> str:
    """A digest of everything ``packages_distributions()`` reads to find distributions."""
    import hashlib
    import os

    parts: list[object] = [sys.version, sys.prefix]
    for entry in sys.path:
        folder = entry or "."
        try:
            with os.scandir(folder) as found:
                names = sorted(e.name for e in found if e.name.endswith(_METADATA_SUFFIXES))
            # A reinstall of the same version writes the folder anew: its time changes.
            parts.append([entry, [(n, os.stat(os.path.join(folder, n)).st_mtime_ns)
                                  for n in names]])
        except OSError:  # missing, a file (a zip archive), unreadable
            try:
                parts.append([entry, os.stat(folder).st_mtime_ns])
            except OSError:
                parts.append([entry, None])
    return hashlib.sha256(repr(parts).encode("utf-8", "backslashreplace")).hexdigest()


def _cache_file() -> Path | None:
    """Where this environment's table is kept, in the user's cache folder (``usercache``)."""
    import hashlib

    from .usercache import cache_folder

    folder = cache_folder()
    if folder is None:  # no home folder: no cache, the scan runs each time
        return None
    environment = hashlib.sha256(f"{sys.prefix}\0{sys.executable}".encode(
        "utf-8", "backslashreplace")).hexdigest()[:16]
    return folder / f"distributions-{environment}.json"


def _read_providers_cache(key: str) -> dict[str, list[str]] | None:
    import json

    path = _cache_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    table = data.get("providers")
    if not isinstance(table, dict) or not all(
            isinstance(v, list) and all(isinstance(d, str) for d in v) for v in table.values()):
        return None  # damaged or written by something else: scan again
    return table


def _write_providers_cache(key: str, table: Mapping[str, list[str]]) -> None:
    """Write the table atomically; a cache that cannot be written is no error."""
    import json
    import os
    import tempfile

    path = _cache_file()
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".distributions-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump({"key": key, "providers": table}, handle)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        pass


def _version(distribution: str) -> str | None:
    import importlib.metadata as metadata

    try:
        return metadata.version(distribution)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _installed_name(distribution: str) -> str:
    import importlib.metadata as metadata

    try:
        return metadata.metadata(distribution)["Name"] or distribution
    except (metadata.PackageNotFoundError, KeyError):
        return distribution


def _key(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
