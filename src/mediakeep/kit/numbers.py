"""Numbers and booleans in JSON request bodies: one rule for every body.

JSON has its own number and boolean types, so a body's value must already be the type the
OpenAPI document states. Lax validation read `true` as the number 1, `"5"` as 5 and `1` or
`"true"` as a boolean: a client that sent the wrong type got a guess instead of an error, and
the document and the server disagreed on what is valid. Every number and boolean field of a
request body uses these types (a float field still takes a JSON integer: 2 is 2.0); the
schemas they produce are those of plain `int`, `float` and `bool`.

Query and path parameters and multipart form fields arrive as text and stay lax (`?width=5`):
these types are for JSON bodies only.
"""

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import GetCoreSchemaHandler, Strict
from pydantic_core import PydanticCustomError, core_schema

JsonInt = Annotated[int, Strict()]
JsonFloat = Annotated[float, Strict()]
JsonBool = Annotated[bool, Strict()]


@dataclass(frozen=True)
class _NotBool:
    """Annotation for a `Literal` of integers, which `Strict()` cannot mark: lax validation
    compares `false == 0`, so a boolean is refused before the choices are compared."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(_refuse_bool, handler(source))


def _refuse_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


# `Annotated[Literal[0, 90, 180, 270], NOT_BOOL]`
NOT_BOOL = _NotBool()
