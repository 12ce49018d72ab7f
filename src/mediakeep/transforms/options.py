"""The options segment of a signed transform URL: `w_400,h_300,fit_cover,g_smart,q_80,f_webp`.

One spelling per meaning: tokens in a fixed order, integers without leading zeros, each name
once. The service only signs canonical segments, and anything else is refused, so the same
output never hides behind two URLs (and two CDN cache entries).
"""

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Literal, cast, get_args

from mediakeep.processing.encoding import default_quality
from mediakeep.processing.transform import (
    Fit,
    Gravity,
    OutputFormat,
    TransformSpec,
)

FormatOption = Literal["jpeg", "png", "webp", "avif", "auto"]

MAX_SIDE = 8192
MAX_BLUR = 100.0
NO_OPTIONS = "_"  # the segment of a URL that only re-encodes (a path segment cannot be empty)
# Bumped when rendering changes in a way that must not be served from old cached outputs.
RENDER_REVISION = "t1"

FITS: tuple[str, ...] = get_args(Fit)
GRAVITIES: tuple[str, ...] = get_args(Gravity)
FORMATS: tuple[str, ...] = get_args(FormatOption)
ORDER = ("w", "h", "fit", "g", "b", "q", "f", "e")
FIELD_OF = {
    "w": "width",
    "h": "height",
    "fit": "fit",
    "g": "gravity",
    "b": "blur",
    "q": "quality",
    "f": "format",
    "e": "expires",
}
_INTEGER = re.compile(r"^[1-9][0-9]{0,9}$")
_DECIMAL = re.compile(r"^(?:0|[1-9][0-9]{0,2})(?:\.[0-9])?$")

# The output format when the URL names none, from the original's type: web formats stay
# themselves, GIF becomes PNG (one frame), anything else (TIFF, BMP, HEIC) becomes JPEG.
DEFAULT_FORMAT: dict[str, OutputFormat] = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/webp": "webp",
    "image/avif": "avif",
    "image/gif": "png",
}


class OptionError(ValueError):
    """An option that is unknown, repeated, out of range or meaningless with the others."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class TransformOptions:
    width: int | None = None
    height: int | None = None
    fit: Fit | None = None
    gravity: Gravity | None = None
    blur: float | None = None
    quality: int | None = None
    format: FormatOption | None = None
    expires: int | None = None

    def checked(self) -> "TransformOptions":
        """These options if they make sense together, else OptionError."""
        for name, value in (("width", self.width), ("height", self.height)):
            if value is not None and not 1 <= value <= MAX_SIDE:
                raise OptionError(f"{name} must be between 1 and {MAX_SIDE}", name)
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise OptionError("quality must be between 1 and 100", "quality")
        if self.blur is not None:
            if round(self.blur, 1) != self.blur or not 0 < self.blur <= MAX_BLUR:
                raise OptionError(
                    f"blur must be above 0 and at most {MAX_BLUR:g}, in steps of 0.1", "blur"
                )
        both = self.width is not None and self.height is not None
        if self.fit is not None and not both:
            raise OptionError("fit needs both width and height", "fit")
        if self.gravity is not None and not (both and self.fit in (None, "cover")):
            raise OptionError("gravity applies only to fit cover with width and height", "gravity")
        if self.expires is not None and self.expires < 1:
            raise OptionError("expires must be a positive epoch second", "expires")
        return self

    def segment(self) -> str:
        """The canonical options segment of the URL."""
        values = {
            "w": self.width,
            "h": self.height,
            "fit": self.fit,
            "g": self.gravity,
            "b": f"{self.blur:g}" if self.blur is not None else None,
            "q": self.quality,
            "f": self.format,
            "e": self.expires,
        }
        tokens = [f"{name}_{values[name]}" for name in ORDER if values[name] is not None]
        return ",".join(tokens) or NO_OPTIONS

    def output_format(self, source_mime: str, accept: str | None) -> OutputFormat:
        if self.format == "auto":
            return negotiate(accept)
        if self.format is not None:
            return self.format
        return DEFAULT_FORMAT.get(source_mime, "jpeg")

    def spec(self, output: OutputFormat) -> TransformSpec:
        """What to render, with every default resolved (so equal outputs get equal specs)."""
        both = self.width is not None and self.height is not None
        fit: Fit = (self.fit or "cover") if both else "inside"
        return TransformSpec(
            format=output,
            width=self.width,
            height=self.height,
            fit=fit,
            gravity=(self.gravity or "center") if fit == "cover" else "center",
            quality=None if output == "png" else self.quality or default_quality(output),
            blur=self.blur,
        )


@functools.lru_cache(maxsize=4096)
def parse(segment: str) -> TransformOptions:
    """The options of a URL's segment; OptionError unless it is exactly the canonical form.

    Memoised: hot URLs repeat, and the options are immutable."""
    if segment == NO_OPTIONS:
        return TransformOptions()
    found: dict[str, str] = {}
    for token in segment.split(","):
        name, sep, value = token.partition("_")
        if not sep or not value:
            raise OptionError(f"option {token!r} is not NAME_VALUE", "options")
        if name not in FIELD_OF:
            raise OptionError(f"unknown option {name!r}; known: {', '.join(ORDER)}", "options")
        if name in found:
            raise OptionError(f"option {name!r} is given twice", "options")
        found[name] = value
    options = TransformOptions(
        width=_integer(found, "w"),
        height=_integer(found, "h"),
        fit=cast(Fit | None, _choice(found, "fit", FITS)),
        gravity=cast(Gravity | None, _choice(found, "g", GRAVITIES)),
        blur=_decimal(found, "b"),
        quality=_integer(found, "q"),
        format=cast(FormatOption | None, _choice(found, "f", FORMATS)),
        expires=_integer(found, "e"),
    )
    try:
        options.checked()
    except OptionError as exc:
        raise OptionError(exc.message, "options") from exc
    if options.segment() != segment:
        raise OptionError(
            f"options must be in the canonical order {','.join(ORDER)}: {options.segment()}",
            "options",
        )
    return options


def _integer(found: dict[str, str], name: str) -> int | None:
    value = found.get(name)
    if value is None:
        return None
    if not _INTEGER.match(value):
        raise OptionError(f"option {name!r} needs a positive integer, not {value!r}", "options")
    return int(value)


def _decimal(found: dict[str, str], name: str) -> float | None:
    value = found.get(name)
    if value is None:
        return None
    if not _DECIMAL.match(value) or value.endswith(".0"):
        raise OptionError(f"option {name!r} needs a number like 5 or 0.5, not {value!r}", "options")
    return float(value)


def _choice(found: dict[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    value = found.get(name)
    if value is None:
        return None
    if value not in allowed:
        raise OptionError(
            f"option {name!r} is one of {', '.join(allowed)}, not {value!r}", "options"
        )
    return value


def negotiate(accept: str | None) -> OutputFormat:
    """`f_auto`: AVIF if the client accepts it, else WebP, else JPEG."""
    accepted: set[str] = set()
    for item in (accept or "").lower().split(","):
        media_type, *params = (part.strip() for part in item.split(";"))
        refused = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
        if media_type and not refused:
            accepted.add(media_type)
    if "image/avif" in accepted:
        return "avif"
    if "image/webp" in accepted:
        return "webp"
    return "jpeg"


def options_hash(spec: TransformSpec) -> str:
    """Names one output of one media version: every resolved option, never the expiry."""
    parts = [
        RENDER_REVISION,
        f"f={spec.format}",
        f"w={spec.width or ''}",
        f"h={spec.height or ''}",
        f"fit={spec.fit}",
        f"g={spec.gravity}",
        f"b={'' if spec.blur is None else f'{spec.blur:g}'}",
        f"q={spec.quality or ''}",
    ]
    return hashlib.sha256(";".join(parts).encode()).hexdigest()[:32]
