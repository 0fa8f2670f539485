"""Which network addresses the server may fetch images from.

By default only public unicast addresses: an image URL must not make the server reach its
own machine, the private network around it, or cloud metadata services (server-side request
forgery). Addresses are judged after name resolution, never from the URL's text (``127.1``,
``0x7f.1`` and ``2130706433`` all resolve to 127.0.0.1), and IPv6 forms that embed an IPv4
address are judged by that address (``ipaddress.is_global`` alone passes some of them).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: neither private nor global
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class AddressPolicy:
    """``allow_private``: also private ranges (a trusted LAN, ``serve --allow-private-urls``).
    ``allow_loopback``: also this machine (only for tests of the fetching itself)."""

    allow_private: bool = False
    allow_loopback: bool = False


def embedded_ipv4(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form stands for (mapped, compatible, 6to4, NAT64, Teredo),
    else ``address`` itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def refusal(address: IPAddress, policy: AddressPolicy = AddressPolicy()) -> str | None:
    """Why ``address`` may not be fetched from (a short kind, for logs), or ``None``."""
    judged = embedded_ipv4(address)
    if judged.is_loopback:
        return None if policy.allow_loopback else "loopback"
    if judged.is_unspecified:
        return "unspecified"
    if judged.is_link_local:
        return "link-local"
    if judged.is_multicast:
        return "multicast"
    if isinstance(judged, ipaddress.IPv4Address) and judged in _SHARED:
        return None if policy.allow_private else "shared"
    if judged.is_reserved:
        return "reserved"
    if judged.is_private:
        return None if policy.allow_private else "private"
    if not judged.is_global:
        return "not global"
    return None
