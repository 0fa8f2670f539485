"""Bearer-key authentication of the server's routes."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def is_authorized(request: Request, api_key: str | None) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <api_key>`` (any, without a key).

    Header values arrive decoded as latin-1, whatever bytes the client sent, so both sides
    are compared as bytes: a malformed or non-ASCII header is simply not the key.
    """
    if api_key is None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    sent = token.strip().encode("latin-1", errors="replace")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent, api_key.encode("utf-8"))
