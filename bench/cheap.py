"""Cheap endpoints: GET one media, presign, the S3 presign path and listing, each against its
peer or limit in the same run.

    .venv/bin/python bench/cheap.py [--pairs 3] [--seconds 4] [--rows 100000] [--work-dir DIR]

Load: wrk (`apt-get install wrk` when missing) with one thread; every request carries a Bearer
access token of a registered user (auth on, rate limits on but far above the load).

  1. GET /api/v1/media/{id} and GET /api/v1/media/{id}/presign at c=8 on `mediakeep serve
     --no-worker` (SQLite, local storage), A/B interleaved with FastAPI's hello world
     (bench/load_hello.py, the uvicorn settings of `mediakeep serve`), --pairs pairs, the order
     rotating each pair. Goals: p95 < 10 ms, throughput ≥ 0.4× hello world (median of pairs).
  2. The S3 presign path: GET .../presign at c=8 on a server whose storage is SeaweedFS
     (tests/fixtures/services.py start_seaweedfs) against raw boto3 `generate_presigned_url`
     calls/s on one core in this process (the same client configuration and parameters: bucket,
     key, response content type and disposition), interleaved. Goal ≥ 0.7×. Also printed: the
     storage layer alone (mediakeep's S3Storage.signed_url in this process) against raw boto3.
  3. Listing with --rows rows in PostgreSQL (start_postgres, `mediakeep migrate`): a few real
     uploads, then copies of them and their variants bulk-inserted through the real schema with
     INSERT ... SELECT generate_series, then ANALYZE. p95 of GET /api/v1/media?limit=50 (the
     default order) at c=1, the goal (< 20 ms at 1,000,000 rows, `--rows 1000000`); also other
     orders and filters at c=1 and the default at c=8, for information.

Results: bench/results/cheap.json; the last line is RESULT {json} (bench/_common.py).
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pyvips

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402

sys.path.insert(0, str(common.ROOT))
from tests.fixtures.services import (  # noqa: E402
    ServiceUnavailable,
    start_postgres,
    start_seaweedfs,
)

RESULTS = common.ROOT / "bench" / "results" / "cheap.json"
HELLO_SCRIPT = Path(__file__).resolve().parent / "load_hello.py"
GENEROUS = "1000000/minute"
GOAL_P95_MS = 10.0
GOAL_VS_HELLO = 0.4
GOAL_VS_BOTO3 = 0.7
GOAL_LIST_P95_MS = 20.0
GOAL_ROWS = 1_000_000
SEED_MEDIA = 8
LIST_LIMIT = 50


def run_wrk(
    wrk: str,
    url: str,
    paths: list[str],
    concurrency: int,
    seconds: float,
    headers: dict[str, str],
) -> dict[str, Any]:
    """One wrk run (one thread, `common.run_wrk`), its figures rounded for the table."""
    data = common.run_wrk(wrk, url, paths, concurrency, seconds, headers, threads=1, timeout="30s")
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


def start_server(work: Path, env: dict[str, str], name: str) -> common.Server:
    """`mediakeep serve --no-worker`; a failed start shows its log (the work dir may be
    removed) and is tried once more on another port."""
    for attempt in (1, 2):
        try:
            return common.start_mediakeep(work, env, worker=False, name=name)
        except SystemExit:
            log = work / f"{name}.log"
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else "(no log)"
            print(f"  {name} did not start (attempt {attempt}); its log:\n{tail}", flush=True)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def bearer(url: str) -> dict[str, str]:
    account = common.create_account(url, key=False)
    return {"Authorization": f"Bearer {account.token}"}


def row(label: str, run: dict[str, Any]) -> str:
    return (
        f"  {label:<26} {run['req_per_s']:>8.0f} req/s  p50 {run['p50_ms']:>6.2f}  "
        f"p95 {run['p95_ms']:>6.2f}  p99 {run['p99_ms']:>6.2f} ms  errors {run['errors']}"
    )


# --------------------------------------------------------------------------- 1. GET / presign


def part_cheap(wrk: str, work: Path, pairs: int, seconds: float, image: bytes) -> dict[str, Any]:
    server = start_server(work, server_env(work / "data-cheap"), "mediakeep")
    port = common.free_port()
    hello = common.Server(
        "hello",
        [sys.executable, str(HELLO_SCRIPT), "--port", str(port)],
        server.env,
        work / "hello.log",
        port,
    )
    runs: dict[str, list[dict[str, Any]]] = {"hello": [], "get": [], "presign": []}
    try:
        hello.start()
        headers = bearer(server.url)
        ids = common.seed_jpegs(server.url, headers, [image], SEED_MEDIA)
        targets = {
            "hello": (hello, ["/"]),
            "get": (server, [f"/api/v1/media/{i}" for i in ids]),
            "presign": (server, [f"/api/v1/media/{i}/presign" for i in ids]),
        }
        for _, (target, paths) in targets.items():
            check_paths(target.url, paths, headers)
            run_wrk(wrk, target.url, paths, 8, 1, headers)  # warm code paths, not measured
        names = list(targets)
        for pair in range(pairs):
            order = names[pair % len(names) :] + names[: pair % len(names)]
            for name in order:
                target, paths = targets[name]
                common.wait_idle(target.cpu_seconds)
                run = run_wrk(wrk, target.url, paths, 8, seconds, headers) | {"pair": pair}
                runs[name].append(run)
                print(row(f"pair {pair} {name}", run), flush=True)
    finally:
        hello.stop()
        server.stop()
    result: dict[str, Any] = {"runs": runs}
    for name in ("get", "presign"):
        ratios = [
            a["req_per_s"] / b["req_per_s"] for a, b in zip(runs[name], runs["hello"], strict=True)
        ]
        result[name] = {
            "req_per_s_median": common.median(r["req_per_s"] for r in runs[name]),
            "p95_ms_median": common.median(r["p95_ms"] for r in runs[name]),
            "p95_ms_worst": max(r["p95_ms"] for r in runs[name]),
            "ratio_vs_hello_per_pair": [round(x, 3) for x in ratios],
            "ratio_vs_hello_median": round(common.median(ratios), 3),
            "errors": sum(r["errors"] for r in runs[name]),
        }
    result["hello_req_per_s_median"] = common.median(r["req_per_s"] for r in runs["hello"])
    return result


# --------------------------------------------------------------------------- 2. S3 presign


def boto3_calls_per_s(client: Any, params: dict[str, str], seconds: float) -> float:
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            client.generate_presigned_url("get_object", Params=params, ExpiresIn=3600)
        calls += 50
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def storage_calls_per_s(storage: Any, key: str, filename: str, seconds: float) -> float:
    calls = 0
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            storage.signed_url(key, 3600, filename=filename, content_type="image/jpeg")
        calls += 50
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - started)


def part_s3(wrk: str, work: Path, pairs: int, seconds: float, image: bytes) -> dict[str, Any]:
    from mediakeep.config import Settings
    from mediakeep.kit.http import content_disposition as disposition
    from mediakeep.storage.s3 import S3Storage

    s3 = start_seaweedfs(work)
    server = None
    try:
        bucket = "bench-cheap"
        s3.create_bucket(bucket)
        s3_env = {
            "MEDIA_STORAGE_BACKEND": "s3",
            "MEDIA_S3_ENDPOINT": s3.endpoint,
            "MEDIA_S3_BUCKET": bucket,
            "MEDIA_S3_ACCESS_KEY_ID": s3.access_key,
            "MEDIA_S3_SECRET_ACCESS_KEY": s3.secret_key,
            "MEDIA_S3_REGION": s3.region,
            "MEDIA_S3_USE_PATH_STYLE": "true",
        }
        data = work / "data-s3"
        server = start_server(work, server_env(data, **s3_env), "mediakeep-s3")
        headers = bearer(server.url)
        ids = common.seed_jpegs(server.url, headers, [image], SEED_MEDIA)
        paths = [f"/api/v1/media/{i}/presign" for i in ids]
        check_paths(server.url, paths, headers)
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
            first = http.get(f"/api/v1/media/{ids[0]}").json()
        key = f"{first['org_id']}/originals/{first['sha256']}"
        filename = first["filename"]
        settings = Settings(**({"MEDIA_DATA_DIR": str(data)} | s3_env))  # type: ignore[arg-type]
        storage = S3Storage(settings)
        client = s3.client()
        params = {
            "Bucket": bucket,
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
        run_wrk(wrk, server.url, paths, 8, 1, headers)
        boto3_calls_per_s(client, params, 1)
        runs: list[dict[str, Any]] = []
        for pair in range(pairs):
            http_first = pair % 2 == 0
            common.wait_idle(server.cpu_seconds)
            if not http_first:
                raw_rate = boto3_calls_per_s(client, params, seconds)
            run = run_wrk(wrk, server.url, paths, 8, seconds, headers)
            if http_first:
                common.wait_idle(server.cpu_seconds)
                raw_rate = boto3_calls_per_s(client, params, seconds)
            layer_rate = storage_calls_per_s(storage, key, filename, seconds / 2)
            runs.append(
                run
                | {
                    "pair": pair,
                    "boto3_calls_per_s": round(raw_rate, 1),
                    "storage_layer_calls_per_s": round(layer_rate, 1),
                    "ratio": round(run["req_per_s"] / raw_rate, 3),
                }
            )
            print(
                row(f"pair {pair} S3 presign", run)
                + f"\n  {'':<26} raw boto3 {raw_rate:>8.0f} calls/s, mediakeep storage layer "
                f"{layer_rate:.0f} calls/s; HTTP/boto3 {run['req_per_s'] / raw_rate:.3f}",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
        s3.stop()
        s3.cleanup()
    layer = [r["storage_layer_calls_per_s"] / r["boto3_calls_per_s"] for r in runs]
    return {
        "runs": runs,
        "http_req_per_s_median": common.median(r["req_per_s"] for r in runs),
        "boto3_calls_per_s_median": common.median(r["boto3_calls_per_s"] for r in runs),
        "ratio_median": round(common.median(r["ratio"] for r in runs), 3),
        "storage_layer_over_boto3_median": round(common.median(layer), 3),
        "p95_ms_median": common.median(r["p95_ms"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


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


async def db_only(url: str, org_id: str, repeats: int = 30) -> dict[str, Any]:
    """The listing's SQL alone (what MediaRepository.list sends), so the database's share of a
    listing's time is known: the first page, page 101 with the OR-form keyset condition the
    repository writes, and page 101 with a row-value comparison."""
    conn = await asyncpg.connect(url)
    try:
        anchor = await conn.fetchrow(
            "SELECT created_at, id FROM media WHERE org_id = $1 "
            "ORDER BY created_at DESC, id DESC OFFSET 4999 LIMIT 1",
            org_id,
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
            for _ in range(100):
                page = http.get(base + (f"&cursor={cursor}" if cursor else "")).json()
                cursor = page["next_cursor"]
            deep = f"{base}&cursor={cursor}"
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
        sql = asyncio.run(db_only(pg.url, org_id))
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
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0, help="per measured run")
    parser.add_argument("--rows", type=int, default=100_000, help="media rows for listing")
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument(
        "--only", choices=["cheap", "s3", "list"], default=None, help="one part (debugging)"
    )
    args = parser.parse_args()
    wanted = {args.only} if args.only else {"cheap", "s3", "list"}

    wrk = common.ensure_wrk()
    if wrk is None:
        common.skip("cheap", "wrk is not installed and could not be installed with apt-get")
    with common.work_dir(args.work_dir, "bench-cheap-") as work:
        info = common.machine(work)
        print(common.describe(info), flush=True)
        image = test_image(work / "images")
        cheap: dict[str, Any] | None = None
        s3: dict[str, Any] | None = None
        listing: dict[str, Any] | None = None
        if "cheap" in wanted:
            print("1. GET media / presign vs hello world, c=8, SQLite + local storage", flush=True)
            cheap = part_cheap(wrk, work, args.pairs, args.seconds, image)
        if "s3" in wanted:
            print("2. S3 presign path (SeaweedFS) vs raw boto3", flush=True)
            try:
                s3 = part_s3(wrk, work, args.pairs, args.seconds, image)
            except ServiceUnavailable as exc:
                print(f"  SKIP S3 part: {exc}", flush=True)
        if "list" in wanted:
            print(f"3. listing with {args.rows:,} rows in PostgreSQL", flush=True)
            try:
                listing = part_list(wrk, work, args.rows, args.seconds, image)
            except ServiceUnavailable as exc:
                print(f"  SKIP listing part: {exc}", flush=True)
        print(f"load average at the end: {os.getloadavg()}", flush=True)

    print("\nsummary")
    goals: list[dict[str, Any]] = []
    if cheap is not None:
        get, presign = cheap["get"], cheap["presign"]
        print(f"  hello world {cheap['hello_req_per_s_median']:.0f} req/s (median of {args.pairs})")
        for label, part in (("GET media", get), ("presign", presign)):
            print(
                f"  {label:<11} {part['req_per_s_median']:.0f} req/s, p95 "
                f"{part['p95_ms_median']:.2f} ms (worst {part['p95_ms_worst']:.2f}; goal < "
                f"{GOAL_P95_MS}), / hello world {part['ratio_vs_hello_median']} (pairs "
                f"{part['ratio_vs_hello_per_pair']}; goal ≥ {GOAL_VS_HELLO})"
            )
    for label, key in (("GET media", "get"), ("presign", "presign")):
        part = cheap[key] if cheap else None
        goals.append(
            common.goal(
                f"{label} p95, c=8", part["p95_ms_median"] if part else None, "<", GOAL_P95_MS, "ms"
            )
        )
        goals.append(
            common.goal(
                f"{label} throughput / hello world",
                part["ratio_vs_hello_median"] if part else None,
                ">=",
                GOAL_VS_HELLO,
                "x",
            )
        )
    if s3 is not None:
        print(
            f"  S3 presign  {s3['http_req_per_s_median']:.0f} req/s over HTTP vs raw boto3 "
            f"{s3['boto3_calls_per_s_median']:.0f} calls/s: {s3['ratio_median']} (goal ≥ "
            f"{GOAL_VS_BOTO3}); storage layer alone {s3['storage_layer_over_boto3_median']}× "
            "boto3"
        )
    goals.append(
        common.goal(
            "S3 presign req/s / raw boto3 calls/s",
            s3["ratio_median"] if s3 else None,
            ">=",
            GOAL_VS_BOTO3,
            "x",
        )
    )
    if listing is not None:
        default = listing["c1"]["newest first (default)"]
        print(
            f"  listing     {listing['rows']:,} rows (goal stated for {GOAL_ROWS:,}): p95 "
            f"{default['p95_ms']:.2f} ms at c=1 (goal < {GOAL_LIST_P95_MS}); c=8 p95 "
            f"{listing['c8_default']['p95_ms']:.2f} ms"
        )
    goals.append(
        common.goal(
            f"listing p95, c=1, {args.rows:,} rows",
            listing["c1"]["newest first (default)"]["p95_ms"] if listing else None,
            "<",
            GOAL_LIST_P95_MS,
            "ms",
        )
    )
    document = {
        "setup": {
            "pairs": args.pairs,
            "seconds_per_run": args.seconds,
            "rows": args.rows,
            "load_generator": "wrk, 1 thread",
            "auth": "Bearer access token",
            "machine": info,
            "commit": common.git_commit(),
        },
        "cheap": cheap,
        "s3": s3,
        "listing": listing,
    }
    if args.only:
        print(f"--only {args.only}: {RESULTS.name} left as it was")
    else:
        common.write_json(RESULTS, document)
    common.emit_result("cheap", goals, rows=args.rows, full_goal_rows=args.rows >= GOAL_ROWS)


if __name__ == "__main__":
    main()
