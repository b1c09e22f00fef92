"""A hypothesis strategy for the robustness tests: notebooks with repeated code.

``programs()`` builds straight-line notebooks with a repeated block: 2-4 copies of a few statement
templates (arithmetic on earlier variables, int/str literals, list appends, prints, branches and
loops), each copy with its variables renamed and some literals changed, followed by cells that
read some of the results (harness.run_cells executes them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from hypothesis import strategies as st

SUFFIXES = ("north", "south", "east", "west")
BASES = ("total", "count", "score", "level", "size", "width", "depth", "rank")


@dataclass(frozen=True)
class Var:
    base: str
    renamed: bool  # a different name in each copy (base_north, base_south, ...) or the same name
    kind: str  # "int", "str", "list" or "dict"

    def name(self, copy: int) -> str:
        return f"{self.base}_{SUFFIXES[copy]}" if self.renamed else self.base


@dataclass
class Program:
    """Cells of one or two notebooks (``split`` > 0: copies from ``split`` on go to notebook 2)."""

    notebooks: list[list[str]] = field(default_factory=list)

    def describe(self) -> str:
        return "\n\n".join(f"## notebook {i}\n" + "\n# ----- cell\n".join(cells)
                           for i, cells in enumerate(self.notebooks))


Line = Callable[[int], str]  # copy index -> source of one statement (may span lines)


@st.composite
def programs(draw, cross_notebook: bool | None = None) -> Program:
    copies = draw(st.integers(2, 4))
    ints: list[Var] = []
    strs: list[Var] = []
    lists: list[Var] = []
    prelude: list[str] = []

    def values(varies: bool, low: int, high: int) -> list[int]:
        if varies:
            return [draw(st.integers(low, high)) for _ in range(copies)]
        return [draw(st.integers(low, high))] * copies

    # Inputs the copies read: per-copy values, one shared value, an UPPER_CASE constant, lists.
    for i in range(draw(st.integers(0, 2))):
        if draw(st.booleans()):
            var = Var(f"base{i}", True, "int")
            prelude += [f"{var.name(j)} = {draw(st.integers(-5, 20))}" for j in range(copies)]
        else:
            var = Var(f"shared{i}", False, "int")
            prelude.append(f"{var.name(0)} = {draw(st.integers(-5, 20))}")
        ints.append(var)
    if draw(st.booleans()):
        prelude.append(f"RATE = {draw(st.integers(1, 9))}")
        ints.append(Var("RATE", False, "int"))
    if draw(st.booleans()):
        var = Var("items", True, "list")
        prelude += [f"{var.name(j)} = []" for j in range(copies)]
        lists.append(var)

    block: list[Line] = []
    bases = list(BASES)

    def new(kind: str, renamed: bool | None = None) -> Var:
        if renamed is None:
            renamed = draw(st.sampled_from([True, True, False]))
        base = bases.pop(0) if bases else f"v{len(block)}"
        return Var(base, renamed, kind)

    def some(pool: list[Var]) -> Var:
        return draw(st.sampled_from(pool))

    templates = ["assign", "assign", "str", "fstring", "append", "print", "aug", "if", "ifelse",
                 "for", "while", "unpack", "comprehension", "walrus", "dict"]
    for _ in range(draw(st.integers(3, 7))):
        choice = draw(st.sampled_from(templates)) if ints else "assign"
        if choice == "assign":
            form = draw(st.sampled_from(["lit", "add", "mul", "sub", "floordiv", "ternary"])) if ints else "lit"
            lit = values(draw(st.booleans()), 1, 50)
            x = some(ints) if ints else None
            y = some(ints) if ints else None
            var = new("int")

            def line(j, form=form, lit=lit, x=x, y=y, var=var):
                rhs = {"lit": lambda: f"{lit[j]}",
                       "add": lambda: f"{x.name(j)} + {y.name(j)}",
                       "mul": lambda: f"{x.name(j)} * {lit[j]}",
                       "sub": lambda: f"{x.name(j)} - {lit[j]}",
                       "floordiv": lambda: f"({x.name(j)} + {lit[j]}) // 2",
                       "ternary": lambda: f"{x.name(j)} if {x.name(j)} > {lit[j]} else {y.name(j)}",
                       }[form]()
                return f"{var.name(j)} = {rhs}"
            block.append(line)
            ints.append(var)
        elif choice in ("str", "fstring"):
            x = some(ints)
            texts = ([draw(st.sampled_from(["a", "b", "label: ", "x y"])) for _ in range(copies)]
                     if draw(st.booleans()) else [draw(st.sampled_from(["a", "lbl"]))] * copies)
            var = new("str")
            if choice == "str":
                block.append(lambda j, x=x, t=texts, v=var: f"{v.name(j)} = {t[j]!r} + str({x.name(j)})")
            else:
                block.append(lambda j, x=x, t=texts, v=var: f"{v.name(j)} = f\"{t[j]} {{{x.name(j)}}}\"")
            strs.append(var)
        elif choice == "append":
            if not lists or draw(st.booleans()):
                var = new("list", True)
                block.append(lambda j, v=var: f"{v.name(j)} = []")
                lists.append(var)
            target, x = some(lists), some(ints)
            form = draw(st.sampled_from(["append", "extend"]))
            if form == "append":
                block.append(lambda j, t=target, x=x: f"{t.name(j)}.append({x.name(j)})")
            else:
                block.append(lambda j, t=target, x=x: f"{t.name(j)} += [{x.name(j)}]")
        elif choice == "print":
            x = some(ints + strs + lists)
            lit = values(draw(st.booleans()), 0, 9)
            block.append(lambda j, x=x, lit=lit: f"print('value', {lit[j]}, {x.name(j)})")
        elif choice == "aug":
            x = some(ints)
            lit = values(draw(st.booleans()), 1, 9)
            block.append(lambda j, x=x, lit=lit: f"{x.name(j)} += {lit[j]}")
        elif choice == "if":  # rebinds an existing name on one path only
            x, y = some(ints), some(ints)
            lit = values(draw(st.booleans()), -5, 30)
            block.append(lambda j, x=x, y=y, lit=lit:
                         f"if {x.name(j)} > {lit[j]}:\n    {y.name(j)} = {x.name(j)} - {lit[j]}")
        elif choice == "ifelse":
            x = some(ints)
            var = new("int")
            lit = values(draw(st.booleans()), -5, 30)
            block.append(lambda j, x=x, v=var, lit=lit:
                         f"if {x.name(j)} > {lit[j]}:\n    {v.name(j)} = {x.name(j)}\n"
                         f"else:\n    {v.name(j)} = {lit[j]}")
            ints.append(var)
        elif choice == "for":
            x = some(ints)
            lit = values(draw(st.booleans()), 0, 4)
            block.append(lambda j, x=x, lit=lit:
                         f"for i in range({lit[j]}):\n    {x.name(j)} = {x.name(j)} + i")
        elif choice == "while":
            x = some(ints)
            lit = values(draw(st.booleans()), -20, 20)
            step = values(draw(st.booleans()), 1, 7)
            block.append(lambda j, x=x, lit=lit, step=step:
                         f"while {x.name(j)} > {lit[j]}:\n    {x.name(j)} -= {step[j]}")
        elif choice == "unpack":
            x, y = some(ints), some(ints)
            a, b = new("int"), new("int")
            lit = values(draw(st.booleans()), 0, 9)
            block.append(lambda j, x=x, y=y, a=a, b=b, lit=lit:
                         f"{a.name(j)}, {b.name(j)} = {x.name(j)}, {y.name(j)} + {lit[j]}")
            ints += [a, b]
        elif choice == "comprehension":
            x = some(ints)
            var = new("list")
            lit = values(draw(st.booleans()), 1, 5)
            block.append(lambda j, x=x, v=var, lit=lit:
                         f"{v.name(j)} = [k * {lit[j]} for k in range(abs({x.name(j)}) % 4)]")
            lists.append(var)
        elif choice == "walrus":
            x = some(ints)
            var = new("int")
            lit = values(draw(st.booleans()), 0, 9)
            block.append(lambda j, x=x, v=var, lit=lit:
                         f"{v.name(j)} = 0\nif ({v.name(j)} := {x.name(j)} + {lit[j]}) > 3:\n"
                         f"    print('big', {v.name(j)})")
            ints.append(var)
        elif choice == "dict":
            x = some(ints)
            var = new("dict")
            lit = values(draw(st.booleans()), 0, 9)
            block.append(lambda j, x=x, v=var, lit=lit:
                         f"{v.name(j)} = {{'k': {x.name(j)}}}\n{v.name(j)}['k'] += {lit[j]}")
            strs.append(var)  # printable, not arithmetic

    copy_sources = ["\n".join(line(j) for line in block) for j in range(copies)]
    every = ints + strs + lists
    readers = draw(st.lists(st.sampled_from(every), max_size=4, unique=True)) if every else []
    final = ("print(" + ", ".join(v.name(j) for v in readers for j in range(copies)) + ")"
             if readers else None)

    if cross_notebook is None:
        cross_notebook = draw(st.integers(0, 3)) == 0
    split = draw(st.integers(1, copies - 1)) if cross_notebook else copies
    notebooks = []
    for part in ([range(0, split), range(split, copies)] if cross_notebook else [range(copies)]):
        cells = ["\n".join(prelude)] if prelude else []
        layout = draw(st.sampled_from(["cells", "together", "nested"]))
        sources = [copy_sources[j] for j in part]
        if layout == "together":
            cells.append("\n\n".join(sources))
        else:
            for j, source in zip(part, sources):
                if layout == "nested":  # the copy is the body of a one-time loop
                    source = "for _rep in range(1):\n" + "\n".join(
                        "    " + text for text in source.splitlines())
                elif every and draw(st.booleans()):
                    source += "\n" + some(every).name(j)  # a displayed last expression
                cells.append(source)
        if final:
            local = [v.name(j) for v in readers for j in part]
            cells.append("print(" + ", ".join(local) + ")")
        notebooks.append(cells)
    return Program(notebooks)
