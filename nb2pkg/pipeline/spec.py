"""``pipeline.yaml``: load it, validate it (JSON Schema, then references), resolve parameters.

Every problem is a ``PipelineError`` naming the file, the line and the field, e.g.
``pipeline.yaml: line 14: stages[2].needs[0]: stage 'clean' is not defined (...)``.
The format is documented in docs/pipeline.md; the schema ships as ``pipeline.schema.json``.
"""

from __future__ import annotations

import dataclasses
import json
import posixpath
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PureWindowsPath
from typing import Any, Iterable, Mapping, Sequence

from ..errors import PipelineError

SCHEMA_FILE = Path(__file__).with_name("pipeline.schema.json")
DOCS = "format: docs/pipeline.md"
TYPES = {"int": int, "float": float, "bool": bool, "str": str, "list": list, "dict": dict}
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # "int", "float", "bool", "str", "list", "dict" or "any"
    default: Any
    help: str = ""


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str  # relative to the pipeline file's folder
    needs: tuple[str, ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()  # (notebook variable, pipeline parameter)
    inputs: tuple[tuple[str, str], ...] = ()  # (variable, stage that provides it)
    outputs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    timeout: int | None = None
    # Data files: project-relative POSIX paths (normalized by ``data_path``) of the files or
    # folders the stage reads and writes. Content-hashed by ``nb2pkg run``; DVC deps/outs.
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    # Earlier stages whose ``outs`` hold one of this stage's ``deps`` (found on load): a file
    # passed on orders the stages like an input does.
    file_needs: tuple[str, ...] = field(default=(), compare=False)

    @property
    def upstream(self) -> tuple[str, ...]:
        """Stages that must finish first: ``needs``, the providers of ``inputs`` and the stages
        that write files this stage reads."""
        return tuple(dict.fromkeys([*self.needs, *(stage for _, stage in self.inputs),
                                    *self.file_needs]))


@dataclass(frozen=True)
class Pipeline:
    path: Path  # the pipeline.yaml: absolute once loaded, relative to the project in a plan
    name: str
    stages: tuple[Stage, ...]
    parameters: tuple[Parameter, ...] = ()
    kernel: str = "python3"
    workdir: str = "."
    python_path: tuple[str, ...] = ()
    deps: tuple[str, ...] = ()
    artifacts: str = "artifacts"
    runs: str = "runs"
    timeout: int | None = None
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    # ``schema_digest`` of the text it was read from ("" when built otherwise): the key under
    # which a run remembers that this text passed the JSON Schema (``load_pipeline(valid=...)``)
    digest: str = field(default="", compare=False, repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    def stage(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise PipelineError(f"no stage named {name!r}", path=self.path,
                            hint=f"stages: {', '.join(s.name for s in self.stages)}")

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise PipelineError(f"unknown parameter {name!r}", path=self.path,
                            hint=_known(self.parameters))

    def artifact_dir(self, stage: str) -> Path:
        return self.root / self.artifacts / stage

    def executed_notebook(self, stage: str) -> Path:
        return self.root / self.runs / f"{stage}.ipynb"

    def producer(self, path: str) -> Stage | None:
        """The stage whose ``outs`` hold (or are inside) the data path ``path``, if any."""
        return next((s for s in self.stages if any(overlaps(path, o) for o in s.outs)), None)

    def upstream_closure(self, names: Iterable[str]) -> set[str]:
        by_name = {s.name: s for s in self.stages}
        found: set[str] = set()
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in found:
                found.add(name)
                todo.extend(by_name[name].upstream)
        return found


# -- loading ------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def schema_digest(text: str) -> str:
    """A digest of ``text`` and of the JSON Schema it is validated against: equal digests, equal
    verdicts."""
    import hashlib

    sha = hashlib.sha256(SCHEMA_FILE.read_bytes())
    sha.update(b"\0" + text.encode("utf-8", "surrogatepass"))
    return sha.hexdigest()


def load_pipeline(path: Path | str, *, check_files: bool = True,
                  valid: str | None = None) -> Pipeline:
    """Read and validate ``pipeline.yaml``; raise ``PipelineError`` naming line and field.

    ``valid``: the ``digest`` of a pipeline that passed the JSON Schema before. When the file
    still has that digest, the schema is not checked again (jsonschema costs more than the rest
    of a run with nothing to do); the other checks always run.
    """
    path = Path(path).absolute()
    return parse_pipeline(read_text_file(path, "pipeline file"), path, check_files=check_files,
                          valid=valid)


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a file a user names; ``PipelineError`` in one line otherwise. Never
    blocks (a FIFO), and a folder, a device or a missing file is said so."""
    import os
    import stat

    data: bytes | None = None
    try:  # the usual case, without importing nb2pkg.notebook (its errors are made there)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                with os.fdopen(fd, "rb", closefd=False) as file:
                    data = file.read()
        except OSError:
            data = None
        finally:
            os.close(fd)
    if data is None:  # the one-line error: missing, a folder, a FIFO, a link loop, no permission
        from ..notebook import read_regular_file

        data = read_regular_file(path, PipelineError, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PipelineError(f"cannot read: not UTF-8 ({exc.reason} at byte {exc.start})",
                            path=path) from None


def parse_pipeline(text: str, path: Path | str, *, check_files: bool = True,
                   valid: str | None = None) -> Pipeline:
    """Validate the text of a pipeline file that is (or will be) at ``path``.

    ``check_files=False`` skips the checks that look at the disk (the workdir and the stage
    notebooks exist): ``nb2pkg convert`` uses it before the project is written. ``valid``: see
    ``load_pipeline``.
    """
    path = Path(path).absolute()
    root_node, data = parse_yaml(text, path)
    lines = _Lines(root_node)
    digest = schema_digest(text)
    checked = digest != valid
    if checked:
        _validate_schema(data, path, lines)
    try:
        pipeline = dataclasses.replace(_build(data, path, lines), digest=digest)
        _check_references(pipeline, lines)
        pipeline = _check_data_files(pipeline, lines)
    except PipelineError:
        raise
    except Exception:
        if not checked:  # a state file whose cache says valid when it is not: the schema says why
            _validate_schema(data, path, lines)
        raise
    if check_files:
        if not (pipeline.root / pipeline.workdir).is_dir():
            raise _error(path, lines, ["workdir"], f"folder {pipeline.workdir} does not exist",
                         "workdir is relative to the pipeline file")
        for index, stage in enumerate(pipeline.stages):
            if not (pipeline.root / stage.notebook).is_file():
                raise _error(path, lines, ["stages", index, "notebook"],
                             f"notebook {stage.notebook} does not exist",
                             "paths are relative to the pipeline file; regenerate with "
                             "`nb2pkg convert`")
    return pipeline


def parse_yaml(text: str, path: Path | str) -> tuple[Any, Any]:
    """The node tree (for line numbers) and the data of a YAML text; ``PipelineError`` in one
    line when it is not valid YAML or nests too deeply to read."""
    import yaml

    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        try:
            return _parse_yaml(fast, text)
        except (yaml.YAMLError, RecursionError):
            pass  # the pure-Python parser below says what is wrong, in its own words
    try:
        return _parse_yaml(yaml.SafeLoader, text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PipelineError(f"{where}not valid YAML: {problem}", path=path,
                            hint="check the indentation and quoting there") from None
    except RecursionError:  # PyYAML's composer recurses once per level of nesting
        raise PipelineError("not readable: nested thousands of levels deep", path=path,
                            hint="such a file is a few levels deep; check what wrote it") from None


def _parse_yaml(loader_class: Any, text: str) -> tuple[Any, Any]:
    # One parse: the node tree, then the data made from it (what ``yaml.safe_load`` does).
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def _validate_schema(data: Any, path: Path, lines: "_Lines") -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = list(validator.iter_errors(data))
    if not errors:
        return
    error = jsonschema.exceptions.best_match(errors)
    location = list(error.absolute_path)
    message = _schema_message(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            location.append(extra[0])
            message = f"unknown field {extra[0]!r}"
            if allowed:
                message += f" (allowed: {', '.join(sorted(allowed))})"
            raise _error(path, lines, location, message, DOCS, key=True)
    raise _error(path, lines, location, message, DOCS)


def _schema_message(error: Any) -> str:
    if error.validator == "required":
        return error.message.replace("is a required property", "is required")
    if error.validator == "pattern":
        return f"{error.instance!r} is not a valid name (letters, digits and _ only)"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "const":
        return f"must be {error.validator_value!r}, not {error.instance!r}"
    if error.validator == "oneOf" and error.path and error.path[-1] == "parameters":
        return "must be a list of parameter names or a mapping of notebook variable to parameter"
    return error.message


def _build(data: Mapping[str, Any], path: Path, lines: "_Lines") -> Pipeline:
    parameters = []
    for name, entry in (data.get("parameters") or {}).items():
        kind = entry["type"]
        default = entry["default"]
        if not _matches(kind, default):
            raise _error(path, lines, ["parameters", name, "default"],
                         f"default {default!r} is not {_a(kind)}", "make type and default agree")
        parameters.append(Parameter(name, kind, default, entry.get("help", "")))
    stages = []
    for entry in data["stages"]:
        raw = entry.get("parameters") or []
        pairs = tuple((p, p) for p in raw) if isinstance(raw, list) else tuple(raw.items())
        stages.append(Stage(
            name=entry["name"], notebook=entry["notebook"], needs=tuple(entry.get("needs") or ()),
            parameters=pairs, inputs=tuple((entry.get("inputs") or {}).items()),
            outputs=tuple(entry.get("outputs") or ()), metrics=tuple(entry.get("metrics") or ()),
            timeout=entry.get("timeout"), deps=tuple(entry.get("deps") or ()),
            outs=tuple(entry.get("outs") or ())))
    return Pipeline(
        path=path, name=data["name"], stages=tuple(stages), parameters=tuple(parameters),
        kernel=data.get("kernel", "python3"), workdir=data.get("workdir", "."),
        python_path=tuple(data.get("python_path") or ()), deps=tuple(data.get("deps") or ()),
        artifacts=data.get("artifacts", "artifacts"), runs=data.get("runs", "runs"),
        timeout=data.get("timeout"))


def _missing(pipeline: Pipeline, name: str) -> str:
    """Why a stage referenced before its definition is not available yet."""
    return ("comes later in the file" if any(s.name == name for s in pipeline.stages)
            else "is not defined")


def _check_references(pipeline: Pipeline, lines: "_Lines") -> None:
    path = pipeline.path
    declared = {p.name for p in pipeline.parameters}
    seen: dict[str, int] = {}
    for index, stage in enumerate(pipeline.stages):
        where = ["stages", index]
        if stage.name in seen:
            raise _error(path, lines, [*where, "name"],
                         f"stage name {stage.name!r} is used twice (also stages[{seen[stage.name]}])",
                         "stage names must be unique")
        for position, need in enumerate(stage.needs):
            if need not in seen:
                problem = _missing(pipeline, need)
                raise _error(path, lines, [*where, "needs", position],
                             f"stage {need!r} {problem}",
                             "list stages after the stages they need (no cycles)")
        for variable, provider in stage.inputs:
            if provider not in seen:
                problem = _missing(pipeline, provider)
                raise _error(path, lines, [*where, "inputs", variable],
                             f"input `{variable}` comes from stage {provider!r}, which {problem}",
                             "inputs come from earlier stages")
            if variable not in pipeline.stages[seen[provider]].outputs:
                raise _error(path, lines, [*where, "inputs", variable],
                             f"stage {provider!r} does not list `{variable}` in its outputs",
                             f"add it to the outputs of {provider}")
        for variable, parameter in stage.parameters:
            if parameter not in declared:
                raise _error(path, lines, [*where, "parameters", variable],
                             f"unknown parameter {parameter!r}", _known(pipeline.parameters))
        seen[stage.name] = index


def data_path(text: str) -> str:
    """``text`` as a normalized project-relative POSIX path; ``ValueError`` saying why not.

    A data path (``deps``, ``outs``) must stay inside the project: relative, no ``..`` that
    leaves it, not the project itself. It is checked as text: a symbolic link inside the project
    is followed when hashing, wherever it points. For the convert-time detection of the files a
    notebook reads, a path relative to the stages' ``workdir`` becomes
    ``data_path(posixpath.join(workdir, path))``.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("is empty")
    if "\\" in text:
        raise ValueError("uses backslashes (write paths with /)")
    if text.startswith(("/", "~")) or PureWindowsPath(text).drive:
        raise ValueError("is not relative to the project")
    normal = posixpath.normpath(text)
    if normal == ".":
        raise ValueError("is the whole project")
    if normal == ".." or normal.startswith("../"):
        raise ValueError("leaves the project (..)")
    return normal


def overlaps(a: str, b: str) -> bool:
    """Whether data paths ``a`` and ``b`` are the same file or one is inside the other."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def _check_data_files(pipeline: Pipeline, lines: "_Lines") -> Pipeline:
    """Normalize and check the data paths; order the stages that pass files on."""
    path = pipeline.path
    # Files the runner writes itself: a dep there would change with every run, an out there
    # would be deleted or overwritten by it.
    reserved = {"artifacts folder": pipeline.artifacts, "runs folder": pipeline.runs,
                "state file": f"{path.stem}.state.json", "lock file": f"{path.stem}.run.lock"}
    reserved = {k: posixpath.normpath(v) for k, v in reserved.items()}

    def checked(location: list, text: str) -> str:
        try:
            normal = data_path(text)
        except ValueError as exc:
            raise _error(path, lines, location, f"path {text!r} {exc}",
                         "give a path relative to the pipeline file, inside the project") from None
        for what, folder in reserved.items():
            if folder != "." and overlaps(normal, folder):
                raise _error(path, lines, location,
                             f"path {text!r} overlaps the {what} ({folder}), which `nb2pkg run` "
                             "writes itself", "values between stages are `inputs`, not files")
        return normal

    deps = tuple(checked(["deps", i], d) for i, d in enumerate(pipeline.deps))
    # Outs first: two writers of one file is the error to report, whoever reads it.
    outs: list[tuple[str, ...]] = []
    for index, stage in enumerate(pipeline.stages):
        mine = tuple(checked(["stages", index, "outs", i], o) for i, o in enumerate(stage.outs))
        for position, out in enumerate(mine):
            for earlier, theirs in enumerate(outs):
                other = next((o for o in theirs if overlaps(out, o)), None)
                if other is not None:
                    raise _error(path, lines, ["stages", index, "outs", position],
                                 f"{out} is also written by stage "
                                 f"{pipeline.stages[earlier].name!r} ({other})",
                                 "each file is the output of one stage")
        outs.append(mine)
    for position, dep in enumerate(deps):  # every stage reads these, the writer too
        writer = next((i for i, theirs in enumerate(outs) if any(overlaps(dep, o) for o in theirs)),
                      None)
        if writer is not None:
            raise _error(path, lines, ["deps", position],
                         f"{dep} is written by stage {pipeline.stages[writer].name!r}, and every "
                         "stage depends on the pipeline's deps",
                         "list it in the deps of the stages that read it instead")
    stages: list[Stage] = []
    for index, stage in enumerate(pipeline.stages):
        where = ["stages", index]
        stage_deps = tuple(checked([*where, "deps", i], d) for i, d in enumerate(stage.deps))
        file_needs = []
        for position, dep in enumerate(stage_deps):
            writers = [i for i, theirs in enumerate(outs) if any(overlaps(dep, o) for o in theirs)]
            if index in writers:
                raise _error(path, lines, [*where, "deps", position],
                             f"{dep} is both read and written by this stage",
                             "list it in outs only; a stage that changes a file it reads cannot "
                             "be skipped safely")
            if any(i > index for i in writers):
                later = pipeline.stages[max(writers)].name
                raise _error(path, lines, [*where, "deps", position],
                             f"{dep} is written by stage {later!r}, which comes later in the "
                             "file", "list stages after the stages whose files they read")
            file_needs += [pipeline.stages[i].name for i in writers]
        stages.append(dataclasses.replace(stage, deps=stage_deps, outs=outs[index],
                                          file_needs=tuple(dict.fromkeys(file_needs))))
    return dataclasses.replace(pipeline, deps=deps, stages=tuple(stages))


def _matches(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, TYPES[kind])


def _known(parameters: Sequence[Parameter]) -> str:
    names = [p.name for p in parameters]
    return f"known parameters: {', '.join(names)}" if names else "this pipeline has no parameters"


def _error(path: Path, lines: "_Lines", location: list, message: str, hint: str | None = None,
           *, key: bool = False) -> PipelineError:
    line = lines.get(location, key=key)
    field_name = _field(location)
    text = f"line {line}: " if line else ""
    text += f"{field_name}: {message}" if field_name else message
    return PipelineError(text, path=path, hint=hint)


def _field(location: Sequence[Any]) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Lines:
    """Line numbers of the YAML nodes, looked up by JSON path (keys and list indexes)."""

    def __init__(self, root: Any) -> None:
        self.root = root

    def get(self, location: Sequence[Any], *, key: bool = False) -> int | None:
        node, best = self.root, None
        if node is None:
            return None
        best = node.start_mark.line + 1
        for depth, part in enumerate(location):
            last = depth == len(location) - 1
            child = None
            if hasattr(node, "value") and isinstance(node.value, list):
                if node.tag.endswith(":seq"):
                    if isinstance(part, int) and part < len(node.value):
                        child = node.value[part]
                    else:  # a list of names: find the item by its text
                        child = next((v for v in node.value if getattr(v, "value", None) == part),
                                     None)
                elif node.tag.endswith(":map"):
                    for k, v in node.value:
                        if k.value == str(part):
                            child = k if (key and last) else v
                            break
            if child is None:
                return best
            node = child
            best = node.start_mark.line + 1
        return best


# -- parameters ---------------------------------------------------------------------------------
def resolve_parameters(pipeline: Pipeline, overrides: Sequence[tuple[str, str]] = (),
                       files: Sequence[Path | str] = ()) -> dict[str, Any]:
    """Parameter values: defaults, then each YAML file, then ``-p NAME VALUE`` (text).

    Values are cast to the declared type (the type of the default in the notebook), never guessed
    from the text: ``-p seed 7`` is the int 7 because ``seed = 42`` in the notebook.
    """
    values = {p.name: p.default for p in pipeline.parameters}
    by_name = {p.name: p for p in pipeline.parameters}
    for file in files:
        file = Path(file)
        data = parse_yaml(read_text_file(file, "parameters file"), file)[1] or {}
        if not isinstance(data, dict):
            raise PipelineError("a parameters file is a mapping of name: value", path=file)
        for name, value in _flatten(data, by_name):
            if name not in by_name:
                raise PipelineError(f"unknown parameter {name!r}", path=file,
                                    hint=_known(pipeline.parameters))
            values[name] = _cast_value(by_name[name], value, str(file))
    for name, text in overrides:
        if name not in by_name:
            raise PipelineError(f"unknown parameter {name!r} (-p {name} ...)", path=pipeline.path,
                                hint=_known(pipeline.parameters))
        values[name] = cast_text(by_name[name], text)
    return values


def _flatten(data: Mapping[str, Any], known: Mapping[str, Parameter], prefix: str = ""):
    # Nested mappings name dotted parameters (DVC's params.yaml style): {churn: {seed: 1}} is
    # churn.seed -- unless the key is itself a parameter (a dict-typed one).
    for key, value in data.items():
        name = f"{prefix}{key}"
        if name not in known and isinstance(value, dict):
            yield from _flatten(value, known, f"{name}.")
        else:
            yield name, value


def cast_text(parameter: Parameter, text: str) -> Any:
    """Cast command-line text to the parameter's type; ``PipelineError`` when it does not fit."""
    import yaml

    kind = parameter.type

    def bad(expected: str) -> PipelineError:
        return PipelineError(f"parameter {parameter.name} is {_a(kind)} (default "
                             f"{parameter.default!r}), and {text!r} is not {expected}",
                             hint=f"pass {expected}, e.g. -p {parameter.name} "
                                  f"{_example(parameter)}")

    if kind == "str":
        return text
    if kind == "int":
        try:
            return int(text.strip().replace("_", ""))
        except ValueError:
            raise bad("an integer") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise bad("a number") from None
    if kind == "bool":
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise bad("true or false")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise bad("valid YAML") from None
    if kind == "any":
        return value
    if not _matches(kind, value):
        raise bad(f"{_a(kind)} in YAML/JSON syntax")
    return value


def _cast_value(parameter: Parameter, value: Any, source: str) -> Any:
    if _matches(parameter.type, value):
        return float(value) if parameter.type == "float" else value
    hint = "quote it" if parameter.type == "str" else f"give {_a(parameter.type)}"
    raise PipelineError(f"parameter {parameter.name} is {_a(parameter.type)}, not "
                        f"{type(value).__name__} ({value!r})", path=source, hint=hint)


def _a(kind: str) -> str:
    return {"int": "an int", "any": "any value"}.get(kind, f"a {kind}")


def _example(parameter: Parameter) -> str:
    if parameter.type in ("list", "dict", "any"):
        return "'" + json.dumps(parameter.default) + "'"
    return str(parameter.default).lower() if parameter.type == "bool" else str(parameter.default)


def stage_parameters(stage: Stage, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values a stage receives, by notebook variable."""
    return {variable: values[parameter] for variable, parameter in stage.parameters}
