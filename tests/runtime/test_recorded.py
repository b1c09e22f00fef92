"""Recorded values (nb2pkg/runtime/recorded.py): standard formats that round-trip exactly, and
comparisons that fit each type (numpy.testing, pandas.testing)."""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import re
import statistics
import string

import numpy as np
import pandas as pd
import pytest

from nb2pkg.runtime.recorded import (Unrecordable, assert_same, call_id, decode, encode,
                                     files_of, load_call, renamed)

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def roundtrip(value, tmp_path):
    files: dict[str, bytes] = {}
    data = encode(value, files)
    json.dumps(data)  # plain JSON
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return data, files, decode(json.loads(json.dumps(data)), tmp_path)


@pytest.mark.parametrize("value", [
    1, 2.5, "text", None, True, [1, (2, "3")], {"a": [1.5]}, {1: "x"}, {1, 2}, frozenset({3}),
    float("nan"), float("-inf"), {"__type__": "a user's key"}, np.arange(6).reshape(2, 3),
    np.float64(0.25), np.int32(7), np.array(["2024-01-01"], dtype="datetime64[D]"),
    pd.DataFrame({"a": [1, 2], "b": ["x", None]}), pd.Series([1.5, 2.5], name="s"),
    pd.DataFrame({"x": [1.0]}, index=pd.Index(["r"], name="row")), statistics.mean,
    argparse.Namespace(a=1, b=[2.0]), string.Template("$who"),
], ids=lambda value: re.sub(r" at 0x[0-9a-f]+", "", repr(value)))  # stable across processes
def test_round_trip(value, tmp_path) -> None:
    _, _, back = roundtrip(value, tmp_path)
    assert_same(back, value)
    # numpy.float64 is a float: stored as a plain JSON number, for readable data.
    assert type(back) is (float if type(value) is np.float64 else type(value))


def test_plain_values_are_plain_json(tmp_path) -> None:
    value = {"rows": [1, 2.5, "x", None, True], "nested": {"k": []}}
    data, files, _ = roundtrip(value, tmp_path)
    assert data == value and files == {}


def test_arrays_and_frames_are_files_in_standard_formats(tmp_path) -> None:
    array, frame = np.arange(4.0), pd.DataFrame({"a": [1.5, 2.5]})
    data, files, back = roundtrip({"array": array, "frame": frame}, tmp_path)
    assert data["array"]["__type__"] == "ndarray" and data["array"]["file"].endswith(".npy")
    np.testing.assert_array_equal(np.load(tmp_path / data["array"]["file"]), array)
    suffix = ".parquet" if HAS_PYARROW else ".pkl"
    assert data["frame"]["file"].endswith(suffix)
    assert sorted(files) == sorted(files_of(data))
    pd.testing.assert_frame_equal(back["frame"], frame)


@pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")
def test_frames_parquet_cannot_hold_exactly_are_pickled(tmp_path) -> None:
    frame = pd.DataFrame({"a": ["x", 1]})  # parquet holds one type per column
    data, _, back = roundtrip(frame, tmp_path)
    assert data["file"].endswith(".pkl")
    pd.testing.assert_frame_equal(back, frame)
    series = pd.Series([1, 2], name="n", index=pd.Index(["a", "b"], name="key"))
    data, _, back = roundtrip(series, tmp_path)
    assert data["file"].endswith(".parquet")
    pd.testing.assert_series_equal(back, series)


def test_equal_values_are_one_file_named_by_content(tmp_path) -> None:
    files: dict[str, bytes] = {}
    first, second = encode(np.arange(3), files), encode(np.arange(3), files)
    assert first == second and len(files) == 1
    assert renamed(first, {first["file"]: "result.npy"})["file"] == "result.npy"


def test_floats_are_compared_with_a_tolerance_integers_and_dtypes_exactly() -> None:
    assert_same(0.1 + 0.2, 0.3)
    with pytest.raises(AssertionError):
        assert_same(3, 4)
    with pytest.raises(AssertionError):
        assert_same(pd.DataFrame({"a": [1.0]}), pd.DataFrame({"a": [1.1]}))
    with pytest.raises(AssertionError):
        assert_same(pd.Series([1, 2]), pd.Series([1.0, 2.0]))  # a changed dtype is a change
    with pytest.raises(AssertionError):
        assert_same(np.array([1.0, 2.0]), np.array([1.0, 2.5]))


def test_objects_compare_by_class_and_attributes(tmp_path) -> None:
    one, other = string.Template("$a"), string.Template("$b")  # no __eq__ of their own
    with pytest.raises(AssertionError):
        assert_same(roundtrip(one, tmp_path)[2], other)


def test_dict_subclasses_are_stored_as_dicts_named_tuples_are_not_recorded(tmp_path) -> None:
    counts = collections.Counter("aab")
    assert_same(roundtrip(counts, tmp_path)[2], dict(counts))
    with pytest.raises(Unrecordable):
        encode(collections.namedtuple("Point", "x y")(1, 2), {})


def test_unrecordable_values_say_why() -> None:
    with pytest.raises(Unrecordable, match="generator"):
        encode((x for x in [1]), {})
    with pytest.raises(Unrecordable, match="larger than"):
        encode(list(range(10_000)), {}, limit=1_000)
    files: dict[str, bytes] = {}
    with pytest.raises(Unrecordable, match="larger than"):
        encode(np.zeros(10_000), files, limit=1_000)  # files count towards the limit
    assert files == {}
    with pytest.raises(Unrecordable, match="arbitrary objects"):
        encode(pd.DataFrame({"a": [object()]}), {})
    local = lambda x: x  # noqa: E731 - not importable by name, so not replayable
    with pytest.raises(Unrecordable):
        encode(local, {})


def test_a_stored_call_reads_back_with_its_id(tmp_path) -> None:
    folder = tmp_path / "core.scale"
    folder.mkdir()
    files: dict[str, bytes] = {}
    args = encode([np.arange(3)], files)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    (folder / "sales-cell4-1.json").write_text(json.dumps({
        "function": "statistics.fmean", "notebook": "sales.ipynb", "cell": 4, "args": args,
        "kwargs": {}, "result": 1.0, "printed": ""}))
    call = load_call(folder / "sales-cell4-1.json")
    assert call_id(folder / "sales-cell4-1.json") == "scale-sales-cell4-1"
    assert call.target() is statistics.fmean and call.args_after is None
    assert_same(call.target()(*call.args, **call.kwargs), call.result)
