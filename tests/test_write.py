"""write.write_project: one writer per output, --force decided at the rename, recovery after a
kill between the two renames, and confinement under a root whose folders are swapped for links.

Races are provoked in-process: a hook on ``tempfile.mkdtemp`` (the staging folder is created
after every check and before the renames, in this version and the one before) changes the file
system at the worst moment. See docs/security.md, "Writing outputs".
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from helpers import ROOT
from nb2pkg import write
from nb2pkg.errors import OutputExistsError, OutputWriteError
from nb2pkg.write import check_output, confined_to, recover_output, write_project

FILES = {"README.md": "# new\n", "src/pkg/__init__.py": "VALUE = 2\n"}
PREVIOUS = {"README.md": "# previous\n", "mine.txt": "the user's work\n"}


def tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def beside(output: Path) -> list[str]:
    """Everything beside ``output`` that nb2pkg may have left (its dot-names)."""
    return sorted(p.name for p in output.parent.iterdir() if p.name.startswith("."))


def make(folder: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def on_staging(monkeypatch: pytest.MonkeyPatch, action) -> None:
    """Run ``action()`` right after the staging folder is created (the first mkdtemp)."""
    real = tempfile.mkdtemp
    done = []

    def mkdtemp(*args, **kwargs):
        path = real(*args, **kwargs)
        if not done:
            done.append(path)
            action()
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)


# -- item 5: --force is decided at the moment of the rename ----------------------------------------
@pytest.mark.parametrize("content", [PREVIOUS, {}], ids=["with-files", "empty"])
def test_folder_created_during_the_write_is_not_replaced_without_force(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: dict) -> None:
    output = tmp_path / "out"
    # Before: the existing-output check passed, then the folder appeared and was renamed aside
    # and deleted. An empty folder is the subtle case: a plain rename replaces it silently.
    on_staging(monkeypatch, lambda: make(output, content).mkdir(exist_ok=True))
    with pytest.raises(OutputExistsError, match="already exists|created by someone else"):
        write_project(FILES, output)
    assert output.is_dir() and tree(output) == content
    assert beside(output) == []


def test_concurrent_writers_of_one_output_take_turns(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "out"
    first_staging, second_may_finish = threading.Event(), threading.Event()
    real = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs):
        path = real(*args, **kwargs)
        if threading.current_thread().name == "first":
            first_staging.set()
            assert second_may_finish.wait(10)  # hold the first writer mid-way
        return path

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    errors: dict[str, BaseException] = {}

    def run(name: str, files: dict) -> None:
        try:
            write_project(files, output)
        except BaseException as error:  # noqa: BLE001 - reported by the assertions below
            errors[name] = error

    first = threading.Thread(target=run, args=("first", FILES), name="first")
    second = threading.Thread(target=run, args=("second", {"README.md": "second\n"}),
                              name="second")
    first.start()
    assert first_staging.wait(10)
    second.start()
    second.join(0.5)
    assert second.is_alive(), "the second writer did not wait for the first"
    second_may_finish.set()
    first.join(10)
    second.join(10)
    # Before: both passed their checks, and the second renamed the first's result aside and
    # deleted it, without --force.
    assert "first" not in errors
    assert isinstance(errors.get("second"), OutputExistsError), errors
    assert tree(output) == FILES
    assert beside(output) == []


def test_a_writer_that_holds_the_lock_too_long_is_named(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "out"
    monkeypatch.setattr(write, "LOCK_TIMEOUT", 0.2)
    (tmp_path / ".out.nb2pkg-lock").mkdir()
    fd = os.open(tmp_path / ".out.nb2pkg-lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(OutputExistsError, match="another nb2pkg run is writing"):
            write_project(FILES, output)
    finally:
        os.close(fd)
    assert not output.exists()
    write_project(FILES, output)  # the stale lock file is taken over once free
    assert tree(output) == FILES and beside(output) == []


def test_force_replaces_and_leaves_nothing_beside(tmp_path: Path) -> None:
    output = make(tmp_path / "out", PREVIOUS)
    write_project(FILES, output, force=True)
    assert tree(output) == FILES and beside(output) == []


# -- item 10: a kill between the two renames loses nothing -----------------------------------------
KILL_BETWEEN_RENAMES = """
import os, signal, sys
from pathlib import Path
from nb2pkg.write import write_project

real, calls = os.rename, []
def rename(*args, **kwargs):
    calls.append(args)
    if len(calls) == {at}:  # 1: the output moved aside; 2: the staging folder moved in
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
os.rename = rename
write_project({{"README.md": "# new\\n"}}, Path(sys.argv[1]), force=True)
"""


def killed_while_replacing(output: Path, at: int) -> None:
    done = subprocess.run([sys.executable, "-c", KILL_BETWEEN_RENAMES.format(at=at), str(output)],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


@pytest.mark.parametrize("force", [False, True])
def test_killed_between_the_renames_the_next_write_restores(tmp_path: Path, force: bool) -> None:
    output = make(tmp_path / "out", PREVIOUS)
    killed_while_replacing(output, at=2)
    # The previous output waits in .out.nb2pkg-old-XXXXXXXX. Before, no later run put it back.
    assert any(name.startswith(".out.nb2pkg-old-") for name in beside(output))
    assert not output.exists()
    if force:
        write_project(FILES, output, force=True)
        assert tree(output) == FILES
    else:
        with pytest.raises(OutputExistsError, match="already exists"):
            write_project(FILES, output)
        assert tree(output) == PREVIOUS
    assert beside(output) == []


def test_check_before_any_work_restores_and_refuses(tmp_path: Path) -> None:
    """`convert` checks its output before analysing: a previous output left aside by a kill is
    back in place then, and "already exists" is said before the work, not after it."""
    output = make(tmp_path / "out", PREVIOUS)
    killed_while_replacing(output, at=2)
    with pytest.raises(OutputExistsError, match="already exists"):
        check_output(output, force=False)
    assert tree(output) == PREVIOUS and beside(output) == []


def test_leftovers_of_the_previous_version_are_restored(tmp_path: Path) -> None:
    """The state the writer before this one left after a SIGKILL between its renames."""
    output = tmp_path / "out"
    make(tmp_path / ".out.nb2pkg-old-abcd1234" / "out", PREVIOUS)
    make(tmp_path / ".out.nb2pkg-x1y2z3w4", {"README.md": "# half\n"})  # a staging folder
    recover_output(output)
    assert tree(output) == PREVIOUS and beside(output) == []


def test_killed_after_the_new_output_went_in(tmp_path: Path) -> None:
    output = make(tmp_path / "out", PREVIOUS)
    # Killed on a third rename that does not exist: the process ends after the swap, normally.
    killed_while_replacing(output, at=1)  # kill as the old output moves aside: nothing moved
    assert tree(output) == PREVIOUS
    recover_output(output)
    assert tree(output) == PREVIOUS and beside(output) == []


def test_old_folder_is_removed_only_when_its_replacement_is_in_place(tmp_path: Path) -> None:
    output = make(tmp_path / "out", FILES)
    old = make(tmp_path / ".out.nb2pkg-old-abcd1234" / "out", PREVIOUS).parent
    # No record of what replaced it: someone else's folder may be at `out`; keep both.
    recover_output(output)
    assert tree(output) == FILES and tree(old / "out") == PREVIOUS
    # The record names the folder now in place: the swap had completed, the old one can go.
    new = output.stat()
    (old / ".nb2pkg-replaced-by").write_text(f"{new.st_dev}:{new.st_ino}")
    recover_output(output)
    assert tree(output) == FILES and beside(output) == []


# -- item 3: confined writes follow no link swapped in ---------------------------------------------
@pytest.fixture
def jail(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    make(outside / "out", {"precious.txt": "outside the root\n"})
    return root, outside


def swap_for_link(folder: Path, target: Path) -> None:
    folder.rename(folder.with_name(folder.name + "_moved"))
    folder.symlink_to(target, target_is_directory=True)


@pytest.mark.parametrize("force", [False, True])
def test_folder_swapped_for_a_link_during_the_write(jail, monkeypatch: pytest.MonkeyPatch,
                                                   force: bool) -> None:
    root, outside = jail
    if force:
        make(root / "a" / "out", PREVIOUS)
    on_staging(monkeypatch, lambda: swap_for_link(root / "a", outside))
    with confined_to(root):
        write_project(FILES, root / "a" / "out", force=force)
    # The write went on in the folder it had opened (now a_moved), never through the link.
    assert tree(outside) == {"out/precious.txt": "outside the root\n"}
    assert tree(root / "a_moved" / "out") == FILES
    assert beside(root / "a_moved" / "out") == []


def test_link_on_the_way_is_refused(jail) -> None:
    root, outside = jail
    swap_for_link(root / "a", outside)
    with confined_to(root), pytest.raises(OutputWriteError, match="symbolic link"):
        write_project(FILES, root / "a" / "out", force=True)
    assert tree(outside) == {"out/precious.txt": "outside the root\n"}


def test_output_swapped_for_a_link_is_not_followed(jail, monkeypatch: pytest.MonkeyPatch) -> None:
    root, outside = jail
    make(root / "a" / "out", PREVIOUS)
    on_staging(monkeypatch, lambda: swap_for_link(root / "a" / "out", outside / "out"))
    with confined_to(root):
        write_project(FILES, root / "a" / "out", force=True)
    # --force replaced the link itself (moved aside and unlinked), not the folder it named.
    assert tree(outside) == {"out/precious.txt": "outside the root\n"}
    assert tree(root / "a" / "out") == FILES and not (root / "a" / "out").is_symlink()
    assert tree(root / "a" / "out_moved") == PREVIOUS
    assert beside(root / "a" / "out") == []


def test_folder_moved_out_of_the_root_during_the_write(jail, monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    root, outside = jail
    make(root / "a" / "out", PREVIOUS)
    on_staging(monkeypatch, lambda: (root / "a").rename(outside / "a"))
    with confined_to(root), pytest.raises(OutputWriteError, match="moved out"):
        write_project(FILES, root / "a" / "out", force=True)
    assert tree(outside / "a") == {f"out/{k}": v for k, v in PREVIOUS.items()}


def test_confined_output_outside_the_root_is_refused(jail) -> None:
    root, outside = jail
    with confined_to(root), pytest.raises(OutputWriteError, match="not inside"):
        write_project(FILES, outside / "new", force=True)
    assert not (outside / "new").exists()


def test_confined_creates_missing_folders(jail) -> None:
    root, _ = jail
    with confined_to(root):
        write_project(FILES, root / "x" / "y" / "out")
    assert tree(root / "x" / "y" / "out") == FILES


def test_killed_after_claiming_the_name_without_force(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed between mkdir (claiming the name) and the rename: an empty folder, no loss."""
    output = tmp_path / "out"
    output.mkdir()
    make(tmp_path / ".out.nb2pkg-abcd1234", FILES)  # the staging folder it was about to move
    write_project(FILES, output)
    assert tree(output) == FILES and beside(output) == []
