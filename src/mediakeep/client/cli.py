"""The client commands of `mediakeep`: upload, ls, get, rm, url, jobs watch, login, logout,
whoami. They talk to a server over HTTP with the SDK (`mediakeep.client.Client`).

Server: `--url` or `MEDIAKEEP_URL` (default http://127.0.0.1:8285). Credentials:
`MEDIAKEEP_API_KEY`, else `MEDIAKEEP_TOKEN`, else the token saved by `mediakeep login`.
stdout carries only answers (ids, tables, JSON with `--json`); progress bars, notes and
errors go to stderr. An API error prints its message, code, status and request id and
exits 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from mediakeep.client import credentials
from mediakeep.client._core import DEFAULT_URL
from mediakeep.client._sync import Client
from mediakeep.client.errors import MediakeepError
from mediakeep.client.models import Media, Model, TokenPair

UrlOption = Annotated[
    str,
    typer.Option(
        "--url", envvar="MEDIAKEEP_URL", help="The server", show_envvar=True, show_default=True
    ),
]
OrgOption = Annotated[
    str | None,
    typer.Option("--org", envvar="MEDIAKEEP_ORG", help="Act in this organisation (slug)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON")]
ProgressOption = Annotated[
    bool | None,
    typer.Option(
        "--progress/--no-progress",
        help="Show progress bars on stderr (default: when stderr is a terminal)",
    ),
]


# ---------------------------------------------------------------- plumbing


def _stderr(force: bool | None = None) -> Console:
    return Console(stderr=True, force_terminal=True if force else None, highlight=False)


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


def _raw(model: Model) -> Any:
    return model.raw


def _fail(error: MediakeepError, say: Callable[[str], None] = _note) -> typer.Exit:
    """Tell an error on stderr (message, code, status, request id, details); the exit."""
    where = [error.code]
    if error.status is not None:
        where.append(f"HTTP {error.status}")
    if error.request_id:
        where.append(f"request {error.request_id}")
    say(f"error: {error.message} ({', '.join(where)})")
    for detail in error.details:
        field = detail.get("field")
        message = detail.get("message")
        if message and message != error.message:
            say(f"  {field}: {message}" if field else f"  {message}")
    if error.status == 401:
        say("  (sign in with `mediakeep login`, or set MEDIAKEEP_API_KEY or MEDIAKEEP_TOKEN)")
    return typer.Exit(1)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """API and connection errors end the command: message, code, status, request id."""
    try:
        yield
    except MediakeepError as error:
        raise _fail(error) from None
    except OSError as error:
        _note(f"error: {error}")
        raise typer.Exit(1) from None


def _client(url: str, org: str | None = None, **options: Any) -> Client:
    """A client for `url` with the credentials of the environment, else the saved login."""
    api_key = os.environ.get("MEDIAKEEP_API_KEY") or None
    token = None if api_key else os.environ.get("MEDIAKEEP_TOKEN") or None
    refresh_token: str | None = None
    on_tokens: Callable[[TokenPair], None] | None = None
    if api_key is None and token is None:
        saved = credentials.load(url)
        if saved is not None:
            token, refresh_token = saved.access_token, saved.refresh_token

            def on_tokens(pair: TokenPair) -> None:  # keep refreshed tokens for the next run
                credentials.save(url, pair, saved.email)

    return Client(
        url,
        api_key=api_key,
        token=token,
        refresh_token=refresh_token,
        on_tokens=on_tokens,
        org=org,
        **options,
    )


IEC_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def _size(value: int | None) -> str:
    """The one size format (as in the web app): binary multiples with IEC units, "1.5 MiB"."""
    if value is None:
        return ""
    amount, unit = float(value), 0
    while amount >= 1024 and unit < len(IEC_UNITS) - 1:
        amount /= 1024
        unit += 1
    return f"{value} B" if unit == 0 else f"{amount:.1f} {IEC_UNITS[unit]}"


def _time(value: datetime | None) -> str:
    """ISO 8601 in UTC with `Z`, as the API writes times (never `+00:00`)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _Speed(ProgressColumn):
    """Transfer speed in the same IEC units as the sizes (rich's own is decimal)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        text = "?" if speed is None else f"{_size(int(speed))}/s"
        return Text(text, style="progress.data.speed")


def _bars(console: Console, show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}", style="bold"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(binary_units=True),
        _Speed(),
        TimeRemainingColumn(),
        console=console,
        disable=not show,
        redirect_stdout=False,  # stdout carries the answers, not the bars
        redirect_stderr=False,
    )


# ---------------------------------------------------------------- commands


def upload(
    paths: Annotated[
        list[Path],
        typer.Argument(exists=True, dir_okay=False, readable=True, help="Files to upload"),
    ],
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    collection: Annotated[
        str | None, typer.Option("--collection", help="Add to this collection (id)")
    ] = None,
    run_async: Annotated[
        bool,
        typer.Option("--async", help="Answer at once; processing continues in a job"),
    ] = False,
    alt: Annotated[str | None, typer.Option(help="Alt text")] = None,
    caption: Annotated[str | None, typer.Option(help="Caption")] = None,
    description: Annotated[str | None, typer.Option(help="Description")] = None,
    private: Annotated[bool, typer.Option("--private", help="Mark the media private")] = False,
    method: Annotated[
        str,
        typer.Option(help="auto (by size), multipart, presigned or tus"),
    ] = "auto",
    output_json: JsonOption = False,
    progress: ProgressOption = None,
) -> None:
    """Upload files; print each media id (big files resume over tus when the server has it)."""
    if method not in ("auto", "multipart", "presigned", "tus"):
        raise typer.BadParameter("one of auto, multipart, presigned, tus", param_hint="--method")
    console = _stderr(progress)
    show = progress if progress is not None else console.is_terminal
    fields: dict[str, Any] = {
        "alt": alt,
        "caption": caption,
        "description": description,
        "collection_id": collection,
        "is_private": True if private else None,
        "async_": True if run_async else None,
    }
    failed = 0
    with _errors(), _client(url, org, tus_store=credentials.tus_store()) as client:
        for path in paths:
            # One bar per file, closed before the file's answer is printed: on a terminal
            # stdout and stderr share the screen, and an id printed while the bar is drawn
            # lands on the bar's line. A closed bar ends its line.
            media: Media | None = None
            with _bars(console, show) as bars:
                task = bars.add_task(path.name, total=path.stat().st_size)

                def moved(sent: int, total: int | None, task: Any = task) -> None:
                    bars.update(task, completed=sent, total=total)

                try:
                    media = client.upload(
                        path,
                        progress=moved,
                        method=method,  # type: ignore[arg-type]
                        **{k: v for k, v in fields.items() if v is not None},
                    )
                except MediakeepError as error:
                    bars.stop_task(task)
                    problem = error
                else:
                    bars.update(task, completed=media.size_bytes or path.stat().st_size)
            if media is None:
                _note(f"{path}: upload failed")
                _fail(problem)
                failed += 1
                continue
            if output_json:
                typer.echo(json.dumps(media.raw, ensure_ascii=False))
            else:
                typer.echo(media.id)
            if media.deduped:
                _note(f"{path}: already stored as {media.id} (deduplicated)")
            if media.job is not None:
                _note(
                    f"{path}: processing in job {media.job.id} "
                    f"(mediakeep jobs watch {media.job.id})"
                )
    if failed:
        raise typer.Exit(1)


def ls(
    kind: Annotated[str | None, typer.Option(help="image, video, audio or document")] = None,
    status: Annotated[str | None, typer.Option(help="pending, processing, ready, ...")] = None,
    search: Annotated[
        str | None, typer.Option(help="Text in filename, alt, caption, description")
    ] = None,
    collection: Annotated[str | None, typer.Option("--collection", help="Collection id")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many to show (newest first)")] = 50,
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    output_json: JsonOption = False,
) -> None:
    """List media: id, filename, kind, size, status."""
    filters: dict[str, Any] = {
        "kind": kind,
        "status": status,
        "search": search,
        "collection_id": collection,
    }
    filters = {k: v for k, v in filters.items() if v is not None}
    with _errors(), _client(url, org) as client:
        if limit <= 200:
            page = client.list_media(limit=limit, **filters)
            items, raw = page.data, page.raw
        else:
            items = list(islice(client.iter_media(limit=200, **filters), limit))
            raw = {"data": [item.raw for item in items], "next_cursor": None}
    if output_json:
        _print_json(raw)
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("filename", overflow="fold")
    table.add_column("kind")
    table.add_column("size", justify="right")
    table.add_column("status")
    for media in items:
        table.add_row(
            media.id,
            media.filename or "",
            media.kind or "",
            _size(media.size_bytes),
            media.status or "",
        )
    out = Console(highlight=False)
    if not out.is_terminal:
        out = Console(highlight=False, width=max(out.width, 200), color_system=None)
    out.print(table)
    if not items:
        _note("no media")


def _describe(media: Media) -> list[tuple[str, str]]:
    rows = [
        ("id", media.id),
        ("filename", media.filename or ""),
        ("kind", media.kind or ""),
        ("mime", media.mime or ""),
        ("size", f"{_size(media.size_bytes)} ({media.size_bytes} bytes)"),
        ("status", media.status or ""),
        ("sha256", media.sha256 or ""),
    ]
    if media.width and media.height:
        rows.append(("dimensions", f"{media.width}×{media.height}"))
    if media.duration_seconds:
        rows.append(("duration", f"{media.duration_seconds:g} s"))
    for name in ("alt", "caption", "description"):
        value = getattr(media, name)
        if value:
            rows.append((name, value))
    if media.variants:
        rows.append(("variants", ", ".join(v.name for v in media.variants)))
    rows.append(("created", _time(media.created_at)))
    rows.append(("url", media.url or ""))
    return rows


def get(
    media_id: Annotated[str, typer.Argument(help="The media id")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Download the content to this file ('-': stdout)"),
    ] = None,
    variant: Annotated[str | None, typer.Option(help="A variant instead of the original")] = None,
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    output_json: JsonOption = False,
    progress: ProgressOption = None,
) -> None:
    """Show a media's metadata, or download its content with --output."""
    with _errors(), _client(url, org) as client:
        if output is None:
            media = client.get_media(media_id)
            if output_json:
                _print_json(media.raw)
                return
            width = max(len(name) for name, _ in _describe(media))
            for name, value in _describe(media):
                typer.echo(f"{name.ljust(width)}  {value}")
            return
        if str(output) == "-":
            written = client.download(media_id, sys.stdout.buffer, variant=variant)
            sys.stdout.flush()
            _note(f"wrote {written} bytes")
            return
        console = _stderr(progress)
        show = progress if progress is not None else console.is_terminal
        with _bars(console, show) as bars:
            task = bars.add_task(output.name, total=None)
            written = client.download(
                media_id,
                output,
                variant=variant,
                progress=lambda done, total: bars.update(task, completed=done, total=total),
            )
        if output_json:
            _print_json(client.get_media(media_id).raw)
        _note(f"saved {written} bytes to {output}")


def rm(
    media_ids: Annotated[list[str], typer.Argument(help="Media ids to delete")],
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    output_json: JsonOption = False,
) -> None:
    """Delete media (with their variants); print each deleted id."""
    failed = 0
    with _errors(), _client(url, org) as client:
        for media_id in media_ids:
            try:
                client.delete_media(media_id)
            except MediakeepError as error:
                _fail(error)
                failed += 1
                continue
            if output_json:
                typer.echo(json.dumps({"id": media_id, "deleted": True}))
            else:
                typer.echo(media_id)
    if failed:
        raise typer.Exit(1)


def url_command(
    media_id: Annotated[str, typer.Argument(help="The media id")],
    expires_in: Annotated[
        int | None, typer.Option("--expires-in", min=1, help="Seconds the link is valid")
    ] = None,
    variant: Annotated[str | None, typer.Option(help="A variant instead of the original")] = None,
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    output_json: JsonOption = False,
) -> None:
    """Print a signed download URL (presigned; anyone with it can download until it expires)."""
    with _errors(), _client(url, org) as client:
        link = client.presign(media_id, expires_in=expires_in, variant=variant)
    if output_json:
        _print_json(link.raw)
    else:
        typer.echo(link.url)


def jobs_watch(
    job_id: Annotated[str, typer.Argument(help="The job id")],
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls")] = 1.0,
    timeout: Annotated[
        float | None, typer.Option(help="Give up after this many seconds (default: never)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    output_json: JsonOption = False,
    progress: ProgressOption = None,
) -> None:
    """Follow a job with a progress bar until it completes, fails or is canceled
    (exit 1 unless it completed)."""
    console = _stderr(progress)
    show = progress if progress is not None else console.is_terminal
    with _errors(), _client(url, org) as client:
        bar = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            console=console,
            disable=not show,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        with bar:
            task = bar.add_task(job_id, total=100, status="")

            def polled(job: Any) -> None:
                bar.update(task, completed=job.progress, status=job.status)

            job = client.wait_for_job(
                job_id, timeout=timeout, poll_interval=interval, on_progress=polled
            )
    if output_json:
        _print_json(job.raw)
    else:
        line = f"{job.id} {job.status}"
        if job.result is not None and job.result.media_id:
            line += f" media {job.result.media_id}"
        typer.echo(line)
    if job.status != "completed":
        if job.failed_reason:
            _note(f"reason: {job.failed_reason}")
        raise typer.Exit(1)


def login(
    email: Annotated[str | None, typer.Option(help="Your email (asked when omitted)")] = None,
    password: Annotated[
        str | None, typer.Option(help="Your password (asked, hidden, when omitted)")
    ] = None,
    url: UrlOption = DEFAULT_URL,
    output_json: JsonOption = False,
) -> None:
    """Sign in and keep the tokens (in the user's config dir, mode 0600) for later commands."""
    if not email:
        email = typer.prompt("Email", err=True)
    if not password:
        password = typer.prompt("Password", hide_input=True, err=True)
    with _errors(), Client(url, api_key=None, token=None) as client:
        client.api_key = client.token = None  # sign in as this person, whatever the env says
        tokens = client.login(email, password)
        user = client.me()
    path = credentials.save(url, tokens, user.email or email)
    if output_json:
        _print_json(tokens.raw)
    _note(f"signed in to {client.base_url} as {user.email}; token saved in {path}")


def logout(url: UrlOption = DEFAULT_URL) -> None:
    """Revoke the saved login of this server and forget it."""
    saved = credentials.load(url)
    if saved is None:
        _note(f"not signed in to {url}")
        return
    if saved.refresh_token:
        with contextlib.suppress(MediakeepError), Client(url, token=saved.access_token) as client:
            client.logout(saved.refresh_token)
    credentials.forget(url)
    _note(f"signed out of {url}")


def whoami(
    url: UrlOption = DEFAULT_URL,
    org: OrgOption = None,
    output_json: JsonOption = False,
) -> None:
    """The signed-in user and their organisations."""
    with _errors(), _client(url, org) as client:
        user = client.me()
    if output_json:
        _print_json(user.raw)
        return
    typer.echo(f"{user.email} ({user.id})")
    for membership in user.orgs:
        mark = "*" if membership.id == user.default_org_id else " "
        typer.echo(f"{mark} {membership.slug}  {membership.role}")


def register(app: typer.Typer) -> None:
    """Add the client commands to the `mediakeep` command."""
    app.command("upload")(upload)
    app.command("ls")(ls)
    app.command("get")(get)
    app.command("rm")(rm)
    app.command("url")(url_command)
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    jobs = typer.Typer(help="Background jobs of the server.", no_args_is_help=True)
    jobs.command("watch")(jobs_watch)
    app.add_typer(jobs, name="jobs")
