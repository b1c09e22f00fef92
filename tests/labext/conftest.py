"""Fixtures that start a real ``jupyter lab`` (and build the labextension) for the labext tests.

One server per session, in isolated Jupyter config/data/runtime folders; each test works in its
own folder under the server root. See docs/labext.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
JS_DIR = REPO / "jupyter_ext"
LABEXTENSION = REPO / "nb2pkg" / "labextension"
TOKEN = "nb2pkg-labext-tests"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "jupyter_server: starts a real Jupyter server")


@dataclass(frozen=True)
class Response:
    status: int
    data: Any  # parsed JSON, or the raw text when the body is not JSON


@dataclass(frozen=True)
class LabServer:
    url: str
    token: str
    root: Path
    log: Path
    pid: int

    def request(self, method: str, endpoint: str, body: Any = None, *, raw: bytes | None = None,
                token: bool = True, headers: dict[str, str] | None = None,
                api: str = "nb2pkg") -> Response:
        """Call ``/<api>/<endpoint>``; ``body`` is sent as JSON, ``raw`` as is."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(f"{self.url}/{api}/{endpoint}", data=data, method=method)
        req.add_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if token:
            req.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as answer:
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return Response(status, json.loads(text))
        except ValueError:
            return Response(status, text)

    def convert(self, **body: Any) -> Response:
        return self.request("POST", "convert", body)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(base: Path, app: list[str], extra: list[str] = (),
           pythonpath: list[Path] = ()) -> tuple[subprocess.Popen, LabServer]:
    """Start ``python -m <app>`` on a free port with its root in ``base/root``; wait for it."""
    root = base / "root"
    root.mkdir()
    env = dict(os.environ)
    for name in ("config", "data", "runtime"):
        (base / name).mkdir()
        env[f"JUPYTER_{name.upper()}_DIR"] = str(base / name)
    # The labextension as `pip install` would place it, but pointing at the checkout's build.
    (base / "data" / "labextensions").mkdir()
    (base / "data" / "labextensions" / "nb2pkg").symlink_to(LABEXTENSION)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), *map(str, pythonpath),
                                                      env.get("PYTHONPATH")]))
    env.pop("JUPYTER_TOKEN", None)
    # In a virtualenv, jupyter_core looks in the environment's share/jupyter before the user's
    # data dir, where a copy an editable install made long ago would win over the checkout's.
    env["JUPYTER_PREFER_ENV_PATH"] = "0"
    port = _free_port()
    log = base / "server.log"
    cmd = [
        sys.executable, "-m", *app, "--no-browser", "--allow-root",
        "--ip", "127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
        # The extension module itself, so the tests do not depend on nb2pkg/__init__.py
        # or on an installed wheel (test_labext_packaging checks the shipped config).
        "--ServerApp.jpserver_extensions={'nb2pkg.labext': True}",
        *extra,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", TOKEN, root, log, proc.pid)
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{app[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if server.request("GET", "version").status == 200:
                return proc, server
        except OSError:
            pass
        if time.monotonic() > deadline:
            _stop(proc)
            pytest.fail(f"{app[0]} did not answer within 60 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A real ``jupyter lab`` with the nb2pkg server extension and labextension, for the session."""
    proc, server = _start(tmp_path_factory.mktemp("jupyter"), ["jupyterlab"], [
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ])
    try:
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A plain ``jupyter server`` (no lab) whose Authorizer grants what each request's
    ``X-Nb2pkg-Test-Allow`` header lists (nb2pkg_test_authorizer.py), everything without it."""
    proc, server = _start(
        tmp_path_factory.mktemp("jupyter-server"), ["jupyter_server"],
        ["--ServerApp.authorizer_class=nb2pkg_test_authorizer.HeaderAuthorizer"],
        pythonpath=[Path(__file__).parent])
    try:
        yield server
    finally:
        _stop(proc)


@pytest.fixture
def workdir(lab_server: LabServer, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """A fresh folder under the server root for one test: (absolute path, root-relative path)."""
    return _workdir(lab_server, request)


@pytest.fixture
def server_workdir(jupyter_server: LabServer, request: pytest.FixtureRequest) -> tuple[Path, str]:
    """``workdir`` under the root of the plain ``jupyter server``."""
    return _workdir(jupyter_server, request)


def _workdir(server: LabServer, request: pytest.FixtureRequest) -> tuple[Path, str]:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:60]
    folder = server.root / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder, name


def write_notebook(path: Path, *cells: str | tuple[str, str]) -> Path:
    """A notebook with a kernelspec (so lab opens it without asking); ("markdown", text) for
    markdown cells, plain strings for code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for cell in cells:
        if isinstance(cell, tuple):
            nb.cells.append(nbformat.v4.new_markdown_cell(cell[1]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(cell))
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


# A small analysis notebook with one block repeated under different names: something to extract.
DEMO_CELLS: tuple[str | tuple[str, str], ...] = (
    ("markdown", "# Demo\nTwo samples, summarised the same way."),
    "import statistics",
    "a = [3, 1, 4, 1, 5]\nb = [9, 2, 6, 5, 3]",
    ("markdown", "## Summaries"),
    "ordered_a = sorted(a)\nlow_a = ordered_a[0]\nhigh_a = ordered_a[-1]\n"
    "spread_a = high_a - low_a\nmid_a = statistics.median(ordered_a)\nprint(spread_a, mid_a)",
    "ordered_b = sorted(b)\nlow_b = ordered_b[0]\nhigh_b = ordered_b[-1]\n"
    "spread_b = high_b - low_b\nmid_b = statistics.median(ordered_b)\nprint(spread_b, mid_b)",
    "sizes = {}\nsizes['small'] = dict(size=1, unit='cm')\nsizes['medium'] = dict(size=5, unit='cm')\n"
    "sizes['large'] = dict(size=9, unit='cm')\nprint(sizes)",
    "LIMIT = statistics.mean(a)\n\n\ndef over(values):\n    return [v for v in values if v > LIMIT]",
    "print(over(a), over(b))",
)


@pytest.fixture
def demo_notebook() -> Callable[[Path], Path]:
    """Writes the demo notebook (DEMO_CELLS) at the given path."""
    return lambda path: write_notebook(path, *DEMO_CELLS)


@pytest.fixture
def notebook() -> Callable[..., Path]:
    """``write_notebook`` as a fixture, so test modules need not import conftest."""
    return write_notebook


def _build_inputs() -> list[Path]:
    inputs = [JS_DIR / "package.json", JS_DIR / "tsconfig.json", JS_DIR / "yarn.lock"]
    for folder in ("src", "style"):
        inputs += [p for p in (JS_DIR / folder).rglob("*") if p.is_file()]
    return inputs


@pytest.fixture(scope="session")
def built_labextension() -> Path:
    """The prebuilt labextension, (re)built with jlpm when missing or older than its sources."""
    target = LABEXTENSION / "static" / "style.js"
    newest_source = max(p.stat().st_mtime for p in _build_inputs())
    if target.exists() and target.stat().st_mtime >= newest_source:
        return LABEXTENSION
    jlpm = shutil.which("jlpm")
    if jlpm is None or shutil.which("node") is None:
        pytest.skip("the labextension is not built and jlpm/node are missing to build it "
                    "(cd jupyter_ext && jlpm install && jlpm build:prod)")
    for step in (["install"], ["build:prod"]):
        done = subprocess.run([jlpm, *step], cwd=JS_DIR, capture_output=True, text=True)
        if done.returncode:
            pytest.fail(f"jlpm {' '.join(step)} failed:\n"
                        f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return LABEXTENSION
