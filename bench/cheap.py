"""Hot reads (issue 15): mediakeep's GET one media, its list and the S3 presign path against
their peers, and `serve --workers 2` against one worker, every side in the same run.

    .venv/bin/python bench/cheap.py [--pairs 3] [--seconds 5] [--backends sqlite,postgres]
        [--quick] [--pin-wrk CPU] [--rows 1000000] [--output FILE] [--work-dir DIR]

Load: wrk (`apt-get install wrk` when missing), one thread, c=8, every request with the Bearer
access token of a registered user (auth on, rate limits raised far above the load).

For each backend (`sqlite`: SQLite + local storage; `postgres`: PostgreSQL + S3, both started
from tests/fixtures/services.py, SeaweedFS for S3), on one database:

  - `mediakeep serve --no-worker` (one worker, what the goals are stated for) with --seed
    real JPEG uploads (each has its variants, rendered at upload);
  - `mediakeep serve --no-worker --workers 2` on the same database and storage;
  - FastAPI hello world (bench/load_hello.py) and the one-query app (bench/load_onequery.py:
    FastAPI + SQLAlchemy async, `SELECT * FROM media WHERE id = :id` through aiosqlite on the
    same SQLite file, asyncpg on the same PostgreSQL database), both with the uvicorn settings
    of `mediakeep serve`.

Then --pairs rounds, the order of the sides rotating each round, every side measured once per
round (--seconds each, after its process tree has gone idle): hello world, the one-query app
(GET /media/{id} over the seeded ids, and GET /media?limit=20: the newest 20 rows in one
statement), mediakeep GET /api/v1/media/{id} (the same ids), GET /api/v1/media?limit=20 (the
same 20 media, each answered whole: its variants and their signed links), the same GET on the
2-worker server and, on postgres, raw boto3 `generate_presigned_url` calls/s in this process,
mediakeep's `S3Storage.signed_url` calls/s signing the same request (the same client
configuration and parameters; checked to sign the same request) and GET
/api/v1/media/{id}/presign. Ratios are taken within a round and reported as the median and the
range (min–max) over the rounds. Goals:

  - GET one at least 0.6× the one-query app reading that row, and the list at least 0.6× it
    reading that page (the list against the one-row read is printed too), p99 at most 25 ms;
  - the S3 presign path at least 0.7× raw boto3: the storage layer's signing against boto3's,
    both in process. Issue 15 put it as the endpoint's req/s against boto3's calls/s, which no
    HTTP endpoint can reach: boto3 signs about as many links a second as FastAPI's hello world
    answers requests here. The endpoint's rate is printed against boto3 and against GET one;
  - `--workers 2` at least 1.6× one worker (GET one).

The CPU each side used is printed too (server, wrk, and PostgreSQL's processes), so the
ceiling of the workers ratio on a small machine can be read off: wrk and the database run on
the same cores as the server. By default nothing is pinned; `--pin-wrk CPU` runs every wrk
under `taskset -c CPU` (both sides of every pair alike).

--rows N (optional, slow; DESIGN.md's figure is 1,000,000) adds the listing measurement at N
media rows in PostgreSQL: p95 of GET /api/v1/media?limit=50 at c=1, goal < 20 ms.

--quick: one round of 2 s per side and 4 seeded media, a smoke test of the whole chain, not
figures to compare with the goals.

Results: bench/results/cheap.json (or --output); the last line is RESULT {json}
(bench/_common.py).
"""

import argparse
import asyncio
import contextlib
import os
import resource
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import psutil
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

sys.path.insert(0, str(common.ROOT))
from tests.fixtures.services import (  # noqa: E402
    S3Server,
    ServiceUnavailable,
    start_postgres,
    start_seaweedfs,
)

RESULTS = common.ROOT / "bench" / "results" / "cheap.json"
BENCH = Path(__file__).resolve().parent
HELLO_SCRIPT = BENCH / "load_hello.py"
ONEQUERY_SCRIPT = BENCH / "load_onequery.py"
GENEROUS = "100000000/minute"
CONCURRENCY = 8
GOAL_VS_PEER = 0.6
GOAL_P99_MS = 25.0
GOAL_VS_BOTO3 = 0.7
GOAL_WORKERS = 1.6
GOAL_LIST_P95_MS = 20.0
GOAL_ROWS = 1_000_000
LIST_PAGE = 20
LIST_PATH = f"/api/v1/media?limit={LIST_PAGE}"
LIST_LIMIT = 50  # the listing-at-N-rows part (DESIGN.md's figure)
SEED_MEDIA = 24
BUCKET = "bench-cheap"
BACKENDS = {
    "sqlite": "SQLite + local storage",
    "postgres": "PostgreSQL + S3 (SeaweedFS)",
}
WHY_NOT_PINNED = (
    "wrk not pinned: on 2 cores, pinning wrk to one core reserves nothing (the server's "
    "processes still run there), and giving wrk a core of its own (the server on the other) "
    "would cap `--workers 2` at one core. Unpinned, both sides of every pair share the cores "
    "the same way; the CPU wrk and the database used is printed, so the ceiling of the "
    "workers ratio (cores - client - database) is visible."
)


def run_wrk(
    wrk: str,
    url: str,
    paths: list[str],
    concurrency: int,
    seconds: float,
    headers: dict[str, str],
    prefix: list[str] | None = None,
) -> dict[str, Any]:
    """One wrk run (one thread, `common.run_wrk`), its figures rounded for the table."""
    data = common.run_wrk(
        wrk, url, paths, concurrency, seconds, headers, threads=1, timeout="30s", prefix=prefix
    )
    return {
        "requests": data["requests"],
        "seconds": round(data["seconds"], 2),
        "req_per_s": round(data["req_per_s"], 1),
        "p50_ms": round(data["p50_ms"], 2),
        "p95_ms": round(data["p95_ms"], 2),
        "p99_ms": round(data["p99_ms"], 2),
        "errors": data["errors"],
        "concurrency": concurrency,
    }


def check_paths(url: str, paths: list[str], headers: dict[str, str]) -> None:
    """Each path answers 200 before it is measured, so a benchmark never times error pages."""
    with httpx.Client(base_url=url, headers=headers, timeout=60) as http:
        for path in paths[:3]:
            answer = http.get(path)
            if answer.status_code != 200:
                raise SystemExit(f"GET {path} answered {answer.status_code}: {answer.text[:300]}")


def test_image(directory: Path) -> bytes:
    path = directory / "seed.jpg"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        noise = pyvips.Image.perlin(640, 480, cell_size=64, uchar=True)
        noise.bandjoin([noise, noise]).copy(interpretation="srgb").jpegsave(str(path), Q=85)
    return path.read_bytes()


def server_env(data: Path, **overrides: object) -> dict[str, str]:
    return common.mediakeep_env(
        data,
        AUTH_ENABLED="true",
        MEDIA_RATE_LIMIT_ANONYMOUS=GENEROUS,
        MEDIA_RATE_LIMIT_USER=GENEROUS,
        MEDIA_RATE_LIMIT_API_KEY=GENEROUS,
        **overrides,
    )


def start_server(work: Path, env: dict[str, str], name: str, workers: int = 1) -> common.Server:
    """`mediakeep serve --no-worker [--workers N]`; a failed start shows its log (the work dir
    may be removed) and is tried once more on another port. With N workers it returns once the
    supervisor has its N worker processes."""
    for attempt in (1, 2):
        try:
            server = common.start_mediakeep(work, env, worker=False, name=name, workers=workers)
        except SystemExit:
            log = work / f"{name}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            print(f"  {name} did not start (attempt {attempt}); its log:\n{tail}", flush=True)
            if attempt == 2:
                raise
            continue
        deadline = time.monotonic() + 60
        while workers > 1 and len(worker_processes(server)) < workers:
            if time.monotonic() > deadline:
                server.stop()
                raise SystemExit(f"{name}: fewer than {workers} worker processes after 60 s")
            time.sleep(0.1)
        return server
    raise AssertionError("unreachable")


def worker_processes(server: common.Server) -> list[psutil.Process]:
    """The uvicorn worker processes under a `serve --workers N` supervisor (its Python
    children other than multiprocessing's helpers)."""
    with contextlib.suppress(psutil.NoSuchProcess):
        return [
            child
            for child in psutil.Process(server.pid).children()
            if "multiprocessing.resource_tracker" not in " ".join(child.cmdline())
        ]
    return []


def bearer(url: str) -> dict[str, str]:
    account = common.create_account(url, key=False)
    return {"Authorization": f"Bearer {account.token}"}


def row(label: str, run: dict[str, Any]) -> str:
    if "calls_per_s" in run:
        return f"  {label:<34} {run['calls_per_s']:>8.0f} calls/s (in this process, one core)"
    if "server_cores" not in run:  # the listing part measures latency only
        cpu = ""
    else:
        cpu = f"cores: server {run['server_cores']:.2f}, wrk {run['client_cores']:.2f}"
    if run.get("db_cores") is not None:
        cpu += f", db {run['db_cores']:.2f}"
    if run.get("worker_shares"):
        cpu += ", split " + "/".join(f"{share:.0%}" for share in run["worker_shares"])
    return (
        f"  {label:<34} {run['req_per_s']:>8.0f} req/s  p50 {run['p50_ms']:>6.2f}  "
        f"p95 {run['p95_ms']:>6.2f}  p99 {run['p99_ms']:>6.2f} ms  errors {run['errors']}  {cpu}"
    ).rstrip()


# --------------------------------------------------------------------------- sides


@dataclass
class Side:
    """One thing measured in a round: wrk against a server's paths, or (`call`) a loop in this
    process whose rate is counted."""

    key: str
    label: str
    server: common.Server | None = None
    paths: list[str] = field(default_factory=list)
    call: Callable[[], None] | None = None


@dataclass
class Backend:
    name: str
    label: str
    env: dict[str, str]
    peer_dsn: str
    db_pid: int | None = None
    s3: S3Server | None = None


@contextlib.contextmanager
def backend(name: str, work: Path) -> Iterator[Backend]:
    """The database and storage of one backend, stopped afterwards."""
    if name == "sqlite":
        data = work / "data-sqlite"
        dsn = f"sqlite+aiosqlite:///{(data / 'mediakeep.db').resolve()}"
        yield Backend(name, BACKENDS[name], server_env(data), dsn)
        return
    pg = start_postgres(work)
    s3 = None
    try:
        s3 = start_seaweedfs(work)
        s3.create_bucket(BUCKET)
        env = server_env(work / "data-postgres", DB_POSTGRESQL_WRITE_DSN=pg.dsn, **s3_env(s3))
        yield Backend(name, BACKENDS[name], env, pg.dsn, pg.pid, s3)
    finally:
        if s3 is not None:
            s3.stop()
            s3.cleanup()
        pg.stop()
        pg.cleanup()


def s3_env(s3: S3Server) -> dict[str, str]:
    return {
        "MEDIA_STORAGE_BACKEND": "s3",
        "MEDIA_S3_ENDPOINT": s3.endpoint,
        "MEDIA_S3_BUCKET": BUCKET,
        "MEDIA_S3_ACCESS_KEY_ID": s3.access_key,
        "MEDIA_S3_SECRET_ACCESS_KEY": s3.secret_key,
        "MEDIA_S3_REGION": s3.region,
        "MEDIA_S3_USE_PATH_STYLE": "true",
    }


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk runs under subprocess.run)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def cpu_of(processes: list[psutil.Process]) -> list[float]:
    times = []
    for process in processes:
        try:
            spent = process.cpu_times()
            times.append(spent.user + spent.system)
        except psutil.NoSuchProcess:
            times.append(0.0)
    return times


def measure(
    wrk: str,
    side: Side,
    seconds: float,
    headers: dict[str, str],
    db_pid: int | None,
    pin: list[str],
) -> dict[str, Any]:
    """One measured run of a side, after its process tree went idle: wrk's figures and the
    cores the server, wrk and the database used meanwhile."""
    if side.call is not None:
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            for _ in range(50):
                side.call()
            calls += 50
        return {"calls_per_s": round(calls / (time.perf_counter() - started), 1)}
    server = side.server
    assert server is not None
    common.wait_idle(server.cpu_seconds)
    workers = worker_processes(server)
    split_before = cpu_of(workers)
    server_before, client_before = server.cpu_seconds(), children_cpu()
    db_before = common.tree_cpu_seconds(db_pid) if db_pid else 0.0
    run = run_wrk(wrk, server.url, side.paths, CONCURRENCY, seconds, headers, pin)
    wall = run["seconds"] or seconds
    run["server_cores"] = round((server.cpu_seconds() - server_before) / wall, 3)
    run["client_cores"] = round((children_cpu() - client_before) / wall, 3)
    run["db_cores"] = (
        round((common.tree_cpu_seconds(db_pid) - db_before) / wall, 3) if db_pid else None
    )
    split = [after - before for before, after in zip(split_before, cpu_of(workers), strict=True)]
    if len(split) > 1 and sum(split) > 0:
        run["worker_shares"] = [round(x / sum(split), 3) for x in split]
    return run


def interleave(
    wrk: str,
    sides: list[Side],
    pairs: int,
    seconds: float,
    headers: dict[str, str],
    db_pid: int | None,
    pin: list[str],
) -> dict[str, list[dict[str, Any]]]:
    """`pairs` rounds; each round measures every side once, starting one side later than the
    round before, so no side always runs first. Each run starts once the server of the run
    before it has gone idle as well as its own."""
    runs: dict[str, list[dict[str, Any]]] = {side.key: [] for side in sides}
    for side in sides:  # warm code paths, caches and pools; not measured
        if side.server is not None:
            check_paths(side.server.url, side.paths, headers)
        measure(wrk, side, 1, headers, None, pin)
    previous: common.Server | None = None
    for pair in range(pairs):
        shift = pair % len(sides)
        for side in sides[shift:] + sides[:shift]:
            if previous is not None:
                common.wait_idle(previous.cpu_seconds)
            run = measure(wrk, side, seconds, headers, db_pid, pin) | {"pair": pair}
            previous = side.server or previous
            runs[side.key].append(run)
            print(row(f"round {pair + 1} {side.label}", run), flush=True)
    return runs


# --------------------------------------------------------------------------- one backend


def presign_sides(
    server: common.Server, work: Path, be: Backend, ids: list[str], headers: dict[str, str]
) -> list[Side]:
    """Raw boto3 signing a request, mediakeep's storage layer signing the same one (each link
    made anew: no `issued`, so no cache), and the presign endpoint over HTTP."""
    from mediakeep.config import Settings
    from mediakeep.kit.http import content_disposition as disposition
    from mediakeep.storage.s3 import S3Storage

    assert be.s3 is not None
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        first = http.get(f"/api/v1/media/{ids[0]}").json()
    key = f"{first['org_id']}/originals/{first['sha256']}"
    filename = first["filename"]
    values: dict[str, Any] = {k: v for k, v in be.env.items() if k.startswith("MEDIA_S3_")}
    values |= {"MEDIA_DATA_DIR": str(work / "data-presign"), "MEDIA_STORAGE_BACKEND": "s3"}
    settings = Settings(**values)
    storage = S3Storage(settings)
    client = be.s3.client()
    params = {
        "Bucket": BUCKET,
        "Key": key,
        "ResponseContentDisposition": disposition(filename, "inline"),
        "ResponseContentType": "image/jpeg",
    }
    # Both sign the same object with the same parameters, or the comparison means nothing.
    ours = storage.signed_url(key, 3600, filename=filename, content_type="image/jpeg")
    raw = client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
    ours_url, raw_url = urlsplit(ours), urlsplit(raw)
    if (ours_url.path, sorted(parse_qs(ours_url.query))) != (
        raw_url.path,
        sorted(parse_qs(raw_url.query)),
    ):
        raise SystemExit(f"different requests signed: {ours} vs {raw}")

    def boto3_call() -> None:
        client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)

    def layer_call() -> None:
        storage.signed_url(key, 3600, filename=filename, content_type="image/jpeg")

    return [
        Side(
            "presign",
            "GET /media/{id}/presign",
            server,
            [f"/api/v1/media/{i}/presign" for i in ids],
        ),
        Side("boto3", "raw boto3 generate_presigned_url", call=boto3_call),
        Side("layer", "mediakeep S3Storage.signed_url", call=layer_call),
    ]


def run_backend(
    wrk: str, work: Path, be: Backend, args: argparse.Namespace, image: bytes, pin: list[str]
) -> dict[str, Any]:
    servers: list[common.Server] = []
    try:
        one = start_server(work, be.env, f"mediakeep-{be.name}")
        servers.append(one)
        headers = bearer(one.url)
        ids = common.seed_jpegs(one.url, headers, [image], args.seed)
        with httpx.Client(base_url=one.url, headers=headers, timeout=30) as http:
            variants = len(http.get(f"/api/v1/media/{ids[0]}").json()["variants"])
            listed = len(http.get(LIST_PATH).json()["data"])
        if variants == 0:
            raise SystemExit("the seeded media have no variants: GET would not read any")
        print(
            f"  seeded {len(ids)} JPEG uploads ({variants} variants each); the list page has "
            f"{listed} media",
            flush=True,
        )
        two = start_server(work, be.env, f"mediakeep-{be.name}-2w", workers=2)
        servers.append(two)
        port = common.free_port()
        hello = common.Server(
            "hello",
            [sys.executable, str(HELLO_SCRIPT), "--port", str(port)],
            be.env,
            work / f"hello-{be.name}.log",
            port,
            ready_path="/",
        )
        port = common.free_port()
        peer = common.Server(
            "one-query",
            [sys.executable, str(ONEQUERY_SCRIPT), "--port", str(port), "--dsn", be.peer_dsn],
            be.env,
            work / f"onequery-{be.name}.log",
            port,
            ready_path="/hello",
        )
        for server in (hello, peer):
            server.start()
            servers.append(server)
        for server in servers:
            print(f"  $ {shlex.join(server.argv)}  # {server.url}", flush=True)
        gets = [f"/api/v1/media/{i}" for i in ids]
        sides = [
            Side("hello", "hello world", hello, ["/"]),
            Side("peer", "one-query app", peer, [f"/media/{i}" for i in ids]),
            Side("get", "GET /media/{id}", one, gets),
            Side("peer_list", "one-query app, a page", peer, [f"/media?limit={LIST_PAGE}"]),
            Side("list", f"GET /media?limit={LIST_PAGE}", one, [LIST_PATH]),
            Side("get_w2", "GET /media/{id}, --workers 2", two, gets),
        ]
        if be.s3 is not None:
            sides += presign_sides(one, work, be, ids, headers)
        runs = interleave(wrk, sides, args.pairs, args.seconds, headers, be.db_pid, pin)
    finally:
        for server in reversed(servers):
            server.stop()
    return {"label": be.label, "seeded": len(ids), "variants": variants, "runs": runs}


# --------------------------------------------------------------------------- figures


def ratios(runs: dict[str, list[dict[str, Any]]], a: str, b: str) -> list[float]:
    def rate(run: dict[str, Any]) -> float:
        return float(run.get("req_per_s", run.get("calls_per_s", 0.0)))

    return [rate(x) / rate(y) for x, y in zip(runs[a], runs[b], strict=True) if rate(y) > 0]


def spread(values: list[float]) -> dict[str, float]:
    return {"median": common.median(values), "low": min(values), "high": max(values)}


def goals_of(name: str, result: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The goals of one backend from its rounds: ratios within each round, then their median
    and range; all "not measured" when the backend did not run."""
    runs: dict[str, list[dict[str, Any]]] = (
        result["runs"]
        if result
        else dict.fromkeys(("get", "peer", "list", "peer_list", "get_w2"), [])
    )
    stated: list[tuple[str, list[float], str, float, str]] = [
        ("GET /media/{id} / one-query app", ratios(runs, "get", "peer"), ">=", GOAL_VS_PEER, "x"),
        ("GET /media/{id} p99", [r["p99_ms"] for r in runs["get"]], "<=", GOAL_P99_MS, "ms"),
        (
            f"GET /media?limit={LIST_PAGE} / one-query app, the same page",
            ratios(runs, "list", "peer_list"),
            ">=",
            GOAL_VS_PEER,
            "x",
        ),
        (
            f"GET /media?limit={LIST_PAGE} p99",
            [r["p99_ms"] for r in runs["list"]],
            "<=",
            GOAL_P99_MS,
            "ms",
        ),
        (
            "--workers 2 / 1 worker, GET /media/{id}",
            ratios(runs, "get_w2", "get"),
            ">=",
            GOAL_WORKERS,
            "x",
        ),
    ]
    if "presign" in runs or (result is None and name == "postgres"):
        runs.setdefault("presign", [])
        runs.setdefault("boto3", [])
        runs.setdefault("layer", [])
        stated.append(
            (
                "S3 presign, S3Storage.signed_url calls/s / raw boto3 calls/s",
                ratios(runs, "layer", "boto3"),
                ">=",
                GOAL_VS_BOTO3,
                "x",
            )
        )
    goals = []
    for label, values, op, target, unit in stated:
        if not values:
            goals.append(common.goal(f"{name}: {label}", None, op, target, unit))
            continue
        s = spread(values)
        goals.append(
            common.goal(f"{name}: {label}", s["median"], op, target, unit, (s["low"], s["high"]))
        )
    errors = sum(r.get("errors", 0) for side in runs.values() for r in side)
    failed = errors if result else None
    goals.append(common.goal(f"{name}: failed requests, all sides", failed, "<=", 0))
    return goals


def figures_of(name: str, result: dict[str, Any]) -> dict[str, float]:
    """Figures without a goal: each side's median rate, the mediakeep reads against hello
    world, and the CPU behind the workers ratio."""
    runs = result["runs"]
    figures: dict[str, float] = {}
    for key, label in (
        ("hello", "hello world req/s"),
        ("peer", "one-query app req/s"),
        ("peer_list", f"one-query app, a page of {LIST_PAGE} rows, req/s"),
        ("get", "GET /media/{id} req/s"),
        ("list", f"GET /media?limit={LIST_PAGE} req/s"),
        ("get_w2", "GET /media/{id} req/s, --workers 2"),
        ("presign", "S3 presign req/s"),
        ("boto3", "raw boto3 presigns/s"),
        ("layer", "mediakeep S3Storage.signed_url calls/s"),
    ):
        if key in runs:
            rate = "calls_per_s" if key in ("boto3", "layer") else "req_per_s"
            figures[f"{name}: {label}"] = round(common.median(r[rate] for r in runs[key]), 1)
    figures[f"{name}: GET /media/{{id}} / hello world"] = round(
        common.median(ratios(runs, "get", "hello")), 3
    )
    # The list against the one-row read: what a page of full media objects (each with its
    # variants' signed links) costs beyond one row, for comparison with earlier runs.
    figures[f"{name}: GET /media?limit={LIST_PAGE} / one-query app, one row"] = round(
        common.median(ratios(runs, "list", "peer")), 3
    )
    for key, label in (("get", "1 worker"), ("get_w2", "--workers 2")):
        for what in ("server", "client", "db"):
            values = [r[f"{what}_cores"] for r in runs[key] if r.get(f"{what}_cores") is not None]
            if values:
                shown = {"server": "server", "client": "wrk", "db": "database"}[what]
                figures[f"{name}: {shown} cores, GET {label}"] = round(common.median(values), 2)
    per_core = [
        (w2["req_per_s"] / w2["server_cores"]) / (w1["req_per_s"] / w1["server_cores"])
        for w1, w2 in zip(runs["get"], runs["get_w2"], strict=True)
        if w1["server_cores"] > 0 and w2["server_cores"] > 0
    ]
    if per_core:
        figures[f"{name}: --workers 2 / 1 worker, req/s per server core"] = round(
            common.median(per_core), 3
        )
    if "presign" in runs:
        # The endpoint is a whole authenticated request (a read, then one link): its rate is
        # the HTTP path's, compared with GET one and, as issue 15 first put it, with boto3.
        figures[f"{name}: S3 presign endpoint req/s / raw boto3 calls/s"] = round(
            common.median(ratios(runs, "presign", "boto3")), 3
        )
        figures[f"{name}: S3 presign endpoint req/s / GET /media/{{id}}"] = round(
            common.median(ratios(runs, "presign", "get")), 3
        )
    return figures


def shown(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "ms":
        return f"{value:.1f} ms"
    return f"{value:g}"


def goal_table(goals: list[dict[str, Any]]) -> str:
    ops = {"<=": "≤", ">=": "≥", "<": "<", ">": ">"}
    rows = []
    for g in goals:
        measured = "not measured" if g["measured"] is None else shown(g["measured"], g["unit"])
        low_high = (
            f"{shown(g['low'], g['unit'])}–{shown(g['high'], g['unit'])}" if "low" in g else ""
        )
        rows.append(
            [
                g["name"],
                f"{ops[g['op']]} {shown(g['target'], g['unit'])}",
                measured,
                low_high,
                "yes" if g["met"] else "NO",
            ]
        )
    return common.text_table(["figure", "goal", "median", "min–max of pairs", "met"], rows)


# --------------------------------------------------------------------------- 3. listing


async def bulk_insert(url: str, org_id: str, rows: int) -> dict[str, Any]:
    """Copies of the org's real media (and their variants) until the org has `rows` media,
    through the real schema: every column the migration made, defaults included."""
    conn = await asyncpg.connect(url)
    try:
        templates = await conn.fetch(
            "SELECT id FROM media WHERE org_id = $1 ORDER BY created_at", org_id
        )
        count = rows - len(templates)
        if count <= 0:
            return {"inserted": 0}
        prefix = templates[0]["id"].split("_")[0]

        async def columns(table: str) -> list[str]:
            found = await conn.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_name = $1 "
                "ORDER BY ordinal_position",
                table,
            )
            return [r["column_name"] for r in found]

        # IDs in the media ID shape: prefix, '_', 26 Crockford base32 characters (hex is a
        # subset), all older than the real uploads.
        new_id = f"'{prefix}_01' || lpad(to_hex(g), 24, '0')"
        media_over = {
            "id": new_id,
            "sha256": "md5('a' || g) || md5('b' || g)",
            "filename": "'bulk-' || g || '.jpg'",
            "size_bytes": "t.size_bytes + (g % 100000)",
            "created_at": "t.created_at - g * interval '1 second'",
            "updated_at": "t.created_at - g * interval '1 second'",
        }
        media_cols = await columns("media")
        select = ", ".join(media_over.get(c, f"t.{c}") for c in media_cols)
        # The real uploads only, named by ID: after the first insert the org has the copies too.
        template_ids = [r["id"] for r in templates]
        templates_sql = (
            "(SELECT (row_number() OVER (ORDER BY id)) - 1 AS k, * FROM media "
            "WHERE org_id = $1 AND id = ANY($2::text[])) t"
        )
        started = time.perf_counter()
        await conn.execute(
            f"INSERT INTO media ({', '.join(media_cols)}) SELECT {select} "  # noqa: S608 - names from the catalogue
            f"FROM generate_series(1, {count}) g JOIN {templates_sql} "
            f"ON t.k = g % {len(templates)}",
            org_id,
            template_ids,
        )
        variant_cols = [c for c in await columns("variants") if c != "id"]
        variant_over = {"media_id": new_id}
        vselect = ", ".join(variant_over.get(c, f"v.{c}") for c in variant_cols)
        await conn.execute(
            f"INSERT INTO variants ({', '.join(variant_cols)}) SELECT {vselect} "  # noqa: S608
            f"FROM generate_series(1, {count}) g JOIN {templates_sql} "
            f"ON t.k = g % {len(templates)} JOIN variants v ON v.media_id = t.id",
            org_id,
            template_ids,
        )
        await conn.execute("ANALYZE media")
        await conn.execute("ANALYZE variants")
        total = await conn.fetchval("SELECT count(*) FROM media WHERE org_id = $1", org_id)
        variants = await conn.fetchval("SELECT count(*) FROM variants WHERE org_id = $1", org_id)
        return {
            "inserted": count,
            "media_rows": total,
            "variant_rows": variants,
            "insert_seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        await conn.close()


async def db_only(url: str, org_id: str, rows: int, repeats: int = 30) -> dict[str, Any]:
    """The listing's SQL alone (what MediaRepository.list sends), so the database's share of a
    listing's time is known: the first page, page 101 with the OR-form keyset condition the
    repository writes, and page 101 with a row-value comparison (the last page when there are
    fewer rows)."""
    conn = await asyncpg.connect(url)
    try:
        anchor = await conn.fetchrow(
            "SELECT created_at, id FROM media WHERE org_id = $1 "
            "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1",
            org_id,
            max(0, min(100 * LIST_LIMIT, rows) - 1),
        )
        order = f"ORDER BY created_at DESC, id DESC LIMIT {LIST_LIMIT + 1}"
        queries = {
            "first page": (
                f"SELECT * FROM media WHERE org_id = $1 {order}",  # noqa: S608 - constants
                [org_id],
            ),
            "page 101, OR keyset": (
                "SELECT * FROM media WHERE org_id = $1 AND "  # noqa: S608 - constants
                f"(created_at < $2 OR (created_at = $2 AND id < $3)) {order}",
                [org_id, anchor["created_at"], anchor["id"]],
            ),
            "page 101, row-value keyset": (
                f"SELECT * FROM media WHERE org_id = $1 AND (created_at, id) < ($2, $3) {order}",  # noqa: S608 - constants
                [org_id, anchor["created_at"], anchor["id"]],
            ),
        }
        result = {}
        for name, (sql, params) in queries.items():
            statement = await conn.prepare(sql)
            await statement.fetch(*params)
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                await statement.fetch(*params)
                times.append((time.perf_counter() - started) * 1000)
            result[name] = {
                "p50_ms": round(common.percentile(times, 0.5), 2),
                "p95_ms": round(common.percentile(times, 0.95), 2),
            }
        return result
    finally:
        await conn.close()


def part_list(wrk: str, work: Path, rows: int, seconds: float, image: bytes) -> dict[str, Any]:
    pg = start_postgres(work)
    server = None
    try:
        env = server_env(work / "data-list", DB_POSTGRESQL_WRITE_DSN=pg.dsn)
        server = start_server(work, env, "mediakeep-pg")
        headers = bearer(server.url)
        ids = common.seed_jpegs(server.url, headers, [image], SEED_MEDIA)
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            org_id = http.get(f"/api/v1/media/{ids[0]}").json()["org_id"]
        inserted = asyncio.run(bulk_insert(pg.url, org_id, rows))
        print(f"  bulk insert: {inserted}", flush=True)
        base = f"/api/v1/media?limit={LIST_LIMIT}"
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            cursor = None
            for _ in range(100):  # to page 101, or the last page of a smaller --rows
                page = http.get(base + (f"&cursor={cursor}" if cursor else "")).json()
                if not page["next_cursor"]:
                    break
                cursor = page["next_cursor"]
            deep = f"{base}&cursor={cursor}" if cursor else base
            total = http.get(base + "&include_total=true").json().get("total")
        cases = {
            "newest first (default)": base,
            "page 101 by cursor": deep,
            "size_bytes asc": f"{base}&sort=size_bytes&order=asc",
            "mime image/, by filename": f"{base}&mime=image/&sort=filename&order=asc",
        }
        runs: dict[str, dict[str, Any]] = {}
        for name, path in cases.items():
            check_paths(server.url, [path], headers)
            run_wrk(wrk, server.url, [path], 1, 1, headers)
            common.wait_idle(server.cpu_seconds)
            runs[name] = run_wrk(wrk, server.url, [path], 1, seconds, headers)
            print(row(f"c=1 {name}", runs[name]), flush=True)
        common.wait_idle(server.cpu_seconds)
        at8 = run_wrk(wrk, server.url, [base], 8, seconds, headers)
        print(row("c=8 newest first", at8), flush=True)
        sql = asyncio.run(db_only(pg.url, org_id, rows))
        for name, timing in sql.items():
            print(
                f"  SQL only, {name:<26} p50 {timing['p50_ms']:.2f}  p95 {timing['p95_ms']:.2f} ms",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
        pg.stop()
        pg.cleanup()
    return {
        "rows": rows,
        "total_reported_by_api": total,
        "limit": LIST_LIMIT,
        "bulk": inserted,
        "c1": runs,
        "c8_default": at8,
        "sql_only": sql,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=None, help="rounds (default 3, quick 1)")
    parser.add_argument(
        "--seconds", type=float, default=None, help="per measured run (default 5, quick 2)"
    )
    parser.add_argument("--seed", type=int, default=None, help="media uploaded (default 24)")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma list")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 round of 2 s")
    parser.add_argument(
        "--pin-wrk", default="", metavar="CPU", help="run wrk under `taskset -c CPU`"
    )
    parser.add_argument(
        "--rows", type=int, default=0, help="also list at this many PostgreSQL rows (slow)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    args.pairs = args.pairs or (1 if args.quick else 3)
    args.seconds = args.seconds or (2.0 if args.quick else 5.0)
    args.seed = args.seed or (4 if args.quick else SEED_MEDIA)
    wanted = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(wanted) - set(BACKENDS)
    if unknown:
        parser.error(f"unknown backend(s) {', '.join(sorted(unknown))}; known: sqlite, postgres")
    pin = ["taskset", "-c", args.pin_wrk] if args.pin_wrk else []

    wrk = common.ensure_wrk()
    if wrk is None:
        common.skip("cheap", "wrk is not installed and could not be installed with apt-get")
    command = shlex.join([".venv/bin/python", "bench/cheap.py", *sys.argv[1:]])
    results: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    listing: dict[str, Any] | None = None
    with common.work_dir(args.work_dir, "bench-cheap-") as work:
        info = common.machine(work)
        print(f"$ {command}", flush=True)
        print(f"machine: {info['cores']} cores, {info['cpu'] or 'unknown CPU'}", flush=True)
        print(common.describe(info), flush=True)
        print(
            f"wrk: {shlex.join([*pin, wrk])} -t1 -c{CONCURRENCY} -d{args.seconds:g}s "
            "--timeout 30s -H 'Authorization: Bearer <token>' -s <paths.lua> URL "
            f"({args.pairs} round(s), the order rotating)",
            flush=True,
        )
        print(
            f"taskset: wrk pinned to CPU {args.pin_wrk} (every side alike)"
            if pin
            else WHY_NOT_PINNED,
            flush=True,
        )
        if args.quick:
            print("quick mode: smoke sizes, not figures to compare with the goals", flush=True)
        image = test_image(work / "images")
        for name in wanted:
            print(f"\n{name}: {BACKENDS[name]}", flush=True)
            try:
                with backend(name, work) as be:
                    results[name] = run_backend(wrk, work, be, args, image, pin)
            except ServiceUnavailable as exc:
                skipped[name] = str(exc)
                print(f"  SKIP {name}: {exc}", flush=True)
        if args.rows:
            print(f"\nlisting with {args.rows:,} rows in PostgreSQL", flush=True)
            try:
                listing = part_list(wrk, work, args.rows, args.seconds, image)
            except ServiceUnavailable as exc:
                print(f"  SKIP listing part: {exc}", flush=True)
        print(f"load average at the end: {os.getloadavg()}", flush=True)

    goals: list[dict[str, Any]] = []
    figures: dict[str, float] = {}
    for name in wanted:
        goals += goals_of(name, results.get(name))
        if name in results:
            figures |= figures_of(name, results[name])
    if args.rows:
        goals.append(
            common.goal(
                f"listing p95, c=1, {args.rows:,} rows",
                listing["c1"]["newest first (default)"]["p95_ms"] if listing else None,
                "<",
                GOAL_LIST_P95_MS,
                "ms",
            )
        )
    print(f"\nsummary ({args.pairs} round(s) of {args.seconds:g} s; c={CONCURRENCY}, wrk -t1)")
    print(goal_table(goals))
    print("\nwithout a goal (medians)")
    print(common.text_table(["figure", "value"], [[k, f"{v:g}"] for k, v in figures.items()]))
    if skipped:
        print("skipped: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    document = common.document(
        "cheap",
        setup={
            "command": command,
            "pairs": args.pairs,
            "seconds_per_run": args.seconds,
            "seeded_media": args.seed,
            "quick": args.quick,
            "load_generator": f"wrk, 1 thread, c={CONCURRENCY}",
            "wrk_pinning": args.pin_wrk or "none",
            "auth": "Bearer access token",
            "machine": info,
        },
        backends=results,
        skipped=skipped,
        listing=listing,
        goals=goals,
        figures=figures,
    )
    common.write_json(args.output, document)
    common.emit_result("cheap", goals, figures=figures, quick=args.quick, skipped_parts=skipped)


if __name__ == "__main__":
    main()
