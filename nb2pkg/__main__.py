"""``python -m nb2pkg`` and the ``nb2pkg`` console script."""

import gc
import signal
import sys

from .cli import main
from .errors import Terminated


def entry() -> None:
    # SIGTERM (a process manager, `timeout`, a cancelled CI job) stops the command as Ctrl-C
    # does, through its cleanup (scratch folders, kernels, half-written output) and with one
    # line said (`main`), instead of killing it where it stands. Set here, for the process:
    # `main` is also called inside other programs (tests), whose signals are theirs.
    signal.signal(signal.SIGTERM, _terminate)
    status = main()
    # The process ends here. Python's last collection would walk every object the command left
    # (0.05 s of a typical conversion, 0.1 s at 600 cells) to free what the exit frees anyway;
    # objects are still released and exit handlers still run.
    gc.freeze()
    sys.exit(status)


def _terminate(signum: int, frame: object) -> None:
    raise Terminated()


if __name__ == "__main__":
    entry()
