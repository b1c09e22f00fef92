"""Opening beneath a root: links are followed only while they stay beneath it (nb2pkg/beneath.py)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from nb2pkg.beneath import Hidden, Outside, open_beneath


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("inside")
    (tmp_path / "secret.txt").write_text("outside")
    return root


def read(root: Path, *parts: str, **options) -> tuple[bytes, tuple[str, ...]]:
    fd, real = open_beneath(str(root), parts, **options)
    try:
        return os.read(fd, 100), real
    finally:
        os.close(fd)


def test_links_beneath_the_root_are_followed_only_when_asked(root: Path) -> None:
    (root / "rel").symlink_to("a/b/f.txt")
    (root / "a" / "abs").symlink_to(root / "a" / "b", target_is_directory=True)
    (root / "a" / "b" / "up").symlink_to("../../rel")
    assert read(root, "rel", follow=True) == (b"inside", ("a", "b", "f.txt"))
    assert read(root, "a", "abs", "f.txt", follow=True) == (b"inside", ("a", "b", "f.txt"))
    assert read(root, "a", "b", "up", follow=True) == (b"inside", ("a", "b", "f.txt"))
    for parts in (("rel",), ("a", "abs", "f.txt")):
        with pytest.raises(OSError) as caught:
            read(root, *parts)
        assert caught.value.errno in (errno.ELOOP, errno.ENOTDIR)


def test_nothing_outside_the_root_is_opened(root: Path, tmp_path: Path) -> None:
    (root / "abs").symlink_to(tmp_path / "secret.txt")
    (root / "a" / "rel").symlink_to("../../secret.txt")
    (root / "a" / "dir").symlink_to(tmp_path, target_is_directory=True)
    (root / "loop").symlink_to("loop")
    for parts in (("abs",), ("a", "rel"), ("a", "dir", "secret.txt"), ("..", "secret.txt"),
                  ("a", "..", "..", "secret.txt")):
        with pytest.raises(Outside):
            read(root, *parts, follow=True)
    with pytest.raises(OSError) as caught:
        read(root, "loop", follow=True)
    assert caught.value.errno == errno.ELOOP
    with pytest.raises(FileNotFoundError):
        read(root, "a", "missing", follow=True)


def test_hidden_names_on_the_way(root: Path) -> None:
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref")
    (root / "head").symlink_to(".git/HEAD")
    assert read(root, "head", follow=True)[0] == b"ref"
    for parts in ((".git", "HEAD"), ("head",)):
        with pytest.raises(Hidden):
            read(root, *parts, follow=True, allow_hidden=False)


def test_the_root_itself(root: Path) -> None:
    fd, real = open_beneath(str(root), ())
    try:
        assert real == () and os.path.samestat(os.fstat(fd), os.stat(root))
    finally:
        os.close(fd)
