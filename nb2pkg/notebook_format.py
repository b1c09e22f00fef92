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
from typing import Any

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
    schema = _schema(minor)
    if schema is None:
        return False
    if minor == 5 and isinstance(data.get("cells"), list) and any(
            isinstance(c, dict) and "id" not in c for c in data["cells"]):
        data = dict(data, cells=[dict(c, id="x") if isinstance(c, dict) and "id" not in c else c
                                 for c in data["cells"]])
    try:
        return _valid(data, schema, schema)
    except (_NotSure, RecursionError, re.error):
        return False


@lru_cache(maxsize=None)
def _schema(minor: int) -> dict | None:
    spec = importlib.util.find_spec("nbformat")  # (finds the package without importing it)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "v4" / f"nbformat.v4.{minor}.schema.json"
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return schema if schema.get("$schema") == "http://json-schema.org/draft-04/schema#" else None


# Draft 4's keywords that the check does not read: met in a schema, it is not sure.
_UNREAD = frozenset({"additionalItems", "allOf", "anyOf", "dependencies", "maxItems",
                     "maxProperties", "minItems", "minProperties", "multipleOf",
                     "exclusiveMaximum", "exclusiveMinimum"})
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "null": lambda v: v is None,
}


def _valid(value: Any, schema: dict, root: dict) -> bool:
    if not isinstance(schema, dict) or _UNREAD & schema.keys():
        raise _NotSure
    if "$ref" in schema:  # draft 4: a reference replaces the rest of its object
        return _valid(value, _resolve(schema["$ref"], root), root)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if any(kind not in _TYPES for kind in kinds):
            raise _NotSure
        if not any(_TYPES[kind](value) for kind in kinds):
            return False
    if "enum" in schema and not any(type(value) is type(item) and value == item
                                    for item in schema["enum"]):
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            return False
        if "maximum" in schema and value > schema["maximum"]:
            return False
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return False
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            return False
    if isinstance(value, list):
        if "items" in schema:
            if not isinstance(schema["items"], dict):
                raise _NotSure  # (a list of schemas, one per position)
            if not all(_valid(item, schema["items"], root) for item in value):
                return False
        if schema.get("uniqueItems"):
            if not all(isinstance(item, str) for item in value):
                raise _NotSure
            if len(set(value)) != len(value):
                return False
    if isinstance(value, dict) and not _valid_object(value, schema, root):
        return False
    if "oneOf" in schema and sum(_valid(value, s, root) for s in schema["oneOf"]) != 1:
        return False
    if "not" in schema and _valid(value, schema["not"], root):
        return False
    return True


def _valid_object(value: dict, schema: dict, root: dict) -> bool:
    if any(key not in value for key in schema.get("required", ())):
        return False
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        matched = False
        if key in properties:
            matched = True
            if not _valid(item, properties[key], root):
                return False
        for pattern, sub in patterns.items():
            if re.search(pattern, key):
                matched = True
                if not _valid(item, sub, root):
                    return False
        if not matched:
            if extra is False:
                return False
            if isinstance(extra, dict) and not _valid(item, extra, root):
                return False
    return True


def _resolve(reference: str, root: dict) -> dict:
    if not reference.startswith("#/"):
        raise _NotSure
    target: Any = root
    for part in reference[2:].split("/"):
        if not isinstance(target, dict) or part not in target:
            raise _NotSure
        target = target[part]
    return target
