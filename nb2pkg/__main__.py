"""``python -m nb2pkg`` and the ``nb2pkg`` console script."""

import gc
import sys

from .cli import main


def entry() -> None:
    status = main()
    # The process ends here. Python's last collection would walk every object the command left
    # (0.05 s of a typical conversion, 0.1 s at 600 cells) to free what the exit frees anyway;
    # objects are still released and exit handlers still run.
    gc.freeze()
    sys.exit(status)


if __name__ == "__main__":
    entry()
