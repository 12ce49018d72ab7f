"""`/docs` (Swagger UI) and `/redoc` (ReDoc) from files on this machine, never a CDN.

The viewers' bundles come from the `fastapi-offline` wheel (Swagger UI 5, ReDoc's standalone
build, a favicon); the two small scripts that start them are ours, in `static/`, because the
pages carry the web app's Content-Security-Policy, which allows no inline script. So the pages
work with the network unplugged and reach no other host.
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse

from mediakeep.errors import MediaError
from mediakeep.web.router import SECURITY_HEADERS

ASSETS_PATH = "/docs/assets"
_BUNDLED = Path(fastapi_offline.__file__).parent / "static"
_OURS = Path(__file__).parent / "static"

# name -> (file, media type): only these are served (no directory walking).
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_BUNDLED / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_BUNDLED / "swagger-ui.css", "text/css"),
    "redoc.standalone.js": (_BUNDLED / "redoc.standalone.js", "text/javascript"),
    "favicon.png": (_BUNDLED / "favicon.png", "image/png"),
    "swagger-init.js": (_OURS / "swagger-init.js", "text/javascript"),
    "docs.css": (_OURS / "docs.css", "text/css"),
}

# The pages reach this origin only: even an image (ReDoc's "API docs by Redocly" logo, hidden
# when it fails to load) is never fetched from elsewhere. Unlike the web app's policy, styles
# may be inline: ReDoc (styled-components) and Swagger UI write <style> elements at run time.
# Scripts stay 'self' only.
DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DOCS_HEADERS = {
    **SECURITY_HEADERS,
    "Content-Security-Policy": DOCS_CSP,
    "Cache-Control": "no-cache",
}
ASSET_HEADERS = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=86400"}

router = APIRouter(include_in_schema=False)


def _page(title: str, root: str, body: str, head: str = "") -> HTMLResponse:
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" type="image/png" href="{root}{ASSETS_PATH}/favicon.png">
{head}</head>
<body>
{body}
</body>
</html>
"""
    return HTMLResponse(html, headers=DOCS_HEADERS)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    openapi_url = f"{root}{request.app.openapi_url}"
    return _page(
        f"{request.app.title} - Swagger UI",
        root,
        f'<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>\n'
        f'<script src="{root}{ASSETS_PATH}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{root}{ASSETS_PATH}/swagger-init.js"></script>',
        head=f'<link rel="stylesheet" href="{root}{ASSETS_PATH}/swagger-ui.css">\n',
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    openapi_url = f"{root}{request.app.openapi_url}"
    return _page(
        f"{request.app.title} - ReDoc",
        root,
        f'<redoc spec-url="{openapi_url}"></redoc>\n'
        f'<script src="{root}{ASSETS_PATH}/redoc.standalone.js"></script>',
        head=f'<link rel="stylesheet" href="{root}{ASSETS_PATH}/docs.css">\n',
    )


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> FileResponse:
    found = ASSETS.get(name)
    if found is None:
        raise MediaError("not_found", 404, "no such documentation asset")
    path, media_type = found
    return FileResponse(path, media_type=media_type, headers=ASSET_HEADERS)


def mount_api_docs(app: FastAPI) -> None:
    """Add `/docs`, `/redoc` and their assets; the app is built with docs_url=redoc_url=None."""
    app.include_router(router)
