"""MEDIA_FFMPEG_THREADS: every encode's ffmpeg has its decoder, filters and encoders capped,
on the real commands the code builds, and those commands still encode."""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from mediakeep.config import Settings
from mediakeep.jobs.registry import children_cgroup
from mediakeep.models import Media
from mediakeep.processing import hls, video
from mediakeep.processing.probe import probe_av
from mediakeep.services import Services
from mediakeep.videoops import service as videoops
from tests import mediagen


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path, auth_secret_key="k" * 48, **overrides)


def _caps(argv: list[str], threads: int) -> None:
    """The filter pools (global), the decoder (before -i) and the encoders (after the input)."""
    count = str(threads)
    assert argv[1:5] == ["-filter_threads", count, "-filter_complex_threads", count]
    source = argv.index("-i")
    assert argv[source - 2 : source] == ["-threads", count]
    assert argv[source + 2 : source + 4] == ["-threads", count]
    assert argv.count("-threads") == 2


def test_the_setting_defaults_to_the_cpus_less_one_and_takes_a_number(tmp_path: Path) -> None:
    assert _settings(tmp_path).ffmpeg_threads == max(1, len(os.sched_getaffinity(0)) - 1)
    assert _settings(tmp_path, ffmpeg_threads=3).ffmpeg_threads == 3
    with pytest.raises(ValidationError):
        _settings(tmp_path, ffmpeg_threads=-1)


def test_the_ladder_command_carries_the_cap_and_encodes(tmp_path: Path) -> None:
    source = tmp_path / "in.mp4"
    source.write_bytes(mediagen.mp4(seconds=1.0, width=320, height=240))
    ladder = hls.plan_ladder(240, None, video=True, audio=False, source_width=320)
    threads = _settings(tmp_path, ffmpeg_threads=1).ffmpeg_threads

    argv = hls.build_command(
        hls.ffmpeg_binary(), source, "mov", tmp_path / "out", ladder, threads=threads
    )
    _caps(argv, 1)
    assert argv[-1].endswith("manifest.mpd")  # the output stays last

    (tmp_path / "out").mkdir()
    files = hls.make_ladder(source, "video/mp4", tmp_path / "out", ladder, threads=threads)
    assert any(path.name == "master.m3u8" for path in files)
    assert any(path.suffix == ".m4s" for path in files)


def test_without_a_cap_the_ladder_command_is_unchanged(tmp_path: Path) -> None:
    ladder = hls.Ladder((360,), True)
    argv = hls.build_command("ffmpeg", tmp_path / "in", "mov", tmp_path / "out", ladder)
    assert "-threads" not in argv
    assert "-filter_threads" not in argv


def test_a_transcode_job_command_carries_the_servers_cap_and_encodes(
    video_app: FastAPI, tmp_path: Path
) -> None:
    services: Services = video_app.state.services
    source = tmp_path / "in.mp4"
    source.write_bytes(mediagen.mp4(seconds=1.0))
    media = Media(
        id="med_x",
        org_id="org_x",
        kind="video",
        status="ready",
        mime="video/mp4",
        storage_key="k",
        duration_seconds=1.0,
        metadata_={"demuxer": "mov", "container": "mov"},
        created_at=datetime.now(UTC),
    )
    plan = videoops.plan_transcode(media, {"format": "mp4"})
    out = tmp_path / "out.mp4"

    argv = videoops.argv(services, plan, source, out)
    _caps(argv, services.settings.ffmpeg_threads)

    run = video.run_ffmpeg(argv, timeout=60)
    assert run.returncode == 0, video.stderr_reason(run.stderr)
    assert probe_av(out, "video").duration_seconds == pytest.approx(1.0, abs=0.2)


def test_without_cgroup_v2_children_stay_niced(tmp_path: Path) -> None:
    """A root with no cgroup v2 hierarchy (as on a cgroup v1 host): no group, a log line."""
    assert children_cgroup(tmp_path / "no-cgroup2") is None
    assert not (tmp_path / "no-cgroup2").exists()
