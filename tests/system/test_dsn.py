"""libpq DSNs onto asyncpg: what `mediakeep.dsn` keeps, maps and refuses."""

from pathlib import Path

import pytest

from mediakeep.config import Settings
from mediakeep.dsn import DsnError, parse_pg_dsn, sqlalchemy_url


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_every_scheme_reaches_asyncpg_as_postgresql(scheme: str) -> None:
    args = parse_pg_dsn(f"{scheme}://media:pw@db:5432/media_api?sslmode=disable")
    assert args.dsn == "postgresql://media:pw@db:5432/media_api?sslmode=disable"
    assert args.timeout is None


def test_connect_timeout_becomes_asyncpgs_timeout_and_leaves_the_dsn() -> None:
    args = parse_pg_dsn("postgres://u@h/db?connect_timeout=7&application_name=api")
    assert args.timeout == 7.0
    assert args.dsn == "postgresql://u@h/db?application_name=api"
    assert parse_pg_dsn("postgres://u@h/db?connect_timeout=0").timeout is None  # libpq: forever


def test_ssl_files_and_session_parameters_pass_through(tmp_path: Path) -> None:
    root = tmp_path / "root.crt"
    root.write_text("-----BEGIN CERTIFICATE-----\n")
    dsn = (
        f"postgresql://u@h/db?sslmode=verify-full&sslrootcert={root}"
        "&target_session_attrs=read-write&options=-c%20statement_timeout%3D5000"
        "&search_path=media"
    )
    args = parse_pg_dsn(dsn)
    assert args.dsn.startswith("postgresql://u@h/db?sslmode=verify-full&sslrootcert=")
    assert "target_session_attrs=read-write" in args.dsn
    assert "options=-c+statement_timeout%3D5000" in args.dsn
    assert "search_path=media" in args.dsn


def test_sqlalchemy_sees_only_the_dialect_and_the_address() -> None:
    url = sqlalchemy_url("postgres://u:p@h:5432/db?sslmode=require")
    assert url == "postgresql+asyncpg://u:p@h:5432/db"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("mysql://u@h/db", "is not a PostgreSQL URL"),
        ("postgres://u@h/db?sslmod=require", "unknown DSN parameter 'sslmod'; accepted: "),
        ("postgres://u@h/db?sslmode=maybe", "sslmode='maybe'; accepted: disable, allow"),
        ("postgres://u@h/db?target_session_attrs=fast", "target_session_attrs='fast'"),
        ("postgres://u@h/db?connect_timeout=1.5", "not a whole number of seconds"),
        ("postgres://u@h/db?sslrootcert=/nowhere/root.crt", "sslrootcert='/nowhere/root.crt'"),
        ("postgres://u@h/db?sslmode=disable&sslmode=require", "given twice"),
    ],
)
def test_what_is_refused(dsn: str, message: str) -> None:
    with pytest.raises(DsnError) as caught:
        parse_pg_dsn(dsn)
    assert message in str(caught.value)


def test_a_refused_dsn_does_not_echo_its_password() -> None:
    with pytest.raises(DsnError) as caught:
        parse_pg_dsn("mysql://u:hunter2-secret@h/db")
    assert "hunter2-secret" not in str(caught.value)


def test_settings_refuse_a_bad_read_dsn_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown DSN parameter 'sslmod'"):
        Settings(db_read_dsn="postgres://u@replica/db?sslmod=require")
    settings = Settings(
        db_write_dsn="postgres://u@db/mk?sslmode=disable",
        db_read_dsn="postgresql://u@replica/mk?application_name=reader",
    )
    assert settings.database_url == "postgresql+asyncpg://u@db/mk?sslmode=disable"
