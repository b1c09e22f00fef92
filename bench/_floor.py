"""The floor of a conversion: a Python process that reads the notebook JSON, ``ast``-parses every
code cell and writes one file (issue 16). Run by ``bench_convert.py`` as
``python bench/_floor.py NB OUT.py``; nothing of nb2pkg is imported.

IPython syntax (``%magic``, ``!cmd``, ``x?``) is commented out line by line before parsing, the
least a converter must do with it; the file written is the cells' code, one after the other.
"""

import ast
import json
import sys

notebook, output = sys.argv[1], sys.argv[2]
with open(notebook, encoding="utf-8") as handle:
    cells = json.load(handle)["cells"]
parts = []
for cell in cells:
    if cell.get("cell_type") != "code":
        continue
    source = cell["source"]
    source = "".join(source) if isinstance(source, list) else source
    lines = source.splitlines()
    plain = "\n".join("# " + line if line.lstrip().startswith(("%", "!")) or
                      line.rstrip().endswith("?") else line for line in lines)
    try:
        ast.parse(plain)
    except SyntaxError:  # a magic spanning lines, a cell magic: keep it, commented out
        plain = "\n".join("# " + line for line in lines)
        ast.parse(plain)
    parts.append(plain)
with open(output, "w", encoding="utf-8") as handle:
    handle.write("\n\n".join(parts) + "\n")
