"""A readable JSON encoding of recorded values, and comparisons that fit each type.

Recorded calls are stored in generated projects under ``tests/data/recorded/`` and read back by
the generated tests, which import this module (nb2pkg is a test dependency of those projects).
Numbers, strings, containers of them, numpy arrays and pandas objects are encoded; anything else
is "unrecordable" and only its type (and shape, when it has one) is kept.
"""

from __future__ import annotations

import json
import math
from typing import Any

TAG = "__nb2pkg__"


class Unrecordable(Exception):
    """The value cannot be stored faithfully (or is over the size limit)."""


def encode(value: Any, limit: int = 100_000) -> Any:
    """A JSON-able form of ``value``; raises ``Unrecordable`` when it has none or is too big."""
    encoded = _encode(value)
    if len(json.dumps(encoded)) > limit:
        raise Unrecordable(f"larger than {limit} bytes")
    return encoded


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {TAG: "float", "value": repr(value)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        return items if isinstance(value, list) else {TAG: "tuple", "items": items}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {TAG: "dict", "items": {k: _encode(v) for k, v in value.items()}}
        return {TAG: "pairs", "items": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if isinstance(value, (set, frozenset)):
        return {TAG: "set", "items": sorted((_encode(v) for v in value), key=repr)}
    kind = type(value).__module__.split(".")[0], type(value).__name__
    if kind[0] == "numpy":
        import numpy

        if isinstance(value, numpy.ndarray) and value.dtype.kind in "biufcUS":
            return {TAG: "ndarray", "dtype": str(value.dtype), "shape": list(value.shape),
                    "data": value.tolist()}
        if isinstance(value, numpy.generic):
            return {TAG: "numpy", "dtype": str(value.dtype), "value": value.item()}
    if kind[0] == "pandas" and kind[1] in ("DataFrame", "Series"):
        # orient="split" keeps index, columns and order; dtypes are restored from the record.
        dtypes = ({c: str(t) for c, t in value.dtypes.items()} if kind[1] == "DataFrame"
                  else str(value.dtype))
        if any("object" == str(t) for t in (dtypes.values() if isinstance(dtypes, dict) else [dtypes])):
            if not _plain_objects(value):
                raise Unrecordable(f"{kind[1]} holding arbitrary objects")
        return {TAG: kind[1], "dtypes": dtypes, "data": json.loads(value.to_json(orient="split")),
                "name": getattr(value, "name", None) if kind[1] == "Series" else None}
    if _importable(value):  # a module-level function or class: stored by name
        return {TAG: "ref", "module": value.__module__, "name": value.__qualname__}
    if _importable(type(value)) and isinstance(getattr(value, "__dict__", None), dict) \
            and not hasattr(value, "__slots__"):
        # An instance of an importable class with plain attributes (a spec, a settings object):
        # stored as its class and its attributes, rebuilt without calling __init__.
        return {TAG: "object", "module": type(value).__module__,
                "name": type(value).__qualname__, "state": _encode(vars(value))}
    raise Unrecordable(f"{type(value).__module__}.{type(value).__qualname__}")


def _importable(thing: Any) -> bool:
    import importlib

    module, name = getattr(thing, "__module__", None), getattr(thing, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(name, str) or module == "__main__" \
            or "<" in name or not callable(thing):
        return False
    try:
        found: Any = importlib.import_module(module)
        for part in name.split("."):
            found = getattr(found, part)
    except Exception:  # not importable here: then it cannot be replayed in a test either
        return False
    return found is thing or getattr(found, "__wrapped__", None) is thing


def _plain_objects(value: Any) -> bool:
    frame = value.to_frame() if hasattr(value, "to_frame") else value
    for column in frame.columns:
        if str(frame[column].dtype) == "object" and not all(
                v is None or isinstance(v, (str, int, float, bool)) for v in frame[column]):
            return False
    return True


def decode(data: Any) -> Any:
    """The value ``encode`` stored."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if not isinstance(data, dict) or TAG not in data:
        return data
    kind = data[TAG]
    if kind == "float":
        return float(data["value"])
    if kind == "tuple":
        return tuple(decode(v) for v in data["items"])
    if kind == "dict":
        return {k: decode(v) for k, v in data["items"].items()}
    if kind == "pairs":
        return {_hashable(decode(k)): decode(v) for k, v in data["items"]}
    if kind == "set":
        return {_hashable(decode(v)) for v in data["items"]}
    if kind in ("ndarray", "numpy"):
        import numpy

        if kind == "numpy":
            return numpy.dtype(data["dtype"]).type(data["value"])
        return numpy.array(data["data"], dtype=data["dtype"]).reshape(data["shape"])
    if kind in ("ref", "object"):
        import importlib

        found: Any = importlib.import_module(data["module"])
        for part in data["name"].split("."):
            found = getattr(found, part)
        if kind == "ref":
            return found
        instance = found.__new__(found)
        instance.__dict__.update(decode(data["state"]))
        return instance
    if kind in ("DataFrame", "Series"):
        import io

        import pandas

        text = io.StringIO(json.dumps(data["data"]))
        if kind == "DataFrame":
            frame = pandas.read_json(text, orient="split", dtype=False)
            return frame.astype(data["dtypes"]) if len(frame.columns) else frame
        series = pandas.read_json(text, orient="split", typ="series", dtype=False)
        return series.astype(data["dtypes"]).rename(data["name"])
    raise ValueError(f"unknown recorded kind {kind!r}")


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def describe(value: Any) -> dict[str, Any]:
    """Type and shape of a value that cannot be recorded, for type/shape tests."""
    info: dict[str, Any] = {"type": f"{type(value).__module__}.{type(value).__qualname__}"}
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        info["shape"] = list(shape)
    elif isinstance(value, (list, tuple, dict, set, str)):
        info["len"] = len(value)
    return info


def assert_same(actual: Any, expected: Any, rel: float = 1e-9) -> None:
    """Equal, exactly for integers and strings, within ``rel`` for floats; numpy/pandas aware."""
    kind = type(expected).__module__.split(".")[0]
    if kind == "pandas":
        import pandas.testing as pdt

        options = dict(check_exact=False, rtol=rel, check_dtype=False, check_index_type=False)
        if type(expected).__name__ == "DataFrame":
            pdt.assert_frame_equal(actual, expected, check_column_type=False, **options)
        else:
            pdt.assert_series_equal(actual, expected, **options)
        return
    if kind == "numpy":
        import numpy

        actual_array, expected_array = numpy.asarray(actual), numpy.asarray(expected)
        assert actual_array.shape == expected_array.shape, (actual_array.shape, expected_array.shape)
        if expected_array.dtype.kind in "fc":
            numpy.testing.assert_allclose(actual_array, expected_array, rtol=rel, equal_nan=True)
        else:
            numpy.testing.assert_array_equal(actual_array, expected_array)
        return
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        assert actual == expected or (math.isnan(expected) and math.isnan(actual)) or \
            math.isclose(actual, expected, rel_tol=rel), f"{actual!r} != {expected!r}"
        return
    if isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected), (actual, expected)
        for a, e in zip(actual, expected):
            assert_same(a, e, rel)
        return
    if isinstance(expected, dict):
        # Like dict equality, key order does not matter (the stored JSON is written sorted).
        assert isinstance(actual, dict) and set(actual) == set(expected), (actual, expected)
        for key in expected:
            assert_same(actual[key], expected[key], rel)
        return
    if type(expected).__eq__ is object.__eq__ and isinstance(getattr(expected, "__dict__", None), dict):
        # Objects without their own equality compare by class and attributes.
        assert type(actual) is type(expected), (type(actual), type(expected))
        assert_same(vars(actual), vars(expected), rel)
        return
    assert type(actual) is type(expected) and actual == expected, f"{actual!r} != {expected!r}"
