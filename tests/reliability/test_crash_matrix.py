"""The crash matrix (DESIGN.md, reliability goals): `kill -9` of a real `mediakeep serve` in the
middle of uploads on every ingest path, restart on the same data, and reconcile.

Each round puts one request of every path in flight, each stopped at its own seeded random
byte of the body (multipart upload, remote URL fetched from a loopback source, direct-upload
PUT to the local signed URL or its finalize, tus PATCH), then SIGKILLs the server, restarts it
and completes every upload as a client would: retry, re-finalize, tus HEAD + PATCH the rest.
After N rounds (3; 20 with --long) the sweep runs with MEDIA_ORPHAN_TTL=0s and everything is
reconciled: each row's object is there and hashes to the row's SHA-256, no original without a
row, no temp/spool file, no open S3 multipart upload, no acknowledged upload lost.

MEDIAKEEP_CRASH_SEED replays a run; the summary lines (and JSON lines appended to
$MEDIAKEEP_RELIABILITY_REPORT) are the figures of docs/reliability.md.
"""

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.live import LiveServer
from tests.live.conftest import StartServer, live_backend, start_live_server
from tests.reliability.crash_support import (
    TUS,
    TUS_HEADERS,
    Acked,
    Call,
    DripSource,
    KiB,
    MiB,
    PathTally,
    PausedRequest,
    Served,
    multipart_body,
    multipart_headers,
    reconcile,
    report,
    run_sweep,
    sha256,
    tus_finish,
    tus_metadata,
    tus_patch_headers,
    tus_path,
    wait_all,
    wav_payload,
)

__all__ = ["live_backend", "start_live_server"]

pytestmark = [pytest.mark.reliability, pytest.mark.slow, pytest.mark.timeout(1800)]

MEDIA = "/api/v1/media"
PATHS = ("multipart", "remote", "presigned", "tus")
SOURCE_OF = {"upload": "multipart", "remote_url": "remote", "presigned": "presigned", "tus": "tus"}
ENV = {
    "MEDIA_ALLOW_PRIVATE_NETWORKS": "true",  # the remote source is on loopback
    "MEDIA_RATE_LIMIT_UPLOAD_URL": "100000/minute",
}
MIN_SIZE, MAX_SIZE = 2 * MiB, 4 * MiB
EDGE = 64 * KiB  # kill points stay this far inside the body: mid-transfer, not at its ends


class Matrix:
    """The rounds of one backend: the server, the seeded choices and what the client saw."""

    def __init__(self, server: LiveServer, source: DripSource, seed: int) -> None:
        self.server = server
        self.source = source
        self.rng = random.Random(seed)
        self.s3 = server.s3_client is not None
        self.tallies = {path: PathTally(path, server.backend, seed) for path in PATHS}
        self.acked: list[Acked] = []
        self.owner: dict[str, str] = {}  # payload sha256 → path, to attribute orphans
        self.finalize_seconds = 1.0  # the quickest finalize seen (bounds where a kill lands)
        self.stuck_finalizes: list[str] = []

    # -- payloads and checks

    def payload(self, path: str) -> bytes:
        data = wav_payload(self.rng, self.rng.randrange(MIN_SIZE, MAX_SIZE))
        self.owner[sha256(data)] = path
        return data

    def kill_point(self, low: int, high: int) -> int:
        return self.rng.randrange(low + EDGE, high - EDGE)

    def ack(self, path: str, media: dict[str, Any], data: bytes) -> None:
        assert media["sha256"] == sha256(data), (path, media)
        assert media["status"] == "ready", (path, media)
        self.acked.append(Acked(path, media["id"], media["sha256"]))
        self.tallies[path].acked += 1

    def client(self) -> httpx.Client:
        return self.server.client(timeout=120)

    # -- one complete upload per path (also what a kill must never take back)

    def upload(self, data: bytes, name: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.post(
                f"{MEDIA}/upload",
                files={"file": (name, data, "audio/wav")},
                data={"generate_variants": "false"},
            )
        assert answer.status_code in (200, 201), answer.text
        media: dict[str, Any] = answer.json()
        return media

    def fetch(self, url: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.post(MEDIA, json={"source": {"type": "remote_url", "url": url}})
        assert answer.status_code in (200, 201), answer.text
        media: dict[str, Any] = answer.json()
        return media

    def ticket(self, data: bytes, name: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.post(
                f"{MEDIA}/upload-url",
                json={"filename": name, "mime": "audio/wav", "size_bytes": len(data)},
            )
        assert answer.status_code == 201, answer.text
        ticket: dict[str, Any] = answer.json()
        return ticket

    def put(self, ticket: dict[str, Any], data: bytes) -> None:
        if ticket["upload_method"] == "POST":  # S3: a presigned POST straight to the bucket
            with httpx.Client(trust_env=False, timeout=120) as plain:
                answer = plain.post(
                    ticket["upload_url"],
                    data=ticket["upload_fields"],
                    files={"file": ("blob", data, "audio/wav")},
                )
            assert answer.status_code in (200, 201, 204), answer.text
            return
        with self.client() as client:
            answer = client.put(
                local_target(ticket), content=data, headers=ticket["upload_headers"]
            )
        assert answer.status_code == 200, answer.text

    def finalize(self, media_id: str) -> httpx.Response:
        started = time.monotonic()
        with self.client() as client:
            answer = client.post(f"{MEDIA}/{media_id}/finalize", json={})
        if answer.status_code == 200:
            self.finalize_seconds = min(self.finalize_seconds, time.monotonic() - started)
        return answer

    def tus_create(self, data: bytes, name: str) -> str:
        with self.client() as client:
            answer = client.post(
                TUS,
                headers=TUS_HEADERS
                | {"Upload-Length": str(len(data)), "Upload-Metadata": tus_metadata(filename=name)},
            )
        assert answer.status_code == 201, answer.text
        return tus_path(answer.headers["location"])

    def tus_patch(self, path: str, data: bytes, start: int, end: int) -> None:
        with self.client() as client:
            answer = client.patch(path, headers=tus_patch_headers(start), content=data[start:end])
        assert answer.status_code == 204, answer.text
        assert int(answer.headers["upload-offset"]) == end

    def get(self, media_id: str) -> dict[str, Any]:
        with self.client() as client:
            answer = client.get(f"{MEDIA}/{media_id}")
        assert answer.status_code == 200, answer.text
        media: dict[str, Any] = answer.json()
        return media

    def warm_up(self) -> None:
        """One finished upload per path before the first kill."""
        data = self.payload("multipart")
        self.ack("multipart", self.upload(data, "warm.wav"), data)
        data = self.payload("remote")
        self.source.serve("/warm.wav", data)
        self.ack("remote", self.fetch(self.source.url("/warm.wav")), data)
        data = self.payload("presigned")
        ticket = self.ticket(data, "warm.wav")
        self.put(ticket, data)
        answer = self.finalize(ticket["media_id"])
        assert answer.status_code == 200, answer.text
        self.ack("presigned", answer.json(), data)
        data = self.payload("tus")
        location = self.tus_create(data, "warm.wav")
        _, media_id = tus_finish(self.server, location, data)
        self.ack("tus", self.get(media_id), data)

    # -- a round: everything in flight, one SIGKILL, restart, recover

    def round(self, number: int) -> None:
        server, rng = self.server, self.rng
        name = f"round{number}.wav"

        multipart_data = self.payload("multipart")
        body, start = multipart_body(name, "audio/wav", multipart_data)
        multipart_at = self.kill_point(0, len(multipart_data))
        multipart = PausedRequest(
            server, "POST", f"{MEDIA}/upload", multipart_headers(), body, start + multipart_at
        )

        remote_data = self.payload("remote")
        remote_at = self.kill_point(0, len(remote_data))
        served = self.source.serve(f"/{name}", remote_data, pause_at=remote_at)
        remote = Call(
            server,
            "POST",
            MEDIA,
            json={"source": {"type": "remote_url", "url": self.source.url(f"/{name}")}},
        )

        presigned_data = self.payload("presigned")
        ticket = self.ticket(presigned_data, name)
        # On S3 the PUT goes to the bucket, not to the server: only a finalize can be cut.
        phase = "finalize" if self.s3 or rng.random() < 0.5 else "put"
        put: PausedRequest | None = None
        if phase == "put":
            put_at = self.kill_point(0, len(presigned_data))
            put = PausedRequest(
                server,
                "PUT",
                local_target(ticket),
                ticket["upload_headers"],
                presigned_data,
                put_at,
            )
        else:
            self.put(ticket, presigned_data)

        tus_data = self.payload("tus")
        location = self.tus_create(tus_data, name)
        acknowledged = rng.randrange(EDGE, len(tus_data) // 2)
        self.tus_patch(location, tus_data, 0, acknowledged)
        tus_at = self.kill_point(acknowledged, len(tus_data))
        patch = PausedRequest(
            server,
            "PATCH",
            location,
            tus_patch_headers(acknowledged),
            tus_data[acknowledged:],
            tus_at - acknowledged,
        )

        waiting = [multipart, remote, patch] + ([put] if put else [])
        for thread in waiting:
            thread.start()
        paused = [multipart.paused, patch.paused] + ([put.paused] if put else [])
        assert wait_all(paused, 60), "a request never reached its kill point"
        deadline = time.monotonic() + 60
        while not served.paused.is_set() and remote.is_alive():
            assert time.monotonic() < deadline, "the remote fetch never reached its kill point"
            time.sleep(0.005)  # poll: the fetch runs in the server
        finalize: Call | None = None
        finalize_delay = 0.0
        if phase == "finalize":
            finalize = Call(server, "POST", f"{MEDIA}/{ticket['media_id']}/finalize", json={})
            finalize.start()
            # Most kills land inside the finalize; a few after it, which must be harmless too.
            finalize_delay = rng.uniform(0, self.finalize_seconds)
            time.sleep(finalize_delay)  # where in the finalize the kill lands (seeded)

        server.kill()  # SIGKILL, by PID
        for event in (multipart.release, served.release, patch.release):
            event.set()
        if put:
            put.release.set()
        for thread in [*waiting, *([finalize] if finalize else [])]:
            thread.join(60)
            assert not thread.is_alive()
        for path in PATHS:
            self.tallies[path].kills += 1
        self.tallies["multipart"].kill_points.append(f"{multipart_at}/{len(multipart_data)}")
        self.tallies["remote"].kill_points.append(f"{remote_at}/{len(remote_data)}")
        self.tallies["presigned"].kill_points.append(
            f"put {put.pause_at}/{len(presigned_data)}"
            if put
            else f"finalize +{finalize_delay:.3f}s"
        )
        self.tallies["tus"].kill_points.append(f"{tus_at}/{len(tus_data)}")

        server.restart()

        # At once, as four independent clients would: the tus resume waits out the lease the
        # killed PATCH held while the others retry.
        with ThreadPoolExecutor(len(PATHS)) as pool:
            recoveries = [
                pool.submit(self.recover_multipart, multipart, multipart_data, name),
                pool.submit(self.recover_remote, remote, served, remote_data, name),
                pool.submit(self.recover_presigned, ticket, put, finalize, presigned_data),
                pool.submit(self.recover_tus, location, acknowledged, tus_at, tus_data),
            ]
            for recovery in recoveries:
                recovery.result()

    # -- recovery, as a client would

    def recover_multipart(self, request: PausedRequest, data: bytes, name: str) -> None:
        tally = self.tallies["multipart"]
        if request.response is not None and request.response.status in (200, 201):
            tally.answered_before_kill += 1
            self.ack("multipart", request.response.json(), data)
            return
        assert request.response is None, request.response
        self.ack("multipart", self.upload(data, name), data)
        tally.resumed += 1

    def recover_remote(self, call: Call, served: Served, data: bytes, name: str) -> None:
        tally = self.tallies["remote"]
        if call.status in (200, 201):
            tally.answered_before_kill += 1
            self.ack("remote", call.body, data)
            return
        assert call.status is None, (call.status, call.body)
        self.ack("remote", self.fetch(self.source.url(f"/{name}")), data)
        assert served.requests == 2  # the retry fetched the source again, whole
        tally.resumed += 1

    def recover_presigned(
        self,
        ticket: dict[str, Any],
        put: PausedRequest | None,
        finalize: Call | None,
        data: bytes,
    ) -> None:
        tally = self.tallies["presigned"]
        media_id = ticket["media_id"]
        if finalize is not None and finalize.status == 200:
            tally.answered_before_kill += 1
            self.ack("presigned", finalize.body, data)
            return
        if finalize is not None:
            assert finalize.status is None, (finalize.status, finalize.body)
        if put is not None:
            if put.response is not None:
                assert put.response.status == 200, put.response
                tally.answered_before_kill += 1
            else:
                self.put(ticket, data)  # the signed URL is still valid: send it again
        answer = self.finalize(media_id)
        if answer.status_code == 409 and self.get(media_id)["status"] == "pending":
            # The PUT was acknowledged (200) but the killed finalize lost its bytes: the
            # client has to upload again. Counted, and the matrix fails on it.
            self.stuck_finalizes.append(f"{media_id}: {answer.text}")
            self.put(ticket, data)
            answer = self.finalize(media_id)
        if answer.status_code == 409:  # the killed finalize had committed: the media stands
            media = self.get(media_id)
        else:
            assert answer.status_code == 200, answer.text
            media = answer.json()
        self.ack("presigned", media, data)
        tally.resumed += 1

    def recover_tus(self, location: str, acknowledged: int, sent: int, data: bytes) -> None:
        resumed_at, media_id = tus_finish(self.server, location, data)
        # Nothing acknowledged is lost; nothing past what was sent can be there.
        assert acknowledged <= resumed_at <= sent, (acknowledged, resumed_at, sent)
        media = self.get(media_id)
        assert media["sha256"] == sha256(data)
        assert (media["size_bytes"], media["source"]) == (len(data), "tus")
        self.ack("tus", media, data)
        self.tallies["tus"].resumed += 1


def local_target(ticket: dict[str, Any]) -> str:
    """The path and query of the local backend's signed PUT URL."""
    parts = urlsplit(ticket["upload_url"])
    return f"{parts.path}?{parts.query}"


def test_kill_9_on_every_ingest_path_leaves_no_orphan_and_no_mismatch(
    start_live_server: StartServer, live_backend: str, long_mode: bool
) -> None:
    seed = int(os.environ.get("MEDIAKEEP_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rounds = 20 if long_mode else 3
    print(f"crash-matrix seed={seed} backend={live_backend} rounds={rounds}")  # noqa: T201
    server = start_live_server(live_backend, env=ENV)
    started = time.monotonic()
    with DripSource() as source:
        matrix = Matrix(server, source, seed)
        matrix.warm_up()
        for number in range(rounds):
            matrix.round(number)
    # What the kills left behind: the sweep below has to remove all of it.
    leftovers = len(server.spool_files()) + len(server.multipart_uploads())
    swept = run_sweep(server)
    result = reconcile(server, matrix.acked)

    tallies = matrix.tallies
    for row_id in result.orphan_rows:
        source_path = SOURCE_OF.get(next(r.source for r in result.rows if r.id == row_id), "tus")
        tallies[source_path].orphan_rows += 1
    for key in result.orphan_objects:
        owner = matrix.owner.get(key.rsplit("/", 1)[-1])
        if owner is not None:
            tallies[owner].orphan_objects += 1
    by_id = {row.id: row for row in result.rows}
    for row_id in [*result.mismatches, *result.missing_objects]:
        tallies[SOURCE_OF[by_id[row_id].source]].mismatches += 1
    for lost in result.lost:
        tallies[lost.path].lost += 1
    report(
        list(tallies.values()),
        {
            "rounds": rounds,
            "seconds": round(time.monotonic() - started, 1),
            "sweep": swept,
            "leftovers_before_sweep": leftovers,
            "temp_files_left": len(result.temp_files),
            "multipart_uploads_left": len(result.multipart_uploads),
            "unfinished_tus_uploads": len(result.unfinished_tus),
            "stuck_finalizes": len(matrix.stuck_finalizes),
        },
    )

    assert leftovers > 0, "no kill left a partial upload behind: did they land mid-transfer?"
    assert matrix.stuck_finalizes == [], "an acknowledged PUT was lost by a killed finalize"
    assert result.missing_objects == []
    assert result.mismatches == []
    assert result.orphan_rows == []
    assert result.orphan_objects == []
    assert result.temp_files == []
    assert result.multipart_uploads == []
    assert result.unfinished_tus == []
    assert result.lost == []
    # Every acknowledged upload is one ready row, and there is nothing else.
    assert sorted(row.id for row in result.rows) == sorted({a.media_id for a in matrix.acked})
    assert len(matrix.acked) == len(PATHS) * (rounds + 1)
