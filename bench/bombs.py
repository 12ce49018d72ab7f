"""In-limit image bombs against a real `mediakeep serve` (issue 17, M1): how much the server's
process tree grows while it takes them, against the goal of at most 512 MiB.

Cases: N concurrent uploads (default 2) of a 9990×9990 RGBA PNG (≈380 KB each, one shade per
upload so none is deduplicated), and a 30-byte lossless WebP of 9000×9000. The tree's RSS (the
server and its job workers) is sampled every 50 ms against its idle figure taken after one
small warm-up upload; `/healthz` is asked in a loop meanwhile. Runs in well under 2 minutes.

    .venv/bin/python bench/bombs.py [--uploads 2] [--work DIR] [--env KEY=VALUE ...]
"""

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

sys.path.insert(0, str(common.ROOT))
from tests.reliability.hostile_corpus import webp_lossless_bomb  # noqa: E402

GOAL = 512 * common.MiB
SIDE = 9990
UPLOAD = "/api/v1/media/upload"


def png_bomb(folder: Path, shade: int) -> bytes:
    path = folder / f"bomb-{SIDE}-{shade}.png"
    if not path.exists():
        image = (pyvips.Image.black(SIDE, SIDE, bands=4) + shade).cast("uchar")
        image.copy(interpretation="srgb").pngsave(str(path), compression=9)
    return path.read_bytes()


class Health(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ok = 0
        self.failed = 0
        self.slowest = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._done.wait(0.05):
                started = time.perf_counter()
                try:
                    good = client.get("/healthz").status_code == 200
                except httpx.HTTPError:
                    good = False
                self.slowest = max(self.slowest, time.perf_counter() - started)
                self.ok += good
                self.failed += not good

    def finish(self) -> None:
        self._done.set()
        self.join()


def measure(
    server: common.Server, label: str, files: list[tuple[str, bytes, str]]
) -> tuple[int, list[int]]:
    idle = server.rss()
    health = Health(server.url)
    health.start()
    started = time.perf_counter()

    def send(file: tuple[str, bytes, str]) -> int:
        with httpx.Client(base_url=server.url, timeout=300) as client:
            return client.post(UPLOAD, files={"file": file}).status_code

    with common.RssSampler(server.rss) as sampler, ThreadPoolExecutor(len(files)) as pool:
        statuses = list(pool.map(send, files))
    health.finish()
    growth = sampler.peak - idle
    verdict = "meets" if growth <= GOAL else "MISSES"
    print(
        f"{label}: answers {statuses} in {time.perf_counter() - started:.1f} s; tree RSS "
        f"{idle / common.MiB:.0f} -> {sampler.peak / common.MiB:.0f} MiB "
        f"(+{growth / common.MiB:.0f} MiB; {verdict} the {GOAL // common.MiB} MiB goal); "
        f"/healthz {health.ok} answers, {health.failed} failures, slowest "
        f"{health.slowest * 1000:.0f} ms"
    )
    return growth, statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=2)
    parser.add_argument("--work", type=Path)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the server")
    args = parser.parse_args()
    with common.work_dir(args.work, "bombs-") as work:
        bombs = [png_bomb(work, shade) for shade in range(args.uploads)]
        overrides = dict(item.split("=", 1) for item in args.env)
        env = common.mediakeep_env(work / "data", **overrides)
        server = common.start_mediakeep(work, env)
        try:
            with httpx.Client(base_url=server.url, timeout=60) as client:
                warm = pyvips.Image.black(64, 48, bands=3).pngsave_buffer()
                client.post(UPLOAD, files={"file": ("warm.png", bytes(warm), "image/png")})
            png_growth, _ = measure(
                server,
                f"{args.uploads} concurrent {SIDE}x{SIDE} RGBA PNG",
                [("bomb.png", data, "image/png") for data in bombs],
            )
            webp_growth, _ = measure(
                server,
                "30-byte 9000x9000 WebP",
                [("bomb.webp", webp_lossless_bomb(), "image/webp")],
            )
        finally:
            server.stop()
    goal_mib = GOAL // common.MiB
    common.emit_result(
        "bombs",
        [
            common.goal(
                f"tree RSS growth, {args.uploads} concurrent {SIDE}x{SIDE} RGBA PNG",
                round(png_growth / common.MiB),
                "<=",
                goal_mib,
                "MiB",
            ),
            common.goal(
                "tree RSS growth, 30-byte 9000x9000 WebP",
                round(webp_growth / common.MiB),
                "<=",
                goal_mib,
                "MiB",
            ),
        ],
    )


if __name__ == "__main__":
    main()
