"""Pieces of the job runner that need no worker: settings handed to worker processes, retry
backoff and the reasons users see."""

from datetime import timedelta
from pathlib import Path

from mediakeep.config import Settings
from mediakeep.jobs.dispatch import CeleryDispatcher, LocalDispatcher, create_dispatcher
from mediakeep.jobs.runner import backoff, describe
from mediakeep.storage.base import StorageUnavailable


def test_worker_processes_get_the_same_settings(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        api_port=9999,
        job_stale_after="2.5s",
        allowed_mime="image/png,video/",
        auth_enabled=False,
        queue_backend="celery",
        redis_url="redis://127.0.0.1:1/0",
    )
    rebuilt = Settings(**settings.as_env())  # type: ignore[arg-type]
    assert rebuilt.model_dump() == settings.model_dump()
    assert rebuilt.broker_url == "redis://127.0.0.1:1/0"


def test_one_factory_picks_the_dispatcher(tmp_path: Path) -> None:
    local = create_dispatcher(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalDispatcher)
    celery = create_dispatcher(
        Settings(data_dir=tmp_path, queue_backend="celery", celery_broker_url="redis://h:1/2")
    )
    assert isinstance(celery, CeleryDispatcher)
    app = celery.app
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > Settings(data_dir=tmp_path).job_timeout.total_seconds()


def test_retries_back_off_exponentially(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, job_retry_delay="10s")
    delays = [backoff(settings, attempt) for attempt in (1, 2, 3, 4)]
    assert delays == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    assert backoff(settings, 30) == timedelta(hours=1)


def test_failed_reasons_say_what_happened_without_a_stack_trace() -> None:
    assert describe(StorageUnavailable("s3 down")) == "Storage was unavailable while the job ran"
    reason = describe(KeyError("internal detail"))
    assert "KeyError" in reason
    assert "internal detail" not in reason
