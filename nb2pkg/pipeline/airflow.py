"""The pipeline as an Apache Airflow DAG file (``nb2pkg export airflow``).

One task per stage; each runs the stage notebook with papermill, in a subprocess of the Python
that has the notebooks' libraries (``--python``, default: the one running nb2pkg), so Airflow
and the project keep their own environments. The task's edges are the pipeline's (``upstream``:
inputs, ``needs``, files passed on); pipeline parameters are DAG params (``Param`` with the
parameter's type, default and help), which a run overrides (``airflow dags trigger -c``,
``airflow dags test -c``, the trigger form).

Nothing from the notebook or pipeline.yaml is ever Airflow-templated: PythonOperator renders
``op_args``/``op_kwargs``/``templates_dict`` with Jinja, so the stage is bound with
``functools.partial`` (never rendered), and everything else reaches the file as Python literals
through the ``py`` filter (``templating.py``). papermill gets its arguments as a list, no shell.

Storage: the paths in the file are absolute, and artifacts and executed notebooks go where
``nb2pkg run`` puts them (``artifacts/``, ``runs/``): a single-machine Airflow (or workers
sharing the project's folder at the same path) needs no object storage. Airflow runs every task
of a DAG run; skipping unchanged stages is ``nb2pkg run``'s, not Airflow's.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from ..atomic import write_atomic
from ..errors import OutputExistsError, OutputWriteError
from .export import INPUTS_PARAMETER, OUTPUTS_PARAMETER, STAGE_PARAMETER
from .spec import Pipeline, load_pipeline

# pipeline.yaml's parameter types as JSON Schema types (Airflow validates params with them).
JSON_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string",
              "list": "array", "dict": "object"}


def export_airflow(pipeline_path: Path | str, options: Any) -> list[Path]:
    """The ``airflow`` entry of the exporter registry (``registry.ExportOptions``)."""
    return [write_airflow(pipeline_path, options.output, force=options.force,
                          python=options.python)]


def dag_id(pipeline: Pipeline) -> str:
    """The DAG's id: the pipeline's name with what Airflow refuses in ids replaced."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", pipeline.name)[:250] or "pipeline"


def render_airflow(pipeline: Pipeline, python: str | None = None) -> str:
    """The text of the DAG file."""
    from ..templating import environment

    root = pipeline.root.resolve()
    stages = {}
    for stage in pipeline.stages:
        stages[stage.name] = {
            "notebook": str(root / stage.notebook),
            "output": str(root / pipeline.runs / f"{stage.name}.ipynb"),
            "parameters": [list(pair) for pair in stage.parameters],
            "inputs": {variable: str(root / pipeline.artifacts / provider)
                       for variable, provider in stage.inputs},
            "outputs": str(root / pipeline.artifacts / stage.name),
            "timeout": stage.timeout or pipeline.timeout,
            "upstream": list(stage.upstream),
        }
    params = {p.name: {"default": p.default, "type": JSON_TYPES.get(p.type),
                       "description": p.help or None} for p in pipeline.parameters}
    text = environment().get_template("pipeline/airflow_dag.py.j2").render(
        name=pipeline.name, dag_id=dag_id(pipeline), root=str(root),
        python=python or sys.executable, kernel=pipeline.kernel,
        workdir=str((root / pipeline.workdir).resolve()),
        python_path=[str((root / p).resolve()) for p in pipeline.python_path],
        stage_parameter=STAGE_PARAMETER, inputs_parameter=INPUTS_PARAMETER,
        outputs_parameter=OUTPUTS_PARAMETER, stages=stages, params=params)
    from ..formatting import format_python

    # The stage table is one literal: the formatter lays it out one key per line, for review.
    return format_python(text, line_length=100)


def write_airflow(pipeline_path: Path | str, output: Path | str | None = None, *,
                  force: bool = False, python: str | None = None) -> Path:
    """Write ``<dag id>_dag.py`` into ``output`` (default: the pipeline's folder); its path.

    An existing file is replaced only with ``force``, atomically."""
    pipeline = load_pipeline(pipeline_path)
    folder = Path(output) if output is not None else pipeline.root
    text = render_airflow(pipeline, python)
    path = folder / f"{dag_id(pipeline)}_dag.py"
    if os.path.lexists(path) and not force:
        raise OutputExistsError(f"{path.name} already exists", path=folder,
                                hint="pass --force to replace it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text)
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path.name}: {exc.strerror or exc}", path=folder,
                               hint="check the folder's permissions, free space and name") from None
    return path
