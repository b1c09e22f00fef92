"""Package, module and stage names: short, readable, and never shadowing what is installed."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from nb2pkg.api import ConvertOptions, convert
from nb2pkg.errors import Nb2pkgError
from nb2pkg.pipeline.split import slug
from nb2pkg.refactor.naming import MAX_NAME, clashes, common_stem, looks_like_class, package_name

CASES = Path(__file__).parents[1] / "data" / "naming" / "package_names.tsv"
ROWS = [line.split("\t") for line in CASES.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")]


@pytest.mark.parametrize("stem, expected, why", ROWS, ids=[r[0] for r in ROWS])
def test_default_package_name(stem: str, expected: str, why: str) -> None:
    assert package_name(stem) == expected, why
    assert clashes(expected) is None


def test_stage_slugs_are_cut_between_words() -> None:
    name = slug("Grid search with cross validation for hyperparameter tuning")
    assert name == "grid_search_with_cross"
    assert len(name) <= MAX_NAME
    assert slug("Hyperparametertuningwithoutanyspacesatall_and_more") == "hyperparametertuningwithoutany"
    # Cut short, a name does not end on a word that needs the next one.
    assert slug("OLS non-linear curve but linear in parameters") == "ols_non_linear_curve"
    assert slug("What to look for") == "what_to_look_for"  # whole: left as it is


def _notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def twice(x):\n    return 2 * x"),
                nbformat.v4.new_code_cell("print(twice(2))")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def test_notebook_named_like_a_distribution_gets_another_name(tmp_path: Path) -> None:
    report = convert([_notebook(tmp_path / "in" / "six.ipynb")], tmp_path / "out")
    assert report.package == "six_nb"
    assert 'name = "six-nb"' in (tmp_path / "out" / "pyproject.toml").read_text()
    assert "package-renamed" in [f.code for f in report.plan.findings]


def test_explicit_name_that_shadows_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Nb2pkgError, match="would shadow the installed distribution"):
        convert([_notebook(tmp_path / "in" / "x.ipynb")], tmp_path / "out",
                ConvertOptions(name="pandas"))
    assert not (tmp_path / "out").exists()


def test_module_is_not_named_like_its_package(tmp_path: Path) -> None:
    report = convert([_notebook(tmp_path / "in" / "quarterly.ipynb")], tmp_path / "out")
    assert [m.name for m in report.plan.modules] == ["core"]
    refactored = (tmp_path / "out" / "notebooks" / "quarterly.ipynb").read_text()
    assert "from quarterly.core import twice" in refactored


SHARED = Path(__file__).parents[1] / "data" / "naming" / "shared_names.tsv"
SHARED_ROWS = [line.split("\t") for line in SHARED.read_text(encoding="utf-8").splitlines()
               if line and not line.startswith("#")]


@pytest.mark.parametrize("names, expected, why", SHARED_ROWS, ids=[r[0] for r in SHARED_ROWS])
def test_what_names_share(names: str, expected: str, why: str) -> None:
    assert (common_stem(names.split(",")) or "-") == expected, why


@pytest.mark.parametrize("name, expected", [("PooledOLS", True), ("LocalLevel", True),
                                            ("TVRegression", True), ("X", False), ("OLS", False),
                                            ("df", False), ("X_train", False)])
def test_class_like_names(name: str, expected: bool) -> None:
    assert looks_like_class(name) is expected
