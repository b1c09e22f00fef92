"""nb2pkg: turn Jupyter notebooks into installable, tested packages and papermill pipelines.

The library never prints; see ``nb2pkg.api`` for the entry points and ``nb2pkg.cli`` for the
command. Importing ``nb2pkg`` is cheap: heavy modules load inside the functions that need them.
"""

__version__ = "0.1.0"

# Entry points Jupyter looks up when it enables the server extension and the lab extension;
# nb2pkg.labext imports nothing heavy until a server actually loads it.
from .labext import _jupyter_labextension_paths, _jupyter_server_extension_points  # noqa: E402,F401
