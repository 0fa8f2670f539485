"""Bearer-key authentication of the server's routes."""

from __future__ import annotations

import hmac

from starlette.requests import Request


def is_authorized(request: Request, api_key: str | None) -> bool:
    """Whether ``request`` carries ``Authorization: Bearer <api_key>`` (any, without a key)."""
    if api_key is None:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), api_key)
