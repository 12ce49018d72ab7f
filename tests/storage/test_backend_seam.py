"""DESIGN.md: storage/ has one protocol per capability and one factory; nothing else branches on
the backend. This reads every module outside storage/, so a new `isinstance(storage,
LocalStorage)` or an import of a backend class fails here; the `/files` and `/uploads/local`
routes ask the backend's `self_served` capability instead (their behaviour is covered by
tests/media/test_files_route.py and tests/uploads)."""

import ast
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from mediakeep.config import Settings
from mediakeep.storage.factory import create_storage

SRC = Path(__file__).parents[2] / "src" / "mediakeep"
BACKEND_MODULES = {"mediakeep.storage.local", "mediakeep.storage.s3"}
BACKEND_CLASSES = {"LocalStorage", "S3Storage"}


def backend_references(source: str) -> list[tuple[int, str]]:
    """(line, what) for each import of a backend module or mention of a backend class."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name in BACKEND_MODULES]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if module in BACKEND_MODULES:
                found.append((node.lineno, module))
            elif module == "mediakeep.storage":
                found += [
                    (node.lineno, f"{module}.{a.name}")
                    for a in node.names
                    if f"{module}.{a.name}" in BACKEND_MODULES
                ]
        elif isinstance(node, ast.Name) and node.id in BACKEND_CLASSES:
            found.append((node.lineno, node.id))
        elif isinstance(node, ast.Attribute) and node.attr in BACKEND_CLASSES:
            found.append((node.lineno, node.attr))
    return found


def test_the_check_sees_an_isinstance_on_a_backend_and_its_import() -> None:
    offending = (
        "from mediakeep.storage.local import LocalStorage\n"
        "from mediakeep.storage import s3\n"
        "def f(storage):\n"
        "    return isinstance(storage, LocalStorage) or isinstance(storage, s3.S3Storage)\n"
    )
    assert backend_references(offending) == [
        (1, "mediakeep.storage.local"),
        (2, "mediakeep.storage.s3"),
        (4, "LocalStorage"),
        (4, "S3Storage"),
    ]
    assert backend_references("links = services.storage.self_served\n") == []


def test_no_module_outside_storage_names_a_backend() -> None:
    modules = [p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] != "storage"]
    assert len(modules) > 100  # the walk really reads the package
    offenders = [
        f"{path.relative_to(SRC)}:{line} {what}"
        for path in sorted(modules)
        for line, what in backend_references(path.read_text())
    ]
    # Use the capability the code needs (Storage.staging, Storage.self_served) instead.
    assert offenders == []


def test_only_the_local_backend_serves_its_own_links(
    local_settings: Settings, s3_settings: Settings
) -> None:
    local = create_storage(local_settings)
    links = local.self_served
    assert links is not None
    key = "org_1/incoming/upl_1"
    target = local.presigned_upload(key, "image/png", 10, 60)
    query = {name: values[0] for name, values in parse_qs(urlsplit(target.url).query).items()}
    assert (
        links.verify_upload(key, query["exp"], query["size"], query["type"], query["sig"]) == "ok"
    )
    sig = query["sig"]
    forged = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert links.verify_upload(key, query["exp"], query["size"], query["type"], forged) == "bad"
    assert create_storage(s3_settings).self_served is None
