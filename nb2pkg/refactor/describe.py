"""Names and docstrings of extracted functions, from what the code means: the comment above
the block, its section title, what it returns and the calls it makes. Where the code came from
is REPORT.md's business, not the docstring's.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from ..analysis.parse import dotted_name
from ..analysis.worth import PLOT_METHODS, is_data, kinds
from .naming import common_stem, identifier, looks_like_class, words_of_comment

# Words that say nothing about what code does (comments of course notebooks are full of them).
_FILLER = {"extra", "code", "cell", "cells", "figure", "fig", "generates", "generate", "saves",
           "save", "section", "beautifies", "following", "below", "above", "just", "needed",
           "not", "only", "obviously", "isn", "isnt", "t", "s", "most", "practical", "example",
           "simple", "quick", "some", "more", "less", "very", "also", "it", "its", "can", "will",
           "should", "would", "like", "you", "your", "if", "as", "at", "be", "use", "used",
           "using", "way", "first", "second", "last", "one", "two", "three", "solution",
           "exercise", "note", "todo", "fixme", "changing", "these", "those", "lines", "line",
           "formatting", "was", "were", "has", "have", "had", "all", "what", "which", "how",
           "why", "when", "there", "their", "they", "them", "i", "me", "my", "so", "or",
           # what a comment says of a constructor, and what a tutorial's titles call themselves
           # ("# specify a linear detrender", "Primer on transformers", "basic vignettes")
           "specify", "define", "instantiate", "initialize", "initialise", "primer",
           "tutorial", "vignette", "vignettes", "walkthrough", "demo"}
# A title that starts with one of these is about setting up (imports, installs): code under
# it that is repeated elsewhere is something else.
_SETUP = {"import", "imports", "install", "installation", "installing", "requirements",
          "dependencies"}
# Words that join what a title compares ("raw vs hourly"): alone (what they joined differs
# between the copies, "OLS vs. WLS") they name nothing.
_JOINING = {"vs", "versus"}
# A section title that is only one of these names no function: every block under it is about
# them. (A comment saying just "summary" is the author's own word for the block.)
_VAGUE = {"model", "models", "results", "result", "data", "setup", "plots", "analysis",
          "introduction", "overview", "summary", "examples", "output", "outputs", "estimation",
          "time"}  # "# Code time" ("code" is filler)
_VERBS = {"evaluate", "compute", "plot", "fit", "train", "predict", "score", "load", "clean",
          "split", "draw", "show", "print", "report", "count", "summarize", "summarise", "build",
          "make", "create", "check", "filter", "select", "scale", "normalize", "transform",
          "merge", "group", "aggregate", "read", "write", "update", "remove", "drop", "add",
          "find", "calculate", "estimate", "test", "validate", "compare", "format", "prepare",
          "encode", "sort", "rank", "sample", "apply", "tune", "keep", "collect", "measure",
          "label", "mark", "flag", "fill", "convert", "parse", "resample", "smooth", "describe",
          "produce", "setup", "run", "construct", "simulate", "extract"}
_GENERIC_CALLS = {"print", "len", "list", "dict", "set", "tuple", "str", "int", "float", "range",
                  "zip", "enumerate", "sorted", "round", "sum", "min", "max", "abs", "isinstance",
                  "figure", "subplots", "show", "grid", "legend", "xlabel", "ylabel", "title",
                  "axis", "tight_layout", "format", "append", "mean", "reshape", "astype"}
MAX_WORDS = 4
_BUILTINS = frozenset(dir(__import__("builtins")))


@dataclass(frozen=True)
class Facts:
    """What naming and the docstring know about the block (of its first copy)."""

    block: Sequence[ast.stmt]
    comment: str | None  # the comment just above the block, or on its first line
    section: str | None  # the title of the section holding the block
    varying: frozenset[str]  # words of names and literals that differ between copies
    returns: Sequence[str]  # names the function returns
    returns_display: bool  # the function returns the value the cell displays
    # (parameter, the argument of each copy, its name in the first copy or None for a literal)
    params: Sequence[tuple[str, Sequence[str], str | None]]
    mutated: frozenset[str]  # names (of the first copy) the block changes in place
    escape: str | None = None  # "break"/"continue": the function returns whether the loop does
    # id() of a Name node of the block -> its name in the function, where the two differ
    renamed: Mapping[int, str] = field(default_factory=dict)


def _words(text: str | None, facts: Facts) -> list[str]:
    if not text:
        return []
    text = re.sub(r"\$[^$]*\$|`[^`]*`|\d+[–-]\d+", " ", text)  # LaTeX, code, figure numbers
    words = [w for w in words_of_comment(text, set(facts.varying)) if w not in _FILLER
             and len(w) > 1]
    return words[:MAX_WORDS] if set(words) - _JOINING else []


def _calls(block: Sequence[ast.stmt], renamed: Mapping[int, str] | None = None) -> list[str]:
    """Dotted names of the calls the block makes, in order, once each; with ``renamed``, as the
    function spells them (``res.plot_forest``, not the first copy's ``res_dl.plot_forest``)."""
    found: dict[str, None] = {}
    for statement in block:
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                name = _as_written(node.func, renamed)
                if name:
                    found.setdefault(name, None)
    return list(found)


def _as_written(node: ast.expr, renamed: Mapping[int, str] | None) -> str:
    """The dotted name ``node`` spells, as the function spells it (``renamed``: the new name of
    each renamed Name node, by id); "" when it is no dotted name."""
    name = dotted_name(node)
    root = node
    while isinstance(root, ast.Attribute):
        root = root.value
    if name and renamed and id(root) in renamed:
        name = renamed[id(root)] + name[len(root.id):]  # type: ignore[attr-defined]
    return name


def _verb(facts: Facts, calls: list[str]) -> str:
    labels = kinds(list(facts.block))
    last = [c.rsplit(".", 1)[-1] for c in calls]
    if "plot" in labels and labels.count("plot") >= labels.count("compute"):
        return "plot"
    if "fit" in last and not facts.returns:
        return "fit"
    if facts.returns or facts.returns_display:
        if any(c in {"score", "cross_val_score", "accuracy_score", "mean_squared_error"}
               for c in last):
            return "score"
        return "compute"
    if "print" in last or "display" in last:
        return "report"
    return "update"


def function_names(facts: Facts) -> list[str]:
    """Names for the function, best first. verb + object: the object from the comment or the
    section title (a comment that starts with a verb is used as it is), else from the code:
    what it returns or the most specific call. Then names from the code alone (a comment or
    section title shared with another group may have named that one)."""
    calls = _calls(facts.block)
    verb = _verb(facts, calls)
    from_code = _name_from_code(facts, calls, verb)
    # A block that only labels a figure is named for that (label_plot), not after its first
    # call (plot_ylim).
    labelled = _label_name(facts, calls)
    names = [_titled(facts, verb, facts.comment, title=False)
             or _titled(facts, verb, facts.section, title=True)
             or labelled or from_code or f"{verb}_block"]
    for name in (labelled, from_code):
        if name is not None and name not in names:
            names.append(name)
    return names


# Verbs that name an action the block's calls must show: a block under "## Load data" that
# only slices and prints what was loaded before is not `load_data`.
_LOADING = ("read", "load", "open", "fetch", "download", "get")
_ACTIONS = {"load": _LOADING, "read": _LOADING,
            "fit": ("fit",), "train": ("fit", "train"), "predict": ("predict",),
            "write": ("to_", "save", "write", "dump"), "plot": (), "draw": (),
            # "## Simulate a dataset within Virginia" over a block computing its centres
            "simulate": ("simulat", "rand", "sample", "normal", "uniform", "poisson", "choice",
                         "integers", "permutation", "shuffle")}


def _does(action: str, facts: Facts) -> bool:
    """Whether the block does what ``action`` (a key of ``_ACTIONS``) says."""
    if action in ("plot", "draw"):
        return "plot" in kinds(list(facts.block))
    return any(call.rsplit(".", 1)[-1].lower().startswith(_ACTIONS[action])
               for call in _calls(facts.block))


def _titled(facts: Facts, verb: str, text: str | None, title: bool) -> str | None:
    """The name the comment above the block (or its section ``title``) gives, if any."""
    words = _words(text, facts)
    if words and words[0] in _ACTIONS and not _does(words[0], facts):
        return None
    if words and words[0] in _SETUP:
        return None  # "## Imports & input data" titles the cells that set up, not what follows
    if words and words[0] in _VERBS:
        return None if _verb_alone(words) else "_".join(words)
    # A title that starts by saying what the verb says ("Plots", "Plotting residuals")
    # would say it twice: plot_residuals, not plot_plotting_residuals
    while words and re.fullmatch(verb + r"(s|t?ing|t?ed)?", words[0]):
        words = words[1:]
    if title and len(words) == 1 and words[0] in _VAGUE:
        return None  # "## Model", "## Results": the code says more
    if not words:
        return None
    kept = words[:MAX_WORDS - 1]
    # "Time-based cross-validation": the last word kept is not cut off its compound.
    if len(words) > len(kept) and f"{kept[-1]}-{words[len(kept)]}" in (text or "").lower():
        kept = words[:MAX_WORDS]
    return "_".join([verb, *_untrailed(kept)])


def _untrailed(words: list[str]) -> list[str]:
    """``words`` without the joining words left at their end once cut ("Income Distribution
    in 1960 vs. 2000": the years are not words, "vs" would end the name)."""
    while len(words) > 1 and words[-1] in {"per", "vs", "versus"}:
        words = words[:-1]
    return words


def free_name(facts: Facts, taken: set[str]) -> str:
    """The first of :func:`function_names` not in ``taken``; else the first (to be numbered)."""
    names = function_names(facts)
    return next((name for name in names if name not in taken), names[0])


def _name_from_code(facts: Facts, calls: list[str], verb: str) -> str | None:
    """verb + what it returns or binds, else its most specific call; None: nothing to name."""
    fitted = _fitted_model(facts.block)
    if fitted is not None and verb in ("compute", "fit", "report"):
        # A maker that differs between the copies (TradedFactorModel, LinearFactorModel) is
        # a parameter: the name says what they have in common, not what the first copy fits.
        makers = next((arguments for _, arguments, original in facts.params
                       if original is not None and identifier(original) == fitted
                       and len(set(arguments)) > 1), None)
        if makers is not None:
            fitted = common_stem([identifier(m) for m in makers]) or "model"
        return f"fit_{fitted}"
    loaded = _loaded(facts) if verb == "compute" else None
    if loaded is not None:
        return f"load_{loaded}"
    if verb == "compute" and _simulates(facts.block):
        # what it returns is made up, whatever short names (m, X, y; rng, eta) it goes by
        return "simulate_data"
    if verb == "plot":  # res.plot_forest(): what it draws names it better than `fig`
        methods = [c.rsplit(".", 1)[-1] for c in calls if "." in c]
        drawing = [m for m in methods if m.startswith("plot_") and len(m) > 5]
        if drawing:
            return identifier(drawing[0])
        # What is drawn says what the figure is about; the figure, its axes and the calls that
        # dress them (`plt.xlabel`, `set_fontsize`) do not.
        series = _plotted(facts)
        if series is not None:
            return f"plot_{series}"
        # Else the title it gives the figure says what it shows ("Monthly revenue per region")
        title = _title(facts)
        if title:
            return "_".join(["plot", *title])
        saved = _saved(facts)
        if saved is not None:  # it finishes a figure drawn before: save it, under what name
            return f"save_{saved}"
        called = {c.rsplit(".", 1)[-1] for c in calls}
        if "show" in called and called <= _DRESSING | {"show", "tight_layout"}:
            return "show_plot"  # it finishes a figure drawn before (limits, grid) and shows it
    split = _split(facts.returns) if verb == "compute" else None
    if split is not None:
        # Given the parts already (demand_train, demand_val, ...), it prepares each of them.
        given = _split([p for p, _, _ in facts.params]) is not None
        return f"{'prepare' if given else 'split'}_{split}"
    interval = _interval(facts.returns, calls)
    if interval is not None:
        return f"{verb}_{interval}"
    bound = ["_".join(w for w in identifier(n).split("_") if w not in facts.varying)
             for n in _bound(facts.block)]
    # `res`, `out`, `df` say no more than "compute" does: the calls name it better; nor does
    # a constant the block sets on the way (`degree = 10` before the models it builds).
    constants = _constants(facts)
    # What a plot is drawn on (`fig`, `axs`, `leg`) is not what it is about.
    vague = _GENERIC_VALUES if verb != "plot" else {
        n for n in [*facts.returns, *bound] if _canvas(n)} | _GENERIC_VALUES
    returned = [r for r in facts.returns if len(r) > 2 and r not in vague]
    if not [r for r in returned if r not in constants]:
        # It returns nothing it computed: what it adds to a frame passed in is what it does.
        added = _added_column(facts)
        if added:
            return added
    telling = [n for n in bound if len(n) > 2 and n not in vague]
    meaningful = ([r for r in returned if r not in constants]
                  or [n for n in telling if n not in constants][-1:]
                  or returned or telling[-1:])
    if meaningful:
        return f"{verb}_{identifier(meaningful[0])}" if meaningful[0] != verb else verb
    # A callee that differs between the copies (Detrender, SummaryTransformer) is a parameter:
    # the first copy's name would misname the others.
    passed = {original for _, arguments, original in facts.params
              if original is not None and len(set(arguments)) > 1}
    # Reading a clock (`t1 = time.time()`) times the work, and silencing warnings or seeding
    # prepares it: neither is the work.
    calls = [c for c in calls if c not in passed and not _clock(c)
             and c.rsplit(".", 1)[-1] not in _SEEDING | _SETTINGS]
    specific = [c for c in calls
                if c.rsplit(".", 1)[-1] not in _GENERIC_CALLS | _CONTAINERS | {"plot"}]
    if specific:
        word = identifier(specific[0].rsplit(".", 1)[-1].removeprefix("set_")
                          .removeprefix("get_"))
        if word.split("_")[0] not in _VERBS:
            return f"{verb}_{word}"
        if "." in specific[0] or word != identifier(specific[0]):
            return word
        # The block wraps a function of the notebook (`plot_pattern(...)` between
        # `plt.subplots()` and `plt.show()`): its name is taken, what the wrapper adds is not.
        showing = "show" in {c.rsplit(".", 1)[-1] for c in calls}
        return "show_" + word.partition("_")[2] if showing and "_" in word else word
    # Only generic names and calls are left: `results` still says more than `DataFrame`.
    generic = [r for r in facts.returns if len(r) > 2 and r not in constants]
    if generic:
        return f"{verb}_{identifier(generic[-1])}" if generic[-1] != verb else verb
    named = [c.rsplit(".", 1)[-1] for c in calls if c.rsplit(".", 1)[-1] not in {"print", verb}]
    if named:
        return f"{verb}_{identifier(named[0].removeprefix('set_'))}"
    return None


# Calls that make a container of values already computed: they say no more than the value's name.
_CONTAINERS = {"DataFrame", "Series", "array", "asarray", "zeros", "ones", "empty", "full",
               "concat"}
_KINDS = {"df", "gdf", "arr"}
_CANVASES = {"fig", "figure", "f", "g", "ax", "axs", "axes", "leg", "legend", "grid"}


def _canvas(name: str | None) -> bool:
    """``fig``, ``ax_q3``, ``axes2``: what a plot is drawn on."""
    return name is not None and re.sub(r"\d+$", "", identifier(name).split("_")[0]) in _CANVASES


def _title(facts: Facts) -> list[str]:
    """The words of the first title the block sets, when every copy sets the same one."""
    passed = [_literal(arguments[0]) for _, arguments, original in facts.params
              if original is None]
    for statement in facts.block:
        for node in ast.walk(statement):
            if isinstance(node, ast.Call) and dotted_name(node.func).rsplit(".", 1)[-1] in \
                    {"title", "set_title", "suptitle"} and node.args \
                    and isinstance(node.args[0], ast.Constant) \
                    and isinstance(node.args[0].value, str):
                if node.args[0].value in passed:
                    return []
                # "Monthly revenue per region", cut after "per"
                return _untrailed(_words(node.args[0].value, facts)[:MAX_WORDS - 1])
    return []
_SETTINGS = {"simplefilter", "filterwarnings", "set_option", "set_printoptions", "use",
             "set_style", "set_theme", "set_context", "rc", "style"}
_CLOCK_READS = {"time", "time_ns", "perf_counter", "perf_counter_ns", "monotonic",
                "process_time", "default_timer", "now"}


def _clock(call: str) -> bool:
    """``time.time()``, ``perf_counter()``, ``datetime.now()``: a read of a clock."""
    head, _, last = call.rpartition(".")
    return last in _CLOCK_READS and (
        not head or head.split(".")[0] in {"time", "timeit", "datetime", "dt"})


def _added_column(facts: Facts) -> str | None:
    """``add_lag_columns`` for a block that sets ``df[f"Lag_{hour}"]`` on a frame it changes in
    place (``add_<key>_column`` for one named by a string); None when it sets none."""
    passed = {original for _, _, original in facts.params} & facts.mutated
    for statement in facts.block:
        for node in ast.walk(statement):
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if not (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and target.value.id in passed):
                    continue
                key = target.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    text, many = key.value, False
                elif isinstance(key, ast.JoinedStr):
                    text = " ".join(v.value for v in key.values
                                    if isinstance(v, ast.Constant) and isinstance(v.value, str))
                    many = True
                else:
                    continue
                words = _words(text, facts)[:MAX_WORDS - 2]
                if words:
                    return "_".join(["add", *words, "columns" if many else "column"])
    return None


_PARTS = {"train", "test", "val", "valid", "validation", "calibration", "cal", "holdout"}


def _split(returns: Sequence[str]) -> str | None:
    """What a block returning parts of a split (``demand_train, demand_val, demand_test``;
    ``X_train, X_test, y_train, y_test``) splits: the words their names share, or ``data``
    when those say nothing (``X``, ``y``); None when it returns no two different parts."""
    parts = [identifier(r).split("_") for r in returns]
    parts = [words for words in parts if len(words) > 1 and words[-1] in _PARTS]
    if len({words[-1] for words in parts}) < 2:
        return None
    stems = {"_".join(words[:-1]) for words in parts}
    stem = common_stem(sorted(stems)) if len(stems) > 1 else stems.pop()
    return stem if stem and len(stem) > 2 and stem not in _GENERIC_VALUES else "data"


# The words that tell the two bounds of an interval apart (iv_l, iv_u), and the words that
# only say "interval" (conf_lower: what it is the interval of is not "conf").
_BOUNDS = [{"l", "u"}, {"lower", "upper"}, {"lo", "hi"}, {"low", "high"}]
_INTERVAL = {"iv", "ci", "conf", "interval", "int", "bound", "bounds"}


def _interval(returns: Sequence[str], calls: list[str]) -> str | None:
    """``prediction_interval`` for a block returning ``iv_l, iv_u`` after calling
    ``res.get_prediction()``: the two bounds are one value, an interval of what their names
    share or else of what the block's first specific call gets; None for other returns."""
    if len(returns) != 2:
        return None
    lower, upper = (identifier(r).split("_") for r in returns)
    differ = [i for i, (a, b) in enumerate(zip(lower, upper)) if a != b]
    if len(lower) != len(upper) or len(differ) != 1 \
            or {lower[differ[0]], upper[differ[0]]} not in _BOUNDS:
        return None
    stem = [w for i, w in enumerate(lower) if i != differ[0] and w not in _INTERVAL]
    if not stem:
        specific = [identifier(c.rsplit(".", 1)[-1]).removeprefix("get_") for c in calls
                    if c.rsplit(".", 1)[-1] not in _GENERIC_CALLS]
        if specific and set(specific[0].split("_")) & _INTERVAL:
            return specific[0]  # res.conf_int() already says it: conf_int, not conf_int_interval
        stem = specific[:1]
    return "_".join([*stem, "interval"])


# Calls that draw data, and the attributes that only select part of it (`df.loc[...].values`).
_DRAWS = {"plot", "scatter", "hist", "bar", "barh", "step", "stem", "errorbar", "fill_between",
          "semilogx", "semilogy", "loglog", "stackplot", "boxplot", "violinplot", "hexbin"}
_SELECTORS = {"values", "T", "iloc", "loc", "index", "to_numpy", "copy", "squeeze", "flatten",
              "ravel"}


def _plotted(facts: Facts) -> str | None:
    """The first data series the block draws: the ``y`` of ``ax.plot(x, y)``, the ``x`` of
    ``plt.hist(x)``, named after what holds it (``fittedvalues`` for ``res.fittedvalues``).
    A series that differs between the copies goes by the words their names share
    (``nearest_state`` for ``nearest_outside_state`` and ``nearest_state``), or is passed over,
    as is one that goes by a name as generic as ``y``."""
    varying = {original: common_stem([identifier(a) for a in arguments])
               for _, arguments, original in facts.params
               if original is not None and len(set(arguments)) > 1}
    unlike = False  # series that share no word (hp_trend, unrestricted_seasonal) were drawn
    for statement in facts.block:
        for node in ast.walk(statement):
            if not (isinstance(node, ast.Call) and dotted_name(node.func).rsplit(".", 1)[-1]
                    in _DRAWS):
                continue
            data = [a for a in node.args if not isinstance(a, ast.Constant)]
            if data:
                name = _holder(data[1] if len(data) > 1 else data[0])
            elif isinstance(node.func, ast.Attribute) and not node.args:
                # `gdf[gdf.sig == 0].plot(ax=ax)`, `totals.plot.bar()` draw what they are
                # called on (`gdf.plot("STATE")` draws a column of it)
                drawn = node.func.value
                if isinstance(drawn, ast.Attribute) and drawn.attr == "plot":
                    drawn = drawn.value
                name = _holder(drawn)
                name = None if name in _MODULE_ALIASES | {"plt", "pylab"} or _canvas(name) \
                    else name
            else:
                name = None
            if name in varying:
                unlike = unlike or not varying[name]
                name = varying[name]
            if name and name not in _GENERIC_VALUES and len(name) > 1:
                # `arcs_df` holds arcs: what kind of container holds them says nothing more
                words = identifier(name).split("_")
                return "_".join(w for w in words if w not in _KINDS) or "_".join(words)
    # What the copies draw has nothing in common but being series: plot_series, not plot_fig.
    return "series" if unlike else None


def _saved(facts: Facts) -> str | None:
    """What a block that saves its figure saves it as: the file's name, or what the names the
    copies save under share (``regression_plot`` for ``save_fig("ridge_regression_plot")`` and
    ``save_fig("lasso_regression_plot")``), else ``figure``; None when it saves nothing."""
    for statement in facts.block:
        for node in ast.walk(statement):
            if not (isinstance(node, ast.Call) and re.fullmatch(
                    r"save_?fig(ure)?", dotted_name(node.func).rsplit(".", 1)[-1])):
                continue
            file = node.args[0] if node.args else None
            if not (isinstance(file, ast.Constant) and isinstance(file.value, str)):
                return "figure"
            values = [file.value]
            for _, arguments, original in facts.params:  # the names the other copies save as
                if original is None and _literal(arguments[0]) == file.value:
                    values = [str(_literal(a)) for a in arguments]
            stem = common_stem([identifier(re.split(r"[\\/]", v)[-1].split(".")[0])
                                for v in values])
            return stem if stem and stem != "fig" else "figure"
    return None


def _literal(text: str) -> object:
    """The value of a literal the copies pass (``"sgd_plot"``); None for other code."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _holder(node: ast.expr) -> str | None:
    """The name of what holds a value: ``variance`` for ``forecasts.variance.iloc[-1].values``."""
    while True:
        if isinstance(node, ast.Name):
            return node.id
        if isinstance(node, ast.Attribute) and node.attr not in _SELECTORS:
            return node.attr
        if isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        elif isinstance(node, ast.UnaryOp):
            node = node.operand
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr in _SELECTORS:
            node = node.func.value
        else:
            return None


_SEEDING = {"seed", "manual_seed", "set_seed", "default_rng", "RandomState", "Generator"}
_DRAWING = {"rand", "randn", "randint", "random", "normal", "standard_normal", "uniform",
            "integers", "choice", "multivariate_normal", "binomial", "poisson", "exponential",
            "gamma", "beta", "standard_t", "lognormal"}


def _simulates(block: Sequence[ast.stmt]) -> bool:
    """Whether the block makes up data: it starts by seeding a random generator
    (``np.random.seed(42)``, ``rng = np.random.default_rng(1)``) and draws from it."""
    seeds = {c.rsplit(".", 1)[-1] for c in _calls(block[:1])} & _SEEDING
    return bool(seeds and {c.rsplit(".", 1)[-1] for c in _calls(block[1:])} & _DRAWING)


# Names that say what a value is in general, not which: a function returning only these is
# better named after what it does.
_GENERIC_VALUES = {"data", "df", "res", "result", "results", "out", "output", "tmp", "value",
                   "values", "x", "y", "X", "raw", "table", "frame"}


def _loaded(facts: Facts) -> str | None:
    """What a block that starts by loading data loads, when what it returns first says no
    more (``data``): ``mroz`` for ``data = mroz.load()``, ``sales`` for ``df =
    pd.read_csv("sales.csv")``, else ``data``. What it returns after that (the labels of the
    data's categories, say) is the block preparing what it loaded."""
    if not facts.returns or facts.returns[0] not in _GENERIC_VALUES or not facts.block:
        return None
    first = facts.block[0]
    call = first.value if isinstance(first, ast.Assign) else None
    if not isinstance(call, ast.Call):
        return None
    name = dotted_name(call.func)
    method = name.rsplit(".", 1)[-1]
    if not (method.startswith(("load", "read_")) or method in {"fetch", "open_dataset"}):
        return None
    for argument in call.args[:1]:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):  # a file
            stem = identifier(re.split(r"[\\/]", argument.value)[-1].split(".")[0])
            if stem and stem not in _GENERIC_VALUES:
                return stem
        # what holds the bytes, read as they are or through a wrapper: pd.read_stata(
        # BytesIO(wpi1)); a name like `path` or `url` says where, not what, and one that
        # differs between the copies is not what they all load
        while isinstance(argument, ast.Call) and len(argument.args) == 1:
            argument = argument.args[0]
        if isinstance(argument, ast.Name) and argument.id not in _GENERIC_VALUES \
                and not set(identifier(argument.id).split("_")) & (_WHERE | facts.varying):
            return identifier(argument.id)
    receiver = name.rsplit(".", 2)[-2] if name.count(".") else ""
    if receiver and receiver not in _MODULE_ALIASES and receiver not in _GENERIC_VALUES:
        return identifier(receiver)  # a dataset: mroz.load(), sm.datasets.anes96.load_pandas()
    return "data"


# Words of names that say where data is, not what it is.
_WHERE = {"path", "paths", "file", "files", "filename", "fname", "fn", "filepath", "url", "uri",
          "dir", "folder", "name", "f", "fh", "fp", "buffer", "buf", "source", "src", "link"}

# Modules by their usual aliases: `pd.read_csv` loads nothing called `pd`.
_MODULE_ALIASES = {"pd", "pandas", "np", "numpy", "sm", "smf", "sp", "scipy", "json", "pickle",
                   "joblib", "torch", "tf", "xr", "pl", "polars", "datasets", "io", "os"}


def _fitted_model(block: Sequence[ast.stmt]) -> str | None:
    """What the block fits, named after its maker: ``ols`` for ``sm.OLS(y, X).fit()`` or ``mod =
    ols(f, data); mod.fit()``, ``linear_regression`` for ``LinearRegression().fit(X, y)``,
    ``model`` for ``model.fit()`` on a model made elsewhere (or ``sel.model.fit()``); None when
    nothing is fitted."""
    maker = _maker_of_fitted(block)
    word = identifier(dotted_name(maker).rsplit(".", 1)[-1]) if maker is not None else ""
    return word if word and word != "fit" else None


def _maker_of_fitted(block: Sequence[ast.stmt]) -> ast.expr | None:
    """The expression that makes what the block first fits: ``sm.OLS`` in ``sm.OLS(y,
    X).fit()`` and in ``mod = sm.OLS(y, X); mod.fit()``, ``model`` in ``model.fit()`` on a
    model made elsewhere, ``sel.model`` in ``sel.model.fit()``."""
    made: dict[str, ast.expr] = {}  # name -> what made it, from `name = Maker(...)` in the block
    looked_up: set[str] = set()  # `class_ = spec["class"]`: a variable holding a maker
    for statement in block:
        for node in ast.walk(statement):
            if (isinstance(node, ast.Assign) and len(node.targets) == 1
                    and isinstance(node.targets[0], ast.Name)):
                target = node.targets[0]
                if not isinstance(node.value, ast.Call):
                    looked_up.add(target.id)
                elif dotted_name(node.value.func):
                    # What a looked-up class makes is named better by the variable it makes
                    # (`estimator = class_(...)`): `class_` says no more than "a class".
                    maker = node.value.func
                    made[target.id] = (target if isinstance(maker, ast.Name)
                                       and maker.id in looked_up else maker)
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "fit"):
                receiver = node.func.value
                if isinstance(receiver, ast.Call) and dotted_name(receiver.func):
                    return receiver.func
                if isinstance(receiver, ast.Name):
                    return made.get(receiver.id, receiver)
                if isinstance(receiver, ast.Attribute) and dotted_name(receiver):
                    return receiver
    return None


# Calls that only dress a figure: a block making nothing else labels it.
_DRESSING = {"xlabel", "ylabel", "title", "suptitle", "set_xlabel", "set_ylabel", "set_title",
             "legend", "grid", "axis", "xlim", "ylim", "set_xlim", "set_ylim", "xticks", "yticks",
             "set_xticks", "set_yticks", "tick_params", "set_xticklabels", "set_yticklabels"}
_LABELS = {"xlabel", "ylabel", "title", "suptitle", "set_xlabel", "set_ylabel", "set_title"}


def _label_name(facts: Facts, calls: list[str]) -> str | None:
    """``label_axes`` for a block that only sets the labels (and titles, limits, ticks) of one
    object: what it does, whatever the section is about."""
    methods = [c.rsplit(".", 1)[-1] for c in calls]
    if not calls or not set(methods) <= _DRESSING or not set(methods) & _LABELS:
        return None
    receivers = {c.rsplit(".", 1)[0] if "." in c else "" for c in calls}
    if len(receivers) != 1:
        return None
    receiver = receivers.pop()
    parameter = {original: param for param, _, original in facts.params if original is not None}
    if receiver in parameter:
        return f"label_{identifier(parameter[receiver])}"
    return "label_plot" if receiver in {"", "plt", "pyplot", "matplotlib.pyplot"} else None


def docstring(facts: Facts, name: str) -> str:
    """What the function does, its parameters and what it returns (Google style)."""
    calls = _calls(facts.block, facts.renamed)
    summary = _sentence(facts.comment, facts) or _sentence(facts.section, facts) \
        or _summary(facts, calls, name)
    lines = [summary, ""]
    plotted = [c for c in calls if c.rsplit(".", 1)[-1] in PLOT_METHODS]
    others = [c for c in calls if c not in plotted and c not in _BUILTINS
              and c.rsplit(".", 1)[-1] not in _GENERIC_CALLS]
    does = []
    if others:
        does.append("Calls " + _join([f"`{c}`" for c in others[:5]]) + ".")
    if plotted:
        does.append("Draws with " + _join([f"`{c}`" for c in plotted[:5]]) + ".")
    if "print" in calls:
        does.append("Prints its results.")
    if does:
        lines += [" ".join(does), ""]
    if facts.params:
        lines.append("Args:")
        for param, arguments, original in facts.params:
            lines.append(f"    {param}: {_describe_param(arguments, original, facts)}")
        lines.append("")
    if facts.escape is not None:
        lines += ["Returns:", "    True where the notebook's loop "
                  + ("stops (`break`)." if facts.escape == "break"
                     else "goes on to its next round (`continue`)."), ""]
    elif facts.returns or facts.returns_display:
        lines.append("Returns:")
        if facts.returns_display:
            lines.append("    The value the notebook displays.")
        else:
            lines.append("    " + ", ".join(f"`{r}`" for r in facts.returns) + ".")
        lines.append("")
    text = "\n".join(lines).rstrip("\n")
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if "\n" in text:
        return f'"""{_indent(text)}\n    """'
    return f'"""{text}"""'


def _constants(facts: Facts) -> set[str]:
    """Names (as the function spells them) that the block only sets to constants and never
    changes (`squares = {}` filled in a loop is what the block computes)."""
    constant: dict[str, str] = {}  # as the block spells it -> as the function does
    computed = set(changed_in_place(facts.block))
    for statement in facts.block:
        data = is_data(statement)
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                if data:
                    constant[node.id] = facts.renamed.get(id(node), node.id)
                else:
                    computed.add(node.id)
    return {spelt for name, spelt in constant.items() if name not in computed}


def _bound(block: Sequence[ast.stmt]) -> list[str]:
    found: dict[str, None] = {}
    for statement in block:
        for node in ast.walk(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                found.setdefault(node.id, None)
    return list(found)


def _summary(facts: Facts, calls: list[str], name: str) -> str:
    """A first line from what the block does, when no comment or title says it."""
    params = [f"`{p}`" for p, _, _ in facts.params]
    source = f" from {_join(params)}" if params else ""
    verb = _verb(facts, calls)
    labelled = _label_name(facts, calls)
    if labelled is not None:
        target = "the plot" if labelled == "label_plot" else f"`{labelled.removeprefix('label_')}`"
        return f"Set the {_join(_dressed(calls))} of {target}."
    if name.startswith("show_plot"):
        dressed = _dressed([c for c in calls if c.rsplit(".", 1)[-1] not in
                            ("show", "tight_layout")])
        return f"Set the {_join(dressed)} of the plot and show it." if dressed \
            else "Show the plot."
    if verb == "plot":
        return f"Draw the figure{source}." if params else "Draw the figure."
    # (A block that labels or draws a plot says so first, though the notebook displays
    # what its last call returns: the Returns section says that.)
    if facts.returns_display:
        return f"The value the notebook displays, computed{source}."
    maker = _maker_of_fitted(facts.block)
    fitted = _as_written(maker, facts.renamed) if maker is not None else ""
    if fitted:  # `ols` passed in is what is fitted, not what it is fitted with
        data = [p for p in params if p != f"`{fitted.split('.')[0]}`"]
        return f"Fit `{fitted}`" + (f" with {_join(data)}." if data else ".")
    if facts.returns:  # (what a fitting block returns, the Returns section says)
        # What the name says the block does (load_mroz, simulate_data), else "Compute".
        doing = {"load": "Load", "simulate": "Simulate"}.get(name.split("_", 1)[0], "Compute")
        return f"{doing} {_join([f'`{r}`' for r in facts.returns])}{source}."
    if verb == "report":
        return f"Print what is computed{source}."
    changed = [f"`{p}`" for p, _, original in facts.params if original in facts.mutated]
    if changed:
        return f"Update {_join(changed)} in place."
    return f"Run the repeated steps{source}."


_DRESSED = {"xlabel": "axis labels", "ylabel": "axis labels", "title": "title",
            "suptitle": "title", "xlim": "limits", "ylim": "limits", "axis": "limits",
            "xticks": "ticks", "yticks": "ticks", "tick_params": "ticks", "legend": "legend",
            "grid": "grid"}


def _dressed(calls: list[str]) -> list[str]:
    """What dressing calls set (``plt.xlabel`` -> axis labels), each once, in order."""
    return list(dict.fromkeys(_DRESSED.get(c.rsplit(".", 1)[-1].removeprefix("set_"), "ticks")
                              for c in calls))


def _indent(text: str) -> str:
    return "\n".join(line and ("    " + line if i else line)
                     for i, line in enumerate(text.split("\n")))


def _verb_alone(words: list[str]) -> bool:
    """"## Format" (once "GML", which the copies differ in, is set aside), "# Create new
    figure" (a figure is no name): a verb without an object says nothing of the block."""
    return bool(words) and words[0] in _VERBS and set(words[1:]) <= {"new", "another"}


def _sentence(text: str | None, facts: Facts) -> str | None:
    words = _untrailed(_words(text, facts))
    if len(words) < 2 or _verb_alone(words):  # "Format.", "Results.": the code says more
        return None
    if words[0] in _ACTIONS and not _does(words[0], facts):
        return None  # "Load data." over copies that load nothing
    sentence = " ".join(words)
    return sentence[0].upper() + sentence[1:] + "."


_MUTATORS = {"append", "extend", "insert", "update", "pop", "popitem", "remove", "clear", "sort",
             "setdefault", "add", "discard", "fit", "partial_fit", "reverse"}


def changed_in_place(block: Sequence[ast.stmt]) -> frozenset[str]:
    """Names whose object the block visibly changes: item or attribute assignment, ``append``
    and the like (a narrower, readable notion than scope analysis's conservative one)."""
    found = set()
    for statement in block:
        for node in ast.walk(statement):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AugAssign, ast.AnnAssign)) else []
            for target in targets:
                while isinstance(target, (ast.Subscript, ast.Attribute)):
                    target = target.value
                    if isinstance(target, ast.Name):
                        found.add(target.id)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in _MUTATORS and isinstance(node.func.value, ast.Name):
                found.add(node.func.value.id)
    return frozenset(found)


def _describe_param(arguments: Sequence[str], original: str | None, facts: Facts) -> str:
    """How the body uses the parameter, and the values the notebook passes when they differ."""
    parts = []
    if original is not None:
        attributes: dict[str, None] = {}
        called = False
        for statement in facts.block:
            for node in ast.walk(statement):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                        and node.value.id == original:
                    attributes.setdefault(node.attr, None)
                elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                        and node.func.id == original:
                    called = True
        if called:
            parts.append("The class to instantiate." if all(looks_like_class(a) for a in arguments)
                         else "Called as a function.")
        if attributes:
            parts.append("Its " + _join([f"`{a}`" for a in list(attributes)[:4]]) + " are used."
                         if len(attributes) > 1 else f"Its `{next(iter(attributes))}` is used.")
        if original in facts.mutated:
            parts.append("Changed in place.")
    distinct = list(dict.fromkeys(arguments))
    if len(distinct) > 1 or original is None:
        values = _join([f"`{_short(a)}`" for a in distinct[:3]], "or")
        parts.append(("For example " if len(distinct) > 3 else "The notebook passes ")
                     + values + ".")
    return " ".join(parts) or "Read only."


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 40 else text[:37] + "..."


def _join(items: list[str], word: str = "and") -> str:
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {word} " + items[-1]
