"""No two operations of the API answer the same request, so the order routers are included in
(hottest first, for the cost of matching: see create_app) never changes which one answers."""

import re
from pathlib import Path

from starlette.routing import compile_path

from mediakeep.app import create_app
from mediakeep.config import Settings

# A static segment declared before a parameter in the same router: the static one answers.
RESOLVED_BY_DECLARATION_ORDER = {
    ("POST", "/api/v1/media/batch/convert", "/api/v1/media/{media_id}/convert"),
}
_METHODS = ("get", "post", "put", "patch", "delete", "head")


def _a_request_for(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", template)


def test_no_two_operations_match_one_request(tmp_path: Path) -> None:
    document = create_app(Settings(data_dir=tmp_path)).openapi()
    operations = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in _METHODS
    ]
    assert len(operations) > 60
    overlapping = {
        (method, path, other)
        for method, path in operations
        for other_method, other in operations
        if method == other_method
        and path != other
        and compile_path(other)[0].match(_a_request_for(path))
    }
    assert overlapping == RESOLVED_BY_DECLARATION_ORDER
