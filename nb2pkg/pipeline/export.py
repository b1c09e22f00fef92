"""``nb2pkg export dvc``: the pipeline as ``dvc.yaml`` and ``params.yaml``.

Each stage becomes a DVC stage whose command runs exactly that stage with ``nb2pkg run``
(``--only --force``: DVC decides what is out of date, nb2pkg runs it). Its dependencies are the
stage notebook, the pipeline's ``deps``, the stage's own data ``deps`` and the artifact folders of
the stages it takes inputs from; its outputs are its artifact folder, its data ``outs`` and its
executed notebook; its parameters are the pipeline parameters it uses, read from ``params.yaml``;
stages that record metrics declare their metrics file. Paths are written relative to the folder
of ``dvc.yaml``. Existing files are replaced only when asked (``force``), and atomically.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from ..errors import OutputExistsError, OutputWriteError
from .spec import Pipeline, load_pipeline
from .state import partial_path


def dvc_files(pipeline_path: Path | str, output: Path | str | None = None) -> dict[str, str]:
    """``{"dvc.yaml": text, "params.yaml": text}`` for the pipeline, to be written in ``output``
    (default: the pipeline's folder)."""
    # Not through .stages, which imports the splitter: `nb2pkg run` must not load it.
    from ..templating import environment as template_environment

    pipeline = load_pipeline(pipeline_path)
    folder = Path(output).absolute() if output is not None else pipeline.root
    env = template_environment()
    context = dvc_context(pipeline, folder)
    return {"dvc.yaml": env.get_template("pipeline/dvc.yaml.j2").render(**context),
            "params.yaml": env.get_template("pipeline/params.yaml.j2").render(**context)}


def write_dvc(pipeline_path: Path | str, output: Path | str | None = None, *,
              force: bool = False) -> list[Path]:
    """Write ``dvc.yaml`` and ``params.yaml``; return their paths.

    Raises ``OutputExistsError`` when either exists and not ``force`` (before writing anything:
    ``params.yaml`` holds the user's parameter values, ``dvc.yaml`` maybe their own stages), and
    ``OutputWriteError`` when a file cannot be written. Each file is replaced atomically, and
    neither is replaced unless both could be written.
    """
    files = dvc_files(pipeline_path, output)
    folder = Path(output) if output is not None else Path(pipeline_path).absolute().parent
    existing = [name for name in files if (folder / name).exists()]
    if existing and not force:
        raise OutputExistsError(
            f"{' and '.join(existing)} already exist{'s' if len(existing) == 1 else ''}",
            path=folder, hint="pass --force to replace "
            + ("them" if len(existing) > 1 else "it")
            + (" (params.yaml then gets the pipeline's default values back)"
               if "params.yaml" in existing else ""))
    for name in files:
        if (folder / name).is_dir():
            raise OutputWriteError(f"{name} is a folder", path=folder,
                                   hint="remove it, or export elsewhere with -o DIR")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(f"cannot create the folder: {exc.strerror or exc}",
                               path=folder) from None
    partials: dict[str, str] = {}
    try:
        # Both are written completely before either replaces anything.
        for name, text in files.items():
            partials[name] = str(partial_path(folder / name))
            with open(partials[name], "x", encoding="utf-8") as stream:
                stream.write(text)
        for name, partial in partials.items():
            os.replace(partial, folder / name)
    except OSError as exc:
        raise OutputWriteError(f"cannot write: {exc.strerror or exc}", path=folder,
                               hint="check the folder's permissions and free space") from None
    finally:
        for partial in partials.values():
            Path(partial).unlink(missing_ok=True)
    return [folder / name for name in files]


def dvc_context(pipeline: Pipeline, folder: Path) -> dict[str, Any]:
    from .runner import stage_metrics_path

    # Every stage runs in the pipeline's folder (DVC's `wdir`, relative to dvc.yaml); DVC reads
    # the paths of deps, outs, params and metrics relative to it, like pipeline.yaml does.
    wdir = Path(os.path.relpath(pipeline.root, folder)).as_posix()
    params_file = Path(os.path.relpath(folder / "params.yaml", pipeline.root)).as_posix()
    stages = []
    for stage in pipeline.stages:
        deps = [stage.notebook, *pipeline.deps, *stage.deps]
        deps += [f"{pipeline.artifacts}/{provider}"
                 for provider in dict.fromkeys(p for _, p in stage.inputs)]
        command = ["nb2pkg", "run", pipeline.path.name, "--stage", stage.name, "--only",
                   "--force", "-f", params_file]
        metrics = []
        if stage.metrics:
            metrics.append(stage_metrics_path(pipeline, stage.name)
                           .relative_to(pipeline.root).as_posix())
        stages.append({
            "name": stage.name,
            "cmd": " ".join(shlex.quote(part) for part in command),
            "wdir": wdir if wdir != "." else None,
            "deps": list(dict.fromkeys(deps)),
            "params": [parameter for _, parameter in stage.parameters],
            "outs": [f"{pipeline.artifacts}/{stage.name}", *stage.outs],
            "notebook": f"{pipeline.runs}/{stage.name}.ipynb",
            "metrics": metrics,
        })
    import yaml

    parameters = _nested(pipeline)
    text = yaml.safe_dump(parameters, sort_keys=False, default_flow_style=False,
                          allow_unicode=True, width=100).rstrip("\n")
    return {"name": pipeline.name, "stages": stages, "params_file": params_file,
            "parameters": parameters, "parameters_yaml": text}


def _nested(pipeline: Pipeline) -> dict[str, Any]:
    # Dotted parameter names become nested keys, which is how DVC names params (`churn.seed`).
    tree: dict[str, Any] = {}
    for parameter in pipeline.parameters:
        node = tree
        *parents, leaf = parameter.name.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = parameter.default
    return tree
