"""One Settings object; environment names are those of API.md's configuration table."""

import contextlib
import os
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from limits import parse as parse_rate_limit
from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from mediakeep.dsn import DsnError, parse_pg_dsn
from mediakeep.kit.durations import parse_duration
from mediakeep.kit.jsonlimits import JsonLimits
from mediakeep.processing.presets import DEFAULT_VARIANTS, VariantSpec, parse_variant_specs

CommaList = Annotated[list[str], NoDecode]

DEFAULT_ALLOWED_MIME = [
    "image/jpeg",
    "image/png",
    "image/gif",
    "image/webp",
    "image/avif",
    "image/heic",
    "image/heif",
    "image/tiff",
    "image/bmp",
    "video/mp4",
    "video/quicktime",
    "video/webm",
    "video/x-matroska",
    "audio/mpeg",
    "audio/aac",
    "audio/mp4",
    "audio/x-m4a",
    "audio/ogg",
    "audio/opus",
    "audio/wav",
    "audio/x-wav",
    "audio/flac",
    "audio/x-flac",
]


def _env(name: str) -> Any:
    return Field(validation_alias=AliasChoices(name, name.lower()))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    api_host: str = Field("127.0.0.1", validation_alias=AliasChoices("MEDIA_API_HOST", "api_host"))
    api_port: int = Field(8285, validation_alias=AliasChoices("MEDIA_API_PORT", "api_port"))
    data_dir: Path = Field(
        Path("./mediakeep-data"), validation_alias=AliasChoices("MEDIA_DATA_DIR", "data_dir")
    )
    public_url_setting: str = Field(
        "", validation_alias=AliasChoices("MEDIA_PUBLIC_URL", "public_url")
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        validation_alias=AliasChoices("MEDIA_TRUSTED_PROXIES", "trusted_proxies"),
    )
    cors_origins: CommaList = Field(
        default_factory=list, validation_alias=AliasChoices("MEDIA_CORS_ORIGINS", "cors_origins")
    )

    db_write_dsn: str = Field(
        "", validation_alias=AliasChoices("DB_POSTGRESQL_WRITE_DSN", "db_write_dsn")
    )
    db_read_dsn: str = Field(
        "", validation_alias=AliasChoices("DB_POSTGRESQL_READ1_DSN", "db_read_dsn")
    )
    auto_migrate: bool = Field(
        True, validation_alias=AliasChoices("MEDIA_AUTO_MIGRATE", "auto_migrate")
    )

    storage_backend: Literal["local", "s3"] = Field(
        "local", validation_alias=AliasChoices("MEDIA_STORAGE_BACKEND", "storage_backend")
    )
    local_storage_path_setting: str = Field(
        "", validation_alias=AliasChoices("MEDIA_LOCAL_STORAGE_PATH", "local_storage_path")
    )
    local_storage_base_url_setting: str = Field(
        "",
        validation_alias=AliasChoices("MEDIA_LOCAL_STORAGE_BASE_URL", "local_storage_base_url"),
    )
    s3_bucket: str = Field("", validation_alias=AliasChoices("MEDIA_S3_BUCKET", "s3_bucket"))
    s3_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("MEDIA_S3_REGION", "s3_region")
    )
    s3_endpoint: str = Field("", validation_alias=AliasChoices("MEDIA_S3_ENDPOINT", "s3_endpoint"))
    s3_access_key_id: str = Field(
        "", validation_alias=AliasChoices("MEDIA_S3_ACCESS_KEY_ID", "s3_access_key_id")
    )
    s3_secret_access_key: str = Field(
        "", validation_alias=AliasChoices("MEDIA_S3_SECRET_ACCESS_KEY", "s3_secret_access_key")
    )
    s3_use_path_style: bool = Field(
        False, validation_alias=AliasChoices("MEDIA_S3_USE_PATH_STYLE", "s3_use_path_style")
    )
    s3_public_endpoint: str = Field(
        "", validation_alias=AliasChoices("MEDIA_S3_PUBLIC_ENDPOINT", "s3_public_endpoint")
    )
    s3_multipart_threshold: int = Field(
        8 * 1024 * 1024,
        validation_alias=AliasChoices("MEDIA_S3_MULTIPART_THRESHOLD", "s3_multipart_threshold"),
    )

    s3_presign_ttl: timedelta = Field(
        timedelta(hours=168),
        validation_alias=AliasChoices("MEDIA_S3_PRESIGN_TTL", "s3_presign_ttl"),
    )
    download_url_ttl: timedelta = Field(
        timedelta(hours=1),
        validation_alias=AliasChoices("MEDIA_DOWNLOAD_URL_TTL", "download_url_ttl"),
    )
    private_url_ttl: timedelta = Field(
        timedelta(hours=1),
        validation_alias=AliasChoices("MEDIA_PRIVATE_URL_TTL", "private_url_ttl"),
    )
    upload_url_ttl: timedelta = Field(
        timedelta(minutes=15),
        validation_alias=AliasChoices("MEDIA_UPLOAD_URL_TTL", "upload_url_ttl"),
    )
    orphan_ttl: timedelta = Field(
        timedelta(hours=1), validation_alias=AliasChoices("MEDIA_ORPHAN_TTL", "orphan_ttl")
    )
    sweep_interval: timedelta = Field(
        timedelta(minutes=10),
        validation_alias=AliasChoices("MEDIA_SWEEP_INTERVAL", "sweep_interval"),
    )
    max_bytes: int = Field(
        20_971_520, validation_alias=AliasChoices("MEDIA_MAX_BYTES", "max_bytes")
    )
    max_bytes_video: int = Field(
        2 * 1024**3, validation_alias=AliasChoices("MEDIA_MAX_BYTES_VIDEO", "max_bytes_video")
    )
    org_quota_bytes: int = Field(
        0, ge=0, validation_alias=AliasChoices("MEDIA_ORG_QUOTA_BYTES", "org_quota_bytes")
    )
    max_pixels: int = Field(
        100_000_000, validation_alias=AliasChoices("MEDIA_MAX_PIXELS", "max_pixels")
    )
    max_json_bytes: int = Field(
        1024 * 1024, ge=1, validation_alias=AliasChoices("MEDIA_MAX_JSON_BYTES", "max_json_bytes")
    )
    metadata_max_depth: int = Field(
        10, ge=1, validation_alias=AliasChoices("MEDIA_METADATA_MAX_DEPTH", "metadata_max_depth")
    )
    metadata_max_keys: int = Field(
        256, ge=1, validation_alias=AliasChoices("MEDIA_METADATA_MAX_KEYS", "metadata_max_keys")
    )
    metadata_max_bytes: int = Field(
        16 * 1024,
        ge=2,
        validation_alias=AliasChoices("MEDIA_METADATA_MAX_BYTES", "metadata_max_bytes"),
    )
    max_decode_bytes: int = Field(
        536_870_912,
        ge=1,
        validation_alias=AliasChoices("MEDIA_MAX_DECODE_BYTES", "max_decode_bytes"),
    )
    decode_concurrency_setting: int = Field(
        0,
        ge=0,
        validation_alias=AliasChoices("MEDIA_DECODE_CONCURRENCY", "decode_concurrency"),
    )
    decode_queue: int = Field(
        64, ge=0, validation_alias=AliasChoices("MEDIA_DECODE_QUEUE", "decode_queue")
    )
    allowed_mime: CommaList = Field(
        default_factory=lambda: list(DEFAULT_ALLOWED_MIME),
        validation_alias=AliasChoices("MEDIA_ALLOWED_MIME", "allowed_mime"),
    )
    allow_svg: bool = Field(False, validation_alias=AliasChoices("MEDIA_ALLOW_SVG", "allow_svg"))
    strip_exif_original: bool = Field(
        False, validation_alias=AliasChoices("MEDIA_STRIP_EXIF_ORIGINAL", "strip_exif_original")
    )
    variants: str = Field(
        DEFAULT_VARIANTS, validation_alias=AliasChoices("MEDIA_VARIANTS", "variants")
    )
    remote_fetch_timeout: timedelta = Field(
        timedelta(seconds=15),
        validation_alias=AliasChoices("MEDIA_REMOTE_FETCH_TIMEOUT", "remote_fetch_timeout"),
    )
    allow_private_networks: bool = Field(
        False,
        validation_alias=AliasChoices("MEDIA_ALLOW_PRIVATE_NETWORKS", "allow_private_networks"),
    )
    proxy_download: bool = Field(
        True, validation_alias=AliasChoices("MEDIA_PROXY_DOWNLOAD", "proxy_download")
    )
    webhook_retry_base: timedelta = Field(
        timedelta(seconds=30),
        validation_alias=AliasChoices("MEDIA_WEBHOOK_RETRY_BASE", "webhook_retry_base"),
    )
    webhook_timeout: timedelta = Field(
        timedelta(seconds=10),
        validation_alias=AliasChoices("MEDIA_WEBHOOK_TIMEOUT", "webhook_timeout"),
    )
    clamd_address: str = Field(
        "", validation_alias=AliasChoices("MEDIA_CLAMD_ADDRESS", "clamd_address")
    )
    clamd_fail_open: bool = Field(
        False, validation_alias=AliasChoices("MEDIA_CLAMD_FAIL_OPEN", "clamd_fail_open")
    )
    retention_days: int = Field(
        0, validation_alias=AliasChoices("MEDIA_RETENTION_DAYS", "retention_days")
    )
    max_duration: timedelta = Field(
        timedelta(hours=4),
        validation_alias=AliasChoices("MEDIA_MAX_DURATION", "max_duration"),
    )
    ffmpeg_path: str = Field("", validation_alias=AliasChoices("MEDIA_FFMPEG_PATH", "ffmpeg_path"))
    ffmpeg_timeout: timedelta = Field(
        timedelta(hours=1),
        validation_alias=AliasChoices("MEDIA_FFMPEG_TIMEOUT", "ffmpeg_timeout"),
    )
    ffmpeg_threads_setting: int = Field(
        0, ge=0, validation_alias=AliasChoices("MEDIA_FFMPEG_THREADS", "ffmpeg_threads")
    )
    video_auto_stream: bool = Field(
        True, validation_alias=AliasChoices("MEDIA_VIDEO_AUTO_STREAM", "video_auto_stream")
    )
    id_prefix: str = Field(
        "med",
        pattern=r"^[a-z]{2,8}$",
        validation_alias=AliasChoices("MEDIA_ID_PREFIX", "id_prefix"),
    )

    queue_backend: Literal["local", "celery"] = Field(
        "local", validation_alias=AliasChoices("MEDIA_QUEUE_BACKEND", "queue_backend")
    )
    celery_broker_url: str = Field(
        "", validation_alias=AliasChoices("CELERY_BROKER_URL", "celery_broker_url")
    )
    redis_url: str = Field("", validation_alias=AliasChoices("REDIS_URL", "redis_url"))
    workers: int = Field(0, ge=0, validation_alias=AliasChoices("MEDIA_WORKERS", "workers"))
    job_max_attempts: int = Field(
        3,
        ge=1,
        le=100,
        validation_alias=AliasChoices("MEDIA_JOB_MAX_ATTEMPTS", "job_max_attempts"),
    )
    job_retry_delay: timedelta = Field(
        timedelta(seconds=10),
        validation_alias=AliasChoices("MEDIA_JOB_RETRY_DELAY", "job_retry_delay"),
    )
    job_timeout: timedelta = Field(
        timedelta(hours=2), validation_alias=AliasChoices("MEDIA_JOB_TIMEOUT", "job_timeout")
    )
    job_heartbeat_interval: timedelta = Field(
        timedelta(seconds=2),
        validation_alias=AliasChoices("MEDIA_JOB_HEARTBEAT_INTERVAL", "job_heartbeat_interval"),
    )
    job_stale_after: timedelta = Field(
        timedelta(seconds=30),
        validation_alias=AliasChoices("MEDIA_JOB_STALE_AFTER", "job_stale_after"),
    )
    job_poll_interval: timedelta = Field(
        timedelta(seconds=1),
        validation_alias=AliasChoices("MEDIA_JOB_POLL_INTERVAL", "job_poll_interval"),
    )
    job_republish_after: timedelta = Field(
        timedelta(minutes=10),
        validation_alias=AliasChoices("MEDIA_JOB_REPUBLISH_AFTER", "job_republish_after"),
    )

    rate_limit_enabled: bool = Field(
        True, validation_alias=AliasChoices("MEDIA_RATE_LIMIT_ENABLED", "rate_limit_enabled")
    )
    rate_limit_anonymous: str = Field(
        "60/minute",
        validation_alias=AliasChoices("MEDIA_RATE_LIMIT_ANONYMOUS", "rate_limit_anonymous"),
    )
    rate_limit_user: str = Field(
        "1000/minute", validation_alias=AliasChoices("MEDIA_RATE_LIMIT_USER", "rate_limit_user")
    )
    rate_limit_api_key: str = Field(
        "5000/minute",
        validation_alias=AliasChoices("MEDIA_RATE_LIMIT_API_KEY", "rate_limit_api_key"),
    )
    rate_limit_upload_url: str = Field(
        "30/minute",
        validation_alias=AliasChoices("MEDIA_RATE_LIMIT_UPLOAD_URL", "rate_limit_upload_url"),
    )
    rate_limit_caption: str = Field(
        "10/minute",
        validation_alias=AliasChoices("MEDIA_RATE_LIMIT_CAPTION", "rate_limit_caption"),
    )
    rate_limit_register: str = Field(
        "10/hour",
        validation_alias=AliasChoices("MEDIA_RATE_LIMIT_REGISTER", "rate_limit_register"),
    )
    rate_limit_ipv6_prefix: int = Field(
        64,
        ge=1,
        le=128,
        validation_alias=AliasChoices("MEDIA_RATE_LIMIT_IPV6_PREFIX", "rate_limit_ipv6_prefix"),
    )
    login_failures_free: int = Field(
        5, ge=1, validation_alias=AliasChoices("AUTH_LOGIN_FAILURES_FREE", "login_failures_free")
    )
    login_backoff_base: timedelta = Field(
        timedelta(seconds=1),
        validation_alias=AliasChoices("AUTH_LOGIN_BACKOFF_BASE", "login_backoff_base"),
    )
    login_backoff_max: timedelta = Field(
        timedelta(minutes=15),
        validation_alias=AliasChoices("AUTH_LOGIN_BACKOFF_MAX", "login_backoff_max"),
    )
    ai_budget_per_day: int = Field(
        100, validation_alias=AliasChoices("MEDIA_AI_BUDGET_PER_DAY", "ai_budget_per_day")
    )
    ai_blocklist: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_BLOCKLIST", "ai_blocklist")
    )
    ai_moderation_url: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_MODERATION_URL", "ai_moderation_url")
    )
    ai_moderation_api_key: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_MODERATION_API_KEY", "ai_moderation_api_key")
    )
    ai_timeout_seconds: float = Field(
        60.0, validation_alias=AliasChoices("MEDIA_AI_TIMEOUT", "ai_timeout_seconds")
    )
    ai_image_provider: str = Field(
        "openai", validation_alias=AliasChoices("MEDIA_AI_IMAGE_PROVIDER", "ai_image_provider")
    )
    ai_image_base_url: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_IMAGE_BASE_URL", "ai_image_base_url")
    )
    ai_image_api_key: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_IMAGE_API_KEY", "ai_image_api_key")
    )
    ai_image_model: str = Field(
        "gpt-image-1", validation_alias=AliasChoices("MEDIA_AI_IMAGE_MODEL", "ai_image_model")
    )
    ai_tts_provider: str = Field(
        "local", validation_alias=AliasChoices("MEDIA_AI_TTS_PROVIDER", "ai_tts_provider")
    )
    ai_tts_base_url: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_TTS_BASE_URL", "ai_tts_base_url")
    )
    ai_tts_api_key: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_TTS_API_KEY", "ai_tts_api_key")
    )
    ai_tts_model: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_TTS_MODEL", "ai_tts_model")
    )
    ai_asr_provider: str = Field(
        "local", validation_alias=AliasChoices("MEDIA_AI_ASR_PROVIDER", "ai_asr_provider")
    )
    ai_asr_base_url: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_ASR_BASE_URL", "ai_asr_base_url")
    )
    ai_asr_api_key: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_ASR_API_KEY", "ai_asr_api_key")
    )
    ai_asr_model: str = Field(
        "", validation_alias=AliasChoices("MEDIA_AI_ASR_MODEL", "ai_asr_model")
    )
    transform_max_derivatives_per_org: int = Field(
        10_000,
        ge=0,
        validation_alias=AliasChoices(
            "MEDIA_TRANSFORM_MAX_DERIVATIVES_PER_ORG", "transform_max_derivatives_per_org"
        ),
    )
    transform_concurrency_setting: int = Field(
        0,
        ge=0,
        validation_alias=AliasChoices("MEDIA_TRANSFORM_CONCURRENCY", "transform_concurrency"),
    )
    transform_source_cache_ttl: timedelta = Field(
        timedelta(seconds=2),
        validation_alias=AliasChoices(
            "MEDIA_TRANSFORM_SOURCE_CACHE_TTL", "transform_source_cache_ttl"
        ),
    )
    transform_memory_cache_bytes: int = Field(
        32 * 1024 * 1024,
        ge=0,
        validation_alias=AliasChoices(
            "MEDIA_TRANSFORM_MEMORY_CACHE_BYTES", "transform_memory_cache_bytes"
        ),
    )
    idempotency_ttl: timedelta = Field(
        timedelta(hours=24),
        validation_alias=AliasChoices("MEDIA_IDEMPOTENCY_TTL", "idempotency_ttl"),
    )

    auth_enabled: bool = Field(True, validation_alias=AliasChoices("AUTH_ENABLED", "auth_enabled"))
    auth_secret_key_setting: str = Field(
        "", validation_alias=AliasChoices("AUTH_SECRET_KEY", "auth_secret_key")
    )
    auth_issuer: str = Field("", validation_alias=AliasChoices("AUTH_ISSUER", "auth_issuer"))
    auth_jwks_url: str = Field("", validation_alias=AliasChoices("AUTH_JWKS_URL", "auth_jwks_url"))
    auth_audience: str = Field("", validation_alias=AliasChoices("AUTH_AUDIENCE", "auth_audience"))
    auth_jwks_cache_ttl: timedelta = Field(
        timedelta(minutes=10),
        validation_alias=AliasChoices("AUTH_JWKS_CACHE_TTL", "auth_jwks_cache_ttl"),
    )
    auth_guest_enabled: bool = Field(
        False, validation_alias=AliasChoices("AUTH_GUEST_ENABLED", "auth_guest_enabled")
    )
    argon2_time_cost: int = Field(
        3, ge=1, validation_alias=AliasChoices("AUTH_ARGON2_TIME_COST", "argon2_time_cost")
    )
    argon2_memory_kib: int = Field(
        65536, ge=64, validation_alias=AliasChoices("AUTH_ARGON2_MEMORY_KIB", "argon2_memory_kib")
    )
    access_token_ttl: timedelta = Field(
        timedelta(minutes=15),
        validation_alias=AliasChoices("AUTH_ACCESS_TOKEN_TTL", "access_token_ttl"),
    )
    refresh_token_ttl: timedelta = Field(
        timedelta(days=30),
        validation_alias=AliasChoices("AUTH_REFRESH_TOKEN_TTL", "refresh_token_ttl"),
    )

    umask: str = Field(
        "077", pattern=r"^0?[0-7]{3}$", validation_alias=AliasChoices("MEDIA_UMASK", "umask")
    )

    log_level: str = Field("INFO", validation_alias=AliasChoices("MEDIA_LOG_LEVEL", "log_level"))

    @field_validator(
        "s3_presign_ttl",
        "download_url_ttl",
        "private_url_ttl",
        "upload_url_ttl",
        "orphan_ttl",
        "sweep_interval",
        "remote_fetch_timeout",
        "access_token_ttl",
        "refresh_token_ttl",
        "idempotency_ttl",
        "auth_jwks_cache_ttl",
        "job_retry_delay",
        "job_timeout",
        "job_heartbeat_interval",
        "job_stale_after",
        "job_poll_interval",
        "job_republish_after",
        "max_duration",
        "ffmpeg_timeout",
        "webhook_retry_base",
        "webhook_timeout",
        "login_backoff_base",
        "login_backoff_max",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("transform_source_cache_ttl", mode="before")
    @classmethod
    def _transform_duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator(
        "rate_limit_anonymous",
        "rate_limit_user",
        "rate_limit_api_key",
        "rate_limit_upload_url",
        "rate_limit_caption",
        "rate_limit_register",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        # Refuse a malformed limit at start-up rather than on the first request it governs.
        parse_rate_limit(value)
        return value

    @field_validator("db_write_dsn", "db_read_dsn")
    @classmethod
    def _dsn(cls, value: str) -> str:
        # A libpq DSN asyncpg cannot take (an unknown parameter, a bad sslmode) is refused at
        # start-up, naming what is accepted, rather than at the first connection.
        if value:
            try:
                parse_pg_dsn(value)
            except DsnError as exc:
                raise ValueError(str(exc)) from None
        return value

    @field_validator("auth_secret_key_setting")
    @classmethod
    def _strong_secret(cls, value: str) -> str:
        # Tokens and signed links are HMACs under this key: a short one falls to an offline
        # brute force from any token or link. Unset (empty) means "generate one".
        check_secret_strength(value, "AUTH_SECRET_KEY")
        return value

    @model_validator(mode="after")
    def _strong_kept_secret(self) -> "Settings":
        # A secret.key an operator wrote by hand gets the same check as AUTH_SECRET_KEY, at
        # start rather than at the first token.
        if not self.auth_secret_key_setting:
            path = self.data_dir / "secret.key"
            with contextlib.suppress(OSError, UnicodeDecodeError):
                check_secret_strength(path.read_text(encoding="ascii").strip(), str(path))
        return self

    @field_validator("variants")
    @classmethod
    def _variants(cls, value: str) -> str:
        # Refuse a malformed MEDIA_VARIANTS at start-up rather than at the first upload.
        parse_variant_specs(value)
        return value

    @field_validator("trusted_proxies", "cors_origins", "allowed_mime", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @cached_property
    def public_url(self) -> str:
        return (self.public_url_setting or f"http://{self.api_host}:{self.api_port}").rstrip("/")

    @cached_property
    def local_storage_path(self) -> Path:
        return Path(self.local_storage_path_setting or self.data_dir / "objects")

    @cached_property
    def local_storage_base_url(self) -> str:
        return (self.local_storage_base_url_setting or f"{self.public_url}/files").rstrip("/")

    @cached_property
    def database_url(self) -> str:
        if self.db_write_dsn:
            return _async_postgres_url(self.db_write_dsn)
        return f"sqlite+aiosqlite:///{(self.data_dir / 'mediakeep.db').resolve()}"

    @cached_property
    def sqlite_path(self) -> Path | None:
        """The SQLite database file; None on PostgreSQL."""
        return None if self.db_write_dsn else (self.data_dir / "mediakeep.db").resolve()

    @cached_property
    def database_read_url(self) -> str | None:
        return _async_postgres_url(self.db_read_dsn) if self.db_read_dsn else None

    @cached_property
    def variant_specs(self) -> tuple[VariantSpec, ...]:
        """MEDIA_VARIANTS parsed: the presets every image gets."""
        return parse_variant_specs(self.variants)

    @cached_property
    def metadata_limits(self) -> JsonLimits:
        """MEDIA_METADATA_MAX_*: the bounds of a media's `metadata` document."""
        return JsonLimits(self.metadata_max_depth, self.metadata_max_keys, self.metadata_max_bytes)

    @cached_property
    def spool_dir(self) -> Path:
        """Local scratch space for bytes in flight (probing, S3 staging)."""
        return self.data_dir / "spool"

    @cached_property
    def ffmpeg_threads(self) -> int:
        """Threads an encode's ffmpeg may use (decoder, filters, each encoder): the setting,
        else one less than the CPUs this process may run on (at least 1), so a core is left
        for the API."""
        return self.ffmpeg_threads_setting or max(1, len(os.sched_getaffinity(0)) - 1)

    @cached_property
    def decode_concurrency(self) -> int:
        """Image decodes run at once per process (uploads, variants, transforms): the setting,
        else MEDIA_TRANSFORM_CONCURRENCY (its older name), else the number of CPUs."""
        return (
            self.decode_concurrency_setting
            or self.transform_concurrency_setting
            or os.cpu_count()
            or 1
        )

    @cached_property
    def transform_concurrency(self) -> int:
        """Signed transforms rendered at once per process; 0 = the number of CPUs."""
        return self.transform_concurrency_setting or os.cpu_count() or 1

    @cached_property
    def secret_key(self) -> str:
        """AUTH_SECRET_KEY, else a key generated once and kept in the data dir."""
        if self.auth_secret_key_setting:
            return self.auth_secret_key_setting
        path = self.data_dir / "secret.key"
        if not path.exists():
            if not self.data_dir.is_dir():
                self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            candidate = secrets.token_urlsafe(48)
            try:
                # Created 0600 (never readable by others, not even for a moment).
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(candidate)
            except FileExistsError:
                pass  # another process won the race; use its key
        key = path.read_text(encoding="ascii").strip()
        check_secret_strength(key, str(path))
        return key

    @cached_property
    def worker_count(self) -> int:
        """MEDIA_WORKERS, else one local worker process per CPU."""
        return self.workers or os.cpu_count() or 1

    @cached_property
    def broker_url(self) -> str:
        """The Celery broker: CELERY_BROKER_URL, else REDIS_URL."""
        return self.celery_broker_url or self.redis_url

    def as_env(self) -> dict[str, str]:
        """These settings as environment variables, so a child process (a local worker) builds
        the same Settings whatever mix of environment and arguments built these."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            alias = info.validation_alias
            assert isinstance(alias, AliasChoices)
            env[str(alias.choices[0])] = _env_value(getattr(self, name))
        return env

    def max_bytes_for(self, mime: str | None) -> int:
        if mime and mime.startswith(("video/", "audio/")):
            return self.max_bytes_video
        if mime is None:
            return max(self.max_bytes, self.max_bytes_video)
        return self.max_bytes

    def mime_allowed(self, mime: str) -> bool:
        if mime == "image/svg+xml":
            return self.allow_svg
        return any(
            mime == allowed or (allowed.endswith("/") and mime.startswith(allowed))
            for allowed in self.allowed_mime
        )


MIN_SECRET_BYTES = 32


def check_secret_strength(value: str, name: str) -> None:
    """Refuse a signing secret shorter than MIN_SECRET_BYTES (an empty one means "generate")."""
    size = len(value.encode())
    if value and size < MIN_SECRET_BYTES:
        raise ValueError(
            f"{name} is {size} bytes; signing secrets must be at least {MIN_SECRET_BYTES} bytes"
            " (generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )


def settings_error_lines(exc: ValidationError) -> list[str]:
    """A Settings validation error as one line per setting, named by its environment variable
    and without the value (which may be a secret)."""
    env_names: dict[str, str] = {}
    for field, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            for choice in (field, *alias.choices):
                env_names[str(choice)] = str(alias.choices[0])
    lines = []
    for error in exc.errors():
        where = str(error["loc"][0]) if error["loc"] else "settings"
        name = env_names.get(where, where)
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(message if message.startswith(name) else f"{name}: {message}")
    return lines


def _env_value(value: Any) -> str:
    if isinstance(value, timedelta):
        return f"{value.total_seconds()}s"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def _async_postgres_url(dsn: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+asyncpg://" + dsn[len(prefix) :]
    return dsn
