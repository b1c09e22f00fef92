"""Format generated Python in black's style, with ruff's formatter (a binary, one run per batch)."""

from __future__ import annotations

from typing import Sequence


def format_python(source: str, line_length: int = 88) -> str:
    """Format in black's style with ruff's formatter; code it cannot format is returned unchanged.

    ruff formats a 1,500-line module in ~10 ms where black took ~0.7 s (black formats twice
    whenever its first pass changes anything); both agree byte for byte on all but 2 of the 496
    modules the examples, the real notebooks and the corpus generate (docs/bench.md).
    ``--isolated``: no configuration file near the user's folder changes what is generated.
    """
    import subprocess

    try:
        done = subprocess.run(
            [_ruff(), "format", "--isolated", f"--line-length={line_length}",
             "--stdin-filename", "module.py", "-"],
            input=source, capture_output=True, encoding="utf-8", timeout=_FORMAT_TIMEOUT)
    except (OSError, subprocess.SubprocessError, UnicodeError):
        # No ruff binary, a timeout, a lone surrogate: never lose code over formatting.
        return source
    return done.stdout if done.returncode == 0 else source


def format_modules(sources: Sequence[str], line_length: int = 88) -> list[str]:
    """``format_python`` of each source, with one ruff process for them all.

    A process costs ~7 ms of CPU however little it formats, and a conversion formats the
    package's modules and its tests. The sources are written to a private temporary folder
    and named on ruff's command line (so no exclusion rule of a folder applies); ruff formats
    every file it can parse and leaves the others as they were.
    """
    if len(sources) < 2:
        return [format_python(source, line_length) for source in sources]
    import subprocess
    import tempfile
    from pathlib import Path

    try:
        with tempfile.TemporaryDirectory(prefix="nb2pkg-format-") as folder:
            paths = [Path(folder) / f"module{index}.py" for index in range(len(sources))]
            for path, source in zip(paths, sources):
                path.write_bytes(source.encode("utf-8"))
            done = subprocess.run([_ruff(), "format", "--isolated", "--no-cache", "--quiet",
                                   f"--line-length={line_length}", *map(str, paths)],
                                  capture_output=True, timeout=_FORMAT_TIMEOUT, cwd=folder)
            # 2: a file did not parse, and was left as it was; the others are formatted.
            if done.returncode in (0, 2):
                return [path.read_bytes().decode("utf-8") for path in paths]
    except (OSError, subprocess.SubprocessError, UnicodeError):
        pass
    # As format_python: one at a time, each returned unchanged if it cannot be formatted.
    return [format_python(source, line_length) for source in sources]


def _ruff() -> str:
    from ruff import find_ruff_bin

    return find_ruff_bin()


_FORMAT_TIMEOUT = 60  # seconds; a module of 2,000 cells takes well under one
