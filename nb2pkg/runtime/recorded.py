"""Calls recorded while the notebooks ran: how they are stored, read back and compared.

Each call is one JSON file, ``<folder>/<notebook>-cell<N>-<k>.json``, in a folder named
after the function (``core.clean_sales``)::

    {"function": "pkg.core.clean_sales", "notebook": "sales.ipynb", "cell": 4,
     "args": [...], "kwargs": {...}, "result": ..., "printed": "...",
     "args_after": [...]}

``result_type`` (type and shape) replaces ``result`` when the result could not be stored
(a figure, a model); ``args_after`` is there when the call changed its arguments. Values
are stored in the most standard format that keeps them exactly:

- ``None``, bool, int, str, finite float, list, dict with str keys: plain JSON;
- tuple, set, frozenset, other dicts, NaN and infinities: a JSON object marked with
  ``"__type__"`` (``{"__type__": "tuple", "items": [1, 2]}``);
- numpy scalars: ``{"__type__": "numpy", "dtype": "int32", "value": 5}`` (but
  ``numpy.float64`` is a float: plain JSON);
- numpy arrays without Python objects: a ``.npy`` file beside the JSON;
- pandas DataFrames and Series: a ``.parquet`` file when pyarrow is installed and the
  value reads back identical, else a ``.pkl`` file (pickle, exact but tied to pandas
  versions);
- importable functions and classes: ``{"__type__": "ref", "module": ..., "name": ...}``;
- instances of importable classes: their class and attributes, rebuilt without
  calling ``__init__``.

Anything else is "unrecordable": only its type (and shape) is kept. numpy and pandas are
imported only when a value needs them.
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, MutableMapping

TAG = "__type__"  # the key that marks a JSON object as an encoded value, not a dict
DEFAULT_LIMIT = 100_000  # bytes per recorded value (JSON and files together)


class Unrecordable(Exception):
    """The value cannot be stored faithfully (or is over the size limit)."""


# -- storing ---------------------------------------------------------------------------


def encode(
    value: Any, files: MutableMapping[str, bytes], limit: int = DEFAULT_LIMIT
) -> Any:
    """A JSON-able form of ``value``; raises ``Unrecordable`` when there is none.

    Arrays and pandas objects go into ``files`` (file name → content, named by content)
    and are referenced by name.
    """
    added: dict[str, bytes] = {}
    try:
        encoded = _encode(value, added)
    # A cycle (as in a statsmodels summary), or nested too deeply.
    except RecursionError:
        raise Unrecordable("refers to itself, or is nested too deeply") from None
    size = len(json.dumps(encoded)) + sum(len(data) for data in added.values())
    if size > limit:
        raise Unrecordable(f"larger than {limit} bytes")
    files.update(added)
    return encoded


def _encode(value: Any, files: dict[str, bytes]) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {TAG: "float", "value": repr(value)}
    if isinstance(value, list):
        return [_encode(v, files) for v in value]
    # Only plain tuples: a named tuple stored as one would not compare equal to itself.
    if type(value) is tuple:
        return {TAG: "tuple", "items": [_encode(v, files) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and TAG not in value:
            return {k: _encode(v, files) for k, v in value.items()}
        pairs = [[_encode(k, files), _encode(v, files)] for k, v in value.items()]
        return {TAG: "dict", "pairs": pairs}
    if type(value) in (set, frozenset):
        items = sorted((_encode(v, files) for v in value), key=repr)
        return {TAG: type(value).__name__, "items": items}
    module, name = type(value).__module__.split(".")[0], type(value).__name__
    if module == "numpy":
        import numpy

        if isinstance(value, numpy.ndarray) and value.dtype.kind in "biufcUSMm":
            buffer = io.BytesIO()
            numpy.save(buffer, value, allow_pickle=False)
            return {TAG: "ndarray", "file": _stored(files, buffer.getvalue(), ".npy")}
        if isinstance(value, numpy.generic) and value.dtype.kind in "biufc":
            return {TAG: "numpy", "dtype": str(value.dtype), "value": value.item()}
    if module == "pandas" and name in ("DataFrame", "Series"):
        if not _plain_objects(value):
            raise Unrecordable(f"{name} holding arbitrary objects")
        return _store_pandas(value, files)
    if _importable(value):  # a module-level function or class: stored by name
        return {TAG: "ref", "module": value.__module__, "name": value.__qualname__}
    if (
        _importable(type(value))
        and isinstance(getattr(value, "__dict__", None), dict)
        and not hasattr(value, "__slots__")
    ):
        # An instance of an importable class with plain attributes (a spec, a settings
        # object): stored as its class and its attributes, rebuilt without __init__.
        return {
            TAG: "object",
            "module": type(value).__module__,
            "name": type(value).__qualname__,
            "state": _encode(vars(value), files),
        }
    raise Unrecordable(f"{type(value).__module__}.{type(value).__qualname__}")


def _stored(files: dict[str, bytes], data: bytes, suffix: str) -> str:
    # Named by content: the same value recorded twice is one file, and two calls with
    # the same arguments are seen to be the same call.
    name = hashlib.sha256(data).hexdigest()[:16] + suffix
    files[name] = data
    return name


_FRAME = object()  # what _from_parquet reads: a DataFrame, not a series of that name


def _store_pandas(value: Any, files: dict[str, bytes]) -> dict[str, Any]:
    """Parquet when it reads back identical (pyarrow installed), else pickle."""
    kind = type(value).__name__
    try:
        data = _parquet(value)
    except Exception:  # no pyarrow, or a type parquet cannot hold: pickle is exact
        data = None
    if data is None:
        return {TAG: kind, "file": _stored(files, pickle.dumps(value), ".pkl")}
    stored = {TAG: kind, "file": _stored(files, data, ".parquet")}
    if kind == "Series":  # parquet holds a table: the series is its one column
        stored["name"] = _encode(value.name, files)
    return stored


def _parquet(value: Any) -> bytes | None:
    """``value`` as parquet, or None when it would not read back identical."""
    import pandas

    series = isinstance(value, pandas.Series)
    buffer = io.BytesIO()
    (value.to_frame(name="values") if series else value).to_parquet(buffer)
    back = _from_parquet(buffer.getvalue(), value.name if series else _FRAME)
    if type(back) is not type(value) or not back.equals(value):
        return None
    # equals() ignores the types of the index and of the column labels, and names.
    same = type(back.index) is type(value.index) and back.index.equals(value.index)
    same = same and list(back.index.names) == list(value.index.names)
    if not series:
        same = same and list(back.columns) == list(value.columns)
        same = same and type(back.columns) is type(value.columns)
    return buffer.getvalue() if same else None


def _from_parquet(data: bytes, series_name: Any = _FRAME) -> Any:
    import pandas

    frame = pandas.read_parquet(io.BytesIO(data))
    return frame if series_name is _FRAME else frame["values"].rename(series_name)


def _importable(thing: Any) -> bool:
    module = getattr(thing, "__module__", None)
    name = getattr(thing, "__qualname__", None)
    if (
        not isinstance(module, str)
        or not isinstance(name, str)
        or module == "__main__"
        or "<" in name
        or not callable(thing)
    ):
        return False
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except (
        Exception
    ):  # not importable here: then it cannot be replayed in a test either
        return False
    return found is thing or getattr(found, "__wrapped__", None) is thing


def _plain_objects(value: Any) -> bool:
    frame = value.to_frame() if hasattr(value, "to_frame") else value
    for position in range(frame.shape[1]):
        column = frame.iloc[:, position]
        if str(column.dtype) == "object" and not all(
            v is None or isinstance(v, (str, int, float, bool)) for v in column
        ):
            return False
    return True


def describe(value: Any) -> dict[str, Any]:
    """Type and shape of a value that cannot be stored, for type/shape tests."""
    info: dict[str, Any] = {
        "type": f"{type(value).__module__}.{type(value).__qualname__}"
    }
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        info["shape"] = list(shape)
    elif isinstance(value, (list, tuple, dict, set, str)):
        info["len"] = len(value)
    return info


# -- reading ---------------------------------------------------------------------------


def decode(data: Any, folder: Path | str = ".") -> Any:
    """The value ``encode`` stored; files are read from ``folder``."""
    if isinstance(data, list):
        return [decode(v, folder) for v in data]
    if not isinstance(data, dict):
        return data
    if TAG not in data:
        return {k: decode(v, folder) for k, v in data.items()}
    kind = data[TAG]
    if kind == "float":
        return float(data["value"])
    if kind == "tuple":
        return tuple(decode(v, folder) for v in data["items"])
    if kind == "dict":
        return {
            _hashable(decode(k, folder)): decode(v, folder) for k, v in data["pairs"]
        }
    if kind in ("set", "frozenset"):
        items = (_hashable(decode(v, folder)) for v in data["items"])
        return set(items) if kind == "set" else frozenset(items)
    if kind == "numpy":
        import numpy

        return numpy.dtype(data["dtype"]).type(data["value"])
    if kind == "ndarray":
        import numpy

        return numpy.load(Path(folder) / data["file"], allow_pickle=False)
    if kind in ("DataFrame", "Series"):
        path = Path(folder) / data["file"]
        if path.suffix == ".parquet":
            name = decode(data.get("name"), folder) if kind == "Series" else _FRAME
            return _from_parquet(path.read_bytes(), name)
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - written by the recording run
    if kind in ("ref", "object"):
        found: Any = importlib.import_module(data["module"])
        for part in data["name"].split("."):
            found = getattr(found, part)
        if kind == "ref":
            return found
        instance = found.__new__(found)
        instance.__dict__.update(decode(data["state"], folder))
        return instance
    raise ValueError(f"unknown recorded kind {kind!r}")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def files_of(data: Any) -> list[str]:
    """The names of the files an encoded value refers to, in order."""
    if isinstance(data, list):
        return [name for item in data for name in files_of(item)]
    if not isinstance(data, dict):
        return []
    own = [data["file"]] if TAG in data and "file" in data else []
    return own + [name for value in data.values() for name in files_of(value)]


def renamed(data: Any, names: dict[str, str]) -> Any:
    """The encoded value with the files it refers to renamed (``names``: old → new)."""
    if isinstance(data, list):
        return [renamed(item, names) for item in data]
    if not isinstance(data, dict):
        return data
    copy = {k: renamed(v, names) for k, v in data.items()}
    if TAG in data and "file" in data:
        copy["file"] = names.get(data["file"], data["file"])
    return copy


@dataclass(frozen=True)
class Call:
    """One recorded call, decoded."""

    function: str  # dotted path: "pkg.module.function"
    notebook: str  # the notebook file that made the call
    cell: int | None  # the cell of the original notebook that made it
    args: list
    kwargs: dict
    printed: str  # what the call printed
    result: Any = None
    result_type: dict | None = None  # set when only the result's type could be stored
    args_after: list | None = None  # the arguments after the call, when it changed them

    def target(self) -> Callable:
        """The recorded function, imported."""
        module, _, name = self.function.rpartition(".")
        return getattr(importlib.import_module(module), name)


def call_id(path: Path | str) -> str:
    """``<function>-<notebook>-cell<N>-<k>`` for the call stored at ``path``."""
    path = Path(path)
    return f"{path.parent.name.rpartition('.')[2]}-{path.stem}"


def load_call(path: Path | str) -> Call:
    """The call stored at ``path`` (its files are read from the same folder)."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    folder = path.parent
    return Call(
        function=data["function"],
        notebook=data["notebook"],
        cell=data["cell"],
        args=decode(data["args"], folder),
        kwargs=decode(data["kwargs"], folder),
        printed=data["printed"],
        result=decode(data.get("result"), folder),
        result_type=data.get("result_type"),
        args_after=decode(data["args_after"], folder) if "args_after" in data else None,
    )


# -- comparing -------------------------------------------------------------------------


def check_call(
    call: Call,
    result: Any,
    printed: str,
    normalize: Callable[[str], str] = lambda text: text,
) -> None:
    """Raise ``AssertionError`` unless a new run of ``call`` did what was recorded.

    ``result`` and ``printed`` are what the new run returned and printed, and ``call.args``
    its arguments after it: the result as recorded (or its type and shape, when only
    those were stored), the same printed text once both are ``normalize``d, the same
    changes to the arguments. The generated tests and nb2pkg (which replays each call once
    before writing it, and drops those that do not reproduce) use this one check.
    """
    if call.result_type is None:
        assert_same(result, call.result)
    else:
        assert describe(result) == call.result_type, (
            describe(result),
            call.result_type,
        )
    assert normalize(printed) == normalize(call.printed), (printed, call.printed)
    if call.args_after is not None:
        assert_same(call.args, call.args_after)


def assert_same(actual: Any, expected: Any, rel: float = 1e-9) -> None:
    """Equal: exactly for integers and strings, within ``rel`` for floats.

    pandas objects are compared with ``pandas.testing``, numpy arrays and scalars with
    ``numpy.testing``, containers item by item, objects without an ``__eq__`` of their
    own by class and attributes.
    """
    kind = type(expected).__module__.split(".")[0]
    if kind == "pandas":
        import pandas.testing

        options = dict(check_exact=False, rtol=rel, check_index_type=False)
        if type(expected).__name__ == "DataFrame":
            pandas.testing.assert_frame_equal(
                actual, expected, check_column_type=False, **options
            )
        else:
            pandas.testing.assert_series_equal(actual, expected, **options)
        return
    if kind == "numpy":
        import numpy
        import numpy.testing

        actual_array, expected_array = numpy.asarray(actual), numpy.asarray(expected)
        assert actual_array.shape == expected_array.shape, (
            actual_array.shape,
            expected_array.shape,
        )
        if expected_array.dtype.kind in "fc":
            numpy.testing.assert_allclose(
                actual_array, expected_array, rtol=rel, equal_nan=True
            )
        else:
            numpy.testing.assert_array_equal(actual_array, expected_array)
        return
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        assert (
            actual == expected
            or (math.isnan(expected) and math.isnan(actual))
            or math.isclose(actual, expected, rel_tol=rel)
        ), f"{actual!r} != {expected!r}"
        return
    if isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected), (type(actual), type(expected))
        assert len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected):
            assert_same(a, e, rel)
        return
    if isinstance(expected, dict):
        # As in dict equality, key order does not matter.
        assert isinstance(actual, dict) and set(actual) == set(expected), (
            actual,
            expected,
        )
        for key in expected:
            assert_same(actual[key], expected[key], rel)
        return
    if type(expected).__eq__ is object.__eq__ and isinstance(
        getattr(expected, "__dict__", None), dict
    ):
        # Objects without their own equality compare by class and attributes.
        assert type(actual) is type(expected), (type(actual), type(expected))
        assert_same(vars(actual), vars(expected), rel)
        return
    assert type(actual) is type(expected), (type(actual), type(expected))
    assert actual == expected, f"{actual!r} != {expected!r}"
