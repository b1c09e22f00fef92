"""Generated Python is formatted the same wherever nb2pkg runs, and never lost over formatting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nb2pkg.formatting import format_modules, format_python

FORMAT_CASES = yaml.safe_load((Path(__file__).parent / "data" / "format" / "cases.yaml")
                              .read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", FORMAT_CASES, ids=[c["id"] for c in FORMAT_CASES])
def test_generated_python_is_formatted_or_left_as_it_was(case: dict) -> None:
    expected = case["source"] if case.get("unchanged") else case["formatted"]
    assert format_python(case["source"]) == expected


def test_a_batch_is_formatted_as_each_case_alone() -> None:
    """One ruff process formats the package's modules: a case that does not parse stays as it
    was, and the others are formatted all the same."""
    def expected(cases: list[dict]) -> list[str]:
        return [case["source"] if case.get("unchanged") else case["formatted"] for case in cases]

    writable = [case for case in FORMAT_CASES if "\ud800" not in case["source"]]
    assert any(case.get("unchanged") for case in writable) and len(writable) > 2
    assert format_modules([case["source"] for case in writable]) == expected(writable)
    # A lone surrogate cannot be written to a file: each is formatted on its own instead.
    assert format_modules([case["source"] for case in FORMAT_CASES]) == expected(FORMAT_CASES)


def test_a_formatter_configuration_near_the_user_changes_nothing(tmp_path: Path,
                                                                 monkeypatch) -> None:
    """A notebook's folder can hold a pyproject.toml or ruff.toml: generated code must not
    depend on which folder nb2pkg runs in."""
    settings = "line-length = 20\n[format]\nquote-style = 'single'\nindent-style = 'tab'\n"
    (tmp_path / "ruff.toml").write_text(settings)
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\n" + settings.replace(
        "[format]", "[tool.ruff.format]"))
    monkeypatch.chdir(tmp_path)
    source = "def f():\n    return {'key': 'a value longer than twenty columns'}\n"
    assert format_python(source) == source.replace("'", '"')
    assert format_modules([source, source]) == [source.replace("'", '"')] * 2


def test_a_line_length_can_be_asked_for() -> None:
    """The Airflow DAG's stage table is laid out at 100 columns."""
    source = "stages = {'a': 1, 'b': 2, 'c': 3, 'd': 4, 'e': 5, 'f': 6, 'g': 7, 'h': 8, 'i': 9, 'jj': 10}\n"
    assert format_python(source, line_length=100) == source.replace("'", '"')
    assert format_python(source).count("\n") > 1


def test_a_full_disk_formats_each_module_alone(monkeypatch) -> None:
    """The batch needs scratch files; without room for them, each module goes through stdin."""
    def full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", full)
    source = "x = {'a':1}\n"
    assert format_modules([source, source]) == ['x = {"a": 1}\n'] * 2
