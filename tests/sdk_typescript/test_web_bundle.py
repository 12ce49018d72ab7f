"""The web app's copy of the SDK (src/mediakeep/web/static/vendor/mediakeep-client.mjs) is the
browser bundle that `npm run bundle` makes from clients/typescript/src now: committed, so a
`pip install` needs no Node, and checked here, so it cannot go stale."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sdk_typescript.conftest import BuiltSdk

pytestmark = [pytest.mark.slow]

VENDORED = (
    Path(__file__).resolve().parents[2] / "src/mediakeep/web/static/vendor/mediakeep-client.mjs"
)


def test_the_web_apps_sdk_bundle_is_a_fresh_build(built_sdk: BuiltSdk) -> None:
    fresh = (built_sdk.package / "dist/browser/mediakeep.min.js").read_bytes()
    assert VENDORED.read_bytes() == fresh, (
        "src/mediakeep/web/static/vendor/mediakeep-client.mjs is stale: run "
        "`npm run bundle:web` in clients/typescript and commit the result"
    )
