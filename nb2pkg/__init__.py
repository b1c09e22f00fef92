"""nb2pkg: turn Jupyter notebooks into installable, tested packages and papermill pipelines.

The library never prints; see ``nb2pkg.api`` for the entry points and ``nb2pkg.cli`` for the
command. Importing ``nb2pkg`` is cheap: heavy modules load inside the functions that need them.
"""

__version__ = "0.1.0"
