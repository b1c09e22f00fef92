"""The package imports and exposes what the notebooks import from it."""

import importlib

import pytest


@pytest.mark.parametrize(
    "module, names",
    [
        ("two_notebooks_shared", []),
        ("two_notebooks_shared.common", ["clean", "compute_summary"]),
    ],
)
def test_module_provides_names(module, names):
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"
