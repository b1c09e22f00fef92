"""The values that cross pipeline stages, as the runner sees them.

The format and the code live in ``nb2pkg.runtime.stage_io``, which every generated project
carries a copy of (``src/<package>/_stage_io.py``, imported by its stage notebooks): the
runner reads what those copies write. This module keeps the old import path working.
"""

from ..runtime.stage_io import (  # noqa: F401 - re-exported
    FORMAT_VERSION,
    INDEX,
    SINGLE_STAGE_FIX,
    ArtifactError,
    load_inputs,
    read_index,
    record_metric,
    record_metrics,
    recorded_metrics,
    save_outputs,
)
