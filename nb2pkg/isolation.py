"""Run a notebook where only some installed distributions can be imported: how the generated
project's notebook runs in a fresh environment that installed its dependencies and nothing else.

Which modules a kernel imported cannot tell what a notebook needs: libraries import what is
installed whether they need it or not (scikit-learn imports pandas when ``sklearn.datasets`` is
imported; numpy tries charset-normalizer), and need some of it only for one call
(``load_iris(as_frame=True)``). So the refactored notebook runs once more where a folder of
links to the files of the project's dependency closure stands in for site-packages: this Python
started with ``-S -s`` (no site-packages, no user site) and that folder on ``PYTHONPATH``. A
library that only tries an import takes its fallback there, as it would in the fresh
environment; one that needs it raises, and the error names it.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

KERNEL = "nb2pkg-isolated"


@dataclass(frozen=True)
class Closure:
    """The distributions importable in the isolated kernel, and the top-level modules of
    every other installed one (what an error may name)."""

    distributions: tuple[str, ...]  # as installed
    outside: frozenset[str]  # import names no distribution of the closure provides


def closure(requirements: Iterable[str]) -> Closure:
    """What a fresh environment has after installing ``requirements`` (PEP 508 lines) and the
    kernel (ipykernel), from this environment's metadata."""
    from .dependencies import canonical_name, constraints, import_providers

    names = [line.partition("==")[0] for line in constraints([*requirements, "ipykernel"])]
    inside = {canonical_name(n) for n in names}
    outside = frozenset(module for module, providers in import_providers().items()
                        if not any(canonical_name(p) in inside for p in providers))
    return Closure(tuple(names), outside)


def link_distributions(folder: Path, names: Iterable[str]) -> list[str]:
    """Link the top-level files of each installed distribution ``names`` into ``folder``.

    Returns the names the isolated kernel cannot import all the same: not installed, files not
    listed (no RECORD), or found through a ``.pth`` file (an editable install: ``-S`` reads
    none), so that a failure there can say why.
    """
    import importlib.metadata as metadata

    folder.mkdir(parents=True, exist_ok=True)
    unlinked = []
    for name in names:
        try:
            distribution = metadata.distribution(name)
        except (metadata.PackageNotFoundError, ValueError):
            unlinked.append(name)
            continue
        tops = {file.parts[0] for file in distribution.files or () if file.parts}
        if not tops or _editable(distribution):
            unlinked.append(name)  # its files are not listed, or not here
        for top in sorted(tops):
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue  # scripts beside the environment; .pth files -S would not read
            _link(Path(str(distribution.locate_file(top))), folder / top)
    return unlinked


def _editable(distribution: Any) -> bool:
    """Installed in editable mode (PEP 610's direct_url.json): its code is found through a
    .pth file, elsewhere."""
    try:
        direct = json.loads(distribution.read_text("direct_url.json") or "{}")
    except ValueError:
        return False
    return isinstance(direct, dict) and bool((direct.get("dir_info") or {}).get("editable"))


def _link(source: Path, target: Path) -> None:
    if not source.exists():
        return
    if not (target.is_symlink() or target.exists()):
        target.symlink_to(source)
        return
    if target.resolve() == source.resolve() or not (source.is_dir() and target.is_dir()):
        return
    # Two distributions share a folder (a namespace package: mpl_toolkits): merge them.
    if target.is_symlink():
        first = target.resolve()
        target.unlink()
        target.mkdir()
        for child in first.iterdir():
            _link(child, target / child.name)
    for child in source.iterdir():
        _link(child, target / child.name)


def kernel_manager(folder: Path, python_path: Sequence[Path]) -> Any:
    """A kernel manager for this Python without site-packages, with ``python_path`` then
    ``folder`` (the links) as its only places to import from."""
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    from ipykernel.kernelspec import get_kernel_dict

    spec = folder.parent / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    path = [str(Path(p).absolute()) for p in python_path] + [str(folder.absolute())]
    # ipykernel's own spec for this Python (with what it supports: the encrypted transport),
    # started without site-packages.
    kernel = get_kernel_dict()
    kernel["argv"] = [sys.executable, "-S", "-s", *kernel["argv"][1:]]
    kernel["display_name"] = "Python 3 (only the project's dependencies)"
    kernel["env"] = {"PYTHONPATH": os.pathsep.join(path)}
    (spec / "kernel.json").write_text(json.dumps(kernel), encoding="utf-8")
    from .runtime.notebook_outputs import _kernel_config

    return KernelManager(kernel_name=KERNEL, config=_kernel_config(),
                         kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


# A library that runs on without an optional package often says so instead of raising:
# sktime warns "ExponentialSmoothing requires package 'statsmodels' to be present in the python
# environment" and computes something else. Words that ask for a module, then its name.
_ASKS = re.compile(r"(?:No module named|requires? (?:the )?(?:(?:optional )?(?:package|module|"
                   r"library|dependency) )?|(?:pip|please|to) install) ?[`'\"]?([A-Za-z_][\w.]*)")


def asked_for(text: str, outside: frozenset[str]) -> str | None:
    """The module outside the closure that a printed message or warning asks for
    (``... requires package 'statsmodels' ...``, ``No module named 'x'``), or None."""
    for found in _ASKS.finditer(text):
        top = found.group(1).partition(".")[0]
        if top in outside:
            return top
    return None


def named_module(error_text: str, outside: frozenset[str]) -> str | None:
    """The module outside the closure that an import error names (``Name: message``):
    ``No module named 'pandas'``, or a library's own words (``ImportError: load_iris with
    as_frame=True requires pandas``). Other errors name none."""
    name, _, message = error_text.partition(":")
    if not name.strip().endswith(("ImportError", "ModuleNotFoundError", "PackageNotFoundError")) \
            or "cannot import name" in message:  # a name missing from a module that is there
        return None
    found = re.search(r"No module named '([\w.]+)'", message)
    if found:
        top = found.group(1).partition(".")[0]
        return top if top in outside else None
    return next((word for word in re.findall(r"[A-Za-z_]\w*", message) if word in outside), None)
