"""The locust users of bench/load.py, run as a library in a process of their own (locust's gevent
monkey-patching stays out of the process that owns the servers and samples them).

    .venv/bin/python bench/load_users.py --host URL --setup setup.json --users 16 \
        --duration 60 --out stats.json

setup.json: {"headers": {...}, "ids": ["med_..."], "images": ["/path/a.jpg", ...]}. Every user
loops without think time over a weighted mix: multipart uploads of unique images (each base JPEG
gets a unique COM segment, so the bytes differ but decoding does not) and of bytes uploaded
before (dedup), GET one media, list, presign followed by a ranged read of the signed URL, and a
transform URL signed by the API then fetched (mostly a few hot sizes, some never asked before).
Against the hello-world peer every answer is the same small JSON: the users then fall back to
fixed paths, so both servers see the same request mix. Writes per-request-type counts,
percentiles, failures and status classes to --out.
"""

import argparse
import collections
import itertools
import json
import random
import time
from pathlib import Path
from typing import Any

import gevent
from locust import FastHttpUser, constant, task
from locust.env import Environment

HOT_SIZES = [(64, 64), (128, 96), (256, 192)]
BOUNDARY = "----mediakeep-load-boundary"


class Shared:
    """State every user reads and grows: media IDs to read, bodies already uploaded."""

    headers: dict[str, str] = {}
    ids: list[str] = []
    images: list[bytes] = []
    uploaded: collections.deque[bytes] = collections.deque(maxlen=256)
    counter = itertools.count()
    statuses: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures: dict[str, list[str]] = collections.defaultdict(list)


def unique_jpeg(base: bytes, tag: int) -> bytes:
    comment = f"mediakeep-load {tag} {time.time_ns()}".encode()
    segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
    return base[:2] + segment + base[2:]


def multipart(body: bytes, filename: str) -> tuple[bytes, str]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="{filename}"\r\nContent-Type: image/jpeg\r\n\r\n'
    ).encode()
    return (
        head + body + f"\r\n--{BOUNDARY}--\r\n".encode(),
        f"multipart/form-data; boundary={BOUNDARY}",
    )


def field(response: Any, name: str) -> str | None:
    try:
        value = response.json().get(name)
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


class MixedUser(FastHttpUser):
    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 30.0

    def _upload(self, body: bytes, name: str) -> None:
        payload, content_type = multipart(body, f"load-{next(Shared.counter)}.jpg")
        headers = Shared.headers | {"Content-Type": content_type}
        response = self.client.post(
            "/api/v1/media/upload", data=payload, headers=headers, name=name
        )
        if response.status_code in (200, 201):
            Shared.uploaded.append(body)
            media_id = field(response, "id")
            if media_id:
                Shared.ids.append(media_id)

    def _media_id(self) -> str:
        return random.choice(Shared.ids)

    @task(2)
    def upload_new(self) -> None:
        tag = next(Shared.counter)
        self._upload(unique_jpeg(Shared.images[tag % len(Shared.images)], tag), "upload (new)")

    @task(1)
    def upload_duplicate(self) -> None:
        if not Shared.uploaded:
            self.upload_new()
            return
        self._upload(random.choice(Shared.uploaded), "upload (duplicate)")

    @task(6)
    def get_media(self) -> None:
        self.client.get(
            f"/api/v1/media/{self._media_id()}", headers=Shared.headers, name="GET media"
        )

    @task(3)
    def list_media(self) -> None:
        self.client.get("/api/v1/media?limit=20", headers=Shared.headers, name="list media")

    @task(4)
    def presign_and_read(self) -> None:
        media_id = self._media_id()
        answer = self.client.get(
            f"/api/v1/media/{media_id}/presign", headers=Shared.headers, name="presign"
        )
        url = field(answer, "url") or f"/files/peer/{media_id}?exp=1&sig=peer"
        self.client.get(url, headers={"Range": "bytes=0-4095"}, name="/files (Range)")

    @task(3)
    def transform(self) -> None:
        media_id = self._media_id()
        cold = random.random() < 0.25
        if cold:
            width, height = random.randint(40, 480), random.randint(40, 480)
        else:
            width, height = random.choice(HOT_SIZES)
        answer = self.client.post(
            f"/api/v1/media/{media_id}/transform-url",
            json={"width": width, "height": height, "fit": "cover", "format": "jpeg"},
            headers=Shared.headers,
            name="transform-url",
        )
        url = field(answer, "url") or f"/t/peer/w_{width},h_{height}/{media_id}"
        self.client.get(url, name="/t (cold size)" if cold else "/t (hot size)")


def on_request(name: str, response: Any, exception: Any, **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    Shared.statuses[name][f"{status // 100}xx" if status else "no answer"] += 1
    if (exception or status >= 500) and len(Shared.failures[name]) < 5:
        text = getattr(response, "text", "") or ""
        Shared.failures[name].append(f"{status} {exception or ''} {text[:200]}".strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", required=True)
    parser.add_argument("--setup", type=Path, required=True)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--duration", type=float, default=60.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    setup = json.loads(args.setup.read_text())
    Shared.headers = dict(setup["headers"])
    Shared.ids = list(setup["ids"])
    Shared.images = [Path(p).read_bytes() for p in setup["images"]]

    env = Environment(user_classes=[MixedUser], host=args.host)
    env.events.request.add_listener(on_request)
    runner = env.create_local_runner()
    started = time.monotonic()
    runner.start(args.users, spawn_rate=args.users)
    gevent.sleep(args.duration)
    runner.quit()
    elapsed = time.monotonic() - started

    rows: dict[str, Any] = {}
    for entry in env.stats.entries.values():
        statuses = Shared.statuses[entry.name]
        rows[entry.name] = {
            "count": entry.num_requests,
            "failures": entry.num_failures,
            "req_per_s": round(entry.num_requests / elapsed, 2),
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "max_ms": round(entry.max_response_time or 0, 1),
            "status_5xx": statuses.get("5xx", 0),
            "statuses": dict(statuses),
            "failure_samples": Shared.failures.get(entry.name, []),
        }
    total = env.stats.total
    args.out.write_text(
        json.dumps(
            {
                "seconds": round(elapsed, 2),
                "users": args.users,
                "requests": total.num_requests,
                "failures": total.num_failures,
                "req_per_s": round(total.num_requests / elapsed, 2),
                "media_ids_at_end": len(Shared.ids),
                "by_type": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
