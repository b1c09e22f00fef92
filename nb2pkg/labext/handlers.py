"""HTTP handlers behind the toolbar button: ``/nb2pkg/convert``, ``/nb2pkg/progress/<job>``,
``/nb2pkg/version``. The JSON contract and status codes are documented in docs/labext.md.
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
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ..errors import Nb2pkgError, OutputExistsError
from .request import ConvertRequest, RequestError, parse_convert_request

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


def run_conversion(request: ConvertRequest,
                   progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Convert one notebook as requested; the report as JSON-able data plus the lab's paths."""
    from ..api import ConvertOptions, convert  # heavy (libcst, black): only when first used

    options = ConvertOptions(name=request.name, **request.options)
    summary = convert([request.notebook], request.output, options, progress=progress).to_dict()
    readme = request.output / "README.md"
    summary["lab"] = {
        "output": request.output_path,
        "readme": f"{request.output_path}/README.md" if readme.is_file() else None,
    }
    return summary


class _Handler(APIHandler):
    def reply(self, status: int, data: dict[str, Any]) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))


class ConvertHandler(_Handler):
    @tornado.web.authenticated
    async def post(self) -> None:
        root = os.path.realpath(self.settings["server_root_dir"])
        try:
            request = parse_convert_request(self.request.body, root)
        except RequestError as error:
            return self.reply(400, {"message": str(error)})
        try:
            with self.settings[_BOARD_SETTING].track(request.job) as report:
                summary = await asyncio.to_thread(
                    run_conversion, request, lambda message: report(_relative(message, root)))
        except OutputExistsError as error:
            return self.reply(409, {"message": _relative(str(error), root)})
        except Nb2pkgError as error:
            return self.reply(422, {"message": _relative(str(error), root)})
        except Exception:
            self.log.exception("nb2pkg: converting %s failed", request.notebook)
            return self.reply(500, {"message": _UNEXPECTED})
        self.reply(200, summary)


class ProgressHandler(_Handler):
    @tornado.web.authenticated
    def get(self, job: str) -> None:
        self.reply(200, {"messages": self.settings[_BOARD_SETTING].messages(job)})


class VersionHandler(_Handler):
    @tornado.web.authenticated
    def get(self) -> None:
        try:
            installed = version("nb2pkg")
        except PackageNotFoundError:  # running from a source checkout
            installed = None
        self.reply(200, {"version": installed})


def _relative(message: str, root: str) -> str:
    """Show server paths relative to the Jupyter root, as the user sees them in JupyterLab."""
    return message.replace(root + os.sep, "")


def setup_handlers(web_app: tornado.web.Application) -> None:
    if _BOARD_SETTING in web_app.settings:  # enabled twice, as "nb2pkg" and "nb2pkg.labext"
        return
    web_app.settings[_BOARD_SETTING] = ProgressBoard()
    base = url_path_join(web_app.settings["base_url"], "nb2pkg")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "convert"), ConvertHandler),
        (url_path_join(base, "progress", r"([A-Za-z0-9-]{1,64})"), ProgressHandler),
        (url_path_join(base, "version"), VersionHandler),
    ])
