"""The `mediakeep` command: serve, migrate, sweep (client commands come with the SDK)."""

import asyncio
import os
from datetime import timedelta

import typer
import uvicorn

from mediakeep.config import Settings
from mediakeep.kit.durations import parse_duration

app = typer.Typer(help="mediakeep: a self-hosted media service.", no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option(None, help="Listen address (default MEDIA_API_HOST)"),
    port: int = typer.Option(None, help="Listen port (default MEDIA_API_PORT)"),
    no_worker: bool = typer.Option(False, "--no-worker", help="Run no background workers"),
) -> None:
    """Run the API (and, unless --no-worker, the in-process workers and sweeper)."""
    overrides: dict[str, object] = {}
    if host:
        overrides["api_host"] = host
    if port:
        overrides["api_port"] = port
    settings = Settings(**overrides)  # type: ignore[arg-type]
    from mediakeep.app import create_app

    application = create_app(settings, run_background=not no_worker)
    typer.echo(f"mediakeep listening on {settings.public_url}", err=True)
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
    uvicorn.run(
        application,
        host=settings.api_host,
        port=settings.api_port,
        log_level="warning",
        access_log=False,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        timeout_graceful_shutdown=10,
    )


@app.command()
def migrate() -> None:
    """Create or upgrade the database schema."""
    from mediakeep.migrate import upgrade

    settings = Settings()
    upgrade(settings)
    typer.echo("database is up to date", err=True)


@app.command()
def sweep(
    max_age: str = typer.Option(
        None, help="Only what is older than this (default MEDIA_ORPHAN_TTL)"
    ),
) -> None:
    """Remove orphaned uploads and objects once (the server also does this periodically)."""
    from mediakeep.ingest.sweeper import sweep_once
    from mediakeep.services import build_services

    age: timedelta | None = parse_duration(max_age) if max_age else None

    async def run() -> None:
        services = await build_services(Settings())
        try:
            report = await sweep_once(services, age)
        finally:
            await services.db.dispose()
        typer.echo(
            f"removed {report.incomplete} incomplete uploads and "
            f"{report.unreferenced_originals} unreferenced objects"
        )

    asyncio.run(run())


def main() -> None:
    os.environ.setdefault("VIPS_BLOCK_UNTRUSTED", "1")
    app()
