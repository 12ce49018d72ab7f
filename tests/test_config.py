"""Settings read the environment names of API.md's configuration table."""
# ruff: noqa: S104  (the value under test is an address string, nothing binds)

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from mediakeep.config import Settings


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MEDIA_DATA_DIR", "DB_POSTGRESQL_WRITE_DSN", "MEDIA_STORAGE_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.public_url == "http://127.0.0.1:8285"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.storage_backend == "local"
    assert settings.local_storage_path == Path("mediakeep-data/objects")
    assert settings.local_storage_base_url == "http://127.0.0.1:8285/files"
    assert settings.s3_presign_ttl == timedelta(hours=168)
    assert settings.upload_url_ttl == timedelta(minutes=15)
    assert settings.max_bytes == 20_971_520
    assert settings.max_bytes_video == 2 * 1024**3
    assert settings.id_prefix == "med"
    assert settings.auth_enabled is True


def test_environment_names_from_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "MEDIA_API_HOST": "0.0.0.0",
        "MEDIA_API_PORT": "9000",
        "MEDIA_PUBLIC_URL": "https://media.example.com/",
        "MEDIA_CORS_ORIGINS": "https://a.example, https://b.example",
        "MEDIA_TRUSTED_PROXIES": "10.0.0.1",
        "DB_POSTGRESQL_WRITE_DSN": "postgresql://u:p@db/mk",
        "DB_POSTGRESQL_READ1_DSN": "postgres://u:p@replica/mk",
        "MEDIA_S3_PRESIGN_TTL": "1h",
        "MEDIA_REMOTE_FETCH_TIMEOUT": "5s",
        "MEDIA_ID_PREFIX": "jan",
        "MEDIA_PROXY_DOWNLOAD": "false",
        "AUTH_ENABLED": "false",
        "AUTH_SECRET_KEY": "a-signing-secret-of-at-least-32-bytes",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert (settings.api_host, settings.api_port) == ("0.0.0.0", 9000)
    assert settings.public_url == "https://media.example.com"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.trusted_proxies == ["10.0.0.1"]
    assert settings.database_url == "postgresql+asyncpg://u:p@db/mk"
    assert settings.database_read_url == "postgresql+asyncpg://u:p@replica/mk"
    assert settings.s3_presign_ttl == timedelta(hours=1)
    assert settings.remote_fetch_timeout == timedelta(seconds=5)
    assert settings.id_prefix == "jan"
    assert settings.proxy_download is False
    assert settings.auth_enabled is False
    assert settings.secret_key == "a-signing-secret-of-at-least-32-bytes"


def test_secret_key_is_generated_once_into_the_data_dir(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).secret_key
    second = Settings(data_dir=tmp_path).secret_key
    assert first == second
    assert len(first) >= 40
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0


def test_bad_duration_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_UPLOAD_URL_TTL", "fifteen minutes")
    with pytest.raises(ValidationError):
        Settings()


def test_allow_list_accepts_prefixes_and_refuses_svg_by_default() -> None:
    settings = Settings(allowed_mime="image/,video/mp4")
    assert settings.mime_allowed("image/png")
    assert settings.mime_allowed("video/mp4")
    assert not settings.mime_allowed("video/webm")
    assert not settings.mime_allowed("image/svg+xml")
    assert Settings(allow_svg=True).mime_allowed("image/svg+xml")


def test_password_hashing_defaults_to_argon2id_at_the_recommended_cost() -> None:
    settings = Settings()
    assert (settings.argon2_time_cost, settings.argon2_memory_kib) == (3, 65536)
