"""Do two nb2pkg trees convert the same notebooks into byte-identical projects?

    python bench/compare_outputs.py                  # this checkout against `main`
    python bench/compare_outputs.py --base d2cf5ac   # against any commit
    python bench/compare_outputs.py --old /path/to/other/checkout

The guard for speed work: a faster conversion must write exactly what the slower one wrote. Each
notebook (the examples, the notebooks under tests/cases and tests/data, the real notebooks of
``/work/shared/realnb`` when present, generated notebooks of 60 and 600 cells) is converted
with ``python -m nb2pkg convert NB -o DIR`` (the default: package, refactored notebooks, tests,
pipeline stages, pipeline.yaml, dvc.yaml, workflow) once by each tree, each in a fresh process with ``PYTHONPATH`` set to that tree, and
every file of the two output folders is compared byte for byte. A notebook whose outputs
differ is converted by the old tree once more: files that differ between two runs of the old
tree (nbformat gives cells of old notebooks random ids) are reported, not counted. Exit status 1
on any other difference, with the differing files named. Not a timing: nothing here is measured.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _synth  # noqa: E402
from _common import REPO  # noqa: E402

REALNB = Path(os.environ.get("NB2PKG_REALNB", "/work/shared/realnb")) / "cases"


def notebooks(work: Path, sizes: tuple[int, ...], seed: int) -> list[Path]:
    found = sorted((REPO / "examples" / "notebooks").glob("*.ipynb"))
    # The test cases: odd and invalid notebooks (both trees must refuse them alike).
    found += sorted(p for folder in ("tests/cases", "tests/data") for p in
                    (REPO / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    if REALNB.is_dir():
        found += sorted(p for p in REALNB.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    else:
        print(f"note: {REALNB} is absent: real notebooks not compared", file=sys.stderr)
    for size in sizes:
        found.append(_synth.write_notebook(work / f"synthetic_{size}.ipynb", size, seed))
    return found


def export(ref: str, into: Path) -> Path:
    """The tree of commit ``ref`` of this repository, written to ``into`` (git archive)."""
    into.mkdir(parents=True)
    archive = into.with_suffix(".tar")
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), ref], cwd=REPO,
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def convert(tree: Path, notebook: Path, output: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    return subprocess.run([sys.executable, "-m", "nb2pkg", "convert", str(notebook), "-o",
                           str(output), "--force"], env=env, capture_output=True, text=True,
                          cwd=notebook.parent)


def differences(old: Path, new: Path) -> list[str]:
    """Relative paths that differ (present in one only, or different bytes)."""
    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

    a, b = files(old), files(new)
    out = [f"only in old: {p}" for p in sorted(a - b)] + [f"only in new: {p}" for p in sorted(b - a)]
    out += [f"differs: {p}" for p in sorted(a & b)
            if not filecmp.cmp(old / p, new / p, shallow=False)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="commit of the old tree (default main)")
    parser.add_argument("--old", type=Path, help="an old checkout to use instead of --base")
    parser.add_argument("--sizes", default="60,600", help="generated notebooks (code cells)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="one example, no generated notebook")
    args = parser.parse_args(argv)
    sizes = () if args.quick else tuple(int(s) for s in args.sizes.split(",") if s)
    with tempfile.TemporaryDirectory(prefix="nb2pkg-compare-") as folder:
        work = Path(folder)
        old = args.old.resolve() if args.old else export(args.base, work / "old-tree")
        todo = notebooks(work, sizes, args.seed)
        if args.quick:
            todo = [n for n in todo if n.stem == "sales_report"]
        failed = 0
        for index, notebook in enumerate(todo):
            outputs = {}
            for label, tree in (("old", old), ("new", REPO)):
                # The same folder name under each side: messages naming it compare equal.
                outputs[label] = work / label / str(index) / "out"
                done = convert(tree, notebook, outputs[label])
                outputs[label + "_status"] = done.returncode  # type: ignore[assignment]
                outputs[label + "_stderr"] = done.stderr  # type: ignore[assignment]
            name = (notebook.relative_to(REALNB).as_posix() if REALNB in notebook.parents
                    else notebook.relative_to(REPO).as_posix() if REPO in notebook.parents
                    else notebook.name)
            if outputs["old_status"] != outputs["new_status"]:
                failed += 1
                print(f"DIFFERENT {name}: exit {outputs['old_status']} (old) vs "
                      f"{outputs['new_status']} (new)\n{outputs['new_stderr']}")
                continue
            if outputs["old_status"] != 0:  # both refused it: the messages must agree
                same = outputs["old_stderr"] == outputs["new_stderr"]
                print(f"{'same' if same else 'DIFFERENT'} {name}: both exit "
                      f"{outputs['old_status']}")
                failed += not same
                continue
            diff = differences(outputs["old"], outputs["new"])
            unstable: list[str] = []
            if diff:  # the old tree again: what differs between two of its runs is no regression
                again = work / "old-again" / str(index) / "out"
                convert(old, notebook, again)
                unstable = differences(outputs["old"], again)
                diff = [d for d in diff if d not in unstable]
            count = sum(1 for p in outputs["new"].rglob("*") if p.is_file())
            print(f"{'same' if not diff else 'DIFFERENT'} {name}: {count} files"
                  + "".join(f"\n  {d}" for d in diff[:20])
                  + "".join(f"\n  (differs between two runs of the old tree too: "
                            f"{d.split(': ', 1)[1]})" for d in unstable[:5]), flush=True)
            failed += bool(diff)
        print(f"{len(todo) - failed} of {len(todo)} notebooks convert identically")
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
