"""Save and load the values that cross pipeline stages (runs in each stage's kernel).

Each stage notebook loads its inputs from the folders of the stages that computed them
and saves its outputs into its own folder, one file per value, with an ``index.json``
that says how each was stored::

    artifacts/<stage>/index.json     {"version": 1, "stage": ..., "values": {...},
                                      "metrics": {...}}
    artifacts/<stage>/df.pkl         pickle (the default: exact for any picklable value)
    artifacts/<stage>/coords.npy     numpy arrays without Python objects (no pickle)
    artifacts/<stage>/frame.parquet  plain pandas DataFrames, when pyarrow is installed

A value the stage deleted (or never bound, on the path the code took) is recorded as
absent, so the next stage does not get it either: the notebook then fails where the
original would have. Modules are recorded by name and imported again.

Only the standard library is imported here: the kernel may lack pandas or numpy, and
every stage pays for this import. Types are recognised by their class's module and
name, not by importing.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import pickle
import types
from pathlib import Path
from typing import Any, Mapping, MutableMapping, Sequence

FORMAT_VERSION = 1
INDEX = "index.json"
SINGLE_STAGE_FIX = (
    "convert again with `nb2pkg convert --join-stage STAGE`, STAGE being the stage "
    "that uses it (`--verify` finds the values it cannot save and does this itself), "
    "or with `--single-stage`"
)

_metrics: dict[str, Any] = {}


class ArtifactError(Exception):
    """A value could not be saved for, or loaded by, a stage; the message says why."""


# -- metrics ---------------------------------------------------------------------------
def record_metric(name: str, value: Any) -> Any:
    """Record one metric of this stage (a number, string or bool)."""
    if not isinstance(name, str) or not name:
        raise ArtifactError(f"metric names are non-empty strings, not {name!r}")
    if hasattr(value, "item") and callable(value.item):  # numpy / pandas scalars
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if value is not None and not isinstance(value, (bool, int, float, str)):
        raise ArtifactError(
            f"metric `{name}` must be a number, string or bool, not "
            f"{type(value).__name__}"
        )
    _metrics[name] = value
    return value


def record_metrics(values: Mapping[str, Any]) -> Mapping[str, Any]:
    """Record every item of ``values``; return ``values``, so a cell still shows it."""
    if not isinstance(values, Mapping):
        raise ArtifactError(
            "a cell tagged `metrics` must end with a dict of metric name -> "
            f"value, not {type(values).__name__}"
        )
    for name, value in values.items():
        record_metric(str(name), value)
    return values


def recorded_metrics() -> dict[str, Any]:
    return dict(_metrics)


# -- saving ----------------------------------------------------------------------------
def save_outputs(
    directory: str | os.PathLike,
    names: Sequence[str],
    namespace: Mapping[str, Any],
    *,
    stage: str,
) -> list[str]:
    """Save ``names`` from ``namespace`` into ``directory``; return the names saved."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    values: dict[str, dict[str, Any]] = {}
    stems: set[str] = set()
    for name in names:
        if name not in namespace:
            values[name] = {"absent": True}
            continue
        stem = name if name.lower() not in stems else f"{name}-{len(stems)}"
        stems.add(
            stem.lower()
        )  # case-insensitive file systems: `df` and `DF` must not collide
        try:
            values[name] = _save(folder, stem, namespace[name])
        except ArtifactError:
            raise
        except (
            Exception
        ) as exc:  # pickle raises TypeError, AttributeError, PicklingError, ...
            raise ArtifactError(
                f"stage {stage}: cannot save variable `{name}` "
                f"({_type_name(namespace[name])}) for the stages that use it: "
                f"{_first_line(exc)}. Fix: {SINGLE_STAGE_FIX}"
            ) from None
    index = {
        "version": FORMAT_VERSION,
        "stage": stage,
        "values": values,
        "metrics": recorded_metrics(),
    }
    _write_atomic(
        folder / INDEX, (json.dumps(index, indent=1, default=str) + "\n").encode()
    )
    return [n for n, entry in values.items() if not entry.get("absent")]


def _save(folder: Path, stem: str, value: Any) -> dict[str, Any]:
    kind = _type_name(value)
    if isinstance(value, types.ModuleType):
        return {"format": "module", "module": value.__name__, "type": "module"}
    if kind == "numpy.ndarray" and not value.dtype.hasobject:
        buffer = io.BytesIO()
        import numpy  # already imported: the value is an array

        numpy.save(buffer, value, allow_pickle=False)
        return _written(folder, f"{stem}.npy", buffer.getvalue(), "npy", kind)
    if kind == "pandas.DataFrame" and _parquet_safe(value):
        buffer = io.BytesIO()
        try:
            value.to_parquet(buffer)
        except Exception:  # an unusual column type: pickle is always exact
            pass
        else:
            return _written(
                folder, f"{stem}.parquet", buffer.getvalue(), "parquet", kind
            )
    buffer = io.BytesIO()
    pickler = _Pickler(buffer)
    pickler.dump(value)
    entry = _written(folder, f"{stem}.pkl", buffer.getvalue(), "pickle", kind)
    if pickler.main_names:
        entry["main"] = sorted(pickler.main_names)
    return entry


class _Pickler(pickle.Pickler):
    """Pickle, noting the notebook-defined functions and classes the value refers to.

    Pickle stores ``__main__.Report`` as a reference: the loading stage must define
    ``Report`` before it loads the value, or the load fails. Knowing the names makes
    that error precise.
    """

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.main_names: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) or isinstance(obj, types.FunctionType):
            if getattr(obj, "__module__", None) == "__main__":
                self.main_names.add(
                    getattr(obj, "__qualname__", obj.__name__).split(".")[0]
                )
        return NotImplemented


def _parquet_safe(frame: Any) -> bool:
    # Parquet round-trips only plain frames exactly: string column names, a default
    # index, and numeric / bool / datetime columns. Anything else (object columns, a
    # DatetimeIndex with a frequency, attrs) is pickled, which is exact.
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        return False
    columns = frame.columns
    return (
        all(isinstance(c, str) for c in columns)
        and columns.is_unique
        and not frame.attrs
        and type(frame.index).__name__ == "RangeIndex"
        and frame.index.name is None
        and type(columns).__name__ == "Index"
        and all(getattr(d, "kind", "O") in "biufM" for d in frame.dtypes)
    )


def _written(
    folder: Path, filename: str, data: bytes, fmt: str, kind: str
) -> dict[str, Any]:
    _write_atomic(folder / filename, data)
    return {"format": fmt, "file": filename, "type": kind}


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


# -- loading ---------------------------------------------------------------------------
def load_inputs(
    inputs: Mapping[str, str | os.PathLike],
    namespace: MutableMapping[str, Any],
    *,
    stage: str = "this stage",
) -> list[str]:
    """Define each input name in ``namespace`` from the folder of its provider stage."""
    indexes: dict[str, dict[str, Any]] = {}
    loaded = []
    for name, directory in inputs.items():
        folder = Path(directory)
        key = str(folder)
        if key not in indexes:
            indexes[key] = read_index(folder, needed_by=stage, name=name)
        index = indexes[key]
        entry = index.get("values", {}).get(name)
        provider = index.get("stage", folder.name)
        if entry is None:
            raise ArtifactError(
                f"stage {stage} needs `{name}` from stage {provider}, which did "
                "not save it; regenerate the stages (`nb2pkg convert`) or add "
                f"`{name}` to the outputs of {provider} in pipeline.yaml"
            )
        if entry.get("absent"):
            # Deleted or never bound there: left undefined, as in the notebook.
            continue
        missing = [m for m in entry.get("main", ()) if m not in namespace]
        if missing:
            raise ArtifactError(
                f"stage {stage} cannot load `{name}` from stage {provider}: it holds "
                f"objects of {', '.join(f'`{m}`' for m in missing)}, defined in the "
                "notebook but not in this stage. "
                f"Fix: move {missing[0]} into the package, or {SINGLE_STAGE_FIX}"
            )
        try:
            namespace[name] = _load(folder, entry)
        except ArtifactError:
            raise
        except Exception as exc:
            raise ArtifactError(
                f"stage {stage} cannot load `{name}` saved by stage {provider}: "
                f"{_first_line(exc)}; run the pipeline again with --force "
                f"--stage {provider}"
            ) from None
        loaded.append(name)
    return loaded


def read_index(folder: Path, *, needed_by: str = "", name: str = "") -> dict[str, Any]:
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"stage {needed_by or '?'} needs `{name}` from {folder}, which has no "
            f"saved outputs yet; run the pipeline with `nb2pkg run`, which runs "
            "the stages that provide them first"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"{folder / INDEX}: unreadable ({_first_line(exc)}); run the stage "
            "that writes it again"
        ) from None
    if index.get("version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{folder / INDEX}: written by another nb2pkg version; run the "
            "pipeline again with --force"
        )
    return index


def _load(folder: Path, entry: Mapping[str, Any]) -> Any:
    fmt = entry.get("format")
    if fmt == "module":
        return importlib.import_module(entry["module"])
    path = folder / entry["file"]
    if fmt == "pickle":
        with path.open("rb") as handle:
            return pickle.load(handle)  # noqa: S301 - written by the previous stage of this run
    if fmt == "npy":
        import numpy

        return numpy.load(path, allow_pickle=False)
    if fmt == "parquet":
        import pandas

        return pandas.read_parquet(path)
    raise ArtifactError(f"{path}: unknown artifact format {fmt!r}")


def _type_name(value: Any) -> str:
    cls = type(value)
    module = cls.__module__.split(".")[0]
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
