"""A real tus client (tuspy) against a real `mediakeep serve`: the server is killed with SIGKILL
in the middle of an upload, restarted on the same data dir, and the client resumes from the
stored upload URL to a media whose SHA-256 is the source's, leaving nothing behind."""

import hashlib
import threading
import time
from pathlib import Path

import httpx
import pytest
from tusclient.client import TusClient
from tusclient.storage.filestorage import FileStorage
from tusclient.uploader import Uploader

from tests.live import LiveServer
from tests.live.conftest import StartServer
from tests.tus.support import MiB, wav

SIZE = 24 * MiB + 4321
CHUNK = MiB
KILL_AFTER = 12 * MiB  # acknowledged bytes when the server is killed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Sha256Uploader(Uploader):
    """sha256 checksums (tuspy's default, sha1, is covered by test_checksums.py)."""

    CHECKSUM_ALGORITHM_PAIR = ("sha256", hashlib.sha256)


def uploader(server: LiveServer, source: Path, urls: FileStorage) -> Sha256Uploader:
    return Sha256Uploader(
        file_path=str(source),
        client=TusClient(f"{server.base_url}/api/v1/uploads/tus"),
        chunk_size=CHUNK,
        metadata={"filename": "resumed.wav"},
        store_url=True,
        url_storage=urls,
        upload_checksum=True,
        # A PATCH cut off by the kill holds the upload's lease until it goes stale (423).
        retries=30,
        retry_delay=1,
    )


class Background(threading.Thread):
    """Uploads chunk by chunk until done or until the server goes away."""

    def __init__(self, upload: Sha256Uploader) -> None:
        super().__init__(daemon=True)
        self.upload = upload
        self.acknowledged = 0
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            while self.upload.offset < self.upload.stop_at:
                self.upload.upload_chunk()
                self.acknowledged = self.upload.offset
        except Exception as exc:  # the server was killed under it
            self.error = exc


def test_a_tus_upload_killed_mid_way_resumes_to_the_right_sha256(
    start_live_server: StartServer, live_backend: str, tmp_path: Path
) -> None:
    server = start_live_server(live_backend)
    source = tmp_path / "source.wav"
    source.write_bytes(wav(SIZE))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    urls = FileStorage(str(tmp_path / "tus-urls.json"))

    first = Background(uploader(server, source, urls))
    first.start()
    deadline = time.monotonic() + 120
    while first.acknowledged < KILL_AFTER:
        assert first.is_alive(), f"the upload ended early: {first.error!r}"
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.005)
    server.kill()  # SIGKILL, by PID, while the client keeps sending
    first.join(60)
    assert not first.is_alive()
    assert first.error is not None, "the upload finished before the kill"
    acknowledged = first.acknowledged
    assert KILL_AFTER <= acknowledged < SIZE

    server.restart()
    resumed = uploader(server, source, urls)  # finds the stored URL, asks the offset (HEAD)

    assert resumed.url == first.upload.url
    assert resumed.offset >= acknowledged  # nothing acknowledged was lost
    resumed.upload()

    assert resumed.request is not None
    media_id = resumed.request.response_headers["media-id"]
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        media = client.get(f"/api/v1/media/{media_id}").json()
        status = client.head(resumed.url, headers={"Tus-Resumable": "1.0.0"})
    assert media["sha256"] == digest
    assert (media["size_bytes"], media["filename"], media["source"]) == (SIZE, "resumed.wav", "tus")
    assert status.headers["media-id"] == media_id
    assert server.media_ids() == [media_id]
    # One original, and the audio's waveform (the post-ingest step); no spool file, no S3
    # multipart upload left behind.
    variants = f"{media['org_id']}/variants/{media_id}/v1"
    assert server.stored_objects() == [
        f"{media['org_id']}/originals/{digest}",
        f"{variants}/waveform.png",
        f"{variants}/waveform_json.json",
    ]
    assert server.spool_files() == []
    assert server.multipart_uploads() == []
