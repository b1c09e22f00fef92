"""The pipeline files of a generated project: stage notebooks, ``pipeline.yaml``, the CI workflow.

``plan_pipeline`` decides the pipeline (part of the ``PackagePlan``; which cells go where is
decided in ``split``); ``pipeline_files`` writes it down (``generate.render`` calls it). Each stage notebook has, in order:

1. a cell tagged ``parameters``: the pipeline parameters it uses (the original assignments, so
   the same defaults) and where its inputs come from and its outputs go;
2. a setup cell: session magics, imports, library settings and notebook definitions copied from
   earlier stages;
3. a cell that loads its inputs (when it has any);
4. the section's cells, as in the refactored notebook (markdown kept, outputs cleared);
5. a cell that saves its outputs (and the metrics it recorded).

Generated cells carry ``metadata.nb2pkg.pipeline`` (their role); copied cells keep
``metadata.nb2pkg.source_cell``, the index of the cell in the original notebook.
"""

from __future__ import annotations

import json
import posixpath
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..notebook_format import copy_node, from_dict, notebook_json
from .spec import Parameter, Pipeline, Stage, overlaps
from .split import STAGE_IO, NotebookSplit, StagePlan, metric_cell_source, split_notebook

PIPELINE_FILE = "pipeline.yaml"
WORKFLOW_FILE = ".github/workflows/pipeline.yml"
STAGES_DIR = "stages"
WORKDIR = "notebooks"  # stages run where the refactored notebooks live: same relative paths
ARTIFACTS_DIR = "artifacts"
RUNS_DIR = "runs"


@dataclass(frozen=True)
class PipelinePlan:
    """Everything the pipeline files say, decided from the plan: how each notebook splits into
    stages (``splits``, from which the stage notebooks are built) and ``spec``, the pipeline.yaml
    as the typed record ``nb2pkg run`` loads (``dvc.yaml`` and the workflow come from it too)."""

    splits: tuple[NotebookSplit, ...]
    spec: Pipeline  # its path is relative to the project: the project is not written yet
    titles: Mapping[str, str]  # stage name -> section title (a comment in pipeline.yaml)
    # (stage, why) of each stage that runs as part of the stage before it (``join``).
    joined: tuple[tuple[str, str], ...] = ()

    @property
    def stages(self) -> tuple[StagePlan, ...]:
        """Every stage of every notebook, in pipeline order."""
        return tuple(stage for split in self.splits for stage in split.stages)


def plan_pipeline(plan: Any, single_stage: bool = False,
                  join: Mapping[str, str] = {}) -> PipelinePlan:
    """Split every notebook of a ``PackagePlan`` into stages, and describe the pipeline.

    ``join`` maps the name of a stage that runs as part of the stage before it to why
    (REPORT.md says it); names no notebook has are left out of ``joined``.
    """
    from ..refactor.naming import Namer, module_name

    taken: set[str] = set()
    splits = []
    # Stages are named after their notebook's file name (the package module of a notebook named
    # like its package is `core`, which would say nothing here).
    namer = Namer()
    for notebook, result in zip(plan.notebooks, plan.analysis.notebooks):
        cell = result.notebook.parameters_cell
        prefix = namer.claim(module_name(result.notebook.name))
        splits.append(split_notebook(prefix, notebook.node,
                                     cell.index if cell is not None else None,
                                     single_stage=single_stage, taken_names=taken,
                                     join=join))
    spec = _spec(plan, splits)
    titles = {stage.name: stage.title for split in splits for stage in split.stages}
    joined = tuple((name, join[name]) for split in splits for name in split.joined)
    return PipelinePlan(tuple(splits), spec, titles, joined)


def boundaries(split: NotebookSplit, node: Any) -> dict[int, tuple[str, tuple[str, ...]]]:
    """Where values cross between the stages of ``split`` when its refactored notebook ``node``
    runs whole: {ordinal of the last cell of a stage: (the next stage, the values that may
    cross there)}. Cells count as nbclient runs them (``runtime/crossing.py``).

    The values are those any later stage takes from this stage or an earlier one, not only
    what the stages save there now: whatever stages are joined afterwards, what crosses a
    boundary left is among them, with the value it has there.
    """
    ordinals: dict[int, int] = {}
    for position, cell in enumerate(node.cells):
        if cell.cell_type == "code" and cell.source.strip():
            ordinals[position] = len(ordinals) + 1
    order = {stage.name: stage.index for stage in split.stages}
    found = {}
    for stage, after in zip(split.stages, split.stages[1:]):
        last = max((ordinals[p] for p in stage.cells if p in ordinals), default=None)
        names = sorted({variable for later in split.stages[stage.index + 1:]
                        for variable, provider in later.inputs if order[provider] <= stage.index})
        if last is not None and names:
            found[last] = (after.name, tuple(names))
    return found


def _spec(plan: Any, splits: list[NotebookSplit]) -> Pipeline:
    """pipeline.yaml as a record. The plan chose one kernel, checked against a strict pattern
    (it reaches the workflow)."""
    several = len(splits) > 1
    names = {(s.module, p.name): (f"{s.module}.{p.name}" if several else p.name)
             for s in splits for p in s.parameters}
    parameters = tuple(Parameter(names[(split.module, p.name)], p.type, _yaml_default(p.default))
                       for split in splits for p in split.parameters)
    files = _stage_files(splits, [n.node for n in plan.notebooks], plan.assets)
    written = [o for _, outs in files.values() for o in outs]  # a stage-written module is no dep
    stages = []
    for split in splits:
        previous: str | None = None
        for stage in split.stages:
            deps, outs = files[stage.name]
            needs = ((previous,) if previous and previous not in {p for _, p in stage.inputs}
                     else ())
            stages.append(Stage(
                name=stage.name, notebook=stage_path(stage), needs=needs,
                parameters=tuple((v, names[(split.module, v)]) for v in stage.parameters),
                inputs=tuple(stage.inputs), outputs=tuple(stage.outputs),
                metrics=tuple(stage.metrics), deps=tuple(deps), outs=tuple(outs)))
            previous = stage.name
    return Pipeline(
        path=Path(PIPELINE_FILE), name=plan.name, stages=tuple(stages),
        parameters=parameters, kernel=plan.kernel, workdir=WORKDIR, python_path=("src",),
        deps=("src", *(m.target for m in plan.assets.modules
                       if not any(overlaps(m.target, o) for o in written))),
        artifacts=ARTIFACTS_DIR, runs=RUNS_DIR)


def pipeline_files(plan: Any) -> dict[str, str | bytes]:
    """Every pipeline file of the generated project (``plan.pipeline``), by relative POSIX path."""
    from .export import render_dvc

    pipeline: PipelinePlan = plan.pipeline
    files: dict[str, str | bytes] = {}
    for notebook, split in zip(plan.notebooks, pipeline.splits):
        for stage in split.stages:
            node = stage_notebook(notebook.node, split, stage, notebook.filename,
                                  package=plan.name)
            files[stage_path(stage)] = _dumps(node)
    env = template_environment()
    context = pipeline_context(pipeline)
    files[PIPELINE_FILE] = env.get_template("pipeline/pipeline.yaml.j2").render(**context)
    files[WORKFLOW_FILE] = env.get_template("pipeline/workflow.yml.j2").render(**context)
    # dvc.yaml by the code `nb2pkg export dvc` runs on a pipeline.yaml (one implementation).
    files.update(render_dvc(pipeline.spec))
    # papermill writes each executed notebook into runs/ and refuses a missing folder.
    files[f"{RUNS_DIR}/.gitignore"] = env.get_template("pipeline/runs.gitignore.j2").render()
    files[".dvcignore"] = env.get_template("pipeline/dvcignore.j2").render()
    return files


def stage_path(stage: StagePlan) -> str:
    return f"{STAGES_DIR}/{stage.notebook}/{stage.filename}"


# -- one stage notebook ---------------------------------------------------------------------------
def stage_notebook(source: Any, split: NotebookSplit, stage: StagePlan,
                   notebook_file: str = "", *, package: str) -> Any:
    """The notebook of ``stage``, built from the refactored notebook node ``source``
    (``notebooks/<notebook_file>`` in the project)."""
    from ..analysis.parse import parse_cell

    # Copy only this stage's cells (a notebook of 60 sections would otherwise be copied 60
    # times), and not their outputs: a stage notebook starts unexecuted.
    node = copy_node({key: value for key, value in source.items() if key != "cells"})
    original = source.cells
    owns_parameters = split.parameters_position in stage.cells
    cells = [_generated("parameters", _parameters_source(split, stage, owns_parameters),
                        tags=["parameters"])]
    setup = _setup_source(stage, package)
    cells.append(_generated("setup", setup))
    if stage.inputs:
        load = ["# Inputs: values computed by earlier stages (pipeline artifacts)",
                f"nb2pkg_loaded = {STAGE_IO}.load_inputs(nb2pkg_inputs, globals(), "
                "stage=nb2pkg_stage)"
                f"  # {', '.join(name for name, _ in stage.inputs)}"]
        if stage.late_definitions:
            load += ["", "# Defined again here: these definitions use the inputs",
                     *[f"{text}\n" for text in stage.late_definitions]]
        cells.append(_generated("load", "\n".join(load).rstrip() + "\n"))
    for position in stage.cells:
        cell = copy_node({k: v for k, v in original[position].items() if k != "outputs"})
        if position in split.left_out:
            cells.append(_left_out_cell(cell))
            continue
        if position == split.parameters_position:
            if not split.parameters_residual:
                continue  # only parameters: they are in the first cell now
            cell.source = split.parameters_residual
        elif position in stage.metric_cells:
            wrapped = metric_cell_source(parse_cell(cell.source))
            if wrapped is not None:
                cell.source = wrapped
        _clear(cell)
        cells.append(cell)
    outputs = ", ".join(json.dumps(name) for name in stage.outputs)
    save = ("# Outputs: values later stages use (and the metrics this stage recorded)\n"
            f"nb2pkg_saved = {STAGE_IO}.save_outputs(nb2pkg_outputs, [{outputs}], "
            "globals(), stage=nb2pkg_stage)\n")
    cells.append(_generated("save", save))
    node.cells = cells
    node.metadata["nb2pkg"] = {"stage": stage.name, "title": stage.title,
                               "notebook": f"{WORKDIR}/{notebook_file or split.module + '.ipynb'}"}
    if node.get("nbformat_minor", 0) >= 5:
        for index, cell in enumerate(cells):
            cell["id"] = f"{stage.slug[:40]}-{index}"
    return node


def _parameters_source(split: NotebookSplit, stage: StagePlan, owns: bool) -> str:
    lines = []
    if owns and split.parameters_comments and not split.parameters_residual:
        lines += split.parameters_comments.splitlines()
    # Every parameter of the notebook, also in stages that use only some: each stage then takes
    # the notebook's parameters file as it is (`papermill -f params.yaml`, as dvc.yaml does),
    # without papermill's "unknown parameter" warnings. No stage binds a parameter, so an
    # unused one changes nothing.
    lines += [p.source for p in split.parameters]
    if lines:
        lines = ["# Parameters: papermill (`-f params.yaml`, see dvc.yaml) or `nb2pkg run` injects "
                 "values after this cell.", *lines, ""]
    inputs = {name: _relative_artifacts(provider) for name, provider in stage.inputs}
    lines += ["# Where this stage's inputs come from and its outputs go (relative to the",
              "# working directory; `nb2pkg run` passes absolute paths).",
              f"nb2pkg_stage = {json.dumps(stage.name)}",
              f"nb2pkg_inputs = {_python_dict(inputs)}",
              f"nb2pkg_outputs = {json.dumps(_relative_artifacts(stage.name))}"]
    return "\n".join(lines) + "\n"


def _relative_artifacts(stage: str) -> str:
    return posixpath.relpath(f"{ARTIFACTS_DIR}/{stage}", WORKDIR)


def _python_dict(values: Mapping[str, str]) -> str:
    if not values:
        return "{}"
    items = [f"    {json.dumps(k)}: {json.dumps(v)}," for k, v in values.items()]
    return "{\n" + "\n".join(items) + "\n}"


def _setup_source(stage: StagePlan, package: str) -> str:
    parts = ["# Setup: what earlier stages imported and defined, which this stage uses",
             f"from {package} import {STAGE_IO}"]
    parts += list(stage.magics)
    parts += list(stage.imports)
    if stage.settings:
        parts += ["", "# Settings earlier stages made for the session", *stage.settings]
    text = "\n".join(parts)
    for definition in stage.definitions:
        text += "\n\n\n" + definition
    return text + "\n"


def _generated(role: str, source: str, tags: list[str] | None = None) -> Any:
    return from_dict({
        "cell_type": "code", "execution_count": None, "outputs": [], "source": source,
        "metadata": {"nb2pkg": {"pipeline": role}, "tags": list(tags or []) + [f"nb2pkg-{role}"]},
    })


def _left_out_cell(cell: Any) -> Any:
    """A raw cell (papermill runs none) holding the code of a cell the stage leaves out."""
    note = ("# Left out of this pipeline stage: in the notebook this cell raises on purpose\n"
            "# (tagged raises-exception or marked NBVAL_RAISES_EXCEPTION), and papermill fails\n"
            "# a stage on any error.\n")
    return from_dict({"cell_type": "raw", "source": note + cell.source,
                      "metadata": {"nb2pkg": {"pipeline": "left-out",
                                              **cell.get("metadata", {}).get("nb2pkg", {})}}})


def _clear(cell: Any) -> None:
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    tags = [t for t in cell.get("metadata", {}).get("tags", [])
            if t not in ("parameters", "injected-parameters")]
    if "tags" in cell.get("metadata", {}):
        cell.metadata["tags"] = tags
    cell.get("metadata", {}).pop("papermill", None)
    cell.get("metadata", {}).pop("execution", None)


def _dumps(node: Any) -> str:
    return notebook_json(node) + "\n"


# -- pipeline.yaml and the workflow -------------------------------------------------------------
def pipeline_context(pipeline: PipelinePlan) -> dict[str, Any]:
    """What the pipeline.yaml and workflow templates get: the spec, written as pipeline.yaml
    spells it (a pipeline of one notebook lists the parameters named like their variables)."""
    spec = pipeline.spec
    parameters = [{"name": p.name, "type": p.type, "default": p.default} for p in spec.parameters]
    stages = []
    for stage in spec.stages:
        plain = all(v == p for v, p in stage.parameters)
        stages.append({
            "name": stage.name, "title": pipeline.titles[stage.name], "notebook": stage.notebook,
            "needs": list(stage.needs),
            "parameters": ([v for v, _ in stage.parameters] if plain
                           else dict(stage.parameters)),
            "inputs": dict(stage.inputs), "outputs": list(stage.outputs),
            "metrics": list(stage.metrics), "deps": list(stage.deps), "outs": list(stage.outs),
        })
    return {"name": spec.name, "kernel": spec.kernel, "workdir": spec.workdir,
            "artifacts": spec.artifacts, "runs": spec.runs, "python_path": list(spec.python_path),
            "deps": list(spec.deps), "parameters": parameters, "stages": stages,
            "pipeline_file": PIPELINE_FILE, "notebooks": [s.module for s in pipeline.splits],
            # CI uses the Python the notebooks were converted with.
            "python_version": f"{sys.version_info.major}.{sys.version_info.minor}"}


def _stage_files(splits: list[NotebookSplit], nodes: list[Any], assets: Any
                 ) -> dict[str, tuple[list[str], list[str]]]:
    """Per stage, the data files its cells read (``deps``) and write (``outs``), project-relative:
    the cache hashes them, so a changed file re-runs the stages that read it.

    Only what ``nb2pkg run`` can order is declared (docs/pipeline.md, "Data files"): a file that
    several stages write (or two written paths that overlap) is left out everywhere, and a stage
    does not declare a file it writes itself or one that only a later stage writes. Such files
    still work: stages of one notebook run in notebook order.
    """
    order: list[tuple[str, set[tuple[int, int]]]] = []
    for position, split in enumerate(splits):
        node = nodes[position]
        for stage in split.stages:
            order.append((stage.name, {(position, node.cells[i].metadata.get("nb2pkg", {})
                                        .get("source_cell")) for i in stage.cells}))
    data = list(assets.data)
    writers = {d.target: [i for i, (_, cells) in enumerate(order) if cells & set(d.written_by)]
               for d in data}
    untracked = {t for t, w in writers.items() if len(w) > 1}
    untracked |= {a for a, w in writers.items() for b, v in writers.items()
                  if a != b and w and v and overlaps(a, b)}
    result: dict[str, tuple[list[str], list[str]]] = {}
    for index, (name, cells) in enumerate(order):
        outs = [d.target for d in data if d.target not in untracked and writers[d.target] == [index]]
        deps = [d.target for d in data if d.target not in untracked and cells & set(d.read_by)
                and all(w < index for w in writers[d.target])]
        result[name] = (deps, outs)
    return result


def _yaml_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def template_environment():
    """The one template environment (``nb2pkg.templating``), with its escaping filters."""
    from ..templating import environment

    return environment()


__all__ = ["pipeline_files", "plan_pipeline", "stage_notebook", "PipelinePlan", "PIPELINE_FILE",
           "WORKFLOW_FILE"]
