"""The one-query peer of bench/cheap.py: FastAPI + SQLAlchemy async reading one media row by id
from mediakeep's own database, served by uvicorn with the settings `mediakeep serve` uses (one
worker, uvloop/httptools when installed, no access log, no proxy headers).

    .venv/bin/python bench/load_onequery.py --port 8001 --dsn sqlite+aiosqlite:///data/mediakeep.db
    .venv/bin/python bench/load_onequery.py --port 8001 --dsn postgresql+asyncpg://u@h:p/db

`GET /media/{id}` runs `SELECT * FROM media WHERE id = :id` on a connection from the engine's
pool and answers the row as JSON (404 when there is none); `GET /media?limit=N` answers the
newest N rows the same way, in one statement; `GET /hello` is FastAPI's hello world. It is what
the stack itself needs for one row, and for one page of rows: the yardsticks of issue 15's
goals for mediakeep's `GET /api/v1/media/{id}` and `GET /api/v1/media?limit=20` (at least
0.6× these).
"""

import argparse
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

app = FastAPI()
engine: AsyncEngine | None = None  # made in main() from --dsn
ONE_ROW = text("SELECT * FROM media WHERE id = :id")
PAGE = text("SELECT * FROM media ORDER BY created_at DESC, id DESC LIMIT :limit")


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "Hello World"}


@app.get("/media/{media_id}")
async def one(media_id: str) -> dict[str, Any]:
    assert engine is not None
    async with engine.connect() as conn:
        found = (await conn.execute(ONE_ROW, {"id": media_id})).mappings().first()
    if found is None:
        raise HTTPException(404, "no such media")
    return dict(found)


@app.get("/media")
async def page(limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    assert engine is not None
    async with engine.connect() as conn:
        rows = (await conn.execute(PAGE, {"limit": limit})).mappings().all()
    return {"data": [dict(row) for row in rows]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True, help="SQLAlchemy async URL of mediakeep's DB")
    args = parser.parse_args()
    global engine  # noqa: PLW0603 - the one engine of this process, chosen on the command line
    engine = create_async_engine(args.dsn)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    main()
