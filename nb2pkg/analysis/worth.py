"""Is a repeated block worth a function? Structural judgements on statements, shared by clone
ranking (``clones._surely_refused``) and extraction (``refactor.extract``).

- *Data, not logic*: a statement that only assigns constants (``ratings[0] = 4``,
  ``sizes = [1, 2, 3]``, ``t0, t1 = 5, 50``), or a table of constants and names
  (``metrics = {"mae": mae, "rmse": rmse}``), is data. A block of nothing else is never
  extracted, and data statements at the edges of a block whose constants differ between the
  copies stay in the notebook (the function would only take them back as arguments).
- *Computation and plotting*: a block that computes values and then draws them (or draws and
  then computes) is split at the boundary; each part is extracted only if it is big enough on
  its own. Which statements plot is a syntactic guess (``plt.*``, ``ax.*``, calls of names that
  begin or end with ``plot`` such as ``res.plot_forest()`` or ``qqplot(...)``, names a plotting
  statement bound, statements that only read figures and axes): splitting only ever extracts
  less, so a wrong guess cannot change behaviour.
"""

from __future__ import annotations

import ast

from .parse import walk

# Conventional names of plotting modules and of what they return, and plotting methods.
PLOT_ROOTS = frozenset({"plt", "pyplot", "sns", "seaborn", "mpl", "matplotlib", "px", "go",
                        "fig", "ax", "axs", "axes", "ax1", "ax2", "figure", "plotly"})
PLOT_METHODS = frozenset({
    "plot", "scatter", "hist", "hist2d", "bar", "barh", "boxplot", "violinplot", "pie", "imshow",
    "matshow", "contour", "contourf", "clabel", "errorbar", "fill_between", "stem", "step",
    "axhline", "axvline", "axhspan", "axvspan", "annotate", "arrow", "text", "legend", "grid",
    "axis", "title", "suptitle", "xlabel", "ylabel", "xlim", "ylim", "xticks", "yticks",
    "xscale", "yscale", "tick_params", "tight_layout", "subplots", "subplot", "figure",
    "colorbar", "savefig", "show", "heatmap", "pairplot", "histplot", "countplot", "lineplot",
    "scatterplot", "barplot", "boxplot", "kdeplot", "set_title", "set_xlabel", "set_ylabel",
    "set_xlim", "set_ylim", "set_xticks", "set_yticks", "set_xticklabels", "set_yticklabels",
    "set_aspect", "set_facecolor", "gca", "gcf", "loglog", "semilogx", "semilogy", "quiver",
    "pcolormesh", "add_subplot", "set_ticklabels", "set_yticks", "set_xscale", "set_yscale"})


_BUILTINS = frozenset(dir(__import__("builtins")))


def _constant(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _constant(node.operand)
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _constant(k) and _constant(v)
                   for k, v in zip(node.keys, node.values))
    return False


def literal_container(node: ast.expr) -> bool:
    """A list, set or dict display of constants only (``[0, 2, 0, 15]``): one value."""
    return isinstance(node, (ast.List, ast.Set, ast.Dict)) and _constant(node)


def _data_target(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return True
    if isinstance(node, (ast.Tuple, ast.List)):
        return all(_data_target(e) for e in node.elts)
    if isinstance(node, ast.Subscript):
        return isinstance(node.value, ast.Name) and _constant(node.slice)
    if isinstance(node, ast.Attribute):
        return isinstance(node.value, ast.Name)
    return False


def _table(node: ast.expr, inside: bool = False) -> bool:
    """Constants, or a list, tuple, set or dict display of constants and names (``[{"name":
    "precision", "risk": precision}, ...]``): a table written out, which computes nothing."""
    if isinstance(node, ast.Name):
        return inside
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return all(_table(e, True) for e in node.elts)
    if isinstance(node, ast.Dict):
        return all(k is not None and _table(k, True) and _table(v, True)
                   for k, v in zip(node.keys, node.values))
    return _constant(node)


def is_data(statement: ast.stmt, tables: bool = True) -> bool:
    """Does ``statement`` only assign constants (``x = 3``, ``ratings[6] = 3``) or, unless
    ``tables`` is false, a table of constants and names (``metrics = [("mae", mae)]``)?"""
    def written(value: ast.expr, unpacks: bool) -> bool:
        # `a, b = b, a` unpacks names: that swaps, it writes no table.
        return _table(value) if tables and not unpacks else _constant(value)

    if isinstance(statement, ast.Assign):
        unpacks = any(isinstance(t, (ast.Tuple, ast.List)) for t in statement.targets)
        return written(statement.value, unpacks) and all(
            _data_target(t) for t in statement.targets)
    if isinstance(statement, ast.AnnAssign):
        return statement.value is not None and written(statement.value, False) and \
            _data_target(statement.target)
    return False


def data_only(statements: list[ast.stmt]) -> bool:
    """Only constants assigned: data, not logic."""
    return bool(statements) and all(is_data(s) for s in statements)


def _root(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _plotting_name(name: str) -> bool:
    """``plot``, ``plot_forest``, ``plotting``, ``qqplot``, ``interaction_plot``: by the
    convention of pandas, statsmodels, seaborn and matplotlib, a name that draws."""
    return name.startswith("plot") or name.endswith("plot")


def _plots(nodes: list[ast.AST], plotted: set[str]) -> bool:
    """Does the statement whose nodes are ``nodes`` draw?"""
    for node in nodes:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                if func.attr in PLOT_METHODS or _root(func) in PLOT_ROOTS | plotted:
                    return True
            # res.plot_forest(), df.plot.scatter(), pd.plotting.scatter_matrix(), plot_acf()
            for part in ast.walk(func):
                if (isinstance(part, ast.Attribute) and _plotting_name(part.attr)
                        or isinstance(part, ast.Name) and _plotting_name(part.id)):
                    return True
    return False


def kinds(statements: list[ast.stmt]) -> list[str]:
    """Per statement: "plot" (draws, or works on what a drawing statement returned),
    "compute" (binds or changes values without drawing) or "other" (prints, calls whose result
    is dropped: they side with their neighbours)."""
    plotted: set[str] = set()
    found = []
    for statement in statements:
        nodes = walk(statement)
        reads: set[str] = set()
        bound: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Name):
                (reads if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        reads -= _BUILTINS
        if isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
            reads.add(statement.target.id)
        # `ax = axes[0]`: works on what a drawing statement returned, here or in an earlier
        # cell (under the conventional names of figures and axes).
        if _plots(nodes, plotted) or (reads and reads <= plotted | PLOT_ROOTS):
            plotted |= bound
            found.append("plot")
        elif bound or isinstance(statement, (ast.AugAssign, ast.For, ast.While, ast.With,
                                             ast.If, ast.Try)):
            found.append("compute")
        else:
            found.append("other")
    return found


def plot_split(statements: list[ast.stmt]) -> list[tuple[int, int, str]]:
    """The parts of a block that mixes computation and plotting: ``(start, stop, kind)``
    spans covering the block, split where one kind gives way to the other. One span (the
    whole block) when it does not mix them; "other" statements join the part before them
    (leading ones the part after)."""
    labels = kinds(statements)
    parts: list[list] = []
    for index, label in enumerate(labels):
        if label == "other":
            continue
        if parts and parts[-1][2] == label:
            parts[-1][1] = index + 1
        else:
            parts.append([index, index + 1, label])
    if len(parts) < 2:
        return [(0, len(statements), parts[0][2] if parts else "other")]
    parts[0][0] = 0
    for before, after in zip(parts, parts[1:]):
        before[1] = after[0]
    parts[-1][1] = len(statements)
    return [tuple(p) for p in parts]
