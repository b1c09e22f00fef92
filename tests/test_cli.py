"""The command as users run it: help, errors as one line and exit codes, output safety, JSON."""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from helpers import DATA, EXAMPLES, ROOT, write_notebook
from nb2pkg.cli import main

SALES = EXAMPLES / "sales_report.ipynb"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nb2pkg", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_help_explains_every_command() -> None:
    result = run("--help")
    assert result.returncode == 0
    for command in ("analyze", "convert", "verify"):
        assert command in result.stdout
    convert_help = run("convert", "--help").stdout
    for option in ("--output", "--force", "--dry-run", "--no-extract", "--verify", "--names"):
        assert option in convert_help


def test_help_and_convert_do_not_import_heavy_modules() -> None:
    code = ("import sys, nb2pkg.cli as c; c.build_parser();"
            "import nb2pkg.api, nb2pkg.plan, nb2pkg.generate;"
            "print(sorted(m for m in ('papermill', 'jupyter_server', 'nbclient') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.strip() == "[]", out.stderr


CONVERT_AND_LIST_LIBCST = """\
import sys
from nb2pkg.cli import main
code = main(["convert", sys.argv[1], "-o", sys.argv[2]])
print(code, "libcst" in sys.modules)
"""


@pytest.mark.parametrize("cells, libcst", [
    # A definition moves into the package and the data-only lines stay: no libcst needed.
    (["import math", "def area(r):\n    return math.pi * r ** 2", "print(area(2))"], False),
    # A function reading a notebook variable takes it as a parameter: written on the text.
    (["rate = 2", "def scale(x):\n    return x * rate", "print(scale(3))"], False),
    # Copied code becomes a function, written from the copy's text.
    (["a = [1, 2]\nb = sum(a)\nc = b * 2\nprint(c)", "a = [3, 4]\nb = sum(a)\nc = b * 2\nprint(c)"],
     False),
    # ... but libcst writes it when the copy's blocks are not indented by four spaces.
    (["for a in [1, 2]:\n  b = a * 2\n  print(b)\nc = 1", "for a in [3, 4]:\n  b = a * 2\n  print(b)\nc = 1"],
     True),
], ids=["nothing-extracted", "lifted", "extracted", "extracted-with-libcst"])
def test_convert_imports_libcst_only_when_it_extracts(cells, libcst, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "n.ipynb", cells)
    done = subprocess.run([sys.executable, "-c", CONVERT_AND_LIST_LIBCST, str(notebook),
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split()[-2:] == ["0", str(libcst)], done.stdout + done.stderr


def test_a_typical_conversion_imports_only_what_it_needs(tmp_path: Path) -> None:
    # Each of these took 0.01-0.2 s of a conversion that has no use for it (issue 16): YAML is
    # written by hand where PyYAML would write the same, the notebook read without nbformat.
    code = ("import sys\nfrom nb2pkg.cli import main\n"
            "code = main(['convert', sys.argv[1], '-o', sys.argv[2]])\n"
            "print(code, sorted(m for m in ('yaml', 'libcst', 'nbformat', 'jsonschema',"
            " 'zipfile') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code, str(SALES), str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.splitlines()[-1] == "0 []", done.stdout + done.stderr


@pytest.mark.parametrize("name, fragment", [
    ("malformed.ipynb", "malformed JSON"),
    ("r_kernel.ipynb", "not Python"),
    ("missing.ipynb", "no such file"),
])
def test_bad_input_exits_2_with_one_line(name: str, fragment: str, tmp_path: Path) -> None:
    for args in (("analyze", str(DATA / "read" / name)),
                 ("convert", str(DATA / "read" / name), "-o", str(tmp_path / "out"))):
        result = run(*args)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in result.stderr
        assert not (tmp_path / "out").exists()


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused = run("convert", str(SALES), "-o", str(out))
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (out / "keep.txt").read_text() == "mine"
    forced = run("convert", str(SALES), "-o", str(out), "--force")
    assert forced.returncode == 0, forced.stderr
    assert not (out / "keep.txt").exists() and (out / "pyproject.toml").exists()


def test_output_inside_the_notebooks_folder_is_refused(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    result = run("convert", str(notebook), "-o", str(tmp_path), "--force")
    assert result.returncode == 2 and "contains the input notebook" in result.stderr
    assert notebook.exists()


def test_convert_names_the_findings_the_generated_ci_fails_on(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", ["x = 1", "print(x", "import os"])
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "details in REPORT.md; 1 error to fix:\n  nb.ipynb cell 1: [unparseable-cell]" \
        in result.stdout, result.stdout
    assert "unused-import" not in result.stdout  # tidiness stays in REPORT.md


def test_dry_run_writes_nothing_and_input_is_untouched(tmp_path: Path) -> None:
    before = digest(SALES)
    result = run("convert", str(SALES), "-o", str(tmp_path / "out"), "--dry-run")
    assert result.returncode == 0
    assert "Would write" in result.stdout and "src/sales_report/core.py" in result.stdout
    assert not (tmp_path / "out").exists()
    run("convert", str(SALES), "-o", str(tmp_path / "real"))
    assert digest(SALES) == before


def test_analyze_json_is_one_document(tmp_path: Path) -> None:
    result = run("analyze", "--json", *map(str, sorted(EXAMPLES.glob("*.ipynb"))))
    data = json.loads(result.stdout)
    assert data["version"] == 1 and len(data["notebooks"]) == 4
    sales = next(n for n in data["notebooks"] if n["path"].endswith("sales_report.ipynb"))
    assert sales["parameters_cell"] == 2
    cell6 = next(c for c in sales["code"] if c["cell"] == 6)
    assert {"name": "csv_path", "line": 1, "from_cell": 5} in cell6["uses"]
    assert any(len({o["notebook"] for o in g["occurrences"]}) == 2 for g in data["clones"])


def test_convert_json_and_names_override(tmp_path: Path) -> None:
    names = tmp_path / "names.yaml"
    names.write_text("C1:\n  name: summarize_region\n  params:\n    label: heading\n")
    result = run("convert", str(SALES), "-o", str(tmp_path / "out"), "--names", str(names), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (extracted,) = [e for e in data["extracted"] if e["group"] == "C1"]
    assert extracted["function"] == "summarize_region"
    assert "heading" in extracted["parameters"] and "label" not in extracted["parameters"]
    module = (tmp_path / "out" / "src" / "sales_report" / "core.py").read_text()
    assert "def summarize_region(" in module


def test_no_extract_keeps_copies(tmp_path: Path) -> None:
    result = run("convert", str(SALES), "-o", str(tmp_path / "out"), "--no-extract", "--json")
    assert json.loads(result.stdout)["extracted"] == []


def test_output_under_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = run("convert", str(SALES), "-o", str(blocker / "out"))
    assert result.returncode == 2
    assert f"{blocker} is a file" in result.stderr and "analysing" not in result.stderr


def test_an_empty_folder_is_named_in_the_error(tmp_path: Path) -> None:
    result = run("analyze", str(tmp_path))
    assert result.returncode == 2 and f"no notebooks found in {tmp_path}" in result.stderr


# -- bad input, every command (issue 12) ---------------------------------------------------------
def _fifo(folder: Path) -> Path:
    os.mkfifo(folder / "pipe.ipynb")
    return folder / "pipe.ipynb"


def _loop(folder: Path) -> Path:
    (folder / "a.ipynb").symlink_to(folder / "b.ipynb")
    (folder / "b.ipynb").symlink_to(folder / "a.ipynb")
    return folder / "a.ipynb"


def _deep(folder: Path) -> Path:
    path = folder / "deep.ipynb"
    path.write_text('{"nbformat": 4, "nbformat_minor": 5, "cells": [], "metadata": {"x": '
                    + "[" * 50_000 + "]" * 50_000 + "}}")
    return path


def _folder(folder: Path) -> Path:
    (folder / "x.ipynb").mkdir()
    return folder / "x.ipynb"


def _data(name: str) -> Callable[[Path], Path]:
    return lambda folder: DATA / "read" / name


BAD_INPUTS = {
    "fifo": (_fifo, "is a FIFO, not a regular file"),
    "symlink loop": (_loop, "is a symbolic link loop"),
    "50,000-deep nesting": (_deep, "nested more than 100 levels deep at line 1"),
    "folder named x.ipynb": (_folder, "is a folder, not a notebook"),
    "lone surrogate": (_data("lone_surrogate_heading.ipynb"), "holds a lone surrogate"),
    "empty file": (_data("empty.ipynb"), "empty file"),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", ["analyze", "convert", "verify"])
@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_one_line_for_every_command(kind: str, command: str, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture) -> None:
    # Before: the FIFO hung every command; the loop, the nesting and the surrogate ended
    # `convert` (and some `analyze`) in a traceback.
    make, fragment = BAD_INPUTS[kind]
    path = make(tmp_path)
    project = tmp_path / "project"
    (project / "notebooks").mkdir(parents=True)
    args = {"analyze": ["analyze", str(path)],
            "convert": ["convert", str(path), "-o", str(tmp_path / "out")],
            "verify": ["verify", str(path), str(project)]}[command]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"nb2pkg: error: {path}: "), err
    assert fragment in err[0]
    assert not (tmp_path / "out").exists()


def test_output_that_is_a_symlink_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "o1").symlink_to(tmp_path / "o2")
    (tmp_path / "o2").symlink_to(tmp_path / "o1")
    for output, fragment in ((tmp_path / "o1", "the output is a symbolic link loop"),
                             (tmp_path / "o1" / "sub", f"{tmp_path / 'o1'} is a symbolic link loop")):
        result = run("convert", str(SALES), "-o", str(output))  # was: RuntimeError traceback
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert fragment in result.stderr and "analysing" not in result.stderr
    assert (tmp_path / "o1").is_symlink() and (tmp_path / "o2").is_symlink()


def test_input_that_is_a_symlink_loop_is_named_by_convert(tmp_path: Path) -> None:
    result = run("convert", str(_loop(tmp_path)), "-o", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr  # was: RuntimeError traceback from resolve()
    assert result.stderr.strip().splitlines() == [
        f"nb2pkg: error: {tmp_path / 'a.ipynb'}: is a symbolic link loop (point the link at a "
        "notebook)"]


@pytest.mark.parametrize("name, fragment", [
    ("y" * 300, "a name in the output path is 300 bytes long, over the file system's limit"),
    ("y" * 250, "the output folder's name is 250 bytes long; at most 234 fit"),
])
def test_output_names_too_long_are_refused_before_any_work(tmp_path: Path, name: str,
                                                           fragment: str) -> None:
    result = run("convert", str(SALES), "-o", str(tmp_path / name))  # was: OSError traceback
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert fragment in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_convert_writes_only_a_pipeline_that_run_accepts(tmp_path: Path) -> None:
    """Parameters YAML cannot carry stay code; headings with ESC/BEL/NUL give clean titles.

    Before: `1j` and `...` ended convert with a yaml RepresenterError traceback; bytes, sets and
    dicts with tuple keys made a pipeline.yaml that `nb2pkg run` refused; an ESC in a heading
    went into a YAML comment that the loader refuses.
    """
    from nb2pkg.pipeline.spec import load_pipeline, resolve_parameters
    import nbformat

    source = DATA / "read" / "uncarried_parameters.ipynb"
    out = tmp_path / "out"
    assert main(["convert", str(source), "-o", str(out)]) == 0
    pipeline = load_pipeline(out / "pipeline.yaml")  # what `nb2pkg run` does first
    values = resolve_parameters(pipeline, [("n", "4")])
    assert values == {"n": 4, "limit": math.inf, "names": ["a", ["b", "c"]]}
    text = (out / "pipeline.yaml").read_text(encoding="utf-8")
    assert not any(ord(c) < 32 and c != "\n" for c in text)
    assert "# Bad values" in text and "# Use it" in text
    first = nbformat.read(out / pipeline.stages[0].notebook, as_version=4)
    kept = "\n".join(c.source for c in first.cells if c.cell_type == "code")
    for assignment in ("z = 1j", "rest = ...", "raw = b'x'", "seen = {1, 2}", "pairs = {(1, 2): 3}",
                       "codes = {1: 'a'}"):
        assert assignment in kept
    assert {"z", "seen"} <= set(pipeline.stages[0].outputs)  # carried as artifacts instead
    assert main(["export", "dvc", str(out / "pipeline.yaml"), "--check"]) == 0  # dvc.yaml agrees


def _closed_stdout(*args: str) -> subprocess.CompletedProcess:
    """Run with stdout a pipe nobody reads (as `| head -1` leaves it), buffered as for users."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    try:
        return subprocess.run([sys.executable, "-m", "nb2pkg", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT,
                              env={**env, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write_end)


@pytest.mark.parametrize("args", [("analyze", str(SALES)), ("analyze", "--json", str(SALES)),
                                  ("--help",), ("--version",)])
def test_a_reader_that_left_ends_quietly_with_141(args: tuple[str, ...]) -> None:
    # Before: output small enough to stay buffered failed at exit: "Exception ignored ...
    # BrokenPipeError" on stderr and exit status 120.
    result = _closed_stdout(*args)
    assert (result.returncode, result.stderr) == (141, "")


def test_file_names_that_are_not_utf8_are_printed_escaped(tmp_path: Path) -> None:
    name = os.fsdecode(b"caf\xe9.ipynb")
    write_notebook(tmp_path / name, ["x = 1"])
    result = subprocess.run([sys.executable, "-m", "nb2pkg", "analyze", str(tmp_path / name)],
                            capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr  # was: UnicodeEncodeError printing the path
    assert b"caf\\udce9.ipynb" in result.stdout


@pytest.mark.timeout(60)
def test_a_names_file_that_is_a_fifo_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture
                                                ) -> None:
    os.mkfifo(tmp_path / "names.yaml")  # read_text waited forever for a writer
    assert main(["convert", str(SALES), "-o", str(tmp_path / "out"), "--names",
                 str(tmp_path / "names.yaml")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"nb2pkg: error: {tmp_path / 'names.yaml'}: is a FIFO, not a regular file "
        "(nb2pkg reads regular files only)")


def test_max_data_size_leaves_larger_files_listed_not_copied(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "small.csv").write_text("a\n1\n")
    (folder / "data" / "large.csv").write_text("a\n" + "1\n" * 400_000)  # 0.8 MB
    write_notebook(folder / "nb.ipynb", ["print(open('data/small.csv').read())",
                                         "print(len(open('data/large.csv').read()))"])
    result = run("convert", str(folder / "nb.ipynb"), "-o", str(tmp_path / "out"),
                 "--max-data-size", "0.5")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "notebooks" / "data" / "small.csv").is_file()
    assert not (tmp_path / "out" / "notebooks" / "data" / "large.csv").exists()
    report = (tmp_path / "out" / "REPORT.md").read_text()
    assert "`notebooks/data/large.csv`: **not copied**" in report
    bad = run("convert", str(folder / "nb.ipynb"), "-o", str(tmp_path / "x"), "--max-data-size", "x")
    assert bad.returncode == 2 and "not a number of megabytes" in bad.stderr


@pytest.mark.parametrize("cells, lines", [
    (["x = 1", "print(x)"],
     ["extracted no functions from repeated code", "moved no definitions into modules"]),
    (["a = [1, 2]\nb = sum(a)\nc = b * 2\nprint(c)", "a = [3, 4]\nb = sum(a)\nc = b * 2\nprint(c)",
      "def area(r):\n    return r * r"],
     ["extracted 1 function from repeated code:", "moved 1 definition into modules"]),
], ids=["none", "one"])
def test_the_summary_counts_in_words(cells, lines, tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "n.ipynb", cells)
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    for line in lines:
        assert line in result.stdout.splitlines(), result.stdout


def test_lifted_functions_are_named_in_the_summary_and_the_json(tmp_path: Path) -> None:
    # tests/data/extract/lift_chain.txt: `shifted` reads `offset` and calls `scaled`, which reads
    # `scale`; both move into the package with the variables as parameters.
    from helpers import parse_case

    case = parse_case((DATA / "extract" / "lift_chain.txt").read_text())
    notebook = write_notebook(tmp_path / "case.ipynb", case["cells"])
    text = run("convert", str(notebook), "-o", str(tmp_path / "out"))
    assert text.returncode == 0, text.stderr
    assert ("moved 2 definitions into modules, 2 taking notebook variables as parameters:\n"
            "  scaled: takes scale (was the notebook's scale)\n"
            "  shifted: takes offset, scale (were the notebook's offset, scale)\n") in text.stdout

    result = run("convert", str(notebook), "-o", str(tmp_path / "json"), "--json")
    assert result.returncode == 0, result.stderr
    lifted = {h["name"]: h["lifted"] for h in json.loads(result.stdout)["hoisted"]}
    assert lifted == {
        "scaled": {"parameters": [{"variable": "scale", "parameter": "scale", "default": "3"}],
                   "calls": 2},
        "shifted": {"parameters": [{"variable": "offset", "parameter": "offset", "default": "1"},
                                   {"variable": "scale", "parameter": "scale", "default": "3"}],
                    "calls": 2},
    }


def test_upper_case_variables_are_named_as_the_notebook_wrote_them(tmp_path: Path) -> None:
    notebook = write_notebook(tmp_path / "churn.ipynb", [
        "CHURN_THRESHOLD = 0.5",
        "def to_label(p):\n    return p >= CHURN_THRESHOLD",
        "labels = [to_label(p) for p in (0.2, 0.7)]\nlabels",
        "CHURN_THRESHOLD = 0.6  # set twice, so it stays in the notebook\nprint(to_label(0.55))",
        "def tidy(x):\n    return round(x, 2)",
        "print(tidy(1.234))",
    ])
    result = run("convert", str(notebook), "-o", str(tmp_path / "out"), "--json")
    assert result.returncode == 0, result.stderr
    hoisted = {h["name"]: h["lifted"] for h in json.loads(result.stdout)["hoisted"]}
    assert hoisted["tidy"] is None
    assert hoisted["to_label"] == {"parameters": [{"variable": "CHURN_THRESHOLD",
                                                   "parameter": "churn_threshold",
                                                   "default": "0.5"}], "calls": 2}
    text = run("convert", str(notebook), "-o", str(tmp_path / "text"))
    lines = text.stdout.splitlines()
    assert "  to_label: takes churn_threshold (was the notebook's CHURN_THRESHOLD)" in lines
    assert not any(line.lstrip().startswith("tidy:") for line in lines)


def _stopped_by(sig: signal.Signals, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """``nb2pkg ARGS`` sent ``sig`` once it says it is executing a notebook (a cell sleeps a
    minute, so it is still at work); what it printed and its status."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "nb2pkg", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(scratch)})
    said = []
    for line in process.stderr:  # the progress lines; the notebook's cell sleeps meanwhile
        said.append(line)
        if "executing" in line:
            break
    time.sleep(3)  # into the kernel's start or the sleeping cell
    process.send_signal(sig)
    try:
        out, err = process.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"{sig.name} did not stop it: {''.join(said)}") from None
    assert not list(scratch.glob("nb2pkg-*")), "scratch folders left behind"
    return subprocess.CompletedProcess(args, process.returncode, out, "".join(said) + err)


@pytest.mark.kernel
@pytest.mark.timeout(180)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_verify_stops_it_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    # Before: SIGTERM while a kernel ran ended in an nbclient traceback (CancelledError,
    # AssertionError) with status 1; after the first notebook ran, SIGTERM killed the process
    # outright (nbclient reset it to the default), leaving its scratch folders.
    notebook = write_notebook(tmp_path / "slow.ipynb", ["import time", "time.sleep(60)", "x = 1"])
    result = _stopped_by(sig, tmp_path, "convert", str(notebook), "-o", str(tmp_path / "out"),
                         "--verify")
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stderr.splitlines()[-1]) in (
        (130, "nb2pkg: interrupted"), (143, "nb2pkg: terminated")), result.stderr
    assert not (tmp_path / "out").exists()
