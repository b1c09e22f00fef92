"""The server endpoint against Jupyter's rules and against races (issue 12, items 3, 4, 9).

- Races (item 3), in-process: the request is checked, then the file system changes (a folder
  or the notebook swapped for a link out of the root), then the conversion runs. Nothing
  outside the root is read into the package, written or deleted.
- Access (item 4), against a real ``jupyter server`` whose Authorizer grants what a header says
  (nb2pkg_test_authorizer.py): a read-only user gets 403 from the contents API, the kernels API
  and nb2pkg alike, and nothing is written; hidden paths are refused like the contents API does.
- Answers (item 9): client mistakes are 400/404/413, never 500; a 200 names no server path;
  a 300 MB body is refused from its header; ``verify`` works under ``jupyter server``.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from nb2pkg.labext.conversion import run_conversion
from nb2pkg.labext.request import RequestError, parse_convert_request

SECRET = "print('the secret outside the root')"
READ_ONLY = {"X-Nb2pkg-Test-Allow": "contents:read"}
NO_CODE = {"X-Nb2pkg-Test-Allow": "contents:read contents:write"}


def files_under(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def swap_for_link(path: Path, target: Path) -> None:
    path.rename(path.with_name(path.name + "_moved"))
    path.symlink_to(target, target_is_directory=target.is_dir())


def strings(data) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for key, value in data.items() for s in [key, *strings(value)]]
    if isinstance(data, list):
        return [s for item in data for s in strings(item)]
    return []


# -- item 3: swapping links between the check and the use --------------------------------------
@pytest.fixture
def jail(tmp_path: Path, notebook, demo_notebook) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    demo_notebook(root / "work" / "demo.ipynb")
    notebook(outside / "demo.ipynb", SECRET)
    notebook(outside / "secret.ipynb", SECRET)
    (outside / "out" / "precious.txt").parent.mkdir(parents=True)
    (outside / "out" / "precious.txt").write_text("outside the root")
    return root, outside


def checked(root: Path, **body) -> object:
    body = {"path": "work/demo.ipynb", "output": "work/out", "options": {"pipeline": False},
            **body}
    return parse_convert_request(json.dumps(body).encode(), str(root))


def assert_outside_untouched(outside: Path) -> None:
    assert files_under(outside) == {"demo.ipynb": files_under(outside)["demo.ipynb"],
                                    "secret.ipynb": files_under(outside)["secret.ipynb"],
                                    "out/precious.txt": "outside the root"}
    assert not any("demo_pkg" in p.name or "nb2pkg" in p.name for p in outside.rglob("*"))


def test_notebook_swapped_for_a_link_is_not_read(jail) -> None:
    root, outside = jail
    request = checked(root)
    swap_for_link(root / "work" / "demo.ipynb", outside / "secret.ipynb")
    # Before: the converter opened the path again and packaged the secret notebook.
    with pytest.raises(RequestError, match="changed while it was being converted") as caught:
        run_conversion(request)
    assert caught.value.status == 409
    assert not (root / "work" / "out").exists()
    assert_outside_untouched(outside)


def test_notebook_folder_swapped_for_a_link_is_not_read(jail) -> None:
    root, outside = jail
    request = checked(root)
    swap_for_link(root / "work", outside)  # outside/demo.ipynb has the same name
    with pytest.raises(RequestError, match="changed while") as caught:
        run_conversion(request)
    assert caught.value.status == 409
    assert_outside_untouched(outside)


@pytest.mark.parametrize("force", [False, True])
def test_output_folder_swapped_for_a_link_is_not_written(jail, force: bool) -> None:
    root, outside = jail
    (root / "work" / "dest").mkdir()
    request = checked(root, output="work/dest/out", options={"pipeline": False, "force": force})
    swap_for_link(root / "work" / "dest", outside)
    # Before: the package went to outside/out, and with force outside/out was deleted first.
    with pytest.raises(RequestError) as caught:
        run_conversion(request)
    # 422: the walk from the root met the link; 409: the early check saw outside/out through it.
    assert caught.value.status in (409, 422), caught.value
    assert "symbolic link" in str(caught.value) or "already exists" in str(caught.value)
    assert str(root) not in str(caught.value) and str(outside) not in str(caught.value)
    assert_outside_untouched(outside)


def test_output_swapped_for_a_link_is_not_followed(jail) -> None:
    root, outside = jail
    (root / "work" / "out").mkdir()
    request = checked(root, options={"pipeline": False, "force": True})
    swap_for_link(root / "work" / "out", outside / "out")
    # Before: --force replaced outside/out, the folder the link named.
    with pytest.raises(RequestError, match="work/out: the output is a symbolic link") as caught:
        run_conversion(request)
    assert caught.value.status == 409
    assert (root / "work" / "out").is_symlink()
    assert_outside_untouched(outside)


def test_converter_reads_inside_the_root_only(jail, notebook) -> None:
    """The notebook's surroundings come from its real folder, walking from the root: what lies
    inside the root travels with it; nothing beyond it is read, not even through a link."""
    root, outside = jail
    notebook(root / "work" / "demo.ipynb", "print(open('../beside.txt').read())",
             "print(open('data/out.txt').read())",
             "print(open('../../outside/out/precious.txt').read())")
    (root / "beside.txt").write_text("beside the notebook's folder")
    (root / "work" / "data").mkdir()
    (root / "work" / "data" / "out.txt").symlink_to(outside / "out" / "precious.txt")
    summary = run_conversion(checked(root, options={"pipeline": False}))
    project = files_under(root / "work" / "out")
    assert project["beside.txt"] == "beside the notebook's folder"
    assert not any("outside the root" in text for text in project.values())
    assert "`data/out.txt`: **not carried**" in project["REPORT.md"]
    assert "`../../outside/out/precious.txt`: **not carried**" in project["REPORT.md"]
    assert all("nb2pkg-lab-" not in s and "/tmp/" not in s for s in strings(summary))
    assert_outside_untouched(outside)


def test_data_folder_swapped_for_a_link_while_read_is_not_followed(jail, notebook,
                                                                   monkeypatch) -> None:
    """The data files are opened by walking from the root once they are found: a folder on the
    way swapped for a link out of the root meanwhile makes them not carried, never read."""
    import nb2pkg.assets

    root, outside = jail
    notebook(root / "work" / "demo.ipynb", "print(open('data/precious.txt').read())")
    (root / "work" / "data").mkdir()
    (root / "work" / "data" / "precious.txt").write_text("inside the root")
    real_open = nb2pkg.assets.open_beneath

    def swapping(root_, parts, **options):
        if parts[-2:] == ("data", "precious.txt") and not (root / "work" / "data").is_symlink():
            swap_for_link(root / "work" / "data", outside / "out")
        return real_open(root_, parts, **options)

    monkeypatch.setattr(nb2pkg.assets, "open_beneath", swapping)
    run_conversion(checked(root, options={"pipeline": False}))
    project = files_under(root / "work" / "out")
    assert "notebooks/data/precious.txt" not in project
    assert "`data/precious.txt`: **not carried**: it is a symbolic link" in project["REPORT.md"]
    assert_outside_untouched(outside)


# -- item 4: Jupyter's Authorizer and hidden files ----------------------------------------------
def test_read_only_user_is_refused_like_by_the_contents_api(jupyter_server, server_workdir,
                                                           demo_notebook) -> None:
    folder, rel = server_workdir
    demo_notebook(folder / "demo.ipynb")
    server = jupyter_server
    # Jupyter's own APIs refuse this user writing and running code...
    put = server.request("PUT", f"contents/{rel}/new.txt", {"type": "file", "format": "text",
                                                            "content": "x"},
                         headers=READ_ONLY, api="api")
    kernel = server.request("POST", "kernels", {"name": "python3"}, headers=READ_ONLY, api="api")
    assert (put.status, kernel.status) == (403, 403)
    # ... and so does nb2pkg, which writes files (and, verifying, runs code).
    body = {"path": f"{rel}/demo.ipynb", "output": f"{rel}/demo_pkg"}
    answer = server.request("POST", "convert", body, headers=READ_ONLY)
    assert answer.status == 403, answer
    assert not (folder / "demo_pkg").exists() and not (folder / "new.txt").exists()
    # Reading is allowed: the defaults, the progress and the version answer.
    for endpoint in (f"defaults?path={rel}/demo.ipynb", "progress/x", "version"):
        assert server.request("GET", endpoint, headers=READ_ONLY).status == 200, endpoint
    # Without read on contents, not even the defaults.
    assert server.request("GET", f"defaults?path={rel}/demo.ipynb",
                          headers={"X-Nb2pkg-Test-Allow": "kernels:execute"}).status == 403


def test_verify_needs_the_right_to_run_code(jupyter_server, server_workdir,
                                            demo_notebook) -> None:
    folder, rel = server_workdir
    demo_notebook(folder / "demo.ipynb")
    body = {"path": f"{rel}/demo.ipynb", "output": f"{rel}/demo_pkg",
            "options": {"verify": True, "pipeline": False}}
    answer = jupyter_server.request("POST", "convert", body, headers=NO_CODE)
    assert answer.status == 403 and "run code" in answer.data["message"], answer
    assert not (folder / "demo_pkg").exists()
    body["options"]["verify"] = False
    assert jupyter_server.request("POST", "convert", body, headers=NO_CODE).status == 200


def test_hidden_paths_are_refused(jupyter_server, server_workdir, demo_notebook) -> None:
    folder, rel = server_workdir
    demo_notebook(folder / "demo.ipynb")
    demo_notebook(folder / ".private" / "nb.ipynb")
    (folder / "proj" / ".git").mkdir(parents=True)
    (folder / "proj" / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (folder / "alias").symlink_to(folder / ".private", target_is_directory=True)
    # The contents API does not serve them...
    assert jupyter_server.request("GET", f"contents/{rel}/proj/.git", api="api").status == 404
    # ... and nb2pkg neither reads nor replaces them (before: proj/.git was replaced).
    for path, output in [(f"{rel}/demo.ipynb", f"{rel}/proj/.git"),
                         (f"{rel}/.private/nb.ipynb", f"{rel}/out"),
                         (f"{rel}/alias/nb.ipynb", f"{rel}/out")]:
        answer = jupyter_server.convert(path=path, output=output, options={"force": True})
        assert answer.status == 403 and "hidden" in answer.data["message"], answer
    assert files_under(folder / "proj") == {".git/HEAD": "ref: refs/heads/main"}
    assert not (folder / "out").exists()


# -- item 9: answers ----------------------------------------------------------------------------
@pytest.mark.parametrize("body, status, fragment", [
    ('{"path": "\\ud800.ipynb", "output": "x"}', 400, "not valid Unicode"),
    ('{"path": "x.ipynb", "output": "\\udfff"}', 400, "not valid Unicode"),
    ("[" * 30000 + "]" * 30000, 400, "nested too deeply"),
    (json.dumps({"path": "a" * 300 + ".ipynb", "output": "x"}), 400, "longer than 255 bytes"),
    (json.dumps({"path": "a/" * 2100 + ".ipynb", "output": "x"}), 400, "at most 4096"),
    (json.dumps({"path": "x.ipynb", "output": "o", "name": "n" * 5000}), 400, "100 characters"),
    (json.dumps({"path": "x.ipynb", "output": "o", "options": {"y" * 5000: True}}), 400,
     "Unknown option"),
    (json.dumps({"path": "nope.ipynb", "output": "o"}), 404, "does not exist"),
    (json.dumps({"path": "x" * 70000}), 413, "over 65536 bytes"),
])
def test_client_mistakes_are_not_500(jupyter_server, notebook, body: str, status: int,
                                     fragment: str) -> None:
    notebook(jupyter_server.root / "x.ipynb", "x = 1")  # so that the other fields are judged
    answer = jupyter_server.request("POST", "convert", raw=body.encode())
    assert answer.status == status, answer
    assert fragment in answer.data["message"] and "Traceback" not in json.dumps(answer.data)
    assert len(answer.data["message"]) < 300


def test_surrogates_in_the_query_are_400(jupyter_server) -> None:
    answer = jupyter_server.request("GET", "defaults?path=%ED%A0%80.ipynb")
    assert answer.status == 400 and "traceback" not in answer.data, answer


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_huge_body_is_refused_from_its_header(jupyter_server) -> None:
    """Before: a 300 MB body grew the server to 12 GB; now it is refused before it is read."""
    url = urlsplit(jupyter_server.url)
    before = rss_kb(jupyter_server.pid)
    started = time.perf_counter()
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    connection.putrequest("POST", "/nb2pkg/convert")
    connection.putheader("Authorization", f"token {jupyter_server.token}")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(300 * 1024 * 1024))
    connection.endheaders()
    try:
        connection.send(b'{"path": "' + b"a" * (4 * 1024 * 1024))  # the server stops reading
    except OSError:  # it may close the connection while we send
        pass
    answer = connection.getresponse()
    elapsed = time.perf_counter() - started
    assert answer.status == 413
    assert "over 65536 bytes" in json.loads(answer.read())["message"]
    connection.close()
    grown = rss_kb(jupyter_server.pid) - before
    print(f"\n300 MB body: 413 after {elapsed:.2f} s, server RSS grew {grown} kB")
    assert grown < 50_000  # not read: the body never reached memory


def test_answers_name_no_server_path(jupyter_server, server_workdir, notebook) -> None:
    """Every string of a 200 answer, with findings and a verification, is root-relative."""
    folder, rel = server_workdir
    notebook(folder / "sub" / "demo.ipynb", "import os\nimport json", "x = [3, 1]\nprint(x)",
             "print(sorted(x))")
    answer = jupyter_server.convert(path=f"{rel}/sub/demo.ipynb", output=f"{rel}/out/pkg",
                                    options={"verify": True})
    assert answer.status == 200, answer
    summary = answer.data
    # Before: "output" and every notebook path were the server's absolute paths.
    assert summary["output"] == f"{rel}/out/pkg"
    assert summary["findings"] and {f["notebook"] for f in summary["findings"]} == {
        f"{rel}/sub/demo.ipynb"}
    assert summary["verification"]["equivalent"] is True
    assert summary["verification"]["notebooks"][0]["original"] == f"{rel}/sub/demo.ipynb"
    for text in strings(summary):
        assert str(jupyter_server.root) not in text and "/tmp" not in text, text
        assert not text.startswith("/"), text


def test_verify_runs_under_jupyter_server(jupyter_server, server_workdir, demo_notebook) -> None:
    """Before: "This event loop is already running" (a 500) under `jupyter server`."""
    folder, rel = server_workdir
    demo_notebook(folder / "demo.ipynb")
    started = time.perf_counter()
    answer = jupyter_server.convert(path=f"{rel}/demo.ipynb", output=f"{rel}/demo_pkg",
                                    options={"verify": True, "pipeline": False})
    assert answer.status == 200, answer
    assert answer.data["verification"]["equivalent"] is True
    print(f"\nverify under jupyter server: {time.perf_counter() - started:.1f} s")
    assert "already running" not in jupyter_server.log.read_text()


def test_defaults_follow_the_command_line(jupyter_server, server_workdir, notebook) -> None:
    from nb2pkg.api import ConvertOptions, convert

    folder, rel = server_workdir
    for stem in ("2024 report", "json", "SalesReport", "class", "Über Analyse"):
        path = notebook(folder / f"{stem}.ipynb", "x = 1")
        answer = jupyter_server.request("GET", f"defaults?path={rel}/{stem}.ipynb".replace(
            " ", "%20").replace("Ü", "%C3%9C"))
        cli = convert([path], folder / "unused", ConvertOptions(dry_run=True)).package
        assert answer.status == 200, answer
        assert answer.data == {"name": cli, "output": f"{rel}/{stem}_pkg", "update": False}, stem
