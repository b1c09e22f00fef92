"""Code that runs inside a user's kernel or ships in the projects nb2pkg generates.

The converter, the pipeline runner and verification use these modules; nothing here imports
from nb2pkg (``tests/test_standalone.py`` checks it by parsing the imports). Three of them are
copied verbatim into every generated project, which then owns them and needs no nb2pkg:

| module | copied to | what it does there |
| --- | --- | --- |
| ``notebook_outputs`` | ``tests/_notebook_outputs.py`` | run a notebook on a kernel, normalize and compare outputs |
| ``recorded`` | ``tests/_recorded.py`` | read recorded calls (JSON, ``.npy``, parquet, pickle) and compare values |
| ``stage_io`` | ``src/<package>/_stage_io.py`` | save and load the values that cross pipeline stages |

``recording`` is not copied: it runs in the kernel while ``nb2pkg verify`` records calls, and
imports ``recorded`` (the one definition of the format).
"""

# Modules copied into generated projects, by name: where they go and what their header says.
SHIPPED = ("notebook_outputs", "recorded", "stage_io")
