"""Small HTTP helpers shared by the routes and the storage backends."""

import mimetypes
import unicodedata
from urllib.parse import quote

_DISPOSITIONS = frozenset({"inline", "attachment"})
# RFC 5987 attr-char minus ALPHA / DIGIT (which quote() never escapes).
_ATTR_SAFE = "!#$&+-.^_`|~"
_MAX_NAME_CHARS = 200
# Python's built-in table only (the system's /etc/mime.types differs between machines), plus
# the types mediakeep stores that Python 3.11's table lacks.
_TYPES = mimetypes.MimeTypes()
_MORE_EXTENSIONS = {
    "image/webp": [".webp"],
    "image/heif": [".heif", ".heic"],
    "image/bmp": [".bmp"],
    "audio/wav": [".wav"],
    "audio/flac": [".flac"],
    "audio/ogg": [".ogg", ".oga", ".opus"],
    "audio/opus": [".opus"],
    "audio/mp4": [".m4a", ".mp4"],
    "video/x-matroska": [".mkv"],
}


def sanitize_filename(filename: str) -> str:
    """The last path component of `filename` without control/format chars, `"` or `\\`.

    Returns "" when nothing usable is left (e.g. ".." or only control characters).
    """
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    # Cc = control (CR, LF, NUL, ...); Cf = format (e.g. U+202E, which makes "gpj.exe" look
    # like "exe.jpg"); Zl/Zp = line and paragraph separators.
    name = "".join(
        char
        for char in name
        if char != '"' and unicodedata.category(char) not in {"Cc", "Cf", "Zl", "Zp"}
    )
    name = " ".join(name.split())  # any run of whitespace becomes one space
    name = name.strip(" .")
    if len(name) > _MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: _MAX_NAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:_MAX_NAME_CHARS].rstrip(" .")
    return name


def _ascii_fallback(name: str) -> str:
    decomposed = unicodedata.normalize("NFKD", name)
    # '%' is dropped too: some user agents percent-decode the plain `filename` parameter.
    kept = "".join(char for char in decomposed if " " <= char <= "~" and char not in '"\\%')
    kept = " ".join(kept.split())
    stem, dot, ext = kept.rpartition(".")
    if dot and not stem.strip(" ."):  # only the extension survived, e.g. "日本.png"
        kept = f"download.{ext}"
    return kept.strip(" .") or "download"


def download_name(filename: str, mime: str | None) -> str:
    """`filename`, with the extension of the type it really has appended when its own
    extension names another: a PNG uploaded as `page.html` downloads as `page.html.png`, so a
    saved copy opens as the image it is, never as a page."""
    if not mime or not filename:
        return filename
    expected = _MORE_EXTENSIONS.get(mime) or _TYPES.guess_all_extensions(mime)
    if not expected:
        return filename
    dot = filename.rfind(".")
    if dot > 0 and filename[dot:].lower() in expected:
        return filename
    return filename + expected[0]


def content_disposition(filename: str | None, disposition: str, mime: str | None = None) -> str:
    """A `Content-Disposition` value (RFC 6266) with a sanitised filename, whose extension
    matches `mime` when it is given (see `download_name`).

    Gives an ASCII `filename="..."` fallback and the exact name as
    `filename*=UTF-8''<percent-encoded>` for clients that understand RFC 5987.
    """
    if disposition not in _DISPOSITIONS:
        raise ValueError(f"disposition must be inline or attachment, not {disposition!r}")
    name = download_name(sanitize_filename(filename), mime) if filename else ""
    if not name:
        return disposition
    fallback = _ascii_fallback(name)
    encoded = quote(name, safe=_ATTR_SAFE, encoding="utf-8")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
