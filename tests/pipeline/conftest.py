"""Fixtures of the pipeline tests: tiny notebooks converted into projects with a pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import write_notebook  # tests/helpers.py (tests/conftest.py puts it on sys.path)


@pytest.fixture
def project(tmp_path):
    """``project(cells, name="nb", single_stage=False) -> Path`` of the converted project."""
    from nb2pkg.api import ConvertOptions, convert

    def make(cells: list, name: str = "nb", single_stage: bool = False,
             output: str = "project") -> Path:
        notebook = write_notebook(tmp_path / "input" / f"{name}.ipynb", cells)
        out = tmp_path / output
        convert([notebook], out, ConvertOptions(pipeline=True, single_stage=single_stage,
                                                extract=False))
        return out

    return make
