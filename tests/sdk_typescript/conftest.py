"""The TypeScript SDK built once per session (`npm ci`, `npm run build`, `npm run bundle`), for
the Node suite and the browser test; skipped with the reason when Node 20+ and npm are missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live.conftest import start_live_server
from tests.web.conftest import browser  # module-scoped: see there why

__all__ = ["browser", "start_live_server"]

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"


@dataclass(frozen=True)
class BuiltSdk:
    node: str
    npm: str
    package: Path


def run_in_package(command: list[str], env: dict[str, str], timeout: float) -> None:
    done = subprocess.run(  # noqa: S603 - fixed commands, no shell
        command,
        cwd=PACKAGE,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, (
        f"`{' '.join(command)}` exited {done.returncode}\n--- stdout\n{done.stdout[-20000:]}"
        f"\n--- stderr\n{done.stderr[-5000:]}"
    )


# Built once per run, also when another module (tests/test_docs_guide.py) imports the fixture.
_BUILT: list[BuiltSdk] = []


@pytest.fixture(scope="session")
def built_sdk() -> BuiltSdk:
    if _BUILT:
        return _BUILT[0]
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (Debian: apt-get install nodejs npm)")
    version = subprocess.run(  # noqa: S603
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the TypeScript SDK needs Node 20+, found {version}")
    env = dict(os.environ)
    run_in_package([npm, "ci", "--no-audit", "--no-fund"], env, timeout=300)
    run_in_package([npm, "run", "build"], env, timeout=180)
    run_in_package([npm, "run", "bundle"], env, timeout=60)
    _BUILT.append(BuiltSdk(node=node, npm=npm, package=PACKAGE))
    return _BUILT[0]
