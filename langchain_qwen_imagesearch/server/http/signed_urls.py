"""Catalog image URLs that work without the API key and cannot be guessed.

Hits link to this server's copy of a catalog image. A keyed server would answer such a link
with 401, breaking thumbnails and links in the HTML gallery, so each link carries an expiry
and an HMAC of the image id and that expiry, keyed by a secret derived from the API key:
every server sharing a key (and a catalog) accepts the links of the others.
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TTL_SECONDS = 24 * 3600
_PURPOSE = b"langchain-qwen-imagesearch catalog image URLs"


class ImageUrlSigner:
    """Signs and checks the query of catalog image links (``?expires=...&signature=...``)."""

    def __init__(self, api_key: str, ttl_seconds: float = DEFAULT_TTL_SECONDS) -> None:
        self._secret = hmac.new(api_key.encode("utf-8"), _PURPOSE, hashlib.sha256).digest()
        self._ttl = ttl_seconds

    def query(self, entry_id: str, now: float | None = None) -> str:
        """The link's query. Expiries are rounded up to whole periods of the TTL, so that one
        image has one link for a whole period (searches repeat their hits exactly) and every
        link lives between one and two TTLs."""
        current = time.time() if now is None else now
        expires = int((current // self._ttl + 2) * self._ttl)
        return f"expires={expires}&signature={self._signature(entry_id, expires)}"

    def is_valid(
        self, entry_id: str, expires: str | None, signature: str | None, now: float | None = None
    ) -> bool:
        if not expires or not signature or not expires.isdigit():
            return False
        if int(expires) < (time.time() if now is None else now):
            return False
        expected = self._signature(entry_id, int(expires)).encode()
        return hmac.compare_digest(expected, signature.encode("latin-1", errors="replace"))

    def _signature(self, entry_id: str, expires: int) -> str:
        message = f"{entry_id}:{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()
