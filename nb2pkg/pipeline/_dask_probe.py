"""What a Dask worker can run: asked before the first stage is sent (standard library only).

``dask_executor`` ships this module to the workers by value (``cloudpickle``), so that it runs on
a worker where nb2pkg itself is missing and can say so, instead of failing to unpickle.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any


def probe(kernel: str) -> dict[str, Any]:
    """Versions and presence of what a stage needs on this worker."""
    info: dict[str, Any] = {"python": sys.executable, "kernel": None, "nb2pkg": None}
    for name in ("papermill", "ipykernel"):
        info[name] = importlib.util.find_spec(name) is not None
    if importlib.util.find_spec("nb2pkg") is not None:
        import nb2pkg

        # A folder named nb2pkg without the package (data files of a removed install) imports
        # as an empty namespace package: that is no nb2pkg.
        info["nb2pkg"] = getattr(nb2pkg, "__version__", None)
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        KernelSpecManager().get_kernel_spec(kernel)
        info["kernel"] = True
    except Exception:
        info["kernel"] = False
    return info
