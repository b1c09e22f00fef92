"""Values crossing stages (nb2pkg/runtime/stage_io.py, copied into every generated project as
src/<package>/_stage_io.py): saved by one stage, loaded by the next, in this process (no kernel)."""

from __future__ import annotations

import json
import threading

import numpy as np
import pandas as pd
import pytest

from nb2pkg.runtime import stage_io
from nb2pkg.runtime.stage_io import ArtifactError, load_inputs, save_outputs


def roundtrip(tmp_path, values: dict, names=None):
    folder = tmp_path / "stage-a"
    save_outputs(folder, list(names or values), values, stage="stage-a")
    loaded: dict = {}
    load_inputs({name: folder for name in (names or values)}, loaded, stage="stage-b")
    return folder, loaded


def test_values_come_back_equal_in_the_fitting_format(tmp_path):
    frame = pd.DataFrame({"a": [1.5, None], "b": ["x", "y"]}, index=[3, 4])
    array = np.arange(6, dtype="int16").reshape(2, 3)
    folder, loaded = roundtrip(tmp_path, {"frame": frame, "array": array, "rows": [1, {"k": 2}],
                                          "np": np, "text": "é"})
    pd.testing.assert_frame_equal(loaded["frame"], frame)
    assert loaded["array"].dtype == array.dtype and (loaded["array"] == array).all()
    assert loaded["rows"] == [1, {"k": 2}] and loaded["text"] == "é"
    assert loaded["np"] is np
    index = json.loads((folder / "index.json").read_text())
    formats = {name: entry["format"] for name, entry in index["values"].items()}
    assert formats["array"] == "npy"  # no pickle for plain arrays
    assert formats["np"] == "module"
    assert formats["frame"] in ("pickle", "parquet")  # object column: pickle, exact


def test_object_arrays_are_pickled(tmp_path):
    folder, loaded = roundtrip(tmp_path, {"mixed": np.array([1, "a"], dtype=object)})
    assert list(loaded["mixed"]) == [1, "a"]
    assert json.loads((folder / "index.json").read_text())["values"]["mixed"]["format"] == "pickle"


def test_names_the_stage_deleted_stay_undefined(tmp_path):
    folder, loaded = roundtrip(tmp_path, {"kept": 1}, names=["kept", "deleted"])
    assert loaded == {"kept": 1}


def test_unserializable_value_names_variable_stage_and_fix(tmp_path):
    with pytest.raises(ArtifactError) as info:
        save_outputs(tmp_path / "s", ["lock"], {"lock": threading.Lock()}, stage="nb-train")
    message = str(info.value)
    assert "stage nb-train: cannot save variable `lock` (_thread.lock)" in message
    assert "--join-stage STAGE" in message and "--single-stage" in message


def test_notebook_classes_must_be_defined_before_loading(tmp_path):
    namespace: dict = {}
    exec("class Report:\n    pass\nreport = Report()", namespace)
    namespace["Report"].__module__ = "__main__"
    namespace["Report"].__qualname__ = "Report"
    import __main__

    __main__.Report = namespace["Report"]  # what a kernel's namespace is
    try:
        save_outputs(tmp_path / "s", ["report"], namespace, stage="nb-a")
    finally:
        del __main__.Report
    with pytest.raises(ArtifactError, match="holds objects of `Report`, defined in the notebook"):
        load_inputs({"report": tmp_path / "s"}, {}, stage="nb-b")


def test_missing_provider_output_is_a_clear_error(tmp_path):
    with pytest.raises(ArtifactError, match="has no saved outputs yet"):
        load_inputs({"df": tmp_path / "never-ran"}, {}, stage="nb-b")
    save_outputs(tmp_path / "ran", [], {}, stage="nb-a")
    with pytest.raises(ArtifactError, match="stage nb-b needs `df` from stage nb-a, which did not save it"):
        load_inputs({"df": tmp_path / "ran"}, {}, stage="nb-b")


def test_metrics_are_saved_with_the_outputs(tmp_path, monkeypatch):
    monkeypatch.setattr(stage_io, "_metrics", {})
    shown = stage_io.record_metrics({"auc": np.float64(0.75), "model": "knn"})
    stage_io.record_metric("rows", 10)
    assert shown == {"auc": np.float64(0.75), "model": "knn"}  # the cell still displays it
    save_outputs(tmp_path / "s", [], {}, stage="nb-a")
    index = json.loads((tmp_path / "s" / "index.json").read_text())
    assert index["metrics"] == {"auc": 0.75, "model": "knn", "rows": 10}
    with pytest.raises(ArtifactError, match="must be a number, string or bool"):
        stage_io.record_metric("bad", [1])
    with pytest.raises(ArtifactError, match="must end with a dict"):
        stage_io.record_metrics([1])


def test_stage_io_imports_only_the_standard_library(tmp_path):
    import subprocess
    import sys

    # Run as the generated project runs it: the file on its own, not as part of nb2pkg.
    code = ("import sys, runpy; runpy.run_path(sys.argv[1]); "
            "print(sorted(m for m in ('pandas', 'numpy', 'papermill', 'nbformat', 'yaml', 'nb2pkg') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, stage_io.__file__], capture_output=True,
                         text=True, check=True, cwd=str(tmp_path))
    assert out.stdout.strip() == "[]"


def test_the_runner_reads_what_stage_io_writes():
    from nb2pkg.pipeline import artifacts

    assert artifacts.INDEX == stage_io.INDEX and artifacts.load_inputs is stage_io.load_inputs
