"""Data files and local modules travel with the notebook, so the project runs from its own folder;
nothing outside the notebook's folder tree is ever carried (not even through a symbolic link)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import nbformat
import pytest

import nb2pkg.assets as assets_module
from nb2pkg.api import ConvertOptions, convert
from nb2pkg.assets import Assets, asset_files, find_assets
from nb2pkg.errors import Nb2pkgError

CELLS = [
    "import pandas as pd\nimport helpers\nimport sys\nsys.path.append('../lib')\nimport mylib",
    "frame = pd.read_csv('data/values.csv')\nshared = open('../shared/notes.txt').read()",
    "secret = open('data/secret.txt').read()",  # a link leading out of the tree
    "big = open('data/big.bin', 'rb').read()",
    "frame.to_csv('out/result.csv')",
    "print(helpers.twice(len(frame)), mylib.VALUE, shared.strip())",
]


def make_repository(root: Path) -> Path:
    """repo/analysis/nb.ipynb with data beside it, repo/shared, repo/lib/mylib, and a link out."""
    analysis = root / "repo" / "analysis"
    (analysis / "data").mkdir(parents=True)
    (analysis / "data" / "values.csv").write_text("a,b\n1,2\n3,4\n")
    (analysis / "data" / "big.bin").write_bytes(b"x" * 2048)
    (root / "private").mkdir()
    (root / "private" / "id_rsa").write_text("SECRET KEY")
    os.symlink(root / "private" / "id_rsa", analysis / "data" / "secret.txt")
    (analysis / "helpers.py").write_text("import numpy\n\n\ndef twice(x):\n    return 2 * x\n")
    (root / "repo" / "shared").mkdir()
    (root / "repo" / "shared" / "notes.txt").write_text("shared notes\n")
    (root / "repo" / "lib" / "mylib").mkdir(parents=True)
    (root / "repo" / "lib" / "mylib" / "__init__.py").write_text("import yaml\nVALUE = 7\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nbformat.write(nb, str(analysis / "nb.ipynb"))
    return analysis / "nb.ipynb"


def test_data_and_local_code_are_carried(tmp_path: Path) -> None:
    notebook = make_repository(tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file()}
    report = convert([notebook], tmp_path / "out", ConvertOptions(max_data_bytes=1024))
    project = tmp_path / "out"

    assert (project / "notebooks" / "data" / "values.csv").read_text() == "a,b\n1,2\n3,4\n"
    assert (project / "shared" / "notes.txt").read_text() == "shared notes\n"  # '../shared'
    assert (project / "notebooks" / "helpers.py").is_file()
    assert (project / "notebooks" / "mylib" / "__init__.py").is_file()  # from sys.path '../lib'
    assert not (project / "notebooks" / "data" / "big.bin").exists()  # over the limit
    assert not any("SECRET" in p.read_text(errors="ignore")
                   for p in project.rglob("*") if p.is_file())

    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"]["dependencies"]
    names = [d.split("=")[0].split(">")[0].lower() for d in dependencies]
    assert "helpers" not in names and "mylib" not in names
    assert {"numpy", "pandas", "pyyaml"} <= set(names)  # what the local modules import counts

    carried = {d.target: d for d in report.plan.assets.data}
    assert carried["notebooks/data/big.bin"].copied is False
    assert carried["notebooks/out/result.csv"].written_by == ((0, 4),)
    assert "data/secret.txt" in [o.path for o in report.plan.assets.outside]
    text = (project / "REPORT.md").read_text()
    assert "not copied" in text and "not carried" in text
    # The input folder is byte-identical afterwards.
    assert before == {p: p.read_bytes() for p in (tmp_path / "repo").rglob("*") if p.is_file()}


# -- confined to a root (the lab): nothing outside it is read, and nothing is read twice ----------
def notebook_at(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def found(notebook: Path, **options) -> Assets:
    from nb2pkg.analysis import analyze_notebook
    from nb2pkg.analysis.files import file_uses
    from nb2pkg.analysis.parse import imported_names
    from nb2pkg.notebook import read_notebook

    result = analyze_notebook(read_notebook(notebook))
    imported = {n for c in result.cells if c.tree is not None for n in imported_names(c.tree)}
    return find_assets(notebook, file_uses(result.cells), imported, **options)


def left_out(assets: Assets) -> dict[str, str]:
    return {o.path: o.reason for o in assets.outside}


@pytest.fixture
def jail(tmp_path: Path) -> tuple[Path, Path]:
    """root/repo/analysis (the notebook's folder; its tree is root/repo) and outside/ beside
    root with a secret and a module."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "repo" / "analysis" / "data").mkdir(parents=True)
    (root / "shared").mkdir()
    (root / "shared" / "in_root.csv").write_text("in the root, out of the tree\n")
    outside.mkdir()
    (outside / "secret.csv").write_text("SECRET outside the root\n")
    (outside / "outmod.py").write_text("VALUE = 'SECRET module'\n")
    return root, outside


LINKS = ("import helpers\nimport linked_mod",
         "a = open('data/values.csv').read()\nb = open('data/inside.csv').read()",
         "c = open('data/out_abs.csv').read()\nd = open('data/out_rel.csv').read()",
         "e = open('data/out_of_tree.csv').read()\nf = open('data/loop.csv').read()")


def test_links_out_of_the_root_are_not_carried(jail) -> None:
    root, outside = jail
    analysis = root / "repo" / "analysis"
    notebook = notebook_at(analysis / "nb.ipynb", *LINKS)
    (analysis / "data" / "values.csv").write_text("a,b\n1,2\n")
    (analysis / "helpers.py").write_text("X = 1\n")
    os.symlink("values.csv", analysis / "data" / "inside.csv")  # stays in the tree: carried
    os.symlink(outside / "secret.csv", analysis / "data" / "out_abs.csv")
    os.symlink("../../../../outside/secret.csv", analysis / "data" / "out_rel.csv")
    os.symlink("../../../shared/in_root.csv", analysis / "data" / "out_of_tree.csv")
    os.symlink("loop.csv", analysis / "data" / "loop.csv")
    os.symlink(outside / "outmod.py", analysis / "linked_mod.py")

    assets = found(notebook, confine_to=root)
    carried = {d.target: d.contents for d in assets.data}
    assert carried == {"notebooks/data/values.csv": (("", b"a,b\n1,2\n"),),
                       "notebooks/data/inside.csv": (("", b"a,b\n1,2\n"),)}
    assert [m.name for m in assets.modules] == ["helpers"]
    reasons = left_out(assets)
    assert set(reasons) == {"data/out_abs.csv", "data/out_rel.csv", "data/out_of_tree.csv",
                            "data/loop.csv", "linked_mod"}
    assert "out of the notebook's folder tree" in reasons["data/out_of_tree.csv"]
    assert "out of the folder the conversion may read" in reasons["data/out_abs.csv"]
    assert "symbolic links" in reasons["data/loop.csv"]
    # Without a root (the command line) the tree is the limit: the same links stay out.
    cli = left_out(found(notebook))
    assert set(cli) == set(reasons) and "out of the notebook's folder tree" in cli["linked_mod"]
    assert not any(b"SECRET" in content for content in asset_files(assets).values())


def test_a_notebook_at_the_root_reads_nothing_above_it(jail, monkeypatch) -> None:
    root, outside = jail
    notebook = notebook_at(root / "nb.ipynb", "x = open('../outside/secret.csv').read()",
                           "import sys\nsys.path.append('../outside')\nimport outmod",
                           "y = open('shared/in_root.csv').read()")
    looked_at: list[str] = []
    real_lexists = os.path.lexists
    monkeypatch.setattr(os.path, "lexists", lambda p: looked_at.append(str(p)) or real_lexists(p))
    assets = found(notebook, confine_to=root)
    assert [d.target for d in assets.data] == ["notebooks/shared/in_root.csv"]
    assert assets.modules == ()
    reasons = left_out(assets)
    assert "outside the folder the conversion may read" in reasons["../outside/secret.csv"]
    assert "sys.path" in reasons["../outside"] and "not carried" in reasons["../outside"]
    assert not any(str(outside) in p for p in looked_at)
    # The command line reads the folder the notebook adds to sys.path, wherever it is.
    assert [m.name for m in found(notebook).modules] == ["outmod"]


def test_sys_path_modules_stay_inside_the_root(jail) -> None:
    root, outside = jail
    (root / "repo" / "lib" / "inlib").mkdir(parents=True)
    (root / "repo" / "lib" / "inlib" / "__init__.py").write_text("import outmod\n")
    (root / "repo" / "lib" / "outlink").symlink_to(outside, target_is_directory=True)
    notebook = notebook_at(root / "repo" / "analysis" / "nb.ipynb",
                           "import sys\nsys.path.append('../lib')\nsys.path.append('../lib/outlink')"
                           "\nsys.path.append('../../../outside')\nimport inlib")
    assets = found(notebook, confine_to=root)
    assert [m.name for m in assets.modules] == ["inlib"]
    reasons = left_out(assets)
    # outmod (imported by inlib) is through a link out of the root, or in a folder outside it.
    assert "sys.path" in reasons["../../../outside"]
    assert "out of the folder the conversion may read" in reasons["../lib/outlink/outmod"]
    # From the command line, folders added to sys.path may lie anywhere.
    assert [m.name for m in found(notebook).modules] == ["inlib", "outmod"]


def test_a_file_swapped_for_a_link_before_it_is_read_is_not_read(jail, monkeypatch) -> None:
    root, outside = jail
    analysis = root / "repo" / "analysis"
    notebook = notebook_at(analysis / "nb.ipynb", "a = open('data/values.csv').read()")
    (analysis / "data" / "values.csv").write_text("a,b\n1,2\n")
    real_open = assets_module.open_beneath

    def swapping(root_, parts, **kwargs):  # the file was looked at; now it is a link out
        if parts[-1:] == ("values.csv",):
            (analysis / "data" / "values.csv").unlink()
            os.symlink(outside / "secret.csv", analysis / "data" / "values.csv")
        return real_open(root_, parts, **kwargs)

    monkeypatch.setattr(assets_module, "open_beneath", swapping)
    assets = found(notebook, confine_to=root)
    assert assets.data == () and "data/values.csv" in left_out(assets)
    assert not any(b"SECRET" in content for content in asset_files(assets).values())


def test_files_are_read_once_when_found_never_again(tmp_path: Path) -> None:
    """Before: generation opened the paths again, following a link swapped in meanwhile."""
    notebook = make_repository(tmp_path)
    data = notebook.parent / "data"
    assets = found(notebook)
    (data / "values.csv").unlink()
    os.symlink(tmp_path / "private" / "id_rsa", data / "values.csv")
    (notebook.parent / "helpers.py").write_text("SECRET = 1\n")
    files = asset_files(assets)
    assert files["notebooks/data/values.csv"] == b"a,b\n1,2\n3,4\n"
    assert b"SECRET" not in files["notebooks/helpers.py"]


def test_hidden_files_are_carried_only_when_allowed(tmp_path: Path) -> None:
    analysis = tmp_path / "repo" / "analysis"
    notebook = notebook_at(analysis / "nb.ipynb", "a = open('.env').read()",
                           "b = open('data/.cache/x.csv').read()\nc = open('data/x.csv').read()",
                           "import sys\nsys.path.append('.lib')\nimport hidmod")
    (analysis / "data" / ".cache").mkdir(parents=True)
    (analysis / "data" / ".cache" / "x.csv").write_text("cached\n")
    (analysis / "data" / "x.csv").write_text("visible\n")
    (analysis / ".env").write_text("TOKEN=1\n")
    (analysis / ".lib").mkdir()
    (analysis / ".lib" / "hidmod.py").write_text("X = 1\n")
    refused = found(notebook, confine_to=tmp_path, allow_hidden=False)
    assert [d.target for d in refused.data] == ["notebooks/data/x.csv"]
    assert refused.modules == ()
    assert {p: "hidden" in r for p, r in left_out(refused).items()} == {
        ".env": True, "data/.cache/x.csv": True, ".lib": True, ".lib/hidmod": True}
    allowed = found(notebook, confine_to=tmp_path, allow_hidden=True)
    assert [d.target for d in allowed.data] == ["notebooks/.env", "notebooks/.lib",
                                                "notebooks/data/.cache/x.csv",
                                                "notebooks/data/x.csv"]
    assert [m.name for m in allowed.modules] == ["hidmod"] and allowed.outside == ()


def test_a_folder_outside_the_root_is_refused(tmp_path: Path) -> None:
    notebook = notebook_at(tmp_path / "a" / "nb.ipynb", "x = 1")
    (tmp_path / "b").mkdir()
    with pytest.raises(Nb2pkgError, match="outside the folder the conversion may read"):
        found(notebook, confine_to=tmp_path / "b")


def test_the_notebook_is_read_from_elsewhere(tmp_path: Path) -> None:
    """The lab converts a private copy: its surroundings are those of the real notebook."""
    notebook = make_repository(tmp_path)
    copy = tmp_path / "private" / "copy" / notebook.name
    copy.parent.mkdir()
    copy.write_bytes(notebook.read_bytes())
    report = convert([copy], tmp_path / "out", ConvertOptions(pipeline=False),
                     source_folder=notebook.parent, confine_to=tmp_path / "repo")
    project = tmp_path / "out"
    assert (project / "notebooks" / "data" / "values.csv").is_file()
    assert (project / "notebooks" / "helpers.py").is_file()
    assert "data/secret.txt" in left_out(report.plan.assets)
    with pytest.raises(Nb2pkgError, match="a source folder is for one notebook"):
        convert([copy, notebook], tmp_path / "out2", ConvertOptions(dry_run=True),
                source_folder=notebook.parent)


def test_a_folder_above_the_notebook_swapped_for_a_link_is_not_followed(jail, monkeypatch
                                                                         ) -> None:
    """Every open walks from the root itself, not from the notebook's tree by its path: a
    folder of that path swapped for a link out of the root leads nowhere."""
    root, outside = jail
    analysis = root / "repo" / "analysis"
    notebook = notebook_at(analysis / "nb.ipynb", "a = open('data/values.csv').read()")
    (analysis / "data" / "values.csv").write_text("a,b\n1,2\n")
    (outside / "repo" / "analysis" / "data").mkdir(parents=True)
    (outside / "repo" / "analysis" / "data" / "values.csv").write_text("SECRET\n")
    real_open = assets_module.open_beneath

    def swapping(root_, parts, **kwargs):
        if not (root / "repo").is_symlink():
            (root / "repo").rename(root / "repo_moved")
            (root / "repo").symlink_to(outside / "repo", target_is_directory=True)
        return real_open(root_, parts, **kwargs)

    monkeypatch.setattr(assets_module, "open_beneath", swapping)
    assets = found(notebook, confine_to=root)
    assert assets.data == () and "data/values.csv" in left_out(assets)


def test_a_shapefile_travels_with_its_parts(tmp_path: Path) -> None:
    # inequality's pengram notebook reads `weighted.shp`: only that file was carried, and the
    # project's own test failed ("Unable to open weighted.shx").
    folder = tmp_path / "nb"
    for part in ("weighted.shp", "weighted.shx", "weighted.dbf", "weighted.cpg", "other.dbf",
                 "ROADS.SHP", "ROADS.SHX"):
        (folder / part).parent.mkdir(exist_ok=True)
        (folder / part).write_bytes(part.encode())
    notebook = notebook_at(folder / "map.ipynb", "import geopandas as gpd",
                           "w = gpd.read_file('weighted.shp')\nr = gpd.read_file('ROADS.SHP')",
                           "w.to_file('out.shp')")
    carried = {d.target: d for d in found(notebook).data}
    assert sorted(t for t, d in carried.items() if d.copied) == [
        "notebooks/ROADS.SHP", "notebooks/ROADS.SHX", "notebooks/weighted.cpg",
        "notebooks/weighted.dbf", "notebooks/weighted.shp", "notebooks/weighted.shx"]
    assert carried["notebooks/weighted.dbf"].read_by == ((0, 1),)
    assert not any(t.startswith("notebooks/out.") and t != "notebooks/out.shp" for t in carried)
