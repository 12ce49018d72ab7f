"""libpq-style PostgreSQL DSNs (`postgres://u:p@host/db?sslmode=require&...`) onto asyncpg.

SQLAlchemy's asyncpg dialect hands every query parameter to `asyncpg.connect()` as a keyword,
so `?sslmode=disable` fails with `unexpected keyword argument 'sslmode'`. asyncpg itself parses
libpq DSNs (sslmode, sslrootcert, sslcert, sslkey, target_session_attrs, ...; what it does not
know it sends as startup settings, which is how `application_name`, `options` and `search_path`
reach the server). So the engine connects through asyncpg's own DSN parser, after this module
has checked every parameter against the ones that path honours (a typo is a config error at
start, not a failed connection later) and taken out the one asyncpg does not know:
`connect_timeout`, which becomes its `timeout`.
"""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("postgres", "postgresql", "postgresql+asyncpg")

SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# asyncpg's values (libpq's too, less `read-only`'s older spelling differences).
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "read-write", "read-only", "prefer-standby")

# Parameters asyncpg's DSN parser reads itself.
_ASYNCPG_PARAMS = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "passfile",
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcrl",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
    }
)
# Sent to the server as startup settings (asyncpg's server_settings).
_SERVER_SETTINGS = frozenset({"application_name", "options", "search_path"})
ACCEPTED = tuple(sorted(_ASYNCPG_PARAMS | _SERVER_SETTINGS | {"connect_timeout"}))
_FILES = ("sslrootcert", "sslcert", "sslkey", "sslcrl", "passfile")


class DsnError(ValueError):
    """A DSN this service cannot use; the message is one line fit for an operator."""


@dataclass(frozen=True)
class PgConnectArgs:
    """What `asyncpg.connect()` gets: the DSN it parses itself and the connect timeout."""

    dsn: str
    timeout: float | None = None


def _redacted(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def parse_pg_dsn(dsn: str) -> PgConnectArgs:
    """Check a PostgreSQL DSN and split it into asyncpg's connect arguments (DsnError if bad)."""
    parts = urlsplit(dsn)
    if parts.scheme not in SCHEMES:
        raise DsnError(
            f"{_redacted(dsn)!r} is not a PostgreSQL URL; use postgres://, postgresql:// "
            "or postgresql+asyncpg://"
        )
    query: list[tuple[str, str]] = []
    timeout: float | None = None
    seen: set[str] = set()
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name not in ACCEPTED:
            raise DsnError(f"unknown DSN parameter {name!r}; accepted: {', '.join(ACCEPTED)}")
        if name in seen:
            raise DsnError(f"DSN parameter {name!r} is given twice")
        seen.add(name)
        if name == "sslmode" and value not in SSLMODES:
            raise DsnError(f"sslmode={value!r}; accepted: {', '.join(SSLMODES)}")
        if name == "target_session_attrs" and value not in TARGET_SESSION_ATTRS:
            raise DsnError(
                f"target_session_attrs={value!r}; accepted: {', '.join(TARGET_SESSION_ATTRS)}"
            )
        if name in _FILES and value != "system" and not Path(value).expanduser().is_file():
            raise DsnError(f"{name}={value!r}: no such file")
        if name == "connect_timeout":
            try:
                seconds = int(value)
            except ValueError:
                raise DsnError(
                    f"connect_timeout={value!r} is not a whole number of seconds"
                ) from None
            # libpq: 0 (or less) waits forever; asyncpg's `timeout=None` is its 60 s default.
            timeout = float(seconds) if seconds > 0 else None
            continue
        query.append((name, value))
    plain = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
    return PgConnectArgs(dsn=plain, timeout=timeout)


def sqlalchemy_url(dsn: str) -> str:
    """The URL SQLAlchemy is given (dialect and driver, no parameters: asyncpg gets those)."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(scheme="postgresql+asyncpg", query=""))
