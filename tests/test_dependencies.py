"""Dependencies: only installed distributions that provide an import or that a `pip install`
names; requirement specifiers kept; local modules and unknown imports never listed."""

from __future__ import annotations

import importlib.metadata
import json
import os
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
                            ("numpy", "PyYAML", "scikit-learn", "ipympl")}) for d in case["dependencies"]]
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


# -- import name -> distribution table, cached per environment -----------------------------------
def _providing(site: Path, name: str, version: str, modules: list[str]) -> Path:
    _fake_distribution(site, name, version)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    (info / "top_level.txt").write_text("\n".join(modules) + "\n")
    return info


@pytest.fixture
def providers(tmp_path, monkeypatch):
    """A fresh cache folder and a site folder on sys.path; the in-process memo cleared."""
    from nb2pkg import dependencies

    monkeypatch.setenv("NB2PKG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(dependencies, "_memo", [])
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def test_the_import_table_follows_installs_upgrades_and_uninstalls(providers):
    import shutil

    from nb2pkg.dependencies import providing_distribution

    first = _providing(providers, "nb-fake-dist", "1.0", ["nbfakemod"])
    assert providing_distribution("nbfakemod") == "nb-fake-dist"  # not named alike: the table
    _providing(providers, "nb-other-dist", "2.0", ["nbothermod"])  # installed since
    assert providing_distribution("nbothermod") == "nb-other-dist"
    shutil.rmtree(first)  # uninstalled
    assert providing_distribution("nbfakemod") is None
    _providing(providers, "nb-fake-dist", "1.1", ["nbrenamedmod"])  # an upgrade renames its module
    assert providing_distribution("nbrenamedmod") == "nb-fake-dist"
    assert providing_distribution("nbfakemod") is None


def test_the_import_table_is_read_back_from_the_cache_until_the_environment_changes(
        providers, monkeypatch):
    import importlib.metadata as metadata

    from nb2pkg import dependencies

    _providing(providers, "nb-fake-dist", "1.0", ["nbfakemod"])
    assert dependencies.providing_distribution("nbfakemod") == "nb-fake-dist"
    (cached,) = (Path(dependencies._cache_file(dependencies._environment_key())).parent
                 ).glob("distributions-*.json")

    scans = []

    def no_scan():
        scans.append(1)
        raise RuntimeError("no scan possible")

    # A new process (memo empty) that cannot scan: the answer comes from the cache file.
    monkeypatch.setattr(dependencies, "_memo", [])
    monkeypatch.setattr(metadata, "packages_distributions", no_scan)
    assert dependencies.providing_distribution("nbfakemod") == "nb-fake-dist"
    assert scans == [] and cached.is_file()
    # A reinstall of the same version writes its metadata folder anew: scanned again (and a
    # failing scan is no answer, never the stale one).
    info = providers / "nb_fake_dist-1.0.dist-info"
    stat = info.stat()
    os.utime(info, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    monkeypatch.setattr(dependencies, "_memo", [])
    assert dependencies.providing_distribution("nbfakemod") is None
    assert scans == [1]


def test_a_damaged_or_unwritable_cache_costs_a_scan_not_a_conversion(providers, monkeypatch,
                                                                      tmp_path):
    from nb2pkg import dependencies

    _providing(providers, "nb-fake-dist", "1.0", ["nbfakemod"])
    assert dependencies.providing_distribution("nbfakemod") == "nb-fake-dist"
    key = dependencies._environment_key()
    path = dependencies._cache_file(key)
    path.write_text(json.dumps({"key": key, "providers": {"nbfakemod": "not a list"}}))
    monkeypatch.setattr(dependencies, "_memo", [])
    assert dependencies.providing_distribution("nbfakemod") == "nb-fake-dist"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("NB2PKG_CACHE_DIR", str(blocker / "cache"))
    monkeypatch.setattr(dependencies, "_memo", [])
    assert dependencies.providing_distribution("nbfakemod") == "nb-fake-dist"


def test_distribution_metadata_is_read_back_from_the_cache_until_the_environment_changes(
        providers, monkeypatch):
    """constraints.txt walks the metadata of every distribution the project needs: read once
    per environment, and again after anything is installed, upgraded or removed."""
    import shutil

    from nb2pkg import dependencies

    _fake_distribution(providers, "nbtop", "1.2", ["nbleaf"])
    _fake_distribution(providers, "nbleaf", "0.3")
    assert dependencies.constraints(["nbtop"]) == ["nbleaf==0.3", "nbtop==1.2"]

    reads: list[str] = []
    real = dependencies._read_distribution

    def counted(name: str):
        reads.append(name)
        return real(name)

    monkeypatch.setattr(dependencies, "_read_distribution", counted)
    monkeypatch.setattr(dependencies, "_memo", [])  # a new process: the cache file answers
    assert dependencies.constraints(["nbtop"]) == ["nbleaf==0.3", "nbtop==1.2"]
    assert reads == []
    shutil.rmtree(providers / "nbleaf-0.3.dist-info")  # upgraded
    _fake_distribution(providers, "nbleaf", "0.4")
    assert dependencies.constraints(["nbtop"]) == ["nbleaf==0.4", "nbtop==1.2"]
    assert sorted(reads) == ["nbleaf", "nbtop"]


def test_package_name_clashes_are_read_back_from_the_cache_until_the_environment_changes(
        providers, monkeypatch):
    from nb2pkg import dependencies
    from nb2pkg.refactor.naming import clashes

    assert clashes("nbclashy") is None
    reads: list[str] = []
    real = dependencies._read_summary
    monkeypatch.setattr(dependencies, "_read_summary",
                        lambda name: reads.append(name) or real(name))
    monkeypatch.setattr(dependencies, "_memo", [])  # a new process: the cache file answers
    assert clashes("nbclashy") is None and reads == []
    _fake_distribution(providers, "nbclashy", "1.0")  # installed since
    assert clashes("nbclashy") == "the installed distribution 'nbclashy'"
    assert reads == ["nbclashy"]


def test_a_folder_without_distributions_on_the_path_keeps_the_cache_key(providers, monkeypatch,
                                                                         tmp_path):
    # `python -m nb2pkg` puts the working folder first on sys.path: another folder must not
    # cost the whole metadata scan again, unless a distribution is installed there.
    from nb2pkg import dependencies

    key = dependencies._environment_key()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.syspath_prepend(str(elsewhere))
    assert dependencies._environment_key() == key
    _fake_distribution(elsewhere, "nbhere", "1.0")
    assert dependencies._environment_key() != key


def test_the_cache_keeps_the_environments_seen_last(providers, monkeypatch):
    """One file per environment key (the CLI and the lab's server see different sys.paths);
    every install makes a new key, so the files of environments not seen for longest go."""
    from nb2pkg import dependencies

    folder = Path(dependencies._cache_file("0" * 64)).parent
    for index in range(12):
        old = folder / f"distributions-{index:032d}.json"
        old.write_text("{}")
        os.utime(old, ns=(index, index))
    _providing(providers, "nb-fake-dist", "1.0", ["nbfakemod"])
    assert dependencies.providing_distribution("nbfakemod") == "nb-fake-dist"
    kept = {p.name for p in folder.glob("distributions-*.json")}
    current = dependencies._cache_file(dependencies._environment_key()).name
    assert kept == {current} | {f"distributions-{index:032d}.json" for index in range(5, 12)}
