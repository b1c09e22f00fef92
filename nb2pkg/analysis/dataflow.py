"""Cross-cell def/use: for every name a cell reads, the cell that provides it (in cell order)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from typing import Mapping

from .parse import ParsedCell

# Names IPython puts in every user namespace; they are never "undefined" in a notebook.
IPYTHON_NAMES = frozenset({"display", "get_ipython", "In", "Out", "_", "__", "___", "_i", "_ii",
                           "_iii", "_ih", "_oh", "_dh", "exit", "quit"})
BUILTIN_NAMES = frozenset(dir(builtins)) | IPYTHON_NAMES


@dataclass(frozen=True)
class NameUse:
    """A free name read by a cell and the latest earlier cell binding it (None: none does)."""

    name: str
    line: int
    provider: int | None


@dataclass(frozen=True)
class DataFlow:
    """Where names come from across the cells of one notebook (cell indexes, in order)."""

    defined_in: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    read_in: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    inputs: Mapping[int, tuple[NameUse, ...]] = field(default_factory=dict)

    def provider(self, name: str, before_cell: int) -> int | None:
        """The latest cell before ``before_cell`` that binds ``name``."""
        found = None
        for cell in self.defined_in.get(name, ()):
            if cell < before_cell:
                found = cell
        return found

    def is_read_outside(self, name: str, cells: set[int] | frozenset[int]) -> bool:
        return any(c not in cells for c in self.read_in.get(name, ()))


def dataflow(cells: tuple[ParsedCell, ...]) -> DataFlow:
    """Def/use across ``cells`` (one notebook's parsed code cells, in notebook order)."""
    defined: dict[str, list[int]] = {}
    read: dict[str, list[int]] = {}
    inputs: dict[int, tuple[NameUse, ...]] = {}
    for cell in cells:
        if cell.io is None:
            continue
        lines = dict(cell.io.first_read_line)
        uses = []
        for name in cell.io.reads:
            if _ignored(name):
                continue
            provider = defined[name][-1] if name in defined else None
            if provider is None and (name in BUILTIN_NAMES or name in cell.io.writes):
                # A builtin, or a name this cell binds on some path before reading it
                # (a loop variable read after its loop): not an input from another cell.
                continue
            uses.append(NameUse(name, lines.get(name, 1), provider))
        inputs[cell.cell] = tuple(uses)
        for name in (*cell.io.reads, *cell.io.deferred_reads):
            if not _ignored(name):
                read.setdefault(name, []).append(cell.cell)
        for name in cell.io.writes:
            if not _ignored(name):
                defined.setdefault(name, []).append(cell.cell)
    return DataFlow(
        defined_in={k: tuple(v) for k, v in defined.items()},
        read_in={k: tuple(dict.fromkeys(v)) for k, v in read.items()},
        inputs=inputs,
    )


def _ignored(name: str) -> bool:
    from ..magics import is_placeholder_name

    return is_placeholder_name(name)
