"""SSRF guard: decide whether an address may be fetched, and resolve hosts to such addresses."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TypeAlias

IPAddress: TypeAlias = IPv4Address | IPv6Address

_V4_BLOCKED = [
    IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", includes unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT, includes 100.100.100.200 (Alibaba metadata)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, includes 169.254.169.254 (cloud metadata)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",  # reserved, includes broadcast
    )
]

_V6_BLOCKED = [
    IPv6Network(net)
    for net in (
        "::/96",  # unspecified, loopback and deprecated IPv4-compatible
        "::ffff:0:0:0/96",  # IPv4-translated (SIIT)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",
        "3fff::/20",  # documentation
        "fc00::/7",  # ULA, includes fd00:ec2::254 (AWS metadata)
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
]

# Every routable IPv6 unicast address is in 2000::/3; anything else is special or unassigned.
_V6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_NAT64 = IPv6Network("64:ff9b::/96")


class BlockedAddress(Exception):
    """The host has no usable address, or one of its addresses is not public."""


def _embedded_v4(ip: IPv6Address) -> IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public_address(ip: IPAddress) -> bool:
    if isinstance(ip, IPv6Address):
        # These forms reach the embedded IPv4 address, so that address decides.
        embedded = _embedded_v4(ip)
        if embedded is not None:
            return is_public_address(embedded)
        if ip not in _V6_GLOBAL_UNICAST or any(ip in net for net in _V6_BLOCKED):
            return False
    elif any(ip in net for net in _V4_BLOCKED):
        return False
    # The stdlib lists differ across Python versions; they only ever add refusals here.
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local
    )


# Only digits, hex digits, "x" and dots: a candidate for legacy IPv4 spellings.
_LEGACY_V4 = re.compile(r"[0-9a-fA-FxX.]+")


def parse_ip_literal(host: str) -> IPAddress | None:
    """Parse `host` as an IP literal, accepting the legacy IPv4 forms inet_aton accepts
    (`2130706433`, `0177.0.0.1`, `0x7f.1`, `127.1`), because resolvers and URL parsers
    elsewhere honour them too."""
    host = host.removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _LEGACY_V4.fullmatch(host):
        try:
            return IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


async def resolve_public(host: str, port: int, allow_private: bool) -> list[IPAddress]:
    """All addresses of `host`; raises BlockedAddress if there are none or any is not public."""
    literal = parse_ip_literal(host)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise BlockedAddress(f"host {host} could not be resolved") from exc
        addresses = []
        for family, _, _, _, sockaddr in infos:
            if family in (socket.AF_INET, socket.AF_INET6):
                ip = ipaddress.ip_address(str(sockaddr[0]))
                if ip not in addresses:
                    addresses.append(ip)
    if not addresses:
        raise BlockedAddress(f"host {host} has no addresses")
    if not allow_private:
        for ip in addresses:
            if not is_public_address(ip):
                where = "" if literal is not None else f" ({host})"
                raise BlockedAddress(f"address {ip}{where} is not public")
    return addresses
