"""The pipeline as ``dvc.yaml`` and parameter files: DVC runs it with papermill, without nb2pkg.

Each stage becomes a DVC stage whose command is a plain papermill call::

    python -m papermill stages/nb/02_clean.ipynb runs/nb-clean.ipynb --cwd notebooks -k python3
      --no-progress-bar -f params.yaml -r nb2pkg_stage nb-clean
      -r nb2pkg_outputs ../artifacts/nb-clean -y '{"nb2pkg_inputs": {"df": "../artifacts/nb-load"}}'

(the parameters file when the stage has parameters, ``nb2pkg_inputs`` when it has inputs). Its
dependencies are the stage notebook, the pipeline's ``deps``, the stage's own data ``deps`` and
the artifact folders of the stages it takes inputs from or ``needs``; its outputs are its artifact
folder, its data ``outs`` and its executed notebook; its parameters are the pipeline parameters it uses. The
``index.json`` of stages that record metrics is listed under ``metrics`` (``dvc metrics show``).

Parameter values live in flat YAML files that papermill reads with ``-f``, keyed by notebook
variable: ``params.yaml`` for parameters named like their variable (one notebook), and
``params/<notebook>.yaml`` for the ``<notebook>.<variable>`` parameters of a pipeline of several
notebooks.

``nb2pkg convert`` writes these files from the pipeline record it planned (which the
pipeline.yaml it writes loads back as), ``nb2pkg export dvc`` from the pipeline.yaml on disk, and ``nb2pkg run`` compares the ``dvc.yaml`` beside the
pipeline with the one this module makes (``dvc_mismatch``): one implementation, one source of
truth (pipeline.yaml). Existing files are replaced only when asked (``force``), atomically, and
the parameter values already in a parameters file are kept.
"""

from __future__ import annotations

import json
import os
import posixpath
import shlex
from pathlib import Path
from typing import Any, Mapping

from ..atomic import partial_path
from ..errors import OutputExistsError, OutputWriteError, PipelineError
from ..templating import plain_yaml_scalar
from .spec import Pipeline, Stage, _matches, load_pipeline, parse_yaml, read_text_file

DVC_FILE = "dvc.yaml"
PARAMS_FILE = "params.yaml"
PARAMS_DIR = "params"
# The stage notebooks' own parameters (their `parameters` cell); `nb2pkg run` passes the same.
STAGE_PARAMETER = "nb2pkg_stage"
INPUTS_PARAMETER = "nb2pkg_inputs"
OUTPUTS_PARAMETER = "nb2pkg_outputs"
EXPORT_FIX = "run `nb2pkg export dvc --force` to write it again from pipeline.yaml"


def dvc_files(pipeline_path: Path | str, output: Path | str | None = None) -> dict[str, str]:
    """``{"dvc.yaml": text, "params.yaml": text, ...}`` for the pipeline, to be written in
    ``output`` (default: the pipeline's folder)."""
    pipeline = load_pipeline(pipeline_path)
    return render_dvc(pipeline, Path(output).absolute() if output is not None else None)


def render_dvc(pipeline: Pipeline, folder: Path | None = None) -> dict[str, str]:
    """The text of ``dvc.yaml`` and of each parameters file, by path relative to ``folder``
    (where ``dvc.yaml`` goes; default: the pipeline's folder)."""
    # Not through .stages, which imports the splitter: `nb2pkg run` must not load it.
    from ..templating import environment

    env = environment()
    context = dvc_context(pipeline, folder if folder is not None else pipeline.root)
    files = {DVC_FILE: env.get_template("pipeline/dvc.yaml.j2").render(**context)}
    for group in context["parameter_files"]:
        files[group["name"]] = env.get_template("pipeline/params.yaml.j2").render(
            pipeline=pipeline.name, **group)
    return files


def export_dvc(pipeline_path: Path | str, options: Any) -> list[Path]:
    """The ``dvc`` entry of the exporter registry (``registry.ExportOptions``)."""
    return write_dvc(pipeline_path, options.output, force=options.force)


def write_dvc(pipeline_path: Path | str, output: Path | str | None = None, *,
              force: bool = False) -> list[Path]:
    """Write ``dvc.yaml`` and the parameters files; return their paths.

    Raises ``OutputExistsError`` when any exists and not ``force`` (before writing anything:
    ``dvc.yaml`` may hold the user's own stages), and ``OutputWriteError`` when a file cannot be
    written. Each file is replaced atomically, and none is replaced unless all could be written.
    The values in an existing parameters file are kept where the parameter still exists and
    the value fits its type.
    """
    pipeline = load_pipeline(pipeline_path)
    folder = Path(output) if output is not None else pipeline.root
    files = render_dvc(pipeline, folder.absolute())
    try:
        existing = [name for name in files if (folder / name).exists()]
        folders = [name for name in files if (folder / name).is_dir()]
    except OSError as exc:  # a name too long, a loop of links, no permission
        raise OutputWriteError(f"cannot look at the folder: {exc.strerror or exc}",
                               path=folder) from None
    if existing and not force:
        raise OutputExistsError(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}",
            path=folder, hint="pass --force to replace "
            + ("them" if len(existing) > 1 else "it")
            + (" (parameter values are kept)"
               if any(name != DVC_FILE for name in existing) else ""))
    if folders:
        raise OutputWriteError(f"{folders[0]} is a folder", path=folder,
                               hint="remove it, or export elsewhere with -o DIR")
    for name in existing:
        if name != DVC_FILE:
            files[name] = _keep_values(pipeline, name, folder / name, files[name])
    for parent in dict.fromkeys((folder / name).parent for name in files):
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(f"cannot create the folder: {exc.strerror or exc}",
                                   path=parent) from None
    partials: dict[str, str] = {}
    try:
        # All are written completely before any replaces anything.
        for name, text in files.items():
            partials[name] = str(partial_path(folder / name))
            with open(partials[name], "x", encoding="utf-8") as stream:
                stream.write(text)
        for name, partial in partials.items():
            os.replace(partial, folder / name)
    except OSError as exc:
        raise OutputWriteError(f"cannot write: {exc.strerror or exc}", path=folder,
                               hint="check the folder's permissions, free space and name") from None
    finally:
        for partial in partials.values():
            Path(partial).unlink(missing_ok=True)
    return [folder / name for name in files]


def dvc_mismatch(pipeline: Pipeline) -> str | None:
    """Why the ``dvc.yaml`` beside the pipeline is not the one pipeline.yaml makes, in one line
    naming the first stage that differs; ``None`` when it is (or when there is none)."""
    import yaml

    path = pipeline.root / DVC_FILE
    if not os.path.lexists(path):
        return None
    prefix = f"{path}: does not match {pipeline.path.name}"
    try:
        actual = parse_yaml(read_text_file(path, "DVC file"), path)[1]
    except PipelineError as exc:
        return f"{exc} ({EXPORT_FIX})"
    try:
        expected = yaml.safe_load(render_dvc(pipeline)[DVC_FILE])
    except PipelineError as exc:  # a hand-written pipeline DVC cannot run: say so, run anyway
        return f"{prefix}: pipeline.yaml makes no dvc.yaml: {exc}"
    if not isinstance(actual, dict) or not isinstance(actual.get("stages"), dict):
        return f"{prefix}: it has no stages ({EXPORT_FIX})"
    mine, theirs = expected["stages"], actual["stages"]
    for name, stage in mine.items():
        if name not in theirs:
            return f"{prefix}: stage {name} is missing ({EXPORT_FIX})"
        if theirs[name] != stage:
            other = theirs[name] if isinstance(theirs[name], dict) else {}
            fields = [key for key in dict.fromkeys([*stage, *other])
                      if other.get(key) != stage.get(key)]
            return f"{prefix}: stage {name} differs ({', '.join(fields)}) ({EXPORT_FIX})"
    for name in theirs:
        if name not in mine:
            return f"{prefix}: stage {name} is not in {pipeline.path.name} ({EXPORT_FIX})"
    for key in dict.fromkeys([*expected, *actual]):
        if expected.get(key) != actual.get(key):
            return f"{prefix}: its {key} differ ({EXPORT_FIX})"
    return None


def dvc_context(pipeline: Pipeline, folder: Path) -> dict[str, Any]:
    """What the dvc.yaml and params.yaml templates get."""
    # Every stage runs in the pipeline's folder (DVC's `wdir`, relative to dvc.yaml); DVC reads
    # the paths of deps, outs and params relative to it, like pipeline.yaml does.
    wdir = Path(os.path.relpath(pipeline.root, folder)).as_posix()
    groups = parameter_files(pipeline)
    located = {name: Path(os.path.relpath(folder / name, pipeline.root)).as_posix()
               for name in groups}
    stages = []
    for stage in pipeline.stages:
        deps = [stage.notebook, *pipeline.deps, *stage.deps]
        # The stages it takes inputs from, and those it `needs` (stages of a notebook run in
        # order: sections may talk through files no analysis saw); DVC orders by deps only.
        deps += [f"{pipeline.artifacts}/{upstream}"
                 for upstream in dict.fromkeys([*(p for _, p in stage.inputs), *stage.needs])]
        params = _stage_params(stage, located)
        stages.append({
            "name": stage.name,
            "cmd": " ".join(shlex.quote(part) for part in papermill_command(
                pipeline, stage, list(params))),
            "wdir": wdir if wdir != "." else None,
            "deps": list(dict.fromkeys(deps)),
            "params": params,
            "outs": [f"{pipeline.artifacts}/{stage.name}", *stage.outs],
            "notebook": f"{pipeline.runs}/{stage.name}.ipynb",
        })
    metrics = [posixpath.join(wdir, pipeline.artifacts, stage.name, "index.json")
               if wdir != "." else f"{pipeline.artifacts}/{stage.name}/index.json"
               for stage in pipeline.stages if stage.metrics]
    by_name = {p.name: p for p in pipeline.parameters}
    parameter_groups = []
    for name, variables in groups.items():
        values = {variable: by_name[parameter].default for variable, parameter in variables.items()}
        parameter_groups.append({"name": name, "parameters_yaml": _dump(values) if values else ""})
    return {"name": pipeline.name, "stages": stages, "metrics": metrics,
            "parameter_files": parameter_groups}


def _stage_params(stage: Stage, located: Mapping[str, str]) -> dict[str, list[str]]:
    """The parameters files ``stage`` reads (as ``located``), each with the variables it takes."""
    params: dict[str, list[str]] = {}
    for variable, parameter in stage.parameters:
        params.setdefault(located[_group_file(stage, variable, parameter)], []).append(variable)
    return params


def stage_command(pipeline: Pipeline, stage: Stage) -> list[str]:
    """The papermill call of ``stage`` as dvc.yaml has it, run from the pipeline's folder."""
    return papermill_command(pipeline, stage, list(_stage_params(
        stage, {name: name for name in parameter_files(pipeline)})))


def papermill_command(pipeline: Pipeline, stage: Stage, parameter_files: list[str]) -> list[str]:
    """The words of the papermill call that runs ``stage`` from the pipeline's folder."""
    workdir = posixpath.normpath(pipeline.workdir)

    def from_workdir(path: str) -> str:  # the kernel runs in the workdir
        return posixpath.relpath(path, workdir)

    command = ["python", "-m", "papermill", stage.notebook, f"{pipeline.runs}/{stage.name}.ipynb",
               "--cwd", workdir, "-k", pipeline.kernel, "--no-progress-bar"]
    for file in parameter_files:
        command += ["-f", file]
    command += ["-r", STAGE_PARAMETER, stage.name,
                "-r", OUTPUTS_PARAMETER, from_workdir(f"{pipeline.artifacts}/{stage.name}")]
    if stage.inputs:
        inputs = {variable: from_workdir(f"{pipeline.artifacts}/{provider}")
                  for variable, provider in stage.inputs}
        command += ["-y", json.dumps({INPUTS_PARAMETER: inputs})]
    return command


def parameter_files(pipeline: Pipeline) -> dict[str, dict[str, str]]:
    """The parameters files, by path relative to dvc.yaml's folder: notebook variable →
    pipeline parameter, in the order the stages use them."""
    files: dict[str, dict[str, str]] = {}
    for stage in pipeline.stages:
        for variable, parameter in stage.parameters:
            files.setdefault(_group_file(stage, variable, parameter), {})[variable] = parameter
    return files


def _group_file(stage: Stage, variable: str, parameter: str) -> str:
    # papermill reads a flat file of variable: value; DVC names the same keys.
    if parameter == variable:
        return PARAMS_FILE
    if parameter.endswith(f".{variable}"):
        return f"{PARAMS_DIR}/{parameter[:-len(variable) - 1]}.yaml"
    raise PipelineError(
        f"stage {stage.name}: variable `{variable}` takes parameter {parameter!r}; a DVC stage "
        "passes parameters from a file keyed by variable",
        hint=f"name the parameter {variable!r} or '<notebook>.{variable}' in pipeline.yaml")


def _keep_values(pipeline: Pipeline, name: str, path: Path, text: str) -> str:
    """``text`` (the parameters file ``name``) with the values of the existing file at ``path``
    that still name a parameter and fit its type."""
    import yaml

    try:
        old = parse_yaml(read_text_file(path, "parameters file"), path)[1]
    except PipelineError:
        return text
    new = yaml.safe_load(text)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return text
    variables = parameter_files(pipeline).get(name, {})
    by_name = {p.name: p for p in pipeline.parameters}
    kept = False
    for variable, value in old.items():
        parameter = by_name.get(variables.get(variable, ""))
        if parameter is not None and _matches(parameter.type, value) and new[variable] != value:
            new[variable] = value
            kept = True
    if not kept:
        return text
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    return header + _dump(new) + "\n"


def _dump(values: Mapping[str, Any]) -> str:
    # Names and numbers, as parameters mostly are, need no PyYAML (its import is ~0.015 s).
    lines = [(plain_yaml_scalar(key), plain_yaml_scalar(value)) for key, value in values.items()]
    if all(key is not None and value is not None for key, value in lines):
        return "\n".join(f"{key}: {value}" for key, value in lines)
    import yaml

    return yaml.safe_dump(dict(values), sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=100).rstrip("\n")
