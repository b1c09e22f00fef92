import sys
from pathlib import Path

# The robustness tests import their helpers (programs, harness) as plain modules.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with "
                            "-m 'not slow')")
