"""The distributed topology on loopback, all real processes: PostgreSQL, Redis, SeaweedFS (S3),
two `mediakeep serve --no-worker` API replicas and one `mediakeep worker` (Celery), configured
only by environment variables, as docs/deploy.md describes."""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mediakeep.bootstrap import build_worker_services
from mediakeep.config import Settings
from mediakeep.services import Services
from tests.fixtures.services import PostgresServer, RedisServer, S3Server, free_port
from tests.jobs.support import FAST_JOBS_ENV, TEST_TASKS_ENV, WorkerProcess
from tests.live import HOST, LiveServer, base_env, mediakeep_executable


@dataclass
class ApiReplica(LiveServer):
    """A LiveServer started as `mediakeep serve --no-worker`: an API process only."""

    def start(self, timeout: float = 60) -> None:
        if self.is_running():
            return
        if not self._migrated:
            self.cli("migrate")
            self._migrated = True
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [
                    mediakeep_executable(),
                    "serve",
                    "--no-worker",
                    "--host",
                    HOST,
                    "--port",
                    str(self.port),
                ],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.data_dir.parent),
                start_new_session=True,
            )
        self._wait_ready(timeout)


@dataclass
class Topology:
    root: Path
    redis: RedisServer
    shared_env: dict[str, str]
    apis: list[ApiReplica] = field(default_factory=list)
    worker: WorkerProcess | None = None
    s3_client: Any = None
    bucket: str = ""

    def settings(self) -> Settings:
        """What every process reads from its environment (the test process uses it too)."""
        values: dict[str, Any] = {k: v for k, v in self.shared_env.items() if k != "PYTHONPATH"}
        values["MEDIA_DATA_DIR"] = str(self.root / "tester")
        return Settings(**values)

    async def services(self) -> Services:
        """Services of the test process itself: to enqueue test-only jobs like product code."""
        return await build_worker_services(self.settings())

    def objects(self, prefix: str) -> list[str]:
        listing = self.s3_client.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        for api in self.apis:
            api.stop()
        self.redis.stop()


def start_topology(
    root: Path, postgres: PostgresServer, s3: S3Server, redis: RedisServer, replicas: int = 2
) -> Topology:
    bucket = f"topology-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(bucket)
    shared = {
        "DB_POSTGRESQL_WRITE_DSN": postgres.create_database(),
        "MEDIA_STORAGE_BACKEND": "s3",
        "MEDIA_S3_ENDPOINT": s3.endpoint,
        "MEDIA_S3_BUCKET": bucket,
        "MEDIA_S3_ACCESS_KEY_ID": s3.access_key,
        "MEDIA_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "MEDIA_S3_REGION": s3.region,
        "MEDIA_S3_USE_PATH_STYLE": "true",
        "MEDIA_QUEUE_BACKEND": "celery",
        "REDIS_URL": redis.url,
        "AUTH_ENABLED": "false",
        "AUTH_SECRET_KEY": "topology-secret-" + "x" * 40,  # the same in every process
        "MEDIA_RATE_LIMIT_ENABLED": "false",  # the tests poll a lot
        "MEDIA_LOG_LEVEL": "WARNING",
        "MEDIA_ORPHAN_TTL": "1h",
        "MEDIA_SWEEP_INTERVAL": "1h",
        **FAST_JOBS_ENV,
        **TEST_TASKS_ENV,
    }
    topology = Topology(root=root, redis=redis, shared_env=shared, s3_client=s3.client())
    topology.bucket = bucket
    try:
        for index in range(replicas):
            data_dir = root / f"api{index}" / "data"
            data_dir.mkdir(parents=True)
            port = free_port()
            own = {"MEDIA_DATA_DIR": str(data_dir), "MEDIA_API_PORT": str(port)}
            env = base_env() | shared | own
            api = ApiReplica(
                data_dir=data_dir,
                env=env,
                port=port,
                log_path=data_dir.parent / "server.log",
                backend="postgres-s3",
                s3_client=topology.s3_client,
                bucket=bucket,
            )
            topology.apis.append(api)
            api.start()
        worker_dir = root / "worker"
        (worker_dir / "data").mkdir(parents=True)
        topology.worker = WorkerProcess(
            env=base_env() | shared | {"MEDIA_DATA_DIR": str(worker_dir / "data")},
            log_path=worker_dir / "worker.log",
            args=["--concurrency", "2", "--loglevel", "WARNING"],
        )
        topology.worker.start()
    except BaseException:
        with contextlib.suppress(Exception):
            topology.stop()
        raise
    return topology
