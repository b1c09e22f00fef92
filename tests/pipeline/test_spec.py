"""pipeline.yaml: schema and reference errors name line and field; parameters are cast by type."""

from __future__ import annotations

import re
import textwrap

import pytest

from nb2pkg.errors import PipelineError
from nb2pkg.pipeline.spec import load_pipeline, resolve_parameters

VALID = """\
version: 1
name: demo
parameters:
  seed: {type: int, default: 1}
  rate: {type: float, default: 0.5}
  label: {type: str, default: "a"}
  flag: {type: bool, default: false}
  cols: {type: list, default: [a, b]}
  nb.size: {type: int, default: 3}
stages:
  - name: load
    notebook: load.ipynb
    parameters: [seed, rate]
    outputs: [df]
  - name: use
    notebook: use.ipynb
    parameters: {size: nb.size}
    inputs:
      df: load
"""


def write(tmp_path, text, notebooks=("load.ipynb", "use.ipynb")):
    for name in notebooks:
        (tmp_path / name).write_text("{}", encoding="utf-8")
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def error_of(tmp_path, text):
    with pytest.raises(PipelineError) as info:
        load_pipeline(write(tmp_path, text))
    return str(info.value)


def test_valid_pipeline_loads(tmp_path):
    pipeline = load_pipeline(write(tmp_path, VALID))
    assert [s.name for s in pipeline.stages] == ["load", "use"]
    assert pipeline.stage("use").parameters == (("size", "nb.size"),)
    assert pipeline.stage("use").upstream == ("load",)
    assert pipeline.parameter("rate").type == "float"


@pytest.mark.parametrize("old, new, line, field", [
    ("    outputs: [df]\n", "    outputs: [df]\n    colour: red\n", 15, "stages[0].colour"),
    ("    notebook: use.ipynb\n", "    notebook: 5\n", 16, "stages[1].notebook"),
    ("  seed: {type: int, default: 1}\n", "  seed: {type: integer, default: 1}\n", 4,
     "parameters.seed.type"),
    ("version: 1\n", "version: 2\n", 1, "version"),
    ("    parameters: [seed, rate]\n", "    parameters: [seed, 4]\n", 13, "stages[0].parameters"),
])
def test_schema_errors_name_line_and_field(tmp_path, old, new, line, field):
    assert old in VALID
    message = error_of(tmp_path, VALID.replace(old, new))
    assert f"line {line}: {field}" in message, message
    assert message.startswith(str(tmp_path / "pipeline.yaml"))


def test_missing_field_is_named(tmp_path):
    message = error_of(tmp_path, VALID.replace("    notebook: load.ipynb\n", ""))
    assert "line 11: stages[0]: 'notebook' is required" in message


@pytest.mark.parametrize("old, new, expected", [
    ("      df: load\n", "      df: nowhere\n", "line 19: stages[1].inputs.df: input `df` comes from stage 'nowhere'"),
    ("    outputs: [df]\n", "    outputs: [other]\n", "stage 'load' does not list `df` in its outputs"),
    ("    parameters: {size: nb.size}\n", "    parameters: {size: nb.width}\n",
     "line 17: stages[1].parameters.size: unknown parameter 'nb.width'"),
    ("  - name: use\n", "  - name: load\n", "line 15: stages[1].name: stage name 'load' is used twice"),
    ("  flag: {type: bool, default: false}\n", "  flag: {type: bool, default: 3}\n",
     "line 7: parameters.flag.default: default 3 is not a bool"),
    ("    notebook: use.ipynb\n", "    notebook: gone.ipynb\n",
     "line 16: stages[1].notebook: notebook gone.ipynb does not exist"),
])
def test_reference_errors_name_line_and_field(tmp_path, old, new, expected):
    assert old in VALID
    assert expected in error_of(tmp_path, VALID.replace(old, new))


def test_needs_must_come_earlier(tmp_path):
    text = VALID.replace("    outputs: [df]\n", "    outputs: [df]\n    needs: [use]\n")
    assert "stages[0].needs[0]: stage 'use' comes later in the file" in error_of(tmp_path, text)


def test_yaml_syntax_error_names_line(tmp_path):
    assert "line 4: not valid YAML" in error_of(tmp_path, "version: 1\nname: x\nstages: [\n  - a: ]\n")


def test_parameters_are_cast_to_the_type_of_their_default(tmp_path):
    pipeline = load_pipeline(write(tmp_path, VALID))
    values = resolve_parameters(pipeline, [("seed", "7"), ("rate", "1"), ("label", "007"),
                                           ("flag", "yes"), ("cols", "[x, y, z]")])
    assert values["seed"] == 7 and isinstance(values["seed"], int)
    assert values["rate"] == 1.0 and isinstance(values["rate"], float)
    assert values["label"] == "007"  # a str parameter keeps the text as it is
    assert values["flag"] is True
    assert values["cols"] == ["x", "y", "z"]


@pytest.mark.parametrize("name, text, expected", [
    ("seed", "7.5", "parameter seed is an int (default 1), and '7.5' is not an integer"),
    ("flag", "maybe", "is not true or false"),
    ("cols", "x", "is not a list"),
    ("rate", "fast", "is not a number"),
])
def test_values_that_do_not_fit_are_errors(tmp_path, name, text, expected):
    pipeline = load_pipeline(write(tmp_path, VALID))
    with pytest.raises(PipelineError, match=re.escape(expected)):
        resolve_parameters(pipeline, [(name, text)])


def test_unknown_parameter_lists_the_known_ones(tmp_path):
    pipeline = load_pipeline(write(tmp_path, VALID))
    with pytest.raises(PipelineError) as info:
        resolve_parameters(pipeline, [("sed", "1")])
    assert "unknown parameter 'sed'" in str(info.value)
    assert "known parameters: seed, rate, label, flag, cols, nb.size" in str(info.value)


def test_parameters_file_nested_keys_and_strict_types(tmp_path):
    pipeline = load_pipeline(write(tmp_path, VALID))
    good = tmp_path / "params.yaml"
    good.write_text("seed: 3\nnb:\n  size: 9\nrate: 2\n", encoding="utf-8")
    values = resolve_parameters(pipeline, [("seed", "4")], [good])
    assert values["seed"] == 4 and values["nb.size"] == 9 and values["rate"] == 2.0
    bad = tmp_path / "bad.yaml"
    bad.write_text("label: 5\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="parameter label is a str, not int .*quote it"):
        resolve_parameters(pipeline, files=[bad])
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("nb:\n  width: 1\n", encoding="utf-8")
    with pytest.raises(PipelineError, match="unknown parameter 'nb.width'"):
        resolve_parameters(pipeline, files=[unknown])
