"""The test helpers that decide a test's outcome: a step whose kernel lost its port runs again,
and nothing else does."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers import KERNEL_LOST_ITS_PORT, dvc_ran_stages, workflow_bash

# Fails the first time with what jupyter_client says of a kernel that died before starting.
FLAKY = f"""echo "Running stage 'a':"
if [ -e ran ]; then echo "Running stage 'b':"; exit 0; fi
touch ran; echo "RuntimeError: {KERNEL_LOST_ITS_PORT}" >&2; exit 1
"""


def test_a_step_whose_kernel_lost_its_port_runs_again(tmp_path: Path) -> None:
    result = workflow_bash(FLAKY, tmp_path, Path(sys.executable), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "[first run, kernel lost its port]" in result.stderr
    assert dvc_ran_stages(result.stdout) == ["a", "b"]


def test_a_step_failing_otherwise_is_not_run_again(tmp_path: Path) -> None:
    script = FLAKY.replace(KERNEL_LOST_ITS_PORT, "Kernel died after running cell 3")
    result = workflow_bash(script, tmp_path, Path(sys.executable), tmp_path)
    assert result.returncode == 1
    assert (tmp_path / "ran").exists() and "first run" not in result.stderr
