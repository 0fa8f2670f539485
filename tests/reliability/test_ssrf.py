"""Image URLs cannot make the server reach where it must not (server-side request forgery).

The address rules are tested as a unit over strings, for every documented range: no traffic.
The refusal itself is tested end to end against image servers on this machine's loopback
addresses only, which the default policy refuses.
"""

from __future__ import annotations

import functools
import http.server
import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from langchain_qwen_imagesearch.server import AddressPolicy, Catalog
from langchain_qwen_imagesearch.server.inputs import fetch
from langchain_qwen_imagesearch.server.inputs.addresses import IPAddress, refusal
from langchain_qwen_imagesearch.server.inputs.fetch import MAX_REDIRECTS
from langchain_qwen_imagesearch.server.inputs.load import MAX_INPUT_IMAGES
from langchain_qwen_imagesearch.server.testing import TestingServer
from tests.reliability.wire import post_images

KEY = "ssrf-key"
URL_NOT_VALID = "The provided URL does not appear to be valid"

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.255.254": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "fd12:3456::1": "private",
    "169.254.169.254": "link-local",  # cloud metadata services
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "100.64.0.1": "shared",
    "192.0.2.10": "private",  # documentation range
    "198.18.0.1": "private",  # benchmarking range
    # IPv6 forms that embed an IPv4 address are judged by it.
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::127.0.0.1": "loopback",
    "64:ff9b::7f00:1": "loopback",
    "2002:7f00:1::": "loopback",
    "2002:a00:1::": "private",
    "2001:0:4136:e378:8000:63bf:80ff:fffe": "loopback",  # Teredo of 127.0.0.1
}
ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2001:4860:4860::8888", "2606:4700::1111"]


@pytest.mark.parametrize(("address", "kind"), REFUSED.items(), ids=list(REFUSED))
def test_addresses_that_are_not_public_are_refused(address: str, kind: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize("address", ALLOWED)
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_a_trusted_lan_allows_private_addresses_but_never_this_machine() -> None:
    lan = AddressPolicy(allow_private=True)
    for address in ("10.1.2.3", "192.168.1.1", "fd12:3456::1", "::ffff:10.0.0.1", "100.64.0.1"):
        assert refusal(ipaddress.ip_address(address), lan) is None, address
    for address in ("127.0.0.1", "::1", "169.254.169.254", "0.0.0.0", "224.0.0.1"):
        assert refusal(ipaddress.ip_address(address), lan) is not None, address


class _Images(http.server.SimpleHTTPRequestHandler):
    """Serves the folder's files; ``/redirect/N/PATH`` redirects N times, then to PATH;
    ``/to/HOST:PORT/PATH`` redirects to that other server."""

    fetched: list[str]

    def do_GET(self) -> None:
        type(self).fetched.append(self.path)
        parts = self.path.split("/")
        if len(parts) > 3 and parts[1] == "to":
            self.send_response(302)
            self.send_header("Location", f"http://{parts[2]}/" + "/".join(parts[3:]))
            self.end_headers()
            return
        if len(parts) > 3 and parts[1] == "redirect":
            hops = int(parts[2])
            target = "/" + "/".join(parts[3:])
            self.send_response(302)
            self.send_header("Location", f"/redirect/{hops - 1}{target}" if hops > 1 else target)
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve_images(folder: Path, address: str) -> Iterator[tuple[str, list[str]]]:
    """An image server on ``address`` (a loopback address): its ``host:port`` and the
    paths it was asked for."""
    fetched: list[str] = []
    handler = type("Handler", (_Images,), {"fetched": fetched})
    serving = functools.partial(handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer((address, 0), serving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{address}:{server.server_address[1]}", fetched
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def image_server(catalog_photo_module: Path) -> Iterator[tuple[str, list[str]]]:
    yield from _serve_images(catalog_photo_module.parent, "127.0.0.1")


@pytest.fixture(scope="module")
def catalog_photo_module(demo_catalog: Catalog) -> Path:
    return next(e.path for e in demo_catalog.entries() if e.path and "coffee" in e.path.name)


@pytest.fixture(scope="module")
def guarded(demo_catalog: Catalog) -> Iterator[TestingServer]:
    """A server with the default policy: public addresses only."""
    with TestingServer(demo_catalog, api_key=KEY, address_policy=AddressPolicy()) as server:
        yield server


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_every_spelling_of_this_machine_is_refused_unfetched(
    guarded: TestingServer,
    image_server: tuple[str, list[str]],
    catalog_photo_module: Path,
) -> None:
    host, fetched = image_server
    port = host.rsplit(":", 1)[1]
    name = catalog_photo_module.name
    spellings = [
        f"http://127.0.0.1:{port}/{name}",
        f"http://localhost:{port}/{name}",
        f"http://127.1:{port}/{name}",
        f"http://2130706433:{port}/{name}",
        f"http://0x7f.1:{port}/{name}",
        f"http://0.0.0.0:{port}/{name}",
        f"http://[::ffff:127.0.0.1]:{port}/{name}",
        f"http://user:pass@127.0.0.1:{port}/{name}",
    ]
    if _ipv6_loopback():
        spellings.append(f"http://[::1]:{port}/{name}")

    for url in spellings:
        answer = post_images(guarded, url)
        assert answer.status_code == 400, url
        assert URL_NOT_VALID in answer.json()["error"]["message"], url
    assert fetched == []


UNKNOWN_HOST = "no-such-host.invalid"


@pytest.fixture
def resolved_names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names the server resolves; ``UNKNOWN_HOST`` fails as a name no resolver knows,
    without asking one (tests send no traffic off this machine, DNS queries included)."""
    names: list[str] = []
    resolve = anyio.getaddrinfo

    async def getaddrinfo(host: Any, port: Any, **options: Any) -> Any:
        names.append(host)
        if host == UNKNOWN_HOST:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        ipaddress.ip_address(host)  # any other name would be looked up by DNS: not here
        return await resolve(host, port, **options)

    # What the fetcher resolves with (fetch.CheckedBackend), looked up at each connection.
    monkeypatch.setattr(anyio, "getaddrinfo", getaddrinfo)
    return names


def test_refused_closed_and_unreachable_look_alike(
    guarded: TestingServer, resolved_names: list[str]
) -> None:
    """One answer for all: the error text must not map which ports are open."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        closed_port = closed.getsockname()[1]
    messages = {
        post_images(guarded, url).json()["error"]["message"]
        for url in (
            f"http://127.0.0.1:{closed_port}/a.jpg",
            f"http://{UNKNOWN_HOST}/a.jpg",
            "ftp://127.0.0.1/a.jpg",
            "file:///etc/passwd",
        )
    }
    assert len(messages) == 1 and URL_NOT_VALID in messages.pop()
    assert UNKNOWN_HOST in resolved_names  # the unknown name did fail at resolving


def test_redirects_are_followed_a_few_hops_and_each_hop_is_checked(
    demo_catalog: Catalog, image_server: tuple[str, list[str]], catalog_photo_module: Path
) -> None:
    host, fetched = image_server
    name = catalog_photo_module.name
    # This server may fetch from loopback, so the hops themselves are what is tested.
    with TestingServer(demo_catalog, api_key=KEY) as local:
        followed = post_images(local, f"http://{host}/redirect/{MAX_REDIRECTS}/{name}")
        too_many = post_images(local, f"http://{host}/redirect/{MAX_REDIRECTS + 1}/{name}")
    assert followed.status_code == 200
    assert too_many.status_code == 400
    assert URL_NOT_VALID in too_many.json()["error"]["message"]
    del fetched[:]


@pytest.fixture
def second_loopback(catalog_photo_module: Path) -> Iterator[tuple[str, list[str]]]:
    """An image server on 127.0.0.2, which is loopback too (no traffic leaves the machine)."""
    try:
        yield from _serve_images(catalog_photo_module.parent, "127.0.0.2")
    except OSError as error:  # a loopback with 127.0.0.1 alone (macOS by default)
        pytest.skip(f"cannot listen on 127.0.0.2: {error}")


def test_a_redirect_to_a_refused_address_is_refused_without_connecting_there(
    guarded: TestingServer,
    image_server: tuple[str, list[str]],
    second_loopback: tuple[str, list[str]],
    catalog_photo_module: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An allowed server cannot send the fetch on to a refused one: every hop is judged."""
    host, fetched = image_server
    refused_host, fetched_there = second_loopback
    name = catalog_photo_module.name
    judged: list[str] = []

    def policy(address: IPAddress, _policy: AddressPolicy | None = None) -> str | None:
        """127.0.0.1 stands for a public address here; 127.0.0.2 for one never to reach."""
        judged.append(str(address))
        return None if str(address) == "127.0.0.1" else "loopback"

    monkeypatch.setattr(fetch, "refusal", policy)
    try:
        direct = post_images(guarded, f"http://{refused_host}/{name}")
        allowed = post_images(guarded, f"http://{host}/{name}")
        del fetched[:]

        redirected = post_images(guarded, f"http://{host}/to/{refused_host}/{name}")

        assert direct.status_code == 400 and allowed.status_code == 200  # the policy as set
        assert redirected.status_code == 400
        assert redirected.json()["error"]["message"] == direct.json()["error"]["message"]
        assert URL_NOT_VALID in redirected.json()["error"]["message"]
        assert fetched == [f"/to/{refused_host}/{name}"]  # the first hop was fetched
        assert fetched_there == []  # the second never was
        assert judged[-1] == "127.0.0.2"
    finally:
        del fetched[:]  # the module's image server is shared: leave it as found


def test_a_request_cannot_make_the_server_fetch_without_bound(
    guarded: TestingServer, image_server: tuple[str, list[str]]
) -> None:
    host, fetched = image_server
    urls = [f"http://{host}/{n}.jpg" for n in range(MAX_INPUT_IMAGES + 14)]

    answer = post_images(guarded, *urls)

    assert answer.status_code == 400
    assert f"at most {MAX_INPUT_IMAGES}" in answer.json()["error"]["message"]
    assert fetched == []
