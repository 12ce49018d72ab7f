"""The throughput peer of bench/load.py and bench/cheap.py: FastAPI's hello world, served by
uvicorn with the settings `mediakeep serve` uses (one worker, uvloop/httptools when installed,
no access log, no proxy headers).

    .venv/bin/python bench/load_hello.py --port 8000

Every path and method answers 200 {"message": "Hello World"}, so a load generator written for
mediakeep's routes can be pointed at it unchanged.
"""

import argparse

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"])
async def hello(path: str) -> dict[str, str]:  # noqa: ARG001 - the path is only matched
    return {"message": "Hello World"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
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
