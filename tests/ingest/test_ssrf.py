import ipaddress
import socket
from typing import Any

import pytest

from mediakeep.ingest.ssrf import BlockedAddress, is_public_address, resolve_public


@pytest.mark.parametrize(
    "address",
    [
        "10.0.0.1",
        "169.254.169.254",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "100.100.100.200",
        "127.0.0.1",
        "0.0.0.0",  # noqa: S104
        "255.255.255.255",
        "224.0.0.1",
        "240.0.0.1",
        "192.0.0.170",
        "192.0.2.1",
        "198.18.0.1",
        "198.51.100.7",
        "203.0.113.9",
        "::",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",  # Teredo
        "::7f00:1",  # IPv4-compatible
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::808:808",
        "2002:7f00:1::",
        "2002:a00:1::1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",
        "0177.0.0.1",
        "0x7f.1",
        "0x7f000001",
        "127.1",
        "[::1]",
        "0.0.0.0",  # noqa: S104
    ],
)
async def test_loopback_literals_in_any_spelling_are_refused(host: str) -> None:
    with pytest.raises(BlockedAddress, match="is not public"):
        await resolve_public(host, 80, allow_private=False)


async def test_legacy_ipv4_spelling_resolves_to_the_address_it_means() -> None:
    assert await resolve_public("0x7f.1", 80, allow_private=True) == [
        ipaddress.ip_address("127.0.0.1")
    ]


async def test_localhost_name_is_refused() -> None:
    with pytest.raises(BlockedAddress, match=r"\(localhost\) is not public"):
        await resolve_public("localhost", 80, allow_private=False)


async def test_allow_private_lifts_the_guard() -> None:
    addresses = await resolve_public("localhost", 80, allow_private=True)
    assert addresses
    assert all(ip.is_loopback for ip in addresses)


def _fake_resolver(
    monkeypatch: pytest.MonkeyPatch, table: dict[str, list[str] | None]
) -> list[str]:
    """Answer lookups of names in `table` without DNS (None: the name does not exist);
    returns the list of names looked up."""
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in table:
            return real(host, port, *args, **kwargs)
        looked_up.append(host)
        addresses = table[host]
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        results: list[tuple[Any, ...]] = []
        for address in addresses:
            ip = ipaddress.ip_address(address)
            if ip.version == 4:
                results.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
            else:
                results.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
        return results

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


async def test_name_with_one_private_address_among_public_ones_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_resolver(monkeypatch, {"mixed.test": ["8.8.8.8", "2606:4700::1111", "10.0.0.1"]})
    with pytest.raises(BlockedAddress, match=r"address 10\.0\.0\.1 \(mixed\.test\) is not public"):
        await resolve_public("mixed.test", 80, allow_private=False)


async def test_name_resolving_to_a_private_ipv6_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_resolver(monkeypatch, {"v6.test": ["8.8.8.8", "64:ff9b::a9fe:a9fe"]})
    with pytest.raises(BlockedAddress, match="is not public"):
        await resolve_public("v6.test", 80, allow_private=False)


async def test_all_public_addresses_of_a_name_are_returned_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_resolver(monkeypatch, {"public.test": ["8.8.8.8", "8.8.8.8", "2606:4700::1111"]})
    assert await resolve_public("public.test", 443, allow_private=False) == [
        ipaddress.ip_address("8.8.8.8"),
        ipaddress.ip_address("2606:4700::1111"),
    ]


async def test_name_without_addresses_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, {"empty.test": []})
    with pytest.raises(BlockedAddress, match="has no addresses"):
        await resolve_public("empty.test", 80, allow_private=True)


async def test_unresolvable_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_resolver(monkeypatch, {"gone.test": None})
    with pytest.raises(BlockedAddress, match="could not be resolved"):
        await resolve_public("gone.test", 80, allow_private=True)
