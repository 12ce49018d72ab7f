"""The `mediakeep` command: serve, migrate, sweep, admin (client commands come with the SDK).

The composition root of the command line: each command imports the server modules it runs
inside its function, so `mediakeep --help` and the SDK's client commands start without loading
the whole server (docs/architecture.md; tests/test_architecture.py exempts this module).
"""

import asyncio
import os
import secrets
import subprocess
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import typer
import uvicorn
from pydantic import ValidationError

from mediakeep.config import Settings, settings_error_lines
from mediakeep.kit.durations import parse_duration

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

app = typer.Typer(help="mediakeep: a self-hosted media service.", no_args_is_help=True)

_T = TypeVar("_T")


@app.command()
def serve(
    host: str = typer.Option(None, help="Listen address (default MEDIA_API_HOST)"),
    port: int = typer.Option(None, help="Listen port (default MEDIA_API_PORT)"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Run no background workers"),
    workers: int = typer.Option(
        1, "--workers", min=1, help="API processes sharing the port (uvicorn workers)"
    ),
) -> None:
    """Run the API (and, unless --no-worker, the in-process workers and sweeper)."""
    overrides: dict[str, object] = {}
    if host:
        overrides["api_host"] = host
    if port:
        overrides["api_port"] = port
    settings = _settings_or_exit(**overrides)
    _prepare_schema(settings)
    from mediakeep.app import create_app

    typer.echo(f"mediakeep listening on {settings.public_url}", err=True)
    if settings.queue_backend == "celery" and not no_worker:
        typer.echo("jobs run in `mediakeep worker` processes (celery queue backend)", err=True)
    if settings.auth_enabled:
        typer.echo(
            f"get a token: curl -X POST {settings.public_url}/api/v1/auth/register "
            "-H 'content-type: application/json' "
            '-d \'{"email":"you@example.com","password":"a-long-password"}\' && '
            f"curl -X POST {settings.public_url}/api/v1/auth/login "
            "-H 'content-type: application/json' "
            '-d \'{"email":"you@example.com","password":"a-long-password"}\'',
            err=True,
        )
    server_options: dict[str, Any] = {
        "host": settings.api_host,
        "port": settings.api_port,
        "log_level": "warning",
        "access_log": False,
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1:
        uvicorn.run(
            create_app(settings, run_background=not no_worker, freeze_heap=True), **server_options
        )
    else:
        _serve_processes(settings, workers, background=not no_worker, options=server_options)


def _serve_processes(
    settings: Settings, count: int, *, background: bool, options: dict[str, Any]
) -> None:
    """`serve --workers N`: N uvicorn worker processes on one port, each building the same app
    from the environment set here (so generated secrets are shared), each running the sweeper
    and the webhook sender (both lease their work); jobs run in one local pool beside them,
    which finds new jobs by polling the jobs table (MEDIA_JOB_POLL_INTERVAL)."""
    from mediakeep.app import SERVE_BACKGROUND_ENV
    from mediakeep.jobs.local import worker_command

    os.environ.update(settings.as_env())
    os.environ[SERVE_BACKGROUND_ENV] = "1" if background else "0"
    pool = None
    if background and settings.queue_backend == "local":
        pool = subprocess.Popen(worker_command("--concurrency", str(settings.worker_count)))  # noqa: S603 - our own command
    try:
        uvicorn.run(
            "mediakeep.app:create_app_from_environment", factory=True, workers=count, **options
        )
    finally:
        if pool is not None:
            pool.terminate()
            pool.wait(30)


@app.command()
def worker(
    concurrency: int = typer.Option(
        None, "--concurrency", "-c", min=1, help="Jobs run at once (default MEDIA_WORKERS)"
    ),
    local: bool = typer.Option(
        False,
        "--local",
        help="Run jobs from the jobs table (the local dispatcher) even if "
        "MEDIA_QUEUE_BACKEND=celery",
    ),
    nudge_stdin: bool = typer.Option(
        False, "--nudge-stdin", hidden=True, help="Owned by `serve`: woken through stdin"
    ),
    loglevel: str = typer.Option("WARNING", help="Celery's log level"),
) -> None:
    """Run jobs: a Celery worker (MEDIA_QUEUE_BACKEND=celery) or local worker processes."""
    from mediakeep.logging import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    count = concurrency or settings.worker_count
    if local or settings.queue_backend == "local":
        if count == 1 or nudge_stdin:
            from mediakeep.bootstrap import build_worker_services
            from mediakeep.jobs.local import run_local_worker

            asyncio.run(run_local_worker(settings, build_worker_services, nudge_stdin=nudge_stdin))
        else:
            _run_local_pool(settings, count)
        return
    if not settings.broker_url:
        typer.echo("error: the celery queue backend needs CELERY_BROKER_URL or REDIS_URL", err=True)
        raise typer.Exit(2)
    from mediakeep.bootstrap import build_worker_services
    from mediakeep.jobs.celery_app import run_worker

    run_worker(settings, count, build_worker_services, loglevel.upper())


def _run_local_pool(settings: Settings, count: int) -> None:
    """`mediakeep worker --local -c N`: N worker processes, restarted when they die."""
    import signal

    from mediakeep.jobs.local import LocalWorkerPool

    async def run() -> None:
        pool = LocalWorkerPool(settings, count)
        await pool.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await stop.wait()
        finally:
            await pool.stop()

    asyncio.run(run())


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from mediakeep.migrate import upgrade

    settings = _settings_or_exit()
    outcome = _on_database(lambda: upgrade(settings))
    typer.echo(outcome.describe(), err=True)


def _settings_or_exit(**overrides: object) -> Settings:
    """The settings, or one line per bad setting on stderr and exit code 2."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            message = error["msg"].removeprefix("Value error, ")
            # A message that names its setting itself (AUTH_SECRET_KEY ...) is not prefixed again.
            line = message if message.startswith(field) else f"{field}: {message}"
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(2) from None


def _on_database(work: "Callable[[], _T]") -> _T:
    """Run start-up database work; a failure is one line on stderr, never a traceback:
    exit 2 for what the operator must change (the schema), 1 for the database being away."""
    from alembic.util import CommandError

    try:
        return work()
    except CommandError as exc:  # e.g. the database is at a revision this version lacks
        typer.echo(f"error: migrations: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(2) from None
    except (typer.Exit, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the driver raised, said in one line
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        typer.echo(f"error: the database: {detail}", err=True)
        raise typer.Exit(1) from None


def _prepare_schema(settings: Settings) -> None:
    """Before `serve` answers: bring the schema to head (MEDIA_AUTO_MIGRATE, the default), or
    refuse to start on a schema that is behind."""
    from mediakeep.migrate import schema_state, upgrade

    if settings.auto_migrate:
        outcome = _on_database(lambda: upgrade(settings))
        if outcome.before != outcome.after:
            typer.echo(f"database: {outcome.describe()}", err=True)
        return
    state = _on_database(lambda: asyncio.run(schema_state(settings)))
    if not state.at_head:
        where = "empty" if state.current is None else f"at revision {state.current}"
        typer.echo(
            f"error: the database schema is {where}, this version needs {state.head}: "
            "run `mediakeep migrate` (or set MEDIA_AUTO_MIGRATE=true)",
            err=True,
        )
        raise typer.Exit(2)


@app.command()
def sweep(
    max_age: str = typer.Option(
        None, help="Only what is older than this (default MEDIA_ORPHAN_TTL)"
    ),
) -> None:
    """Remove orphaned uploads and objects once (the server also does this periodically)."""
    from mediakeep.bootstrap import build_services
    from mediakeep.ingest.sweeper import sweep_once

    age: timedelta | None = parse_duration(max_age) if max_age else None

    async def run() -> None:
        services = await build_services(Settings())
        try:
            report = await sweep_once(services, age)
        finally:
            await services.db.dispose()
        typer.echo(
            f"removed {report.incomplete} incomplete uploads and "
            f"{report.unreferenced_originals + report.unreferenced_derived} unreferenced objects"
        )

    asyncio.run(run())


# ---------------------------------------------------------------- admin

admin = typer.Typer(
    help="Operator commands: act directly on the database of the configured settings.",
    no_args_is_help=True,
)
app.add_typer(admin, name="admin")


def _admin_run(work: "Callable[[AsyncSession], Awaitable[_T]]") -> _T:
    """Run `work` in one unit of work on the configured database; errors end the command."""
    from sqlalchemy.exc import SQLAlchemyError

    from mediakeep.bootstrap import wire
    from mediakeep.db import Database
    from mediakeep.errors import MediaError
    from mediakeep.logging import configure_logging

    settings = Settings()
    configure_logging("WARNING")  # logs go to stderr; stdout carries only the answer
    wire()  # events written here (user.registered) get their webhook deliveries

    async def run() -> _T:
        db = Database(settings)
        try:
            async with db.write_session() as session:
                return await work(session)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except MediaError as exc:
        typer.echo(f"error: {exc.message} ({exc.code})", err=True)
        raise typer.Exit(1) from None
    except SQLAlchemyError as exc:
        typer.echo(
            f"error: the database refused: {str(exc).splitlines()[0]}\n"
            "(has `mediakeep migrate` run on this MEDIA_DATA_DIR / DB_POSTGRESQL_WRITE_DSN?)",
            err=True,
        )
        raise typer.Exit(2) from None


def _invalid(exc: "ValidationError") -> typer.Exit:
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "input"
        typer.echo(f"error: {field}: {error['msg']}", err=True)
    return typer.Exit(2)


@admin.command("create-user")
def create_user(
    email: str = typer.Argument(..., help="The new user's email"),
    password: str = typer.Option(
        None, help="At least 8 characters; generated (and printed once) when omitted"
    ),
    name: str = typer.Option(None, help="Display name"),
) -> None:
    """Create a user and their personal organisation (as registration does)."""
    from pydantic import ValidationError

    from mediakeep.auth.schemas import RegisterRequest
    from mediakeep.auth.service import register

    secret = password or secrets.token_urlsafe(18)
    try:
        body = RegisterRequest.model_validate({"email": email, "password": secret, "name": name})
    except ValidationError as exc:
        raise _invalid(exc) from None
    user = _admin_run(lambda session: register(session, body))
    org = next((o for o in user.orgs if o.id == user.default_org_id), None)
    typer.echo(f"id: {user.id}")
    typer.echo(f"email: {user.email}")
    if org is not None:
        typer.echo(f"org: {org.slug}")
    if password is None:
        typer.echo(f"password: {secret}")
        typer.echo("the generated password is shown only now", err=True)


@admin.command("create-key")
def create_key(
    email: str = typer.Option(..., help="The user the key acts as"),
    org: str = typer.Option(None, help="Slug (or id) of the org; default: the user's own org"),
    role: str = typer.Option("member", help="viewer, member, admin or owner (at most the user's)"),
    name: str = typer.Option("cli", help="A name to recognise the key by"),
) -> None:
    """Create an API key for a user; the key is printed once, on stdout."""
    from pydantic import ValidationError

    from mediakeep.auth.schemas import ApiKeyCreate, ApiKeyCreated
    from mediakeep.auth.service import create_api_key
    from mediakeep.orgs.service import principal_for

    try:
        body = ApiKeyCreate.model_validate({"name": name, "role": role})
    except ValidationError as exc:
        raise _invalid(exc) from None

    async def work(session: "AsyncSession") -> tuple[ApiKeyCreated, str]:
        principal = await principal_for(session, email, org)
        return await create_api_key(session, principal, body), principal.org_slug

    created, slug = _admin_run(work)
    typer.echo(created.key)
    typer.echo(
        f"created {created.id} ({created.role}) in org {slug} for {email}; "
        "the key is shown only now",
        err=True,
    )


@admin.command("list-orgs")
def list_orgs() -> None:
    """Every organisation with its member and media counts."""
    from mediakeep.orgs.service import all_orgs
    from mediakeep.usage.service import media_counts

    async def work(session: "AsyncSession") -> list[tuple[str, ...]]:
        orgs = await all_orgs(session)
        media = await media_counts(session, [o.id for o in orgs])
        return [(o.id, o.slug, o.name, str(o.members), str(media[o.id])) for o in orgs]

    rows = [("id", "slug", "name", "members", "media"), *_admin_run(work)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [
            cell.rjust(width) if i >= 3 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        typer.echo("  ".join(cells).rstrip())


__import__("mediakeep.client.cli", fromlist=["register"]).register(app)  # upload, ls, get, ...


def main() -> None:
    os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")
    try:
        app()
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        # A bad setting (a short AUTH_SECRET_KEY, a malformed limit): one line each, no
        # traceback, exit 2 as for any other start-up refusal.
        for line in settings_error_lines(exc):
            typer.echo(f"error: {line}", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # `python -m mediakeep.cli`: how `serve` starts its local workers
    main()
