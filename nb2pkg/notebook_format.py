"""Notebook nodes, files and the version-4 schema check, without importing nbformat.

nbformat (with jsonschema, which it imports) takes ~0.08 s to import and ~0.03 s to check a
typical notebook: a fifth of converting one. Reading and writing a version-4 notebook are
done here the way nbformat does them, byte for byte and node for node; nbformat itself is
imported only for what this module hands over (older versions, a notebook the schema check
cannot accept, the messages that say what is wrong).

The schema check uses nbformat's own schema files (``nbformat/v4/nbformat.v4.N.schema.json``,
found without importing the package) with a small reader of the JSON-schema keywords they use.
It answers "valid" only when it is sure: anything it does not read (a keyword it does not know,
a minor version without its own schema) is "not sure", and nbformat decides.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

# What nbformat drops when it reads or writes a notebook (``strip_transient``), and the output
# bundles whose text it splits into lines besides ``text/*``.
_TRANSIENT_METADATA = ("orig_nbformat", "orig_nbformat_minor", "signature")
_SPLIT_MIMES = frozenset({"application/javascript", "image/svg+xml"})


class Node(dict):
    """nbformat's ``NotebookNode``: a dict whose keys also read and write as attributes, and
    whose dict values become nodes."""

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, from_dict(value) if isinstance(value, dict) and not isinstance(
            value, Node) else value)

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value


def from_dict(value: Any) -> Any:
    """Dicts as nodes, lists copied, all the way down (``nbformat.from_dict``)."""
    if isinstance(value, dict):
        node = Node()
        for key, item in value.items():
            dict.__setitem__(node, key, from_dict(item))
        return node
    if isinstance(value, (list, tuple)):
        return [from_dict(item) for item in value]
    return value


def copy_node(node: Any) -> Any:
    """A copy of a notebook node (or a cell) to change: every dict and list new, the strings
    and numbers shared. A tenth of ``copy.deepcopy``'s time on notebooks with outputs."""
    return from_dict(node)


# -- reading and writing files -------------------------------------------------------------------
def read_node(data: dict) -> Node:
    """The node of a version-4 notebook file's JSON (``nbformat.reads`` without parsing the
    text again): lines joined back into strings, transient metadata dropped."""
    node = from_dict(data)
    for cell in node["cells"]:
        if isinstance(cell.get("source"), list):
            cell["source"] = "".join(cell["source"])
        for bundle in cell.get("attachments", {}).values():
            _join_bundle(bundle)
        if cell.get("cell_type") == "code":
            for output in cell.get("outputs", []):
                kind = output.get("output_type", "")
                if kind in ("execute_result", "display_data"):
                    _join_bundle(output.get("data", {}))
                elif kind and isinstance(output.get("text", ""), list):
                    output["text"] = "".join(output["text"])
        cell.get("metadata", {}).pop("trusted", None)
    for key in _TRANSIENT_METADATA:
        node["metadata"].pop(key, None)
    return node


def _join_bundle(bundle: dict) -> None:
    for key, value in bundle.items():
        if not _is_json_mime(key) and isinstance(value, list) and all(
                isinstance(line, str) for line in value):
            bundle[key] = "".join(value)


def _is_json_mime(key: str) -> bool:
    return key == "application/json" or key.startswith("application/") and key.endswith("+json")


def notebook_json(node: Any) -> str:
    """The text of a version-4 notebook file, byte for byte what ``nbformat.writes(node)``
    gives: multi-line text split into lines, transient metadata dropped, sorted keys, indent 1.

    nbformat deep-copies the whole notebook to split its lines and checks the schema again,
    only to log what it finds: a fifth of converting a long notebook. Here only the dicts that
    change are copied (``node`` itself is left as it is), and the generated notebooks are
    checked by the tests instead (tests/test_notebook_format.py).
    """
    cells = []
    for cell in node["cells"]:
        cell = dict(cell)
        if isinstance(cell.get("source"), str):
            cell["source"] = cell["source"].splitlines(True)
        if "metadata" in cell and "trusted" in cell["metadata"]:
            cell["metadata"] = {k: v for k, v in cell["metadata"].items() if k != "trusted"}
        if cell.get("attachments"):
            cell["attachments"] = {k: _split_bundle(v) for k, v in cell["attachments"].items()}
        if cell.get("cell_type") == "code" and "outputs" in cell:
            cell["outputs"] = [_split_output(output) for output in cell["outputs"]]
        cells.append(cell)
    data = dict(node, cells=cells)
    data["metadata"] = {k: v for k, v in node["metadata"].items() if k not in _TRANSIENT_METADATA}
    return json.dumps(data, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False)


def _split_output(output: Any) -> Any:
    kind = output.get("output_type")
    if kind in ("execute_result", "display_data") and "data" in output:
        return dict(output, data=_split_bundle(output["data"]))
    if kind == "stream" and isinstance(output.get("text"), str):
        return dict(output, text=output["text"].splitlines(True))
    return output


def _split_bundle(bundle: Any) -> Any:
    return {key: value.splitlines(True) if isinstance(value, str) and (
        key.startswith("text/") or key in _SPLIT_MIMES) else value for key, value in bundle.items()}


# -- the schema check ----------------------------------------------------------------------------
class _NotSure(Exception):
    """The check met something it does not read: nbformat decides."""


def schema_accepts(data: Any) -> bool:
    """True when ``data`` (a notebook file's JSON) is a valid notebook of format 4.0-4.5 by
    nbformat's schema, as ``nbformat.validate`` would find it (which first gives cells of
    format 4.5 the ids they lack, and new ones for repeated ids). False: not sure."""
    if not isinstance(data, dict):
        return False
    minor = data.get("nbformat_minor")
    if type(data.get("nbformat")) is not int or data["nbformat"] != 4 or (
            type(minor) is not int or not 0 <= minor <= 5):
        return False
    check = _checker(minor)
    if check is None:
        return False
    if minor == 5 and isinstance(data.get("cells"), list) and any(
            isinstance(c, dict) and "id" not in c for c in data["cells"]):
        data = dict(data, cells=[dict(c, id="x") if isinstance(c, dict) and "id" not in c else c
                                 for c in data["cells"]])
    try:
        return check(data)
    except (_NotSure, RecursionError):
        return False


Check = Callable[[Any], bool]


@lru_cache(maxsize=None)
def _checker(minor: int) -> Check | None:
    """nbformat's schema of format 4.``minor``, compiled into one predicate (None: not read)."""
    spec = importlib.util.find_spec("nbformat")  # (finds the package without importing it)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "v4" / f"nbformat.v4.{minor}.schema.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(schema, dict) or schema.get("$schema") != "http://json-schema.org/draft-04/schema#":
        return None
    try:
        return _compile(schema, schema, {})
    except (_NotSure, re.error, RecursionError):
        return None


# Draft 4's keywords that the check does not read: met in a schema, it is not sure.
_UNREAD = frozenset({"additionalItems", "allOf", "anyOf", "dependencies", "maxItems",
                     "maxProperties", "minItems", "minProperties", "multipleOf",
                     "exclusiveMaximum", "exclusiveMinimum"})
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _compile(schema: Any, root: dict, memo: dict[int, Check]) -> Check:
    """The predicate of one schema (draft 4's meaning of each keyword it uses; unknown
    keywords mean nothing, as in JSON Schema)."""
    if not isinstance(schema, dict) or _UNREAD & schema.keys():
        raise _NotSure
    if "$ref" in schema:  # draft 4: a reference replaces the rest of its object
        return _compile(_resolve(schema["$ref"], root), root, memo)
    if id(schema) in memo:
        return memo[id(schema)]
    later: list[Check] = []  # a schema that refers back to itself sees the finished predicate
    memo[id(schema)] = lambda value: later[0](value)
    checks: list[Check] = []
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if any(kind not in _TYPES for kind in kinds):
            raise _NotSure
        tests = [_TYPES[kind] for kind in kinds]
        checks.append(tests[0] if len(tests) == 1 else lambda v: any(t(v) for t in tests))
    if "enum" in schema:
        items = list(schema["enum"])
        checks.append(lambda v: any(type(v) is type(item) and v == item for item in items))
    if "minimum" in schema or "maximum" in schema:
        low, high = schema.get("minimum"), schema.get("maximum")
        checks.append(lambda v: not isinstance(v, (int, float)) or isinstance(v, bool) or (
            (low is None or v >= low) and (high is None or v <= high)))
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        checks.append(lambda v: not isinstance(v, str) or pattern.search(v) is not None)
    if "minLength" in schema or "maxLength" in schema:
        shortest, longest = schema.get("minLength", 0), schema.get("maxLength")
        checks.append(lambda v: not isinstance(v, str) or shortest <= len(v) and (
            longest is None or len(v) <= longest))
    if "items" in schema:
        item = _compile(schema["items"], root, memo)  # (a list of schemas: not read)
        checks.append(lambda v: not isinstance(v, list) or all(item(i) for i in v))
    if schema.get("uniqueItems"):
        checks.append(lambda v: not isinstance(v, list) or _unique(v))
    if {"required", "properties", "patternProperties", "additionalProperties"} & schema.keys():
        checks.append(_object_check(schema, root, memo))
    if "oneOf" in schema:
        options = [_compile(option, root, memo) for option in schema["oneOf"]]
        checks.append(lambda v: sum(1 for option in options if option(v)) == 1)
    if "not" in schema:
        negated = _compile(schema["not"], root, memo)
        checks.append(lambda v: not negated(v))

    def check(value: Any) -> bool:
        for one in checks:
            if not one(value):
                return False
        return True

    later.append(check)
    memo[id(schema)] = check
    return check


def _object_check(schema: dict, root: dict, memo: dict[int, Check]) -> Check:
    required = list(schema.get("required", ()))
    properties = {key: _compile(sub, root, memo) for key, sub in schema.get("properties", {}).items()}
    patterns = [(re.compile(pattern), _compile(sub, root, memo))
                for pattern, sub in schema.get("patternProperties", {}).items()]
    extra = schema.get("additionalProperties", True)
    extra_check = extra if isinstance(extra, bool) else _compile(extra, root, memo)

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return True
        for key in required:
            if key not in value:
                return False
        for key, item in value.items():
            matched = key in properties
            if matched and not properties[key](item):
                return False
            for pattern, sub in patterns:
                if pattern.search(key):
                    matched = True
                    if not sub(item):
                        return False
            if not matched and extra_check is not True and (
                    extra_check is False or not extra_check(item)):
                return False
        return True

    return check


def _unique(items: list) -> bool:
    if not all(isinstance(item, str) for item in items):
        raise _NotSure  # (JSON's equality of other values is not Python's)
    return len(set(items)) == len(items)


def _resolve(reference: str, root: dict) -> dict:
    if not reference.startswith("#/"):
        raise _NotSure
    target: Any = root
    for part in reference[2:].split("/"):
        if not isinstance(target, dict) or part not in target:
            raise _NotSure
        target = target[part]
    return target
