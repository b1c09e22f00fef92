"""What a notebook needs beyond its project's dependencies (nb2pkg.isolation): the module an
import error names, and a folder of links that stands in for site-packages. The runs
themselves are in test_verify.py (a real kernel)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nb2pkg.isolation import _link, asked_for, closure, link_distributions, named_module

CASES = Path(__file__).parent / "data" / "isolation"
ERRORS = yaml.safe_load((CASES / "errors.yaml").read_text())
ASKED = yaml.safe_load((CASES / "asked.yaml").read_text())


@pytest.mark.parametrize("case", ERRORS, ids=[c["id"] for c in ERRORS])
def test_the_module_an_import_error_names(case: dict) -> None:
    outside = frozenset({"pandas", "pytest", "thing"})
    assert named_module(case["error"], outside) == case["named"]


@pytest.mark.parametrize("case", ASKED, ids=[c["id"] for c in ASKED])
def test_the_module_a_printed_message_asks_for(case: dict) -> None:
    outside = frozenset({"pandas", "pytest", "thing", "statsmodels"})
    assert asked_for(case["text"], outside) == case["named"]


def test_the_closure_holds_the_requirements_what_they_need_and_the_kernel() -> None:
    found = closure(["PyYAML"])
    names = {n.lower() for n in found.distributions}
    assert {"pyyaml", "ipykernel", "pyzmq"} <= names
    assert "yaml" not in found.outside and "zmq" not in found.outside
    assert "pandas" not in {n.lower() for n in found.distributions} and "pandas" in found.outside


def test_linked_distributions_import_and_share_namespace_folders(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert link_distributions(site, ["PyYAML", "not-installed-anywhere"]) == [
        "not-installed-anywhere"]
    assert (site / "yaml" / "__init__.py").is_file() and (site / "yaml").is_symlink()
    # Two distributions with one top-level folder (a namespace package): both are kept.
    one, two = tmp_path / "one" / "ns", tmp_path / "two" / "ns"
    (one / "a").mkdir(parents=True)
    (two / "b").mkdir(parents=True)
    _link(one, site / "ns")
    _link(two, site / "ns")
    assert sorted(p.name for p in (site / "ns").iterdir()) == ["a", "b"]
    assert not (site / "ns").is_symlink() and (site / "ns" / "b").resolve() == (two / "b")


def test_an_editable_install_is_named_as_not_linked(tmp_path: Path, monkeypatch) -> None:
    """Found through a .pth file, which the isolated kernel (-S) never reads (PEP 610 says
    editable): a failure there names it rather than blaming the project."""
    installed = tmp_path / "installed"
    info = installed / "editable_thing-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: editable-thing\nVersion: 1.0\n")
    (info / "RECORD").write_text("__editable__.editable_thing-1.0.pth,,\n"
                                 "editable_thing-1.0.dist-info/METADATA,,\n"
                                 "editable_thing-1.0.dist-info/RECORD,,\n")
    (info / "direct_url.json").write_text('{"url": "file:///somewhere", "dir_info": {"editable": true}}')
    (installed / "__editable__.editable_thing-1.0.pth").write_text("/somewhere/src\n")
    monkeypatch.syspath_prepend(str(installed))
    site = tmp_path / "site"
    assert link_distributions(site, ["PyYAML", "editable-thing"]) == ["editable-thing"]
    assert not list(site.glob("*.pth"))
