"""A test Authorizer for the ``jupyter server`` of tests/labext (conftest.jupyter_server).

It allows what the request's ``X-Nb2pkg-Test-Allow`` header lists, as ``resource:action``
words ("contents:read kernels:execute"), and everything when the header is absent. So one server
plays a read-only user, a user who may write but not run code, and a full user.
"""

from __future__ import annotations

from jupyter_server.auth.authorizer import Authorizer

HEADER = "X-Nb2pkg-Test-Allow"


class HeaderAuthorizer(Authorizer):
    def is_authorized(self, handler, user, action, resource) -> bool:
        allowed = handler.request.headers.get(HEADER)
        return allowed is None or f"{resource}:{action}" in allowed.split()
