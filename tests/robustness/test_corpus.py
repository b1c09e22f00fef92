"""Every notebook of a corpus of real third-party notebooks through `analyze --json` and `convert`.

The corpus is the test data that notebook tools ship in their source distributions, downloaded by
`../shared/corpus/fetch.sh` into `<repo>/.corpus` (git-ignored; reused when already there; set
NB2PKG_CORPUS to use another folder). It is never committed. Without the script or the registry
the tests skip with the reason.

For every notebook: no crash (a crash is an exception escaping `nb2pkg.cli.main`, or an exit status
other than 0 or 2), a refusal (exit 2) is one line `nb2pkg: error: <file>: <reason>`, a notebook
whose metadata names another language is refused as not Python, the input file is unchanged, and
what `convert` writes is sound (modules compile, notebooks validate, no magic placeholder left,
markdown and outputs untouched, every clone refusal has a reason). The counts go to
`.corpus/summary.json` and docs/robustness.md.
"""

from __future__ import annotations

import ast
import collections
import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path

import nbformat
import pytest

from helpers import ROOT
from harness import run_cli
from nb2pkg.analysis.dataflow import BUILTIN_NAMES
from nb2pkg.analysis.parse import parse_cell
from nb2pkg.analysis.scope import block_io
from nb2pkg.magics import is_placeholder_name
from nb2pkg.notebook import PYTHON_LANGUAGES
from nb2pkg.plan import INTERNAL_ERROR

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore")]

FETCH = ROOT.parent / "shared" / "corpus" / "fetch.sh"


# Example notebooks that data-analysis libraries ship in their sdists: real analyses (regressions,
# time series, plots) written by other people for users, the kind of notebook nb2pkg is for.
# Pinned and checked by hash: corpus name -> (sdist, sha256, folder of the notebooks in it),
# downloaded from PyPI.
SDIST_EXAMPLES = {
    "statsmodels": [("statsmodels-0.14.6.tar.gz",
                     "4d17873d3e607d398b85126cd4ed7aad89e4e9d89fc744cdab1af3189a996c2a",
                     "/examples/")],
    "econometrics": [("arch-8.0.0.tar.gz",
                      "5e9895c2354b9475aff50797ff2191dc64dc5f79602baf0c9321310fb864b637",
                      "/examples/"),
                     ("linearmodels-7.1.tar.gz",
                      "870ed2be6aac0550e89abd38bc37b0353762ca8ef6247290b87baca08f37f2a8",
                      "/examples/")],
    # Causal inference, survival analysis and spatial statistics (session 28: no rule was
    # tuned on them when they were added).
    "causal": [("dowhy-0.9.tar.gz",
                "f92c8f426667f09ec8fcc82d0c1d17267da232b9b6db62ca65d45bf638d48ad3",
                "/example_notebooks/"),
               ("scikit_survival-0.28.0.tar.gz",
                "f8903bf9b67bf9040c7a8b639d300b0817d9e208c8fd7bf34cc624dcc71d32ee",
                "/user_guide/"),
               ("esda-2.9.0.tar.gz",
                "90ec966c54e5ceb826fe0cedd7b335232862252b89cc9d1dbaa3e07a5fc9845a",
                "/notebooks/")],
}


def fetch_sdist_examples(folder: Path, sdists: list[tuple[str, str, str]]) -> None:
    """``folder/notebooks``: the notebooks of each sdist under its folder (``/examples/``),
    from PyPI."""
    import io
    import tarfile
    import urllib.request

    (folder / "notebooks").mkdir(parents=True, exist_ok=True)
    for name, sha256, under in sdists:
        project = name.rsplit("-", 1)[0]
        request = urllib.request.Request(f"https://pypi.org/simple/{project}/", headers={
            "Accept": "application/vnd.pypi.simple.v1+json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            files = json.load(response)["files"]
        url = next(f["url"] for f in files if f["filename"] == name)
        with urllib.request.urlopen(url, timeout=300) as response:
            data = response.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise OSError(f"{name}: not the expected file (sha256 differs)")
        with tarfile.open(fileobj=io.BytesIO(data)) as archive:
            for member in archive.getmembers():
                if member.isfile() and under in member.name \
                        and member.name.endswith(".ipynb") and "checkpoint" not in member.name:
                    source = archive.extractfile(member)
                    assert source is not None
                    target = folder / "notebooks" / Path(member.name).name
                    if target.exists():  # another sdist's notebook of the same name
                        target = target.with_name(f"{project}_{target.name}")
                    target.write_bytes(source.read())


# Written when a download finished: a folder without it is fetched again from scratch.
COMPLETE = ".complete"


@contextlib.contextmanager
def _one_worker_at_a_time(lock: Path):
    """Hold ``lock`` (a file) exclusively. The test workers share ``.corpus``: without it, two
    downloading at once wrote each notebook twice (the second as ``<project>_<name>``) and a
    third read a half-filled folder."""
    import fcntl

    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="session", params=["tools", *SDIST_EXAMPLES])
def corpus(request) -> Path:
    """The corpus folder (with notebooks/), downloaded once and reused: the notebooks notebook
    tools test themselves with, or a library's examples (``.corpus/<name>``)."""
    if request.param in SDIST_EXAMPLES:
        folder = ROOT / ".corpus" / request.param
        with _one_worker_at_a_time(ROOT / ".corpus" / f".{request.param}.lock"):
            if not (folder / COMPLETE).exists():
                shutil.rmtree(folder / "notebooks", ignore_errors=True)
                try:
                    fetch_sdist_examples(folder, SDIST_EXAMPLES[request.param])
                except (OSError, StopIteration, ValueError, KeyError) as exc:
                    pytest.skip(f"{request.param} examples could not be downloaded from PyPI: {exc}")
                (folder / COMPLETE).touch()
        return folder
    folder = Path(os.environ.get("NB2PKG_CORPUS") or ROOT / ".corpus")
    notebooks = folder / "notebooks"
    with _one_worker_at_a_time(folder / ".tools.lock"):
        if not (folder / f".tools{COMPLETE}").exists():
            if not FETCH.exists():
                pytest.skip(f"corpus not downloaded and {FETCH} is missing")
            try:
                result = subprocess.run(["bash", str(FETCH), str(folder)], capture_output=True,
                                        text=True, timeout=600)
            except subprocess.TimeoutExpired:
                pytest.skip("corpus download timed out (package registry unreachable?)")
            if not any(notebooks.glob("*.ipynb")):
                pytest.skip("corpus download failed (package registry unreachable?): "
                            + (result.stderr.strip().splitlines() or ["no output"])[-1])
            (folder / f".tools{COMPLETE}").touch()
    return folder


def corpus_notebooks(corpus: Path) -> list[Path]:
    return sorted((corpus / "notebooks").glob("*.ipynb"))


def declared_language(path: Path) -> str | None:
    """The language the notebook's metadata names, if any (before nb2pkg reads it)."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata") or {}
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None
    if not isinstance(meta, dict):
        return None
    for key, field in (("kernelspec", "language"), ("language_info", "name"),
                       ("jupytext", "main_language")):
        value = meta.get(key)
        value = value.get(field) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def refusal_reason(message: str) -> str:
    """A short name for why a notebook was refused, from its one-line error."""
    for fragment, reason in (("not Python", "not a Python notebook"),
                             ("malformed JSON", "malformed JSON"),
                             ("not UTF-8", "not UTF-8"),
                             ("unsupported nbformat", "nbformat version < 3"),
                             ("not a Jupyter notebook", "not a notebook"),
                             ("invalid notebook", "invalid notebook (nbformat schema)")):
        if fragment in message:
            return reason
    return "other: " + message


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def check_output(folder: Path, source: Path) -> list[str]:
    """What is wrong with a converted project (empty when sound)."""
    problems = []
    for module in folder.rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        try:
            compile(text, str(module), "exec")
        except SyntaxError as exc:
            problems.append(f"{module.relative_to(folder)} does not compile: {exc}")
        if "__nb2pkg_m" in text:
            problems.append(f"{module.relative_to(folder)} contains a magic placeholder")
    original = nbformat.read(str(source), as_version=4)
    refactored = list((folder / "notebooks").glob("*.ipynb"))
    if len(refactored) != 1:
        return problems + [f"{len(refactored)} notebooks written, expected 1"]
    new = nbformat.read(str(refactored[0]), as_version=4)
    try:
        nbformat.validate(new)
    except nbformat.ValidationError as exc:
        problems.append(f"refactored notebook is invalid: {exc.message}")
    kept = [c for c in new.cells if not c.get("metadata", {}).get("nb2pkg", {}).get("generated")]
    if len(kept) != len(original.cells):
        problems.append(f"{len(kept)} cells kept of {len(original.cells)}")
    for before, after in zip(original.cells, kept):
        if before.get("cell_type") != after.get("cell_type"):
            problems.append("a cell changed type")
        elif before.get("cell_type") != "code" and before.get("source") != after.get("source"):
            problems.append("a markdown or raw cell changed")
        elif before.get("outputs") != after.get("outputs"):
            problems.append("outputs changed")
        if "__nb2pkg_m" in str(after.get("source", "")):
            problems.append("a cell contains a magic placeholder")
    # What the original reads before binding it, the refactored notebook may read too, and
    # nothing else: an extraction or moved definition that leaves a name undefined, or code
    # that no longer parses, shows here (a module that compiles proves neither).
    before, after = free_names(original.cells), free_names(new.cells)
    if before is not None:
        if after is None:
            problems.append("a refactored code cell does not parse")
        elif after - before:
            problems.append(f"the refactored notebook reads {sorted(after - before)} unbound")
        for stage in sorted((folder / "stages").rglob("*.ipynb")):
            cells = nbformat.read(str(stage), as_version=4).cells
            found = free_names(cells)
            if found is None:
                problems.append(f"{stage.relative_to(folder)}: a code cell does not parse")
            elif found - before - stage_inputs(cells):  # inputs arrive through globals()
                problems.append(f"{stage.relative_to(folder)} reads "
                                f"{sorted(found - before - stage_inputs(cells))} unbound")
    return problems


def stage_inputs(cells: list) -> set[str]:
    """The names a stage notebook loads from earlier stages (its ``nb2pkg_inputs``)."""
    for cell in cells:
        tree = ast.parse(str(cell.get("source", ""))) if cell.get("cell_type") == "code" else None
        for statement in tree.body if tree else ():
            if isinstance(statement, ast.Assign) and ast.unparse(statement.targets[0]) == "nb2pkg_inputs":
                return set(ast.literal_eval(statement.value))
    return set()


def free_names(cells: list) -> set[str] | None:
    """The names (not builtins) the code cells read where no statement before may have bound
    them, in order, and those function bodies read that no statement binds (IPython syntax
    masked); None when a cell does not parse."""
    free: set[str] = set()
    bound: set[str] = set()
    deferred: set[str] = set()
    for cell in cells:
        if cell.get("cell_type") == "code":
            parsed = parse_cell(str(cell.get("source", "")))
            if parsed.tree is None:
                return None
            for statement in parsed.tree.body:
                io = block_io([statement])
                free |= {n for n in io.reads if n not in bound}
                bound |= io.writes
                deferred |= io.deferred_reads
    return {n for n in free | (deferred - bound)
            if not is_placeholder_name(n) and n not in BUILTIN_NAMES}


def test_every_corpus_notebook(corpus: Path, tmp_path: Path) -> None:
    notebooks = corpus_notebooks(corpus)
    hashes = {p: digest(p) for p in notebooks}
    problems: list[str] = []
    refused: collections.Counter = collections.Counter()
    clone_refusals: collections.Counter = collections.Counter()
    counts = collections.Counter()
    crashes = 0
    started = time.perf_counter()
    for index, path in enumerate(notebooks):
        counts["processed"] += 1
        name = path.name
        status, out, err = run_cli("analyze", "--json", str(path))
        output = tmp_path / f"out{index}"
        converted, cout, cerr = run_cli("convert", str(path), "-o", str(output), "--json")
        for command, code, stdout, stderr in (("analyze", status, out, err),
                                              ("convert", converted, cout, cerr)):
            if code == "crash" or code not in (0, 2) or "Traceback" in stderr:
                crashes += 1
                problems.append(f"{name}: {command} crashed (exit {code}):\n{stderr[-2000:]}")
            elif code == 2:
                lines = stderr.strip().splitlines()
                if len(lines) != 1 or not lines[0].startswith(f"nb2pkg: error: {path}: "):
                    problems.append(f"{name}: {command} exit 2 without one error line: {stderr!r}")
            elif command == "analyze":
                data = json.loads(stdout)
                if len(data["notebooks"]) != 1:
                    problems.append(f"{name}: analyze --json has {len(data['notebooks'])} notebooks")
        if status != converted:
            problems.append(f"{name}: analyze exit {status}, convert exit {converted}")
        language = declared_language(path)
        python = language is None or language.lower() in PYTHON_LANGUAGES
        if converted == 2:
            reason = refusal_reason(cerr.strip().splitlines()[-1])
            refused[reason] += 1
            if output.exists():
                problems.append(f"{name}: refused but {output.name} was created")
            if reason == "not a Python notebook" and python:
                problems.append(f"{name}: a Python notebook refused as not Python: {cerr}")
        elif converted == 0:
            counts["converted"] += 1
            if not python:
                problems.append(f"{name}: a {language} notebook was converted")
            report = json.loads(cout)
            counts["extracted functions"] += len(report["extracted"])
            counts["hoisted definitions"] += len(report["hoisted"])
            for refusal in report["refused"]:
                if not refusal["reason"].strip():
                    problems.append(f"{name}: clone group {refusal['group']} refused without reason")
                clone_refusals[refusal["reason"].split(":")[0]] += 1
            problems += [f"{name}: {p}" for p in check_output(output, path)]
            shutil.rmtree(output)
        if digest(path) != hashes[path]:
            problems.append(f"{name}: the input notebook changed")
    leftovers = [p.name for p in tmp_path.iterdir()]
    if leftovers:
        problems.append(f"left behind in the output parent: {leftovers[:5]}")
    summary = {
        "processed": counts["processed"],
        "converted": counts["converted"],
        "refused": dict(sorted(refused.items())),
        "crashes": crashes,
        "extracted functions": counts["extracted functions"],
        "hoisted definitions": counts["hoisted definitions"],
        "clone groups left alone": dict(sorted(clone_refusals.items())),
        "problems": len(problems),
        "seconds (analyze + convert, in process)": round(time.perf_counter() - started, 1),
    }
    (corpus / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    assert counts["processed"] == len(notebooks) > 0
    assert not problems, f"{len(problems)} problems; summary {summary}:\n" + "\n".join(problems)


def test_subprocess_cli_agrees(corpus: Path, tmp_path: Path) -> None:
    """A handful through the real command: same exit status and message as in process."""
    notebooks = corpus_notebooks(corpus)
    by_kind: dict[str, Path] = {}
    for path in notebooks:
        language = declared_language(path)
        kind = ("big" if path.stat().st_size > 1_000_000 else
                "other language" if language and language.lower() not in PYTHON_LANGUAGES else
                "v3" if '"nbformat": 3' in path.read_text(errors="replace") else "python")
        by_kind.setdefault(kind, path)
    by_kind.setdefault("invalid", next((p for p in notebooks if "invalid" in p.name), notebooks[0]))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for kind, path in sorted(by_kind.items()):
        for args in (["analyze", "--json", str(path)],
                     ["convert", str(path), "-o", str(tmp_path / kind), "--json"]):
            before = digest(path)
            real = subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True,
                                  text=True, env=env, cwd=tmp_path, timeout=120)
            assert real.returncode in (0, 2) and "Traceback" not in real.stderr, (kind, real.stderr)
            if args[0] == "convert":
                shutil.rmtree(tmp_path / kind, ignore_errors=True)
            status, _, err = run_cli(*args)
            shutil.rmtree(tmp_path / kind, ignore_errors=True)
            assert status == real.returncode, (kind, args, real.stderr, err)
            if real.returncode == 2:
                assert real.stderr.strip() == err.strip()
            assert digest(path) == before


def test_all_python_notebooks_as_one_package(corpus: Path, tmp_path: Path) -> None:
    """All notebooks at once (one package, cross-notebook clones, many names): a refusal of some
    is reported per notebook, the rest convert, and every notebook gets its own module name and
    notebook file."""
    from nb2pkg.api import ConvertOptions, convert

    notebooks = corpus_notebooks(corpus)
    status, out, err = run_cli("convert", *map(str, notebooks), "-o", str(tmp_path / "all"),
                               "--json")
    assert status in (0, 1, 2) and "Traceback" not in err, err[-3000:]  # batch: worst result
    report = json.loads(out)
    written = [f for f in report["files"] if f.startswith("notebooks/")]
    assert len(written) + len(report["skipped"]) == len(notebooks)
    assert all(s["reason"] for s in report["skipped"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for module in (tmp_path / "all").rglob("*.py"):
            compile(module.read_text(encoding="utf-8"), str(module), "exec")
    plan = convert(notebooks, tmp_path / "dry", ConvertOptions(dry_run=True)).plan
    assert not [r.reason for r in plan.refusals if r.reason.startswith(INTERNAL_ERROR)]
    assert len({n.module for n in plan.notebooks}) == len(plan.notebooks) == len(written)
    assert len({n.filename.casefold() for n in plan.notebooks}) == len(written)
    # Code shared between notebooks moved into `common`: no notebook reads a name unbound that
    # its original bound (an import inside a copied `try`, say).
    unbound = {}
    for planned in plan.notebooks:
        before = free_names(nbformat.read(planned.original, as_version=4).cells)
        after = free_names(planned.node.cells)
        if before is not None and (after is None or after - before):
            unbound[planned.filename] = "does not parse" if after is None else sorted(after - before)
    assert not unbound, unbound


def test_analyze_the_corpus_folder(corpus: Path) -> None:
    """The folder as one argument, through the real command with two worker processes."""
    result = subprocess.run([sys.executable, "-m", "nb2pkg", "analyze", "--json", "-j", "2",
                             str(corpus / "notebooks")], capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert result.returncode in (0, 1, 2) and "Traceback" not in result.stderr, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert len(data["notebooks"]) + len(data["skipped"]) == len(corpus_notebooks(corpus))
    assert all(s["status"] in ("refused", "failed") and s["reason"] for s in data["skipped"])
