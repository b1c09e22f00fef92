"""Names for generated packages, modules, functions and parameters: valid, meaningful, unique."""

from __future__ import annotations

import builtins
import keyword
import re
import sys

_STOPWORDS = {"the", "a", "an", "of", "for", "and", "to", "in", "on", "with", "by", "from", "this",
              "that", "is", "are", "we", "our", "let", "lets", "let's", "now", "then", "here",
              "same", "again", "do", "copy", "pasted", "paste", "step", "next"}
RESERVED = frozenset(keyword.kwlist) | frozenset(dir(builtins)) | {"self", "cls"}


def identifier(text: str, fallback: str = "value") -> str:
    """A lower_snake_case Python identifier made from ``text``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)
    words = re.findall(r"[A-Za-z0-9]+", text)
    name = "_".join(w.lower() for w in words)
    if not name:
        return fallback
    if name[0].isdigit():
        name = f"{fallback}_{name}"
    if keyword.iskeyword(name):
        name += "_"
    return name


def package_name(text: str) -> str:
    """A package name that is an identifier and does not shadow the standard library."""
    name = identifier(text, "nb")
    if name in sys.stdlib_module_names or name in RESERVED or name in {"test", "tests", "src"}:
        name += "_pkg"
    return name


def words_of_comment(comment: str, drop: set[str]) -> list[str]:
    words = [w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9]*", comment)]
    return [w for w in words if w not in _STOPWORDS and w not in drop][:4]


def common_stem(names: list[str]) -> str | None:
    """The words the names share: df_north, df_south -> df; north_total, south_total -> total."""
    if len(set(names)) == 1:
        return names[0]
    split = [identifier(n).split("_") for n in names]
    prefix: list[str] = []
    for words in zip(*split):
        if len(set(words)) > 1:
            break
        prefix.append(words[0])
    suffix: list[str] = []
    for words in zip(*(list(reversed(w)) for w in split)):
        if len(set(words)) > 1:
            break
        suffix.insert(0, words[0])
    best = max(("_".join(prefix), "_".join(suffix)), key=len)
    if best and best.isidentifier() and not best[0].isdigit():
        return best
    return None


class Namer:
    """Hands out names unique within one scope, never equal to a name that is taken."""

    def __init__(self, taken: set[str] | frozenset[str] = frozenset()) -> None:
        self.taken = set(taken) | RESERVED

    def claim(self, wanted: str) -> str:
        base = wanted if wanted.isidentifier() and not keyword.iskeyword(wanted) else identifier(wanted)
        name, n = base, 2
        while name in self.taken:
            name = f"{base}_{n}"
            n += 1
        self.taken.add(name)
        return name
