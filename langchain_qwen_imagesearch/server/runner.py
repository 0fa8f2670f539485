"""Run the server: in a background thread (tests, demo, ``--local``) or in the foreground."""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import uvicorn
from typing_extensions import Self

from langchain_qwen_imagesearch.server.answers import AnswerWriter
from langchain_qwen_imagesearch.server.demo import open_demo_catalog
from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.engine.vector_index import one_blas_thread_per_search
from langchain_qwen_imagesearch.server.http.app import API_PREFIXES, create_app
from langchain_qwen_imagesearch.server.http.signed_urls import DEFAULT_TTL_SECONDS
from langchain_qwen_imagesearch.server.inputs.addresses import AddressPolicy
from langchain_qwen_imagesearch.server.logs import log_without_blocking

if TYPE_CHECKING:
    from starlette.types import ASGIApp

STARTUP_TIMEOUT_SECONDS = 15.0

Middleware = Callable[["ASGIApp"], "ASGIApp"]
"""Wraps the app, e.g. a test double (``langchain_qwen_imagesearch.server.testing``)."""


class ServerConfigError(ValueError):
    """The server was asked to run in a way that is unsafe or impossible."""


def check_bind_address(host: str, api_key: str | None) -> None:
    """Refuse a blank key, and to expose a keyless server beyond this machine."""
    if api_key is not None and not api_key.strip():
        raise ServerConfigError(
            "The API key is blank: give a real key (--api-key), or none on a loopback address."
        )
    if api_key:
        return
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ServerConfigError(
            f"Refusing to bind {host} without an API key: anyone who can reach it could use "
            "it. Pass --api-key (or api_key=...), or bind 127.0.0.1."
        )


class BackgroundServer:
    """Any ASGI app served by uvicorn on a (free) port in a daemon thread."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0):
        self._app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the server is not running; use it as a context manager")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        sock = bound_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self._app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="asgi-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the background ASGI server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class EmbeddedServer(BackgroundServer):
    """The image search server on a loopback port in a background thread.

    >>> with EmbeddedServer() as server:          # doctest: +SKIP
    ...     client = ImageSearchClient(base_url=server.base_url, api_key="unused")
    """

    def __init__(
        self,
        catalog: Catalog | str | Path | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        writer: AnswerWriter | None = None,
        middleware: Sequence[Middleware] = (),
        address_policy: AddressPolicy | None = None,
    ):
        check_bind_address(host, api_key)
        if catalog is None:
            catalog = open_demo_catalog()
        elif not isinstance(catalog, Catalog):
            catalog = Catalog.open(catalog)
        self.catalog = catalog
        self.api_key = api_key
        app = create_app(catalog, api_key=api_key, writer=writer, address_policy=address_policy)
        super().__init__(_wrapped(app, middleware), host=host, port=port)

    @property
    def base_url(self) -> str:
        """The OpenAI SDK ``base_url`` (``.../compatible-mode/v1``), as on DashScope."""
        return self.root_url + API_PREFIXES[0]


def serve(
    catalog: Catalog,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    sock: socket.socket | None = None,
    api_key: str | None = None,
    writer: AnswerWriter | None = None,
    middleware: Sequence[Middleware] = (),
    address_policy: AddressPolicy | None = None,
    image_url_ttl: float = DEFAULT_TTL_SECONDS,
    access_log: bool = False,
) -> None:
    """Serve in the foreground until interrupted (the ``serve`` command), on ``host:port``
    or an already bound ``sock``. Logs go to stderr without ever blocking the server;
    requests are logged only with ``access_log``. The process's BLAS stays on one thread
    from then on (``one_blas_thread_per_search``), as a server's should."""
    check_bind_address(sock.getsockname()[0] if sock else host, api_key)
    sock = sock or bound_socket(host, port)
    one_blas_thread_per_search()
    app = create_app(
        catalog,
        api_key=api_key,
        writer=writer,
        address_policy=address_policy,
        image_url_ttl=image_url_ttl,
    )
    config = uvicorn.Config(
        _wrapped(app, middleware), log_config=None, access_log=access_log, lifespan="on"
    )
    listener = log_without_blocking(access_log=access_log)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        listener.stop()


def bound_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port``; a port in use or not allowed is a clear error."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on such sockets, and without
    # it every request on a kept-alive connection stalls ~40 ms (Nagle + delayed ACK).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise ServerConfigError(
                f"Port {port} on {host} is in use: stop what listens there, or pick another "
                "port with --port."
            ) from None
        raise ServerConfigError(f"Cannot listen on {host}:{port}: {error.strerror}.") from None
    return sock


def _wrapped(app: ASGIApp, middleware: Sequence[Middleware]) -> ASGIApp:
    """``app`` inside each of ``middleware``, the first outermost."""
    for wrap in reversed(middleware):
        app = wrap(app)
    return app
