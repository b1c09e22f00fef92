"""What a notebook says about files: relative paths it names, folders it adds to ``sys.path``,
files its magics write. Pure: whether a path exists is decided later (``nb2pkg.assets``).

A relative path is any string literal that looks like one (a file extension or a ``/``), plus
``os.path.join``/``Path(...) / ...`` of such literals. Whether it is read or written is told by
the call it is passed to (``to_csv``, ``savefig``, ``open(..., "w")`` write; anything else reads).
Being liberal here is safe: only names of files that exist beside the notebook become inputs.
"""

from __future__ import annotations

import ast
import re
import shlex
from dataclasses import dataclass

from ..magics import Magic
from .parse import ParsedCell, walk

# Methods and functions that create the file named by their first argument.
WRITERS = frozenset({
    "to_csv", "to_excel", "to_parquet", "to_pickle", "to_json", "to_feather", "to_hdf",
    "to_html", "to_latex", "to_markdown", "to_stata", "to_xml", "to_sql_file", "savefig",
    "imsave", "save", "savez", "savez_compressed", "savetxt", "dump", "write_text",
    "write_bytes", "to_netcdf", "to_zarr", "write_image", "write_html", "save_model",
    "makedirs", "mkdir",
})
_PATH_LIKE = re.compile(r"^(?![a-z][a-z0-9+.-]*://)(?!/)(?![A-Za-z]:[\\/])(?!~)"
                        r"[^\x00-\x1f*?<>|\"]*(/|\.[A-Za-z][A-Za-z0-9]{0,7}$)")


@dataclass(frozen=True)
class PathUse:
    path: str  # as written, relative ("data/x.csv", "../data", "out/fig.png")
    cell: int
    line: int
    writes: bool  # passed to a writer (may not exist before the run)


@dataclass(frozen=True)
class FileUses:
    paths: tuple[PathUse, ...]
    sys_paths: tuple[str, ...]  # relative folders added with sys.path.append/insert


def file_uses(cells: tuple[ParsedCell, ...]) -> FileUses:
    paths: list[PathUse] = []
    sys_paths: list[str] = []
    for cell in cells:
        for magic in cell.masked.magics:  # %%writefile x.py / %%file x.py create a file
            words = magic.text.split("\n", 1)[0].split()
            if magic.kind == "cell" and magic.name in ("writefile", "file") and len(words) > 1:
                paths.append(PathUse(words[-1], cell.cell, magic.line, True))
            # `%pip install -r requirements.txt` reads that file (and so will the project's copy
            # of the notebook, from notebooks/).
            for file in pip_install_arguments(magic)[1]:
                paths.append(PathUse(file, cell.cell, magic.line, False))
        if cell.tree is None:
            continue
        writes_at: set[int] = set()
        for node in cell.nodes:
            if isinstance(node, ast.Call):
                name = _called_name(node.func)
                first = node.args[0] if node.args else None
                if name in ("append", "insert") and _is_sys_path(node.func):
                    argument = node.args[-1] if node.args else None
                    text = _literal_path(argument) if argument is not None else None
                    if text is not None:
                        sys_paths.append(text)
                    continue
                if first is not None and (name in WRITERS or (name == "open" and _write_mode(node))):
                    writes_at.add(id(first))
        seen: set[int] = set()
        for node in cell.nodes:
            if id(node) in seen or not isinstance(node, (ast.Constant, ast.Call, ast.BinOp)):
                continue
            text = _literal_path(node)
            if text is None or not _PATH_LIKE.match(text):
                continue
            seen.update(id(n) for n in walk(node))
            line, writes = getattr(node, "lineno", 1), id(node) in writes_at
            paths.append(PathUse(text, cell.cell, line, writes))
            if not writes:
                paths += [PathUse(other, cell.cell, line, False) for other in companions(text)]
    return FileUses(tuple(paths), tuple(dict.fromkeys(sys_paths)))


# A shapefile is several files: reading `x.shp` reads `x.shx`, `x.dbf`, `x.prj`... beside it
# (the ones that exist are carried with it).
_SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg", ".sbn", ".sbx", ".qix", ".shp.xml")


def companions(path: str) -> list[str]:
    """The other files a reader of ``path`` opens with it (a shapefile's parts), spelled in the
    case of its extension."""
    stem, dot, extension = path.rpartition(".")
    if not dot or extension.lower() != "shp":
        return []
    upper = extension.isupper()
    return [stem + (part.upper() if upper else part) for part in _SHAPEFILE_PARTS]


# pip options that take a value (the value is not a requirement).
_PIP_VALUE_OPTIONS = {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-c",
                      "--constraint", "-t", "--target", "--prefix", "--root", "--src",
                      "--platform", "--python-version", "--implementation", "--abi",
                      "--trusted-host", "--proxy", "--cache-dir", "--progress-bar",
                      "--upgrade-strategy", "--log", "--timeout", "--retries", "--config-settings"}


def pip_install_arguments(magic: Magic) -> tuple[list[str], list[str]]:
    """The requirements a ``%pip install``/``!pip install`` names, and the requirement files
    it reads (``-r FILE``); nothing for any other magic."""
    if magic.name != "pip" or magic.kind not in ("line", "shell") or " install" not in magic.text:
        return [], []
    rest = magic.text.split("install", 1)[1]
    try:
        words = shlex.split(rest, comments=True)
    except ValueError:  # unbalanced quotes
        words = rest.split()
    requirements: list[str] = []
    files: list[str] = []
    words_iter = iter(words)
    for word in words_iter:
        if word in ("-r", "--requirement") or word.startswith("--requirement="):
            name = word.split("=", 1)[1] if "=" in word else next(words_iter, "")
            if name and not name.startswith(("$", "{")):
                files.append(name)
        elif word in _PIP_VALUE_OPTIONS:
            next(words_iter, None)
        elif word.startswith("-") or word.startswith("$") or word.startswith("{"):
            continue  # an option, or a variable the kernel expands
        else:
            requirements.append(word)
    return requirements, files


def requirement_lines(text: str) -> list[str]:
    """The requirements of a requirements file's text (comments and options left out)."""
    found = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if line and not line.startswith(("#", "-")):
            found.append(line)
    return found


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return None


def _is_sys_path(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute)
            and func.value.attr == "path" and isinstance(func.value.value, ast.Name)
            and func.value.value.id == "sys")


def _write_mode(call: ast.Call) -> bool:
    mode = call.args[1] if len(call.args) > 1 else next(
        (k.value for k in call.keywords if k.arg == "mode"), None)
    return isinstance(mode, ast.Constant) and isinstance(mode.value, str) \
        and any(c in mode.value for c in "wax+")


def _literal_path(node: ast.expr) -> str | None:
    """The path a literal expression spells: "a/b", os.path.join("a", "b"), Path("a") / "b"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value if 0 < len(node.value) < 260 and "\n" not in node.value else None
    if isinstance(node, ast.Call) and _called_name(node.func) in ("join", "Path", "PurePath"):
        parts = [_literal_path(a) for a in node.args]
        if node.args and all(p is not None for p in parts) and not node.keywords:
            return "/".join(parts)  # type: ignore[arg-type]
        return None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        left, right = _literal_path(node.left), _literal_path(node.right)
        return f"{left}/{right}" if left is not None and right is not None else None
    return None
