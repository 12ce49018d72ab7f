"""Id prefixes: the ones `mediakeep.ids` declares are exactly those API.md names, and every id
the code makes uses a declared prefix (so a resource cannot drift to another, as webhooks once
did with `wh_` for API.md's `whk_`)."""

import ast
import re
from pathlib import Path

import pytest

from mediakeep import ids
from mediakeep.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "mediakeep"


def _api_md() -> Path | None:
    """The contract, `shared/spec/API.md`, beside the repository or one of its parents (the
    developer's worktrees and CI's clone each have it there)."""
    for folder in (ROOT, *ROOT.parents):
        candidate = folder / "shared" / "spec" / "API.md"
        if candidate.is_file():
            return candidate
    return None


def test_declared_prefixes_are_the_ones_api_md_names() -> None:
    spec = _api_md()
    if spec is None:
        pytest.skip(f"shared/spec/API.md is not beside {ROOT} or a parent of it")
    text = " ".join(spec.read_text().split())
    ids_paragraph = text[text.index("IDs are `PREFIX_`") :]
    ids_paragraph = ids_paragraph[: ids_paragraph.index("- Authentication")]
    others = ids_paragraph[ids_paragraph.index("Others:") :]
    named = re.findall(r"`([a-z]+)_`", others)
    assert named, ids_paragraph
    assert list(ids.CONTRACT) == named
    assert "default `med`" in ids_paragraph
    # The media prefix is configuration (MEDIA_ID_PREFIX), with API.md's default.
    assert Settings.model_fields["id_prefix"].default == "med"


def _new_id_prefixes() -> list[tuple[str, int, str]]:
    """(file, line, prefix) of every `new_id("...")` / `new_id(ids.X)` / `new_id(X)` call whose
    prefix is written in the source (a settings value is configuration, not listed)."""
    constants = {name: getattr(ids, name) for name in dir(ids) if name.isupper()}
    found = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        local = {  # module constants such as collections' `ID_PREFIX = "col"`
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name != "new_id":
                continue
            arg = node.args[0]
            where = str(path.relative_to(ROOT))
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((where, node.lineno, arg.value))
            elif isinstance(arg, ast.Name) and arg.id in {**constants, **local}:
                found.append((where, node.lineno, {**constants, **local}[arg.id]))
            elif isinstance(arg, ast.Attribute) and arg.attr in constants:
                found.append((where, node.lineno, constants[arg.attr]))
    return found


def test_every_id_the_code_makes_has_a_declared_prefix() -> None:
    made = _new_id_prefixes()
    assert len(made) > 10  # the scan sees the calls
    declared = set(ids.CONTRACT) | set(ids.INTERNAL)
    stray = [entry for entry in made if entry[2] not in declared]
    assert stray == [], "prefixes neither in ids.CONTRACT nor ids.INTERNAL"
    assert ids.LEGACY_WEBHOOK not in declared  # still accepted in paths, never made again
    made_where = {(file, prefix) for file, _, prefix in made}
    assert ("src/mediakeep/webhooks/service.py", ids.WEBHOOK) in made_where
    assert ("src/mediakeep/collections/service.py", ids.COLLECTION) in made_where
