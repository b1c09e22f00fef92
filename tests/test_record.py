"""Recorded calls, converter side (nb2pkg/record.py): the files of tests/data/recorded/."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pandas as pd

from nb2pkg import record  # by module: pytest would collect record.test_data as a test
from nb2pkg.record import RecordedCall
from nb2pkg.runtime.recorded import assert_same, encode, load_call

FRAMES = ".parquet" if importlib.util.find_spec("pyarrow") else ".pkl"


def recorded(function: str, args: list, result, cell: int = 4, **more) -> RecordedCall:
    files: dict[str, bytes] = {}
    return RecordedCall(function=function, cell=cell, notebook="sales.ipynb",
                        args=encode(args, files), kwargs=encode({}, files),
                        result=encode(result, files), files=files, **more)


def test_each_call_is_a_json_file_with_its_values_beside_it_named_by_place(tmp_path) -> None:
    frame = pd.DataFrame({"amount": [1.5, 2.5]})
    calls = [recorded("pkg.core.total", [frame, "EUR"], np.array([4.0])),
             recorded("pkg.core.total", [frame, "USD"], np.array([4.0]), cell=7),
             recorded("pkg.core.label", ["x"], "X")]
    files = record.test_data(calls)
    assert sorted(files) == [
        "tests/data/recorded/core.label/sales-cell4-1.json",
        f"tests/data/recorded/core.total/sales-cell4-1.args-0{FRAMES}",
        "tests/data/recorded/core.total/sales-cell4-1.json",
        "tests/data/recorded/core.total/sales-cell4-1.result.npy",
        f"tests/data/recorded/core.total/sales-cell7-2.args-0{FRAMES}",
        "tests/data/recorded/core.total/sales-cell7-2.json",
        "tests/data/recorded/core.total/sales-cell7-2.result.npy",
    ]
    entry = json.loads(files["tests/data/recorded/core.label/sales-cell4-1.json"])
    assert entry == {"function": "pkg.core.label", "notebook": "sales.ipynb", "cell": 4,
                     "args": ["x"], "kwargs": {}, "result": "X", "printed": ""}
    for name, content in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content if isinstance(content, bytes) else content.encode())
    call = load_call(tmp_path / "tests/data/recorded/core.total/sales-cell7-2.json")
    assert_same(call.args, [frame, "USD"])
    assert_same(call.result, np.array([4.0]))


def test_calls_whose_arguments_could_not_be_recorded_get_no_file() -> None:
    call = RecordedCall("pkg.core.f", 1, "nb.ipynb", None, None, None,
                        unrecordable="arguments: builtins.function")
    assert record.test_data([call]) == {} and record.test_requirements([call]) == []


def test_what_the_tests_need_to_read_the_values() -> None:
    assert record.test_requirements([recorded("p.m.f", [np.arange(2)], 1)]) == ["numpy"]
    assert record.test_requirements([recorded("p.m.f", [pd.Series([1])], 1)]) == (
        ["pandas", "pyarrow"] if FRAMES == ".parquet" else ["pandas"])
    assert record.test_requirements([recorded("p.m.f", [1], 2)]) == []
