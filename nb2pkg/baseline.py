"""What a conversion records in the project's ``.nb2pkg/`` folder: a manifest (the notebooks, the
options, a hash of every file written) and a copy of each text file as written (``base/``), the
base of the next ``update``'s three-way merge and what ``check`` compares with (docs/update.md).

``api.convert`` writes it (``baseline_files``); ``update`` and ``check`` read it; the lab reads
the manifest to offer "Update package".
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .errors import Nb2pkgError

STATE = ".nb2pkg"
MANIFEST = f"{STATE}/manifest.json"
BASE = f"{STATE}/base"
PREVIOUS = f"{STATE}/previous"
FORMAT = 1
BASE_LIMIT = 1024 * 1024  # larger files keep only their hash: merged whole, never line by line
Files = Mapping[str, "str | bytes"]


class NotConvertedError(Nb2pkgError):
    """The folder holds no ``.nb2pkg/manifest.json`` that nb2pkg can read."""


@dataclass(frozen=True)
class Manifest:
    notebooks: tuple[str, ...]  # POSIX paths relative to the project folder
    notebook_hashes: tuple[str, ...]  # sha256 of each notebook as converted
    options: Mapping[str, Any]  # ConvertOptions fields that shape the output, the name resolved
    files: Mapping[str, str]  # relative path -> sha256 of what the conversion wrote
    based: frozenset[str] = frozenset()  # paths whose content is kept in .nb2pkg/base/


# -- the record a conversion leaves ------------------------------------------------------------


def sha256_of(content: str | bytes) -> str:
    return hashlib.sha256(as_bytes(content)).hexdigest()


def as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


def as_text(content: bytes) -> str | None:
    """``content`` as text when it is UTF-8 without NUL bytes (worth a line merge), else None."""
    if b"\0" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def baseline_files(plan: Any, files: Files, options: Any, output: Path | str,
                   source_folder: Path | str | None = None) -> dict[str, str | bytes]:
    """``.nb2pkg/`` for a conversion that writes ``files`` to ``output``: manifest, base copies,
    a README saying what they are, a .gitignore for the backups."""
    from .templating import environment

    output = os.path.realpath(output)
    notebooks, hashes = [], []
    for notebook, result in zip(plan.notebooks, plan.analysis.notebooks):
        path = result.notebook.path
        if source_folder is not None:  # the lab converts a private copy of the same name
            path = Path(source_folder, path.name)
        notebooks.append(Path(os.path.relpath(os.path.realpath(path), output)).as_posix())
        hashes.append(sha256_of(files[f"tests/originals/{notebook.filename}"]))
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "notebooks": [{"path": p, "sha256": h} for p, h in zip(notebooks, hashes)],
        "options": {"name": plan.name, "extract": options.extract,
                    "pipeline": options.pipeline, "single_stage": options.single_stage,
                    "join_stages": dict(options.join_stages),
                    "min_clone_statements": options.min_clone_statements,
                    "min_clone_lines": options.min_clone_lines,
                    "max_data_bytes": options.max_data_bytes,
                    "names": _plain(options.names)},
        "files": {},
    }
    state: dict[str, str | bytes] = {}
    for relative in sorted(files):
        content = files[relative]
        based = (len(as_bytes(content)) <= BASE_LIMIT
                 and (isinstance(content, str) or as_text(content) is not None))
        manifest["files"][relative] = {"sha256": sha256_of(content), "base": based}
        if based:
            state[f"{BASE}/{relative}"] = content
    env = environment()
    state[MANIFEST] = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    state[f"{STATE}/README.md"] = env.get_template("project/state/README.md.j2").render()
    state[f"{STATE}/.gitignore"] = env.get_template("project/state/gitignore.j2").render()
    return state


def _plain(value: Any) -> Any:
    """Names overrides as JSON (mappings and sequences of plain values)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def parse_manifest(data: bytes, path: Path | str = MANIFEST) -> Manifest:
    try:
        raw = json.loads(data.decode("utf-8"))
        if raw.get("format") != FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, this nb2pkg reads {FORMAT}")
        entries = raw["files"]
        return Manifest(tuple(str(n["path"]) for n in raw["notebooks"]),
                        tuple(str(n["sha256"]) for n in raw["notebooks"]),
                        dict(raw["options"]),
                        {str(k): str(v["sha256"]) for k, v in entries.items()},
                        frozenset(k for k, v in entries.items() if v.get("base")))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise NotConvertedError(f"the manifest cannot be read ({exc})", path=path,
                                hint="restore it from version control") from None
