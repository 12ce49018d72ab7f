"""The TypeScript SDK (clients/typescript): `npm ci`, `npm run build`, then its `node --test`
suite, which starts real `mediakeep serve` processes (this venv's command) on free ports.

SeaweedFS is started here and handed down (MKTEST_S3_*) so the presigned direct upload to S3 is
covered too; without it that one Node test is skipped with its reason. Node and npm missing:
this test is skipped with the reason (`bash dev.sh test` installs Debian's nodejs and npm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
import warnings
from pathlib import Path

import pytest

from tests.fixtures.services import S3Server
from tests.live import mediakeep_executable

PACKAGE = Path(__file__).resolve().parents[2] / "clients" / "typescript"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _run(command: list[str], env: dict[str, str], timeout: float) -> None:
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


def test_typescript_sdk_builds_and_passes_its_node_tests(request: pytest.FixtureRequest) -> None:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (Debian: apt-get install nodejs npm)")
    version = subprocess.run(  # noqa: S603
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < 20:
        pytest.skip(f"the TypeScript SDK needs Node 20+, found {version}")

    env = {k: v for k, v in os.environ.items() if not k.startswith("MKTEST_")}
    env["MEDIAKEEP_BIN"] = mediakeep_executable()
    try:
        s3: S3Server = request.getfixturevalue("s3_server")
    except pytest.skip.Exception as exc:  # the Node test of direct uploads says it is skipped
        warnings.warn(f"no S3 server for the direct-upload test: {exc}", stacklevel=1)
    else:
        bucket = f"ts-sdk-{uuid.uuid4().hex[:16]}"
        s3.create_bucket(bucket)
        env |= {
            "MKTEST_S3_ENDPOINT": s3.endpoint,
            "MKTEST_S3_BUCKET": bucket,
            "MKTEST_S3_ACCESS_KEY": s3.access_key,
            "MKTEST_S3_SECRET_KEY": s3.secret_key,
            "MKTEST_S3_REGION": s3.region,
        }

    _run([npm, "ci", "--no-audit", "--no-fund"], env, timeout=300)
    _run([npm, "run", "build"], env, timeout=180)
    tests = sorted(str(path.relative_to(PACKAGE)) for path in (PACKAGE / "test").glob("*.test.mjs"))
    _run([node, "--test", "--test-concurrency=2", *tests], env, timeout=300)
