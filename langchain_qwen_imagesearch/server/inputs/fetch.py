"""Fetching an image URL without letting it reach where it must not (server-side request
forgery), within a byte cap and a time limit.

httpcore (httpx's core) is used directly because it takes a network backend publicly: the
backend resolves each host, judges every address it resolves to (``addresses.refusal``), and
connects to the very address it judged, so a name cannot resolve to a public address for the
check and to a private one for the connection (DNS rebinding). TLS still verifies the
certificate against the host name. Redirects are followed by hand, a few hops, each hop
through the same backend. No proxy from the environment applies. Whatever goes wrong
(refused, closed, unreachable, not an image server) is answered with one message, so that
the answers cannot map the network.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

import anyio
import httpcore

from langchain_qwen_imagesearch.protocol import MAX_IMAGE_BYTES
from langchain_qwen_imagesearch.server.error_answers import ErrorAnswer, invalid_parameter
from langchain_qwen_imagesearch.server.inputs.addresses import AddressPolicy, refusal

FETCH_SECONDS = 15.0
"""Time for one URL, redirects included."""
MAX_REDIRECTS = 3
# The upstream's wording for a URL it cannot use (docs/protocol.md#errors).
URL_NOT_VALID = "The provided URL does not appear to be valid. Ensure it is correctly formatted."
URL_TOO_LARGE = f"Exceeded limit on max bytes per image url item : {MAX_IMAGE_BYTES}"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = b"langchain-qwen-imagesearch embedded server"


class RefusedAddress(OSError):
    """The host resolves to an address the policy refuses."""


class CheckedBackend(httpcore.AsyncNetworkBackend):
    """Connects only to addresses the policy allows, and to the address it checked."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the interface of httpcore
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        resolved = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [ipaddress.ip_address(str(entry[4][0]).split("%")[0]) for entry in resolved]
        refused = [reason for address in addresses if (reason := refusal(address, self._policy))]
        if not addresses or refused:
            # Every address is judged: a name resolving to a mix is refused as a whole.
            raise RefusedAddress(f"{host} resolves to a refused address ({refused[0]})")
        return await self._inner.connect_tcp(
            str(addresses[0]), port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class ImageFetcher:
    """Downloads image URLs for the responder; one connection pool per server."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl.create_default_context(),
            network_backend=CheckedBackend(policy),
            max_connections=32,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def fetch(self, url: str) -> bytes:
        """The body of ``url`` (http or https, redirects followed), or an ``ErrorAnswer``."""
        try:
            with anyio.fail_after(FETCH_SECONDS):
                return await self._follow(url)
        except ErrorAnswer:
            raise
        except (httpcore.NetworkError, httpcore.TimeoutException, OSError, TimeoutError):
            raise invalid_parameter(URL_NOT_VALID) from None
        except (httpcore.ProtocolError, httpcore.UnsupportedProtocol, ValueError):
            raise invalid_parameter(URL_NOT_VALID) from None

    async def _follow(self, url: str) -> bytes:
        for _ in range(MAX_REDIRECTS + 1):
            _check_url(url)
            async with self._pool.stream(
                "GET", url, headers=[(b"User-Agent", _USER_AGENT), (b"Accept", b"image/*")]
            ) as response:
                if response.status in _REDIRECTS:
                    location = _header(response, b"location")
                    if location is None:
                        raise invalid_parameter(URL_NOT_VALID)
                    url = urljoin(url, location)
                    continue
                if response.status != 200:
                    raise invalid_parameter(URL_NOT_VALID)
                return await _capped_body(response)
        raise invalid_parameter(URL_NOT_VALID)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise invalid_parameter(URL_NOT_VALID)
    if parts.username is not None or parts.password is not None:
        raise invalid_parameter(URL_NOT_VALID)


def _header(response: httpcore.Response, name: bytes) -> str | None:
    for key, value in response.headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


async def _capped_body(response: httpcore.Response) -> bytes:
    declared = _header(response, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_IMAGE_BYTES:
        raise invalid_parameter(URL_TOO_LARGE)
    chunks: list[bytes] = []
    received = 0
    async for chunk in response.aiter_stream():
        received += len(chunk)
        if received > MAX_IMAGE_BYTES:
            raise invalid_parameter(URL_TOO_LARGE)
        chunks.append(chunk)
    return b"".join(chunks)
