"""docs/architecture.md: the layer contract (pyproject [tool.importlinter], checked by
`lint-imports` in dev.sh's lint step) names every module, and no module hides an import of
the project inside a function to dodge a circle."""

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]
SRC = ROOT / "src" / "mediakeep"

# Imports left inside functions on purpose: a backend's heavy library, loaded only when that
# backend is configured (docs/architecture.md).
LAZY_MODULES = {"mediakeep.cli"}  # the CLI's commands load the server only when they run
LAZY_ALLOWED = {
    ("mediakeep.storage.factory", "mediakeep.storage.s3"),  # boto3
    ("mediakeep.jobs.dispatch", "mediakeep.jobs.celery_app"),  # celery
}


def _modules() -> list[str]:
    names = []
    for path in sorted(SRC.rglob("*.py")):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            continue  # a package's own module: covered by its children's layers
        names.append(".".join(parts))
    return names


def _layered() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "layers"]
    return {
        name.strip() for layer in contract["layers"] for name in layer.replace("|", ":").split(":")
    }


def test_every_module_has_a_layer() -> None:
    layered = _layered()
    missing = [
        module
        for module in _modules()
        if not any(module == name or module.startswith(name + ".") for name in layered)
    ]
    assert missing == [], f"add these modules to a layer in pyproject.toml: {missing}"


def _imports_in_functions(module: str, tree: ast.AST) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [
                (name, node.lineno)
                for name in names
                if name.split(".")[0] == "mediakeep"
                and (module, name) not in LAZY_ALLOWED
                and module not in LAZY_MODULES
            ]
    return found


def test_no_project_import_inside_a_function() -> None:
    problems = {}
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        found = _imports_in_functions(module, ast.parse(path.read_text()))
        if found:
            problems[module] = found
    assert problems == {}, f"imports inside functions (move them up; a circle is a bug): {problems}"


def test_the_check_sees_an_import_in_a_function() -> None:
    source = "def f():\n    from mediakeep.media import service\n    import json\n"
    assert _imports_in_functions("mediakeep.x", ast.parse(source)) == [("mediakeep.media", 2)]
