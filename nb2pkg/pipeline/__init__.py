"""Notebooks split into stages, run as a papermill pipeline (format and behaviour: docs/pipeline.md).

Modules, one job each:

* ``split``     which cells form which stage, and which values cross from stage to stage (pure)
* ``stages``    the stage notebooks, ``pipeline.yaml`` and the CI workflow of a generated project
* ``spec``      ``pipeline.yaml``: load, validate against ``pipeline.schema.json``, parameters
* ``artifacts`` the stage-artifact format (``nb2pkg.runtime.stage_io``, which generated projects carry as ``_stage_io``)
* ``state``     content hashes, the state file that lets ``run`` skip unchanged stages, the run lock
* ``runner``    scheduling: dependency order, skipping, resuming, results
* ``executor``  execution: the ``Executor`` protocol and the local papermill implementation
* ``registry``  executors and exporters by name (built-in ones, plugins through entry points)
* ``dask_executor`` stages as ``dask.distributed`` tasks (``--executor dask``)
* ``report``    ``metrics.json`` and the Markdown run report
* ``export``    ``dvc.yaml`` and ``params.yaml``
* ``airflow``   an Airflow DAG file of papermill tasks
* ``cli``       the ``run`` and ``export`` commands (the only module here that prints)

This package's ``__init__`` stays empty of imports: ``nb2pkg run`` imports it and must not pay for
the converter.
"""
