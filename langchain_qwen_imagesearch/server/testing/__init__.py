"""Test doubles for the embedded server, as ASGI middleware around the plain app.

For testing clients against the faults and quirks of the upstream: scripted failures
(``Fault``), the stream sloppiness seen upstream, slow searches, and recording of what a
client sent. None of this runs in a plain ``serve``; ``TestingServer`` installs it.
"""

from __future__ import annotations

from pathlib import Path

from langchain_qwen_imagesearch.server.answers import AnswerWriter
from langchain_qwen_imagesearch.server.engine.catalog import Catalog
from langchain_qwen_imagesearch.server.inputs.addresses import AddressPolicy
from langchain_qwen_imagesearch.server.runner import EmbeddedServer, Middleware
from langchain_qwen_imagesearch.server.testing.faults import Fault, FaultInjector
from langchain_qwen_imagesearch.server.testing.recording import RequestRecorder
from langchain_qwen_imagesearch.server.testing.rewriting import RequestBody
from langchain_qwen_imagesearch.server.testing.sloppy_stream import sloppy_streams
from langchain_qwen_imagesearch.server.testing.slow_search import slow_searches

LOOPBACK_ALLOWED = AddressPolicy(allow_loopback=True)

__all__ = [
    "Fault",
    "FaultInjector",
    "RequestRecorder",
    "TestingServer",
    "sloppy_streams",
    "slow_searches",
]


class TestingServer(EmbeddedServer):
    """The embedded server on a loopback port, recording requests and taking scripted faults.

    ``search_delay`` holds each search to at least that many seconds, like the slow
    upstream; ``sloppy_stream`` sends streams the way the upstream has been seen to. Unlike a
    plain server it fetches image URLs from loopback addresses too (test fixtures serve
    images there); pass ``address_policy=AddressPolicy()`` to test the refusal itself.
    """

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        catalog: Catalog | str | Path | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        writer: AnswerWriter | None = None,
        search_delay: float = 0.0,
        sloppy_stream: bool = False,
        address_policy: AddressPolicy = LOOPBACK_ALLOWED,
    ):
        self.recorder = RequestRecorder()
        self.faults = FaultInjector()
        middleware: list[Middleware] = [self.recorder.wrap, self.faults.wrap]
        if search_delay > 0:
            middleware.append(lambda app: slow_searches(app, search_delay))
        if sloppy_stream:
            middleware.append(sloppy_streams)
        super().__init__(
            catalog,
            api_key=api_key,
            host=host,
            port=port,
            writer=writer,
            middleware=middleware,
            address_policy=address_policy,
        )

    @property
    def requests(self) -> list[RequestBody]:
        """The latest request bodies received, oldest first (see ``RequestRecorder``)."""
        return self.recorder.requests

    @property
    def request_count(self) -> int:
        return self.recorder.count

    def inject(self, fault: Fault) -> None:
        """Make a coming request fail as ``fault`` describes (first in, first out)."""
        self.faults.push(fault)

    def catalog_photo(self, name: str | None = None) -> Path:
        """A catalog photo on disk (the first whose file name contains ``name``)."""
        paths = sorted(
            entry.path
            for entry in self.catalog.entries()
            if entry.path is not None and (name is None or name in entry.path.name)
        )
        if not paths:
            raise LookupError(f"no catalog photo matches {name!r}")
        return paths[0]
