"""Synthetic notebooks for the benchmarks, built from the example notebooks' code cells.

A generated notebook is a sequence of *episodes*. An episode is a run of one example
notebook's code cells, from its first code cell on (so names are defined before they are
used), with one consistent renaming of the names the notebook binds at top level
(``df`` -> ``df_q3``, ``summaries`` -> ``summaries_eu``, ...). Episodes repeat, so the result
holds what real long notebooks hold: exact copies of blocks (an episode without renaming),
copies with renamed variables (the other episodes), and the examples' own repeated blocks;
the examples' magics (``%matplotlib``, ``!pip``, ``x = !cmd``, ``%%time``) stay, and a few
more are sprinkled in (``%time`` on a line, ``obj?``, ``%%time`` on a cell).

Everything is deterministic for a given ``seed``. Nothing here touches the repository:
callers write the notebooks to a temporary folder.
"""

from __future__ import annotations

import ast
import builtins
import json
import keyword
import random
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a checkout: nb2pkg need not be installed
    sys.path.insert(0, str(REPO))
EXAMPLES = REPO / "examples" / "notebooks"

# Realistic suffixes: what people append when they copy a block for another region, quarter,
# model or data version.
_SUFFIXES = ("2", "_new", "_q3", "_q4", "_v2", "_eu", "_us", "_test", "_raw", "_b", "_final",
             "_tmp", "_all", "_small", "_2023", "_2024", "_alt", "_check", "_copy", "_x")
_BUILTINS = frozenset(dir(builtins))


@dataclass(frozen=True)
class Example:
    name: str
    cells: tuple[str, ...]  # code cell sources, in order
    parameters: int | None  # position (among code cells) of the cell tagged "parameters"
    renameable: tuple[str, ...]  # names bound at top level, longest first


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _bound_names(tree: ast.Module) -> set[str]:
    """Names a cell binds in the notebook's namespace (not inside def/class bodies)."""
    found: set[str] = set()
    imported: set[str] = set()
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
            continue  # locals and parameters keep their names
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                imported.add((alias.asname or alias.name).split(".")[0])
            continue
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        stack.extend(ast.iter_child_nodes(node))
    return found - imported


@lru_cache(maxsize=None)
def examples() -> tuple[Example, ...]:
    from nb2pkg.magics import is_placeholder_name, mask

    result = []
    for path in sorted(EXAMPLES.glob("*.ipynb")):
        data = json.loads(path.read_text(encoding="utf-8"))
        cells, parameters, names, imported = [], None, set(), set()
        for cell in data["cells"]:
            if cell.get("cell_type") != "code":
                continue
            source = _source(cell)
            if "parameters" in (cell.get("metadata", {}).get("tags") or ()):
                parameters = len(cells)
            cells.append(source)
            tree = ast.parse(mask(source).code)
            names |= _bound_names(tree)
            for node in ast.walk(tree):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
        names = {n for n in names - imported - _BUILTINS
                 if not is_placeholder_name(n) and not n.startswith("_") and len(n) > 1}
        result.append(Example(path.stem, tuple(cells), parameters,
                              tuple(sorted(names, key=lambda n: (-len(n), n)))))
    if not result:
        raise SystemExit(f"no example notebooks in {EXAMPLES}")
    return tuple(result)


class _Positions(ast.NodeVisitor):
    """Where the names of ``mapping`` occur as identifiers meaning the notebook-level binding."""

    def __init__(self, mapping: dict[str, str]) -> None:
        self.mapping = mapping
        self.local: list[set[str]] = []  # names bound inside the enclosing functions/lambdas
        self.found: list[tuple[int, int, int, str]] = []  # (line, col, end col, name), bytes

    def _add(self, line: int, col: int, end: int, name: str) -> None:
        if name in self.mapping and not any(name in scope for scope in self.local):
            self.found.append((line, col, end, name))

    def visit_Name(self, node: ast.Name) -> None:
        self._add(node.lineno, node.col_offset, node.end_col_offset, node.id)

    def _function(self, node, args: ast.arguments, body) -> None:
        bound = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}
        bound |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        for child in (body if isinstance(body, list) else [body]):
            for sub in ast.walk(child):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                    bound.add(sub.id)
        for default in (*args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.visit(default)
        self.local.append(bound)
        for child in (body if isinstance(body, list) else [body]):
            self.visit(child)
        self.local.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        for decorator in node.decorator_list:
            self.visit(decorator)
        self._function(node, node.args, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, node.args, node.body)


def _renamer(names: tuple[str, ...], rng: random.Random, taken: set[str]):
    """A function renaming every name of ``names`` consistently in a cell, or None."""
    from nb2pkg.magics import mask, unmask

    mapping: dict[str, str] = {}
    for name in names:
        for _ in range(50):
            new = name + rng.choice(_SUFFIXES)
            if new not in taken and not keyword.iskeyword(new):
                break
        else:
            new = f"{name}_{len(taken)}"
        mapping[name] = new
        taken.add(new)
    if not mapping:
        return None

    def rename(source: str) -> str:
        masked = mask(source)
        try:
            tree = ast.parse(masked.code)
        except SyntaxError:
            return source
        finder = _Positions(mapping)
        finder.visit(tree)
        # Top-level def/class names: their name is not a Name node.
        lines = masked.code.split("\n")
        encoded = [line.encode("utf-8", "surrogatepass") for line in lines]
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                    and node.name in mapping:
                line = encoded[node.lineno - 1]
                col = line.find(node.name.encode(), node.col_offset)
                if col >= 0:
                    finder.found.append((node.lineno, col, col + len(node.name), node.name))
        for line_no, col, end, name in sorted(set(finder.found), reverse=True):
            line = encoded[line_no - 1]
            if line[col:end] == name.encode():  # positions inside f-strings may be off: skip
                encoded[line_no - 1] = line[:col] + mapping[name].encode() + line[end:]
        code = "\n".join(line.decode("utf-8", "surrogatepass") for line in encoded)
        return unmask(code, masked.replacements)

    return rename


def _sprinkle(source: str, rng: random.Random) -> str:
    """Occasionally add IPython syntax of the kinds the examples use less."""
    roll = rng.random()
    lines = source.split("\n")
    if source.startswith("%%"):
        return source
    if roll < 0.04:
        return "%%time\n" + source
    if roll < 0.08:
        # %time in front of a simple top-level assignment
        for i, line in enumerate(lines):
            if re.match(r"[A-Za-z_]\w* = [^\n\\]*[^,(\[{\\]$", line) and not line.endswith(":"):
                lines[i] = "%time " + line
                return "\n".join(lines)
    if roll < 0.10:
        for line in lines:
            match = re.match(r"([A-Za-z_]\w*) = ", line)
            if match:
                return source.rstrip("\n") + f"\n{match.group(1)}?"
    if roll < 0.12:
        return source.rstrip("\n") + "\n!ls -la | head -3"
    return source


def synth_cells(count: int, seed: int = 0, exact_share: float = 0.2) -> list[dict]:
    """``count`` code cells: ``[{"source": str, "tags": [..]}]`` (see the module docstring)."""
    rng = random.Random(seed)
    pool = examples()
    taken: set[str] = {n for e in pool for n in e.renameable}
    cells: list[dict] = []
    episode = 0
    while len(cells) < count:
        example = pool[episode % len(pool)] if episode < len(pool) else rng.choice(pool)
        rename = None
        if episode >= len(pool) and rng.random() >= exact_share:
            rename = _renamer(example.renameable, rng, taken)
        # A whole notebook or its first part (people copy the top of a notebook and go on).
        length = len(example.cells) if rng.random() < 0.6 else rng.randint(6, len(example.cells))
        for position, source in enumerate(example.cells[:length]):
            if rename is not None:
                source = rename(source)
            if episode >= len(pool):
                source = _sprinkle(source, rng)
            tags = ["parameters"] if (episode == 0 and position == example.parameters) else []
            cells.append({"source": source, "tags": tags})
            if len(cells) == count:
                break
        episode += 1
    return cells


def notebook_node(cells: list[dict], validate: bool = True):
    """An nbformat v4 notebook node holding ``cells`` (from :func:`synth_cells`)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    node = new_notebook(cells=[
        new_code_cell(c["source"], metadata={"tags": c["tags"]} if c["tags"] else {})
        for c in cells], metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        # As Jupyter saves it: with the file extension, `nbconvert --to script` writes a .py.
        "language_info": {"name": "python", "file_extension": ".py"}})
    if validate:
        nbformat.validate(node)
    return node


def synth_notebook(count: int, seed: int = 0, validate: bool = True):
    """An nbformat v4 notebook node of ``count`` code cells."""
    return notebook_node(synth_cells(count, seed), validate)


def write_notebook(path: Path, count: int, seed: int = 0) -> Path:
    path = Path(path)
    path.write_text(json.dumps(synth_notebook(count, seed), indent=1), encoding="utf-8")
    return path


if __name__ == "__main__":  # a look at what is generated: python bench/_synth.py 40
    for i, cell in enumerate(synth_cells(int(sys.argv[1]) if len(sys.argv) > 1 else 40)):
        print(f"# ---- cell {i} {cell['tags'] or ''}\n{cell['source']}")
