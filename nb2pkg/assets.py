"""The files around a notebook that are part of it: data files it reads by relative path and
local modules it imports. Found on disk next to the notebook, at convert time.

A generated project runs its notebooks from ``notebooks/`` (and its stages with that folder as
working directory), so a file the original reads as ``data/x.csv`` is carried to
``notebooks/data/x.csv`` and one read as ``../data/x.csv`` to ``data/x.csv``: the same relative
paths resolve. Files over ``max_bytes`` are not copied (REPORT.md says where the project
expects them). Local modules go beside the refactored notebooks too: the kernel's working
directory is on ``sys.path``, so ``import helpers`` resolves as it did.
"""

from __future__ import annotations

import ast
import os
import posixpath
import sys
from dataclasses import dataclass
from pathlib import Path

from .analysis.files import FileUses

PROJECT_NOTEBOOKS = "notebooks"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024


@dataclass(frozen=True)
class DataFile:
    source: Path  # absolute path beside the original notebook
    target: str  # project-relative POSIX path it is copied to ("notebooks/data/x.csv")
    size: int
    copied: bool  # False when over the size limit: referenced, not copied
    read_by: tuple[tuple[int, int], ...]  # (notebook position, cell) that name it
    written_by: tuple[tuple[int, int], ...]  # (notebook position, cell) that write it


@dataclass(frozen=True)
class LocalModule:
    name: str  # the top-level import name ("helpers")
    source: Path  # the .py file or package folder
    target: str  # project-relative path ("notebooks/helpers.py")
    imports: tuple[str, ...]  # top-level names it imports (for dependencies)


@dataclass(frozen=True)
class Assets:
    data: tuple[DataFile, ...] = ()
    modules: tuple[LocalModule, ...] = ()
    outside: tuple[str, ...] = ()  # paths that exist but would land outside the project

    def module_names(self) -> frozenset[str]:
        return frozenset(m.name for m in self.modules)


def find_assets(notebook: Path, uses: FileUses, imported: set[str],
                max_bytes: int = DEFAULT_MAX_BYTES, position: int = 0) -> Assets:
    """Data files and local modules of the notebook at ``notebook`` (an existing file), the
    ``position``-th of the notebooks converted together."""
    folder = notebook.resolve().parent
    # Everything carried must really live in the notebook's tree: a symbolic link in a
    # downloaded repository must not make the project carry ~/.ssh (it is left out, and said).
    tree = folder.parent
    data: dict[str, dict] = {}
    outside: list[str] = []
    for use in uses.paths:
        source = folder / use.path
        normal = posixpath.normpath(posixpath.join(PROJECT_NOTEBOOKS, use.path.replace("\\", "/")))
        exists = source.is_file() or source.is_dir()
        if not exists and not use.writes:
            continue
        if normal.startswith("../") or normal == ".." or normal.startswith("/") or (
                exists and not _inside(source, tree)):
            outside.append(use.path)
            continue
        entry = data.setdefault(normal, {"source": source, "read": [], "written": []})
        entry["written" if use.writes else "read"].append((position, use.cell))
    files = []
    for target, entry in sorted(data.items()):
        source = entry["source"]
        if not (source.is_file() or source.is_dir()):  # only written: an output, not an input
            files.append(DataFile(source, target, 0, False, (), tuple(entry["written"])))
            continue
        if source.resolve() == notebook.resolve() or _holds(source, notebook):
            continue  # the notebook itself, or a folder holding it (".", "..")
        size = _size(source)
        files.append(DataFile(source, target, size, size <= max_bytes,
                              tuple(sorted(set(entry["read"]))),
                              tuple(sorted(set(entry["written"])))))
    modules = _local_modules(folder, uses.sys_paths, imported)
    return Assets(tuple(files), modules, tuple(dict.fromkeys(outside)))


def _inside(path: Path, tree: Path) -> bool:
    real = Path(os.path.realpath(path))
    return real == tree or tree in real.parents


def _holds(folder: Path, path: Path) -> bool:
    return folder.is_dir() and folder.resolve() in path.resolve().parents


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _local_modules(folder: Path, sys_paths: tuple[str, ...],
                   imported: set[str]) -> tuple[LocalModule, ...]:
    """Imported names that a file or package beside the notebook (or in a folder the notebook
    adds to ``sys.path``) provides, standard library excluded; followed through their own
    imports of further local modules."""
    search = [folder] + [(folder / p).resolve() for p in sys_paths]
    found: dict[str, LocalModule] = {}
    todo = sorted(imported)
    while todo:
        name = todo.pop()
        if name in found or name in sys.stdlib_module_names:
            continue
        for place in search:
            source = _module_source(place, name)
            if source is None:
                continue
            target = f"{PROJECT_NOTEBOOKS}/{name}" + (".py" if source.is_file() else "")
            names = _imports_of(source)
            found[name] = LocalModule(name, source, target, tuple(sorted(names)))
            todo.extend(n for n in names if n not in found)
            break
    return tuple(found[n] for n in sorted(found))


def _module_source(place: Path, name: str) -> Path | None:
    file = place / f"{name}.py"
    if file.is_file():
        return file
    package = place / name
    if package.is_dir() and ((package / "__init__.py").is_file()
                             or any(package.glob("*.py"))):
        return package
    return None


def _imports_of(source: Path) -> set[str]:
    """Top-level names imported anywhere in a module file or package (absolute imports)."""
    names: set[str] = set()
    files = [source] if source.is_file() else sorted(source.rglob("*.py"))
    for file in files:
        try:
            tree = ast.parse(file.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def asset_files(assets: Assets) -> dict[str, bytes]:
    """The project files that carry the assets: relative path -> content."""
    files: dict[str, bytes] = {}
    for item in [*assets.modules, *(d for d in assets.data if d.copied)]:
        source = item.source
        if source.is_file():
            files[item.target] = source.read_bytes()
            continue
        for path in sorted(source.rglob("*")):
            parts = path.relative_to(source).parts
            if path.is_file() and not path.is_symlink() and "__pycache__" not in parts \
                    and not any(p.startswith(".") for p in parts):
                files[f"{item.target}/{'/'.join(parts)}"] = path.read_bytes()
    return files


__all__ = ["Assets", "DataFile", "LocalModule", "find_assets", "asset_files",
           "DEFAULT_MAX_BYTES", "PROJECT_NOTEBOOKS"]
