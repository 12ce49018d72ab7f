"""A streaming multipart/form-data reader: the file part flows to a callback as it arrives,
small text fields are collected. Nothing is spooled twice and nothing is held whole.

python-multipart (the parser Starlette uses, well kept) finds the boundary with `bytes.find`,
so a body message costs one callback; the file part is handed over as read-only views of the
received messages, never copied here (the spool hashes and writes them by reference)."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from mediakeep.errors import MediaError, invalid

MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 32
_EMPTY = memoryview(b"")


@dataclass
class FormResult:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None
    file_seen: bool = False
    file_complete: bool = False  # its closing boundary arrived (not a body cut off mid-file)


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    disposition: bytes = b""  # raw: its filename may be UTF-8 beyond Latin-1 (browsers send it so)
    name: str = ""
    filename: str | None = None
    value: bytearray = field(default_factory=bytearray)


async def read_multipart(
    request: Request, file_field: str, on_file_chunk: Callable[[memoryview], Awaitable[None]]
) -> FormResult:
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise invalid("Expected a multipart/form-data body with a boundary", "body")

    result = FormResult()
    events: list[tuple[str, memoryview]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        events.append(("begin", _EMPTY))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        events.append(("data", memoryview(data)[start:end]))  # a view: no copy

    def on_part_end() -> None:
        events.append(("end", _EMPTY))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        events.append(("header", memoryview(bytes(header_field) + b"\x00" + bytes(header_value))))
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        events.append(("headers_done", _EMPTY))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
        },
    )
    part = _Part()
    field_count = 0
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            for kind, data in events:
                if kind == "begin":
                    part = _Part()
                elif kind == "header":
                    name, _, value = bytes(data).partition(b"\x00")
                    header = name.decode("latin-1").lower()
                    part.headers[header] = value.decode("utf-8", "replace")
                    if header == "content-disposition":
                        part.disposition = value
                elif kind == "headers_done":
                    # Parsed as bytes: given text, the parser encodes it as Latin-1, and a
                    # filename like "写真.jpg" made the whole upload a 400.
                    _, options = parse_options_header(part.disposition)
                    part.name = options.get(b"name", b"").decode("utf-8", "replace")
                    raw_filename = options.get(b"filename")
                    part.filename = (
                        raw_filename.decode("utf-8", "replace") if raw_filename else None
                    )
                    if part.name == file_field:
                        if result.file_seen:
                            raise invalid("Only one file per request", file_field)
                        result.file_seen = True
                        result.filename = part.filename
                    else:
                        field_count += 1
                        if field_count > MAX_FIELDS:
                            raise invalid("Too many form fields", "body")
                elif kind == "data":
                    if part.name == file_field:
                        await on_file_chunk(data)
                    else:
                        part.value.extend(data)
                        if len(part.value) > MAX_FIELD_BYTES:
                            raise invalid("Form field is too long", part.name)
                elif kind == "end" and part.name == file_field:
                    result.file_complete = True
                elif kind == "end":
                    if part.name in result.fields:  # which one was meant? say so, not guess
                        raise invalid("This form field is given more than once", part.name)
                    result.fields[part.name] = part.value.decode("utf-8", "replace")
            events.clear()
        parser.finalize()
    except ClientDisconnect as exc:
        raise MediaError("validation.invalid", 400, "The client went away mid-upload") from exc
    except ValueError as exc:  # python-multipart's parse errors
        raise invalid(f"Malformed multipart body: {exc}", "body") from exc
    if not result.file_seen:
        raise invalid(f"The form has no '{file_field}' part", file_field)
    if not result.file_complete:  # python-multipart's finalize does not refuse a cut-off body
        raise invalid("The multipart body ends inside the file, before its boundary", "body")
    return result
