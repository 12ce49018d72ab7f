"""Optional malware scan of uploads by clamd's INSTREAM command (MEDIA_CLAMD_ADDRESS).

Infected bytes make a `quarantined` media (its reads answer 451); a scanner that cannot be
reached either lets the upload through unscanned (MEDIA_CLAMD_FAIL_OPEN=true, logged) or
refuses it with 503 `scanner.unavailable` (the default).
"""

import asyncio
import struct
from dataclasses import dataclass
from pathlib import Path

import structlog

from mediakeep.config import Settings
from mediakeep.errors import MediaError

log = structlog.get_logger(__name__)

CHUNK = 64 * 1024
TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class ScanResult:
    infected: bool
    signature: str | None = None
    scanned: bool = True


class ScannerUnavailable(Exception):
    pass


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ScannerUnavailable(f"MEDIA_CLAMD_ADDRESS must be host:port, not {value!r}")
    return host.strip("[]"), int(port)


async def instream(address: str, path: Path) -> ScanResult:
    """Send the file to clamd and read its verdict."""
    host, port = _address(address)
    try:
        async with asyncio.timeout(TIMEOUT_SECONDS):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"zINSTREAM\0")
                with path.open("rb") as source:
                    while chunk := await asyncio.to_thread(source.read, CHUNK):
                        writer.write(struct.pack(">I", len(chunk)) + chunk)
                        await writer.drain()
                writer.write(struct.pack(">I", 0))
                await writer.drain()
                answer = (await reader.readuntil(b"\0")).rstrip(b"\0").decode(errors="replace")
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        raise ScannerUnavailable(f"clamd at {address} did not answer: {exc}") from exc
    verdict = answer.partition(": ")[2] or answer
    if verdict.endswith(" FOUND"):
        return ScanResult(infected=True, signature=verdict.removesuffix(" FOUND"))
    if verdict == "OK":
        return ScanResult(infected=False)
    raise ScannerUnavailable(f"clamd answered {answer!r}")


async def scan_upload(settings: Settings, path: Path) -> ScanResult:
    """The verdict on one spooled upload, per the settings (no address: not scanned)."""
    if not settings.clamd_address:
        return ScanResult(infected=False, scanned=False)
    try:
        result = await instream(settings.clamd_address, path)
    except ScannerUnavailable as exc:
        if settings.clamd_fail_open:
            log.warning("malware scan skipped: scanner unavailable (fail-open)", error=str(exc))
            return ScanResult(infected=False, scanned=False)
        log.error("upload refused: scanner unavailable (fail-closed)", error=str(exc))
        raise MediaError(
            "scanner.unavailable", 503, "The malware scanner is unavailable; try again later"
        ) from exc
    if result.infected:
        log.warning("upload quarantined", signature=result.signature)
    return result


def quarantined_error() -> MediaError:
    return MediaError(
        "media.quarantined",
        451,
        "This media was quarantined by the malware scan; its content is not served",
    )
