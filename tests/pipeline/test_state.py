"""The state file, content hashes, the run lock and the DVC export's refusal to overwrite.

Kernel-less: stages run on the fake executor of ``fake_executor``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from fake_executor import FakeExecutor
from nb2pkg import atomic
from nb2pkg.cli import main
from nb2pkg.errors import OutputWriteError, PipelineError
from nb2pkg.pipeline import export as export_module
from nb2pkg.pipeline import state as state_module
from nb2pkg.pipeline.runner import run_pipeline
from nb2pkg.pipeline.spec import load_pipeline
from nb2pkg.pipeline.state import RunLock, State

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = """\
version: 1
name: fake
parameters:
  n: {type: int, default: 1}
stages:
  - {name: a1, notebook: a1.ipynb, parameters: [n], outputs: [x]}
  - {name: a2, notebook: a2.ipynb, inputs: {x: a1}}
  - {name: b1, notebook: b1.ipynb}
"""


@pytest.fixture
def pipeline(tmp_path):
    for name in ("a1", "a2", "b1"):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code",
                                                                       "source": name}]}))
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    return path


def run(path, **options):
    executor = FakeExecutor(PIPELINE)
    result = run_pipeline(path, executor=executor, **options)
    return executor.order, {s.name: s.reason for s in result.stages}


def state_file(pipeline):
    return pipeline.parent / "pipeline.state.json"


# -- hashes are not fooled by size and mtime ----------------------------------------------------
def test_an_artifact_rewritten_with_the_same_size_and_mtime_reruns_its_reader(pipeline,
                                                                              monkeypatch):
    # Reuse a recorded hash as soon as the stat fields match, to show that they catch it.
    monkeypatch.setattr(state_module, "RACY_NS", -(10 ** 18))
    run(pipeline)
    artifact = next((pipeline.parent / "artifacts" / "a1").glob("x.*"))
    before = artifact.stat()
    data = artifact.read_bytes()
    changed = data[:-1] + bytes([data[-1] ^ 1])  # same size, other content
    artifact.write_bytes(changed)
    os.utime(artifact, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (artifact.stat().st_size, artifact.stat().st_mtime_ns) == (before.st_size,
                                                                      before.st_mtime_ns)
    order, reasons = run(pipeline)
    # a1's outputs are not what it wrote: it runs again, and a2 re-reads what a1 wrote
    assert order == ["a1"] and reasons["a1"] == "outputs changed or missing"
    assert artifact.read_bytes() == data and reasons["a2"] == "up to date"


def test_a_recorded_hash_is_reused_only_when_the_file_had_settled(pipeline):
    state = State(load_pipeline(pipeline))
    file = pipeline.parent / "data.bin"
    file.write_bytes(b"one")
    real = state.file_hash(file)
    stat = file.stat()
    key = [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino]
    changed_at = max(stat.st_mtime_ns, stat.st_ctime_ns)
    # hashed in the same instant as the last change: a later write might not show, re-read
    state._files["data.bin"] = [*key, "recorded", changed_at + 1]
    assert state.file_hash(file) == real
    # hashed well after the last change, nothing changed since: reused
    state._files["data.bin"] = [*key, "recorded", changed_at + 3 * 10 ** 9]
    assert state.file_hash(file) == "recorded"
    # any stat field that differs: re-read
    state._files["data.bin"] = [*key[:2], key[2] - 1, key[3], "recorded", changed_at + 3 * 10 ** 9]
    assert state.file_hash(file) == real


def test_force_reads_every_file_again(pipeline):
    run(pipeline)
    data = json.loads(state_file(pipeline).read_text())
    assert data["files"], "the run records file hashes"
    for entry in data["files"].values():
        entry[4] = "0" * 64  # a wrong hash that the stat would vouch for
        entry[5] += 10 ** 12
    state_file(pipeline).write_text(json.dumps(data))
    order, reasons = run(pipeline, force=True, stages=["a2"], only=True)
    assert order == ["a2"]
    recorded = json.loads(state_file(pipeline).read_text())
    artifact = next((pipeline.parent / "artifacts" / "a1").glob("x.*"))
    import hashlib

    real = hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert list(recorded["stages"]["a2"]["fingerprint"]["inputs"].values()) == [real]


# -- the state file -----------------------------------------------------------------------------
NOT_OURS = "the state file is not a state file of this nb2pkg: "


@pytest.mark.parametrize("text, problem", [
    ("[]", NOT_OURS + "top level: [] is not of type 'object'"),
    ('{"version": 2, "stages": []}', NOT_OURS + "stages: [] is not of type 'object'"),
    ('{"version": 2, "stages": {"a1": "done"}}',
     NOT_OURS + "stages.a1: 'done' is not of type 'object'"),
    ('{"version": 2, "stages": {"a1": {"fingerprint": [], "outputs": "x"}}}',
     NOT_OURS + "stages.a1.fingerprint: [] is not of type 'object'"),
    ('{"version": 2, "stages": {"a1": {"fingerprint": {}, "outputs": "x", "seconds": "1"}}}',
     NOT_OURS + "stages.a1.seconds: '1' is not of type 'number', 'null'"),
    ('{"stages": {}}', NOT_OURS + "top level: 'version' is a required property"),
    ('{"version": 7, "stages": {}}',
     "the state file has a version this nb2pkg does not read: version: 7 is not one of [1, 2]"),
    ("{not json", "the state file is not valid JSON (Expecting property name enclosed in double "
                  "quotes: line 1 column 2 (char 1))"),
])
def test_a_damaged_state_file_is_a_one_line_error(pipeline, capsys, text, problem):
    state_file(pipeline).write_text(text)
    assert main(["run", str(pipeline), "-q"]) == 2
    assert capsys.readouterr().err == (f"nb2pkg: error: {state_file(pipeline)}: {problem} "
                                       "(delete it: every stage then runs again)\n")
    assert state_file(pipeline).read_text() == text  # left for the user to look at


def test_bad_file_entries_are_dropped_not_trusted(pipeline):
    run(pipeline)
    data = json.loads(state_file(pipeline).read_text())
    data["files"] = {"artifacts/a1/index.json": "garbage", "x": [1, 2]}
    state_file(pipeline).write_text(json.dumps(data))
    assert run(pipeline)[0] == []  # hashes read again, still up to date


def test_a_state_file_of_version_1_is_read_and_its_file_hashes_not_reused(pipeline):
    run(pipeline)
    data = json.loads(state_file(pipeline).read_text())
    old = {"version": 1, "pipeline": "fake",
           "stages": {name: {"fingerprint": {k: v for k, v in entry["fingerprint"].items()
                                             if k != "files"},
                             "outputs": entry["outputs"], "seconds": entry["seconds"]}
                      for name, entry in data["stages"].items()},
           "files": {k: [v[0], v[1], "0" * 64] for k, v in data["files"].items()}}
    state_file(pipeline).write_text(json.dumps(old))
    # An upgrade of nb2pkg does not re-run the pipeline, and the (wrong) hashes of version 1
    # were not reused: a2 would have seen its input change.
    assert run(pipeline)[0] == []


def test_no_temporary_file_is_left_and_the_temporary_name_is_unique(pipeline, monkeypatch):
    names = []
    real = atomic.partial_path
    monkeypatch.setattr(atomic, "partial_path", lambda path: names.append(real(path))
                        or names[-1])
    run(pipeline)
    assert len(names) == len(set(names)) > 1
    assert not [p for p in pipeline.parent.rglob("*") if p.name.endswith(".partial")]


# -- one run at a time --------------------------------------------------------------------------
HOLD = """\
import sys, time
from nb2pkg.pipeline.spec import load_pipeline
from nb2pkg.pipeline.state import RunLock
with RunLock(load_pipeline(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_is_refused_while_another_holds_the_pipeline(pipeline, capsys):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(pipeline)], cwd=str(ROOT),
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        assert main(["run", str(pipeline), "-q"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"nb2pkg: error: {pipeline}: another `nb2pkg run` of this pipeline "
                              f"is running (pid {holder.pid}, started ")
        assert err.endswith("(wait until it has finished, or pass --wait to queue behind it)\n")
        assert not state_file(pipeline).exists()  # it touched nothing
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the lock must go away all the same
        holder.wait()
    order, _ = run(pipeline)
    assert order == ["a1", "a2", "b1"]


def test_wait_queues_behind_the_other_run(pipeline):
    lock = RunLock(load_pipeline(pipeline))
    lock.__enter__()
    messages = []
    releaser = threading.Timer(0.5, lock.__exit__, (None, None, None))
    releaser.start()
    started = time.monotonic()
    result = run_pipeline(pipeline, executor=FakeExecutor(PIPELINE), wait=True,
                          progress=messages.append)
    assert result.ok and time.monotonic() - started >= 0.4
    assert messages[0].startswith("waiting for another run of this pipeline to finish (pid ")


def test_the_lock_file_is_not_a_data_path(pipeline):
    pipeline.write_text(PIPELINE.replace("{name: b1, notebook: b1.ipynb}",
                                         "{name: b1, notebook: b1.ipynb, deps: [pipeline.run.lock]}"))
    with pytest.raises(PipelineError, match="overlaps the lock file"):
        load_pipeline(pipeline)


# -- nb2pkg export dvc --------------------------------------------------------------------------
def test_export_does_not_replace_existing_files_without_force(pipeline, capsys):
    folder = pipeline.parent
    (folder / "params.yaml").write_text("n: 5  # mine\n")
    assert main(["export", "dvc", str(pipeline)]) == 2
    err = capsys.readouterr().err
    assert err == (f"nb2pkg: error: {folder}: params.yaml already exists (pass --force to "
                   "replace it (parameter values are kept))\n")
    assert (folder / "params.yaml").read_text() == "n: 5  # mine\n"
    assert not (folder / "dvc.yaml").exists()  # nothing written when anything is refused

    assert main(["export", "dvc", str(pipeline), "--force"]) == 0
    assert yaml.safe_load((folder / "params.yaml").read_text()) == {"n": 5}  # the user's value
    assert list(yaml.safe_load((folder / "dvc.yaml").read_text())["stages"]) == ["a1", "a2", "b1"]
    assert main(["export", "dvc", str(pipeline)]) == 2
    assert "dvc.yaml and params.yaml already exist (pass --force to replace them" in \
        capsys.readouterr().err


def test_export_replaces_both_files_or_neither(pipeline, monkeypatch):
    folder = pipeline.parent
    (folder / "dvc.yaml").write_text("old dvc\n")
    (folder / "params.yaml").write_text("old params\n")
    real = os.replace
    calls = []

    def failing(source, target):
        calls.append(target)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export_module.os, "replace", failing)
    with pytest.raises(OutputWriteError, match="cannot write: No space left on device"):
        export_module.write_dvc(pipeline, force=True)
    monkeypatch.setattr(export_module.os, "replace", real)
    assert (folder / "dvc.yaml").read_text() == "old dvc\n"
    assert (folder / "params.yaml").read_text() == "old params\n"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".partial")] == []

    def full(path, *args, **kwargs):  # the second file cannot be written at all
        if "params.yaml" in str(path):
            raise OSError(28, "No space left on device")
        return open(path, *args, **kwargs)

    monkeypatch.setattr(export_module, "open", full, raising=False)
    with pytest.raises(OutputWriteError):
        export_module.write_dvc(pipeline, force=True)
    assert (folder / "dvc.yaml").read_text() == "old dvc\n"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".partial")] == []


def test_export_into_a_folder_that_is_a_file_is_a_one_line_error(pipeline, capsys):
    blocker = pipeline.parent / "blocker"
    blocker.write_text("")
    assert main(["export", "dvc", str(pipeline), "-o", str(blocker / "dvc")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot create the folder" in err


@pytest.mark.parametrize("text", [
    "[]", '{"version": 2, "stages": []}', '{"version": 2, "stages": {"a1": "done"}}',
    '{"version": 2, "stages": {"a1": {"fingerprint": [], "outputs": "x"}}}',
    '{"version": 2, "stages": {"a1": {"fingerprint": {}, "outputs": "x", "seconds": "1"}}}',
    '{"version": 2, "stages": {"a1": {"fingerprint": {}}}}',
    '{"version": 2, "stages": {"a1": {"fingerprint": {"inputs": {"x": 1}}, "outputs": "x"}}}',
    '{"version": 2, "stages": {"a1": {"fingerprint": {}, "outputs": "x", "outs": {"o": 1}}}}',
    '{"version": 2, "stages": {}, "files": []}', '{"version": 2, "pipeline": 3, "stages": {}}',
    '{"stages": {}}', '{"version": 7, "stages": {}}', '{"version": true, "stages": {}}',
])
def test_the_quick_state_check_accepts_nothing_the_schema_refuses(text):
    import jsonschema

    data = json.loads(text)
    assert list(jsonschema.Draft202012Validator(state_module.STATE_SCHEMA).iter_errors(data))
    assert not state_module._plainly_valid(data)


def test_state_files_the_runner_writes_pass_the_quick_check(pipeline):
    run(pipeline)
    data = json.loads(state_file(pipeline).read_text())
    assert data["stages"] and data["cache"]  # a state file as runs leave it
    assert state_module._plainly_valid(data)  # read without jsonschema


def test_the_runner_reads_the_index_file_the_stages_write():
    from nb2pkg.pipeline import artifacts

    assert state_module.INDEX == artifacts.INDEX
