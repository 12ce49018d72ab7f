"""What the CLI keeps in the user's config dir (`typer.get_app_dir("mediakeep")`):
`credentials.json` (tokens of `mediakeep login`, per server URL, mode 0600) and
`tus-uploads.json` (unfinished tus uploads, so a new `mediakeep upload` resumes them)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from mediakeep.client.models import TokenPair

APP_NAME = "mediakeep"


def app_dir() -> Path:
    return Path(typer.get_app_dir(APP_NAME))


def credentials_path() -> Path:
    return app_dir() / "credentials.json"


def server_key(url: str) -> str:
    return url.rstrip("/")


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (0600 from the first byte), atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass
class SavedLogin:
    url: str
    access_token: str
    refresh_token: str | None
    email: str | None
    expires_at: float | None


def load(url: str) -> SavedLogin | None:
    entry = _read(credentials_path()).get("servers", {}).get(server_key(url))
    if not isinstance(entry, dict) or not entry.get("access_token"):
        return None
    return SavedLogin(
        url=server_key(url),
        access_token=str(entry["access_token"]),
        refresh_token=entry.get("refresh_token"),
        email=entry.get("email"),
        expires_at=entry.get("expires_at"),
    )


def save(url: str, tokens: TokenPair, email: str | None) -> Path:
    path = credentials_path()
    data = _read(path)
    servers = data.setdefault("servers", {})
    servers[server_key(url)] = {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "email": email,
        "expires_at": time.time() + tokens.expires_in if tokens.expires_in else None,
        "saved_at": time.time(),
    }
    _write_private(path, data)
    return path


def forget(url: str) -> bool:
    path = credentials_path()
    data = _read(path)
    if server_key(url) not in data.get("servers", {}):
        return False
    del data["servers"][server_key(url)]
    _write_private(path, data)
    return True


class FileStore(MutableMapping[str, str]):
    """A small string mapping kept in a JSON file (rewritten on every change)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _load(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in _read(self.path).items()}

    def __getitem__(self, key: str) -> str:
        return self._load()[key]

    def __setitem__(self, key: str, value: str) -> None:
        data = self._load()
        data[key] = value
        _write_private(self.path, dict(data))

    def __delitem__(self, key: str) -> None:
        data = self._load()
        del data[key]
        _write_private(self.path, dict(data))

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def tus_store() -> FileStore:
    return FileStore(app_dir() / "tus-uploads.json")
