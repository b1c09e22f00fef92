"""Recording the calls a notebook makes (nb2pkg/runtime/recording.py): whatever the arguments
are, the notebook gets what the function returns and prints, recorded or not."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

import pytest

from nb2pkg.runtime import recording


class Touchy:
    """An object that breaks when looked at the way the recorder looks (a library object with
    a property that fails outside its context)."""

    def __getattribute__(self, name):
        if name == "__dict__":
            raise ValueError("not in this context")
        return super().__getattribute__(name)


def _cyclic() -> argparse.Namespace:
    summary = argparse.Namespace(title="OLS")
    summary.tables = [argparse.Namespace(parent=summary)]  # as in a statsmodels Summary
    return summary


@pytest.fixture
def package(tmp_path: Path, monkeypatch):
    (tmp_path / "pkg_rec").mkdir()
    (tmp_path / "pkg_rec" / "__init__.py").write_text("")
    (tmp_path / "pkg_rec" / "core.py").write_text(
        "def describe(thing):\n    print('describing')\n    return type(thing).__name__\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("pkg_rec", "pkg_rec.core"):
        sys.modules.pop(name, None)
    folder = tmp_path / "recorded"
    folder.mkdir()
    recording.install(["pkg_rec.core.describe"], str(folder))
    yield importlib.import_module("pkg_rec.core"), folder
    for name in ("pkg_rec", "pkg_rec.core"):
        sys.modules.pop(name, None)


@pytest.mark.parametrize("argument, why", [
    (_cyclic(), "refers to itself"),
    (Touchy(), "ValueError on looking at them"),
], ids=["cyclic", "touchy"])
def test_an_argument_the_recorder_cannot_look_at_changes_nothing(package, argument, why,
                                                                 capsys) -> None:
    module, folder = package
    assert module.describe(argument) == type(argument).__name__
    assert capsys.readouterr().out == "describing\n"
    (record,) = [json.loads(line) for line in (folder / recording.CALLS_FILE).read_text().splitlines()]
    assert why in record["unrecordable"] and "args" not in record
    assert record["printed"] == "describing\n"


def test_a_plain_call_is_recorded(package, capsys) -> None:
    module, folder = package
    assert module.describe([1, 2]) == "list"
    (record,) = [json.loads(line) for line in (folder / recording.CALLS_FILE).read_text().splitlines()]
    assert record["args"] == [[1, 2]] and record["result"] == "list"
