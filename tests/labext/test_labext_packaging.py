"""The wiring that `pip install .` relies on, checked without building anything (fast)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "jupyter_ext"
SERVER_CONFIG = JS_DIR / "jupyter-config" / "jupyter_server_config.d" / "nb2pkg.json"


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def package_json() -> dict:
    return json.loads((JS_DIR / "package.json").read_text())


def nb2pkg_package():
    """``nb2pkg``, checked to carry the discovery functions Jupyter looks for by that name."""
    package = importlib.import_module("nb2pkg")
    for name in ("_jupyter_server_extension_points", "_jupyter_labextension_paths"):
        assert hasattr(package, name), (
            "nb2pkg/__init__.py must re-export the discovery functions: from .labext import "
            "_jupyter_labextension_paths, _jupyter_server_extension_points")
    return package


def test_shipped_server_config_loads_the_extension() -> None:
    enabled = json.loads(SERVER_CONFIG.read_text())["ServerApp"]["jpserver_extensions"]
    assert enabled == {"nb2pkg": True}
    package = nb2pkg_package()
    for point in package._jupyter_server_extension_points():
        module = importlib.import_module(point["module"])
        assert callable(module._load_jupyter_server_extension)


def test_labextension_paths_match_the_build_output() -> None:
    nb2pkg = nb2pkg_package()
    (entry,) = nb2pkg._jupyter_labextension_paths()
    assert entry["dest"] == package_json()["name"] == "nb2pkg"
    built = (Path(nb2pkg.__file__).parent / entry["src"]).resolve()
    assert built == (JS_DIR / package_json()["jupyterlab"]["outputDir"]).resolve()


def test_wheel_shares_the_labextension_and_config() -> None:
    project = pyproject()
    wheel = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert wheel["packages"] == ["nb2pkg"]
    assert wheel["force-include"]["templates"] == "nb2pkg/templates"
    shared = wheel["shared-data"]
    assert shared["nb2pkg/labextension"] == "share/jupyter/labextensions/nb2pkg"
    for source in shared:
        if source != "nb2pkg/labextension":  # built, git-ignored
            assert (REPO / source).is_file(), source
    assert shared[SERVER_CONFIG.relative_to(REPO).as_posix()] == (
        "etc/jupyter/jupyter_server_config.d/nb2pkg.json")
    assert package_json()["version"] == project["project"]["version"]


def test_importing_nb2pkg_stays_cheap() -> None:
    code = ("import sys, nb2pkg, nb2pkg.labext, nb2pkg.labext.request; "
            "print(sorted(m for m in ('jupyter_server', 'tornado', 'jupyterlab') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
