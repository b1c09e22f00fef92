"""A run with nothing to do stays cheap (issue 11: "`nb2pkg run` must not import convert-time
modules"), and the answers it takes from the state file's cache are the ones it would work out.

No kernel: the first run uses the fake executor (tests/pipeline/fake_executor.py), which writes
the artifacts and lets the runner record the state as after a real run. Timing is
``bench/bench_run.py``'s, not a test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fake_executor import FakeExecutor  # tests/pipeline/fake_executor.py
from nb2pkg.pipeline import report as report_module
from nb2pkg.pipeline.runner import run_pipeline

REPO = Path(__file__).resolve().parents[2]
CHAIN = [("code", "n = 2", ["parameters"]),
         ("markdown", "## Make"), "rows = list(range(n))",
         ("markdown", "## Grow"), "rows.append(99)",
         ("markdown", "## Show"), "print(rows)"]
# Modules a run with nothing to do must not load: the converter (splitter, libcst, the
# refactoring and analysis), the kernel machinery, jsonschema (its format checkers cost most),
# Jinja.
HEAVY = ["libcst", "nb2pkg.pipeline.split", "nb2pkg.pipeline.stages", "nb2pkg.refactor",
         "nb2pkg.analysis", "nb2pkg.plan", "nb2pkg.generate", "jsonschema", "rfc3987_syntax",
         "rfc3339_validator", "webcolors", "papermill", "nbformat", "nbclient", "jupyter_client",
         "zmq", "jinja2"]
PROBE = """
import json, sys
{before}
loaded = sorted(name for name in {heavy!r} if sys.modules.get(name) is not None)
print(json.dumps({{"loaded": loaded, "result": result}}))
"""


def in_a_fresh_python(code: str, cwd: Path) -> dict:
    env = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def ran(project):
    """A converted project (with dvc.yaml) whose every stage ran once."""
    out = project(CHAIN)
    pipeline = out / "pipeline.yaml"
    result = run_pipeline(pipeline, executor=FakeExecutor(pipeline.read_text()))
    assert result.ok and result.count("ran") == 3
    assert (out / "dvc.yaml").exists()  # so that the dvc.yaml comparison is part of the run
    return out


def test_importing_the_pipeline_package_loads_nothing_heavy(tmp_path):
    found = in_a_fresh_python(PROBE.format(before="import nb2pkg.pipeline, nb2pkg.pipeline.runner"
                                           "\nresult = None", heavy=HEAVY), tmp_path)
    assert found["loaded"] == []


def test_a_run_with_nothing_to_do_loads_nothing_heavy(ran):
    before = ("import contextlib, io\nfrom nb2pkg.cli import main\n"
              "out = io.StringIO()\nwith contextlib.redirect_stdout(out):\n"
              "    status = main(['run', 'pipeline.yaml', '--json'])\n"
              "result = [status, json.loads(out.getvalue())]")
    found = in_a_fresh_python(PROBE.format(before=before, heavy=HEAVY), ran)
    status, result = found["result"]
    assert status == 0 and {s["status"] for s in result["stages"]} == {"skipped"}
    assert result["warnings"] == []  # dvc.yaml was compared (from the cache) and matches
    assert found["loaded"] == []
    # The same probe sees them when they are loaded (the check itself works):
    found = in_a_fresh_python(PROBE.format(before="import jinja2, jsonschema\nresult = None",
                                           heavy=HEAVY), ran)
    assert {"jinja2", "jsonschema"} <= set(found["loaded"])


def test_the_cached_report_is_the_one_jinja_renders(ran):
    result = run_pipeline(ran / "pipeline.yaml")
    assert result.count("skipped") == 3
    report_path = Path(result.report_path)
    rendered = report_module.render_report(result, report_path, None, None)
    assert report_path.read_text(encoding="utf-8") == rendered
    assert f"in {result.seconds:.1f} s." in rendered  # this run's time, not a cached one


def test_a_report_is_rendered_again_when_what_it_shows_changed(ran):
    run_pipeline(ran / "pipeline.yaml")
    result = run_pipeline(ran / "pipeline.yaml", overrides=[("n", "5")],
                          executor=FakeExecutor((ran / "pipeline.yaml").read_text()))
    assert result.stages[0].status == "ran"
    text = Path(result.report_path).read_text(encoding="utf-8")
    assert text == report_module.render_report(result, Path(result.report_path), None, None)
    assert "| `n` | 5 (changed) |" in text


def test_an_edited_pipeline_file_is_validated_again(ran, capsys):
    from nb2pkg.cli import main

    pipeline = ran / "pipeline.yaml"
    assert main(["run", str(pipeline), "-q"]) == 0  # valid, remembered as valid
    pipeline.write_text(pipeline.read_text().replace("version: 1\n", "version: 1\ncolour: red\n"))
    assert main(["run", str(pipeline), "-q"]) == 2
    assert "unknown field 'colour'" in capsys.readouterr().err


def test_an_edited_dvc_file_is_compared_again(ran):
    assert run_pipeline(ran / "pipeline.yaml").warnings == ()
    dvc = ran / "dvc.yaml"
    dvc.write_text(dvc.read_text().replace("nb-grow:", "nb-grown:"))
    warnings = run_pipeline(ran / "pipeline.yaml").warnings
    assert len(warnings) == 1 and "does not match pipeline.yaml" in warnings[0]


def test_hashes_worked_out_by_a_run_with_nothing_to_do_are_kept(ran, monkeypatch):
    import time

    from nb2pkg.pipeline import state as state_module

    # Files hashed less than RACY_NS after they were written are hashed again by the next run.
    monkeypatch.setattr(state_module, "RACY_NS", 300_000_000)
    pipeline = ran / "pipeline.yaml"
    run_pipeline(pipeline, executor=FakeExecutor(pipeline.read_text()), force=True)
    time.sleep(0.4)
    hashed: list[str] = []
    real_open = Path.open

    def counting_open(self, mode="r", *args, **kwargs):
        # files of the project hashed for the state (dvc.yaml is read whole for its digest)
        if mode == "rb" and self.is_relative_to(ran) and self.name != "dvc.yaml":
            hashed.append(self.name)
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", counting_open)
    assert run_pipeline(pipeline).count("skipped") == 3
    assert hashed  # the artifacts of the forced run: too fresh to trust when it hashed them
    hashed.clear()
    assert run_pipeline(pipeline).count("skipped") == 3
    assert hashed == []  # the run before recorded their hashes


def test_a_cache_that_calls_an_invalid_pipeline_valid_is_not_believed(ran, capsys):
    from nb2pkg.cli import main
    from nb2pkg.pipeline.spec import schema_digest

    pipeline = ran / "pipeline.yaml"
    assert main(["run", str(pipeline), "-q"]) == 0
    broken = pipeline.read_text().replace("notebook: stages/", "notebook_file: stages/", 1)
    pipeline.write_text(broken)
    state = ran / "pipeline.state.json"
    data = json.loads(state.read_text())
    data["cache"]["schema"] = schema_digest(broken)  # as if this text had passed the schema
    state.write_text(json.dumps(data))
    assert main(["run", str(pipeline), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"nb2pkg: error: {pipeline}: line ") and "'notebook' is required" in err
    assert "Traceback" not in err
