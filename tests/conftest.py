import sys
from pathlib import Path

# Tests import their helpers as a plain module.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Expected output trees of conversion cases contain generated tests: data, not tests to run here.
collect_ignore_glob = ["cases/*"]
