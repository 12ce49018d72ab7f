"""Content type from the bytes (libmagic); extensions and declared types are never trusted."""

import magic

SNIFF_BYTES = 64 * 1024

# libmagic spells some types differently from what clients expect; answer one canonical name.
_CANONICAL = {
    "audio/x-wav": "audio/wav",
    "audio/vnd.wave": "audio/wav",
    "audio/x-flac": "audio/flac",
    "audio/x-hx-aac-adts": "audio/aac",
    "audio/x-m4a": "audio/mp4",
    "audio/x-mp4a-latm": "audio/mp4",
    "audio/mp3": "audio/mpeg",
    "image/x-ms-bmp": "image/bmp",
    "image/heif-sequence": "image/heif",
    "image/heic-sequence": "image/heic",
    "video/x-m4v": "video/mp4",
    "video/3gpp": "video/mp4",
    "application/ogg": "audio/ogg",
}


def sniff_mime(head: bytes) -> str:
    """The MIME type libmagic sees in the first bytes of a file."""
    detected: str = magic.from_buffer(head[:SNIFF_BYTES], mime=True)
    return _CANONICAL.get(detected, detected)


def kind_of(mime: str) -> str:
    major = mime.split("/", 1)[0]
    return major if major in ("image", "video", "audio") else "document"


EXTENSIONS = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/tiff": "tiff",
    "image/bmp": "bmp",
    "image/svg+xml": "svg",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/mp4": "m4a",
    "audio/ogg": "ogg",
    "audio/opus": "opus",
    "audio/wav": "wav",
    "audio/flac": "flac",
}
