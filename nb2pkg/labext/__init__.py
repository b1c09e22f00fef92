"""The Jupyter side of the "Convert to package" toolbar button.

Importing this package is cheap: jupyter_server and tornado are imported only when a server
loads the extension (``_load_jupyter_server_extension``). ``nb2pkg/__init__.py`` re-exports the
two discovery functions so that the extension is known as plain ``nb2pkg``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """Where jupyter_server finds the extension's loader."""
    return [{"module": "nb2pkg.labext"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab extension, relative to the ``nb2pkg`` package directory."""
    return [{"src": "labextension", "dest": "nb2pkg"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the ``/nb2pkg/...`` handlers on a running jupyter_server."""
    from .handlers import setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("nb2pkg: /nb2pkg/convert is ready")
