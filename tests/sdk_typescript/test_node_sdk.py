"""The TypeScript SDK's `node --test` suite (clients/typescript/test), which starts real
`mediakeep serve` processes (this venv's command) on free ports.

SeaweedFS is started here and handed down (MKTEST_S3_*) so the presigned direct upload to S3 is
covered too; without it that one Node test is skipped with its reason.
"""

from __future__ import annotations

import os
import uuid
import warnings

import pytest

from tests.fixtures.services import S3Server
from tests.live import mediakeep_executable
from tests.sdk_typescript.conftest import BuiltSdk, run_in_package

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_typescript_sdk_passes_its_node_tests(
    built_sdk: BuiltSdk, request: pytest.FixtureRequest
) -> None:
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
    tests = sorted(
        str(path.relative_to(built_sdk.package))
        for path in (built_sdk.package / "test").glob("*.test.mjs")
    )
    run_in_package([built_sdk.node, "--test", "--test-concurrency=2", *tests], env, timeout=300)
