"""HTTP handlers behind the toolbar button: ``/nb2pkg/convert``, ``/nb2pkg/defaults``,
``/nb2pkg/progress/<job>``, ``/nb2pkg/version``. The JSON contract and status codes are
documented in docs/labext.md; the defences in docs/security.md, "JupyterLab server".

Every handler is authenticated and authorized like Jupyter's own contents API: the Authorizer
decides, for the resource ``contents``, ``read`` (the notebook, the defaults) and ``write`` (the
output); converting with ``verify`` runs the notebook, so it also needs ``execute`` on
``kernels``. Paths obey the contents manager's root and its ``allow_hidden``.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .request import (MAX_BODY_BYTES, RequestError, check_notebook, defaults,
                      holds_conversion_of, parse_convert_request, resolve_inside)

_BOARD_SETTING = "nb2pkg_progress"
_UNEXPECTED = ("nb2pkg failed unexpectedly while converting the notebook; "
               "the Jupyter server log has the details.")


class ProgressBoard:
    """Progress messages of the conversions under way, by the job id their client chose."""

    def __init__(self) -> None:
        self._jobs: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    @contextmanager
    def track(self, job: str | None) -> Iterator[Callable[[str], None]]:
        """Collect the messages of ``job`` while the block runs; forget them afterwards."""
        if job is None:
            yield lambda message: None
            return
        with self._lock:
            messages = self._jobs.setdefault(job, [])

        def report(message: str) -> None:
            with self._lock:
                messages.append(message)

        try:
            yield report
        finally:
            with self._lock:
                self._jobs.pop(job, None)

    def messages(self, job: str) -> list[str]:
        with self._lock:
            return list(self._jobs.get(job, ()))


class _Handler(APIHandler):
    auth_resource = "contents"  # what @authorized asks the Authorizer about

    def reply(self, status: int, data: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def refuse(self, error: RequestError) -> None:
        self.reply(error.status, error.to_dict())

    @property
    def root(self) -> str:
        """The contents manager's root: what the contents API serves is what nb2pkg may use."""
        return os.path.realpath(getattr(self.contents_manager, "root_dir",
                                        self.settings["server_root_dir"]))

    @property
    def allow_hidden(self) -> bool:
        return bool(getattr(self.contents_manager, "allow_hidden", False))

    async def allowed(self, action: str, resource: str) -> bool:
        return bool(await ensure_async(
            self.authorizer.is_authorized(self, self.current_user, action, resource)))


@tornado.web.stream_request_body
class ConvertHandler(_Handler):
    """``POST /nb2pkg/convert``. The body streams in, so that its size is checked against
    ``MAX_BODY_BYTES`` before it is read (413), not after tornado has buffered it whole."""

    async def prepare(self, **kwargs: Any) -> None:
        await super().prepare(**kwargs)
        self._body = bytearray()
        self._too_large = False
        if self._finished:
            return
        length = self.request.headers.get("Content-Length", "")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            self.refuse(RequestError(f"The request body is over {MAX_BODY_BYTES} bytes.", 413))
            return
        # Without a Content-Length (chunked), tornado itself stops reading past the limit.
        self.request.connection.set_max_body_size(MAX_BODY_BYTES)  # type: ignore[union-attr]

    def data_received(self, chunk: bytes) -> None:
        self._body += chunk

    @tornado.web.authenticated
    @authorized  # "write" on "contents": the output folder
    async def post(self) -> None:
        if not await self.allowed("read", "contents"):  # the notebook
            return self.reply(403, {"message": "You are not allowed to read notebooks on this "
                                               "Jupyter server."})
        root = self.root
        try:
            request = parse_convert_request(bytes(self._body), root, self.allow_hidden)
        except RequestError as error:
            return self.refuse(error)
        if request.options.get("verify") and not await self.allowed("execute", "kernels"):
            return self.reply(403, {"message": "Verifying runs the notebook, and you are not "
                                               "allowed to run code on this Jupyter server."})
        from .conversion import run_conversion

        try:
            with self.settings[_BOARD_SETTING].track(request.job) as report:
                summary = await asyncio.to_thread(run_conversion, request, report)
        except RequestError as error:
            return self.refuse(error)
        except Exception:
            self.log.exception("nb2pkg: converting %s failed", request.notebook.absolute)
            return self.reply(500, {"message": _UNEXPECTED})
        self.reply(200, summary)


class DefaultsHandler(_Handler):
    """``GET /nb2pkg/defaults?path=<notebook>[&output=<folder>]``: the name and folder the form
    suggests, by the rules the CLI uses (nb2pkg.refactor.naming.package_name), so the two never
    disagree; ``update``: the folder (``output``, else the suggested one) holds an earlier
    conversion of this notebook, so the lab offers "Update package"."""

    @tornado.web.authenticated
    @authorized  # "read" on "contents"
    def get(self) -> None:
        path = self.get_query_argument("path", "")
        try:
            notebook = check_notebook(self.root, path, self.allow_hidden)
            answer: dict[str, Any] = dict(defaults(path))
            output = self.get_query_argument("output", "") or answer["output"]
            folder = resolve_inside(self.root, output, "output folder", self.allow_hidden,
                                    field="output")
            answer["update"] = bool(folder.parts) and holds_conversion_of(folder, notebook)
            self.reply(200, answer)
        except RequestError as error:
            self.refuse(error)


class ProgressHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    def get(self, job: str) -> None:
        self.reply(200, {"messages": self.settings[_BOARD_SETTING].messages(job)})


class VersionHandler(_Handler):
    @tornado.web.authenticated
    @authorized
    def get(self) -> None:
        try:
            installed = version("nb2pkg")
        except PackageNotFoundError:  # running from a source checkout
            installed = None
        self.reply(200, {"version": installed})


def setup_handlers(web_app: tornado.web.Application) -> None:
    if _BOARD_SETTING in web_app.settings:  # enabled twice, as "nb2pkg" and "nb2pkg.labext"
        return
    web_app.settings[_BOARD_SETTING] = ProgressBoard()
    base = url_path_join(web_app.settings["base_url"], "nb2pkg")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "convert"), ConvertHandler),
        (url_path_join(base, "defaults"), DefaultsHandler),
        (url_path_join(base, "progress", r"([A-Za-z0-9-]{1,64})"), ProgressHandler),
        (url_path_join(base, "version"), VersionHandler),
    ])
