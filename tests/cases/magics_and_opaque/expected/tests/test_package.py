"""The package imports and exposes what the notebooks import from it."""

import importlib

import pytest


@pytest.mark.parametrize(
    "module, names",
    [
        ("magics_and_opaque", []),
        ("magics_and_opaque.magics", ["SCALE", "by_factor", "scaled"]),
    ],
)
def test_module_provides_names(module, names):
    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module} lacks {missing}"
