"""Text in requests: one rule for every string a client sends (bodies, queries, paths).

PostgreSQL cannot store NUL in `text` or `jsonb` (SQLite can), and the other control
characters are never meant as text: they hide content from people reading it (a name that
prints as empty, a filename that ends early in a terminal). So every text field refuses NUL,
the other C0 controls (except tab, line feed and carriage return where several lines make
sense), DEL and the C1 controls (U+0080..U+009F, among them U+0085 NEL, which Python's
`str.strip()` counts as white space). Refused with 400 `validation.invalid`, like any other
malformed field.

`Line` is single-line text (names, emails, ids, search terms), `Text` may span lines (alt
text, captions, descriptions), `Name` is a `Line` that is trimmed and may not be blank. The
OpenAPI schema carries the same rule as a `pattern`, so a client that validates against the
document and the server agree on every input; lengths count the characters as sent (a
trimmed name is checked against its limit before trimming, as the schema's `maxLength` is).
"""

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote_to_bytes

from pydantic import AfterValidator, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

# Classes written with \uXXXX escapes: Python `re`, the Rust `regex` crate and ECMA-262 (what
# JSON Schema's `pattern` means) all read them the same way.
_LINE_CONTROLS = r"\u0000-\u001f\u007f-\u009f"
_TEXT_CONTROLS = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
# What `Name` trims: Unicode White_Space minus the controls above (refused before trimming),
# spelled out so the schema's "not blank" means exactly what the server does.
_SPACES = r"\u0020\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_SPACE_CHARS = re.sub(r"\\u(....)", lambda m: chr(int(m.group(1), 16)), _SPACES)

LINE_PATTERN = f"^[^{_LINE_CONTROLS}]*$"
TEXT_PATTERN = f"^[^{_TEXT_CONTROLS}]*$"
NAME_PATTERN = f"^[^{_LINE_CONTROLS}]*[^{_LINE_CONTROLS}{_SPACES}][^{_LINE_CONTROLS}]*$"

_LINE_BAD = re.compile(f"[{_LINE_CONTROLS}]")
_TEXT_BAD = re.compile(f"[{_TEXT_CONTROLS}]")


def first_control(value: str, *, multiline: bool = False) -> str | None:
    """The first refused character of `value`, or None when it is clean text."""
    found = (_TEXT_BAD if multiline else _LINE_BAD).search(value)
    return found.group() if found else None


def control_message(char: str) -> str:
    return f"must not contain control characters (found U+{ord(char):04X})"


def check_text(value: str, *, multiline: bool = False) -> str:
    """`value` when it is clean text, else ValueError naming the first bad character."""
    char = first_control(value, multiline=multiline)
    if char is not None:
        raise ValueError(control_message(char))
    return value


@dataclass(frozen=True)
class _NoControls:
    """Annotation: refuse control characters; trim and refuse blanks when `name`."""

    multiline: bool = False
    name: bool = False

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        value = handler(schema)
        if self.name:
            value["pattern"] = NAME_PATTERN
        else:
            value["pattern"] = TEXT_PATTERN if self.multiline else LINE_PATTERN
        return value

    def _validate(self, value: str) -> str:
        char = first_control(value, multiline=self.multiline)
        if char is not None:
            raise PydanticCustomError("text_control", control_message(char))
        if self.name:
            value = value.strip(_SPACE_CHARS)
            if not value:
                raise PydanticCustomError("text_blank", "must not be blank")
        return value


# Markers, placed after any length constraint so that lengths count the characters as sent
# (`Annotated[str, StringConstraints(max_length=200), NAME]`); the aliases are for text
# without one.
LINE = _NoControls()
TEXT = _NoControls(multiline=True)
NAME = _NoControls(name=True)
Line = Annotated[str, LINE]
Text = Annotated[str, TEXT]
Name = Annotated[str, NAME]


def _clean_json(value: dict[str, Any]) -> dict[str, Any]:
    # Iterative: a document nested thousands deep is measured (and refused) elsewhere, and
    # must not exhaust the stack here first.
    stack: list[Any] = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                check_text(key, multiline=True)
                stack.append(child)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            check_text(node, multiline=True)
    return value


# A free-form JSON object (media `metadata`): its keys and strings follow `Text`'s rule
# (PostgreSQL's jsonb cannot hold a NUL either).
JsonDocument = Annotated[dict[str, Any], AfterValidator(_clean_json)]


def first_control_in_url(path: str, query_string: bytes) -> tuple[str, str] | None:
    """(where, message) for the first control character in a request's path or query, decoded
    as the app will decode it; None when both are clean."""
    char = first_control(path)
    if char is not None:
        return "path", control_message(char)
    if query_string:
        decoded = unquote_to_bytes(query_string.replace(b"+", b" ")).decode("utf-8", "replace")
        char = first_control(decoded)
        if char is not None:
            return "query", control_message(char)
    return None
