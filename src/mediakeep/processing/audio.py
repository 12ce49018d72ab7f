"""ffmpeg command lines for audio. Pure: files in, files out (see processing/video.py for the
shared safety rules: pinned demuxer, local files only, temp names renamed)."""

from pathlib import Path
from typing import Literal

AudioFormat = Literal["mp3", "aac", "opus", "wav", "flac"]

# format -> (encoder, muxer, extension, mime, takes a bitrate)
AUDIO_FORMATS: dict[str, tuple[str, str, str, str, bool]] = {
    "mp3": ("libmp3lame", "mp3", "mp3", "audio/mpeg", True),
    "aac": ("aac", "ipod", "m4a", "audio/mp4", True),
    "opus": ("libopus", "ogg", "opus", "audio/ogg", True),
    "wav": ("pcm_s16le", "wav", "wav", "audio/wav", False),
    "flac": ("flac", "flac", "flac", "audio/flac", False),
}
DEFAULT_BITRATE_K = {"mp3": 192, "aac": 160, "opus": 128}


def transcode_args(fmt: AudioFormat, *, bitrate_k: int | None = None) -> list[str]:
    """Output options of an audio transcode (after `video.input_args`): the first audio stream,
    no video or cover art."""
    encoder, muxer, _ext, _mime, lossy = AUDIO_FORMATS[fmt]
    args = ["-map", "0:a:0", "-vn", "-c:a", encoder]
    if lossy:
        args += ["-b:a", f"{bitrate_k or DEFAULT_BITRATE_K[fmt]}k"]
    if fmt == "opus":
        args += ["-ar", "48000"]
    return [*args, "-f", muxer]


def extension(fmt: str) -> str:
    return AUDIO_FORMATS[fmt][2]


# ----------------------------------------------------------------------------- waveform

WAVEFORM_PEAKS = 800
WAVEFORM_SIZE = (1200, 200)


def peak_rate(duration: float) -> int:
    """Hz of the mono signal the peaks are measured on: ~200 samples a peak, 100-4000 Hz."""
    wanted = WAVEFORM_PEAKS * 200 / max(duration, 0.001)
    return int(min(4000, max(100, wanted)))


WAVEFORM_COLOUR = (59, 130, 246)  # #3b82f6, on a transparent background


def draw_waveform(
    peaks: list[float], png: Path, width: int = WAVEFORM_SIZE[0], height: int = WAVEFORM_SIZE[1]
) -> None:
    """Draw `peaks` (0-1) as a symmetric waveform picture into `png`. Drawn from the peaks,
    not by ffmpeg's showwavespic, which holds the whole decoded signal in memory."""
    import pyvips

    count = max(len(peaks), 1)
    half = height / 2
    # Each column's half-height (at least half a pixel, so silence is still a visible line).
    columns = [max(0.5, peaks[x * count // width] * half if peaks else 0.0) for x in range(width)]
    reach = pyvips.Image.new_from_array([columns]).replicate(1, height)
    distance = (pyvips.Image.xyz(width, height)[1] - (half - 0.5)).abs()
    drawn = (distance <= reach).ifthenelse([*WAVEFORM_COLOUR, 255], [0, 0, 0, 0])
    drawn.cast("uchar").copy(interpretation="srgb").pngsave(str(png))


def waveform_pcm_args(rate: int) -> list[str]:
    """Output options streaming the first audio stream as mono 16-bit PCM to stdout."""
    return ["-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(rate), "-f", "s16le",
            "-c:a", "pcm_s16le", "pipe:1"]  # fmt: skip


def peaks_of(pcm: bytes, count: int = WAVEFORM_PEAKS) -> list[float]:
    """`count` peak amplitudes (0-1) over equal slices of mono s16le samples."""
    import array

    samples = array.array("h")
    samples.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    total = max(len(samples), 1)
    peaks = []
    for index in range(count):
        lo, hi = index * total // count, (index + 1) * total // count
        window = samples[lo:hi]
        peak = max((abs(value) for value in window), default=0)
        peaks.append(round(min(peak, 32767) / 32767, 4))
    return peaks


# ----------------------------------------------------------------------------- speech input

ASR_SAMPLE_RATE = 16_000


def asr_wav_args() -> list[str]:
    """Output options (after `video.input_args`) of the input speech recognition reads: the
    first audio stream as 16 kHz mono 16-bit PCM WAV. The recogniser only ever opens this file
    of ours, never the upload, so FFmpeg's format guessing never meets untrusted bytes."""
    return [
        "-map",
        "0:a:0",
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(ASR_SAMPLE_RATE),
        "-c:a",
        "pcm_s16le",
        "-f",
        "wav",
    ]
