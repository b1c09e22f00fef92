"""Dependencies: only installed distributions that provide an import or that a `pip install`
names; requirement specifiers kept; local modules and unknown imports never listed."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import nbformat
import pytest
import yaml

from nb2pkg.api import ConvertOptions, convert

CASES = yaml.safe_load((Path(__file__).parent / "data" / "dependencies" / "cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_dependencies(tmp_path: Path, case: dict) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in case.get("files", {}).items():
        (folder / name).write_text(text)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in case["cells"]]
    nbformat.write(nb, str(folder / "deps.ipynb"))
    report = convert([folder / "deps.ipynb"], tmp_path / "out", ConvertOptions(pipeline=False))
    pyproject = tomllib.loads((tmp_path / "out" / "pyproject.toml").read_text())
    expected = [d.format(**{n: importlib.metadata.version(n) for n in
                            ("numpy", "PyYAML", "scikit-learn")}) for d in case["dependencies"]]
    assert pyproject["project"]["dependencies"] == expected
    codes = [f.code for f in report.plan.findings
             if f.code in ("unknown-import", "pip-install-unparsed")]
    assert codes == case["findings"]


# -- constraints.txt: the exact versions of this environment ------------------------------------
def _fake_distribution(site: Path, name: str, version: str, requires: list[str] = ()) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")


def test_constraints_pin_what_is_installed_transitively_with_markers_and_extras(tmp_path,
                                                                                monkeypatch):
    from nb2pkg.dependencies import constraints

    site = tmp_path / "site"
    _fake_distribution(site, "nbtop", "1.2", ["nbmid>=1", "nbwin; sys_platform == 'win32'",
                                              "nbextra; extra == 'fast'",
                                              "nbmissing", "nbself"])
    _fake_distribution(site, "nbmid", "2.0.1", ["nbleaf", "nbtop"])  # a cycle back
    _fake_distribution(site, "nbleaf", "0.3")
    _fake_distribution(site, "nbwin", "1.0")
    _fake_distribution(site, "nbextra", "4.0", ["nbleaf"])
    _fake_distribution(site, "nbself", "0.1")
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    assert constraints(["nbtop>=1"], exclude=["NBSelf"]) == [
        "nbleaf==0.3", "nbmid==2.0.1", "nbtop==1.2"]
    assert constraints(["nbtop[fast]"]) == [
        "nbextra==4.0", "nbleaf==0.3", "nbmid==2.0.1", "nbself==0.1", "nbtop==1.2"]
    assert constraints(["nbtop; python_version < '3'", "not a requirement !"]) == []


def test_constraints_refuse_metadata_that_is_not_a_name_and_version(tmp_path, monkeypatch):
    from nb2pkg.dependencies import constraints

    site = tmp_path / "site"
    _fake_distribution(site, "nbodd", "1.0", ["nbbadversion"])
    _fake_distribution(site, "nbbadversion", "not a version")
    monkeypatch.syspath_prepend(str(site))
    assert constraints(["nbodd"]) == ["nbodd==1.0"]


def test_a_converted_project_has_lower_bounds_and_a_constraints_file(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import yaml\nprint(yaml.__name__)")]
    nbformat.write(nb, str(tmp_path / "deps.ipynb"))
    convert([tmp_path / "deps.ipynb"], tmp_path / "out", ConvertOptions(pipeline=False))
    pyproject = tomllib.loads((tmp_path / "out" / "pyproject.toml").read_text())
    version = importlib.metadata.version("PyYAML")
    assert pyproject["project"]["dependencies"] == [f"PyYAML>={version}"]
    lines = [line for line in (tmp_path / "out" / "constraints.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines == [f"PyYAML=={version}"]
