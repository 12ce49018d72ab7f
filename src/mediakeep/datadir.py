"""The data directory and what mediakeep writes into it are the service's alone.

The data directory holds the SQLite database (webhook secrets, API key hashes, every org's
metadata), the generated signing key and the spool of bytes in flight; none of it is for other
local users. So the process runs with `MEDIA_UMASK` (default 077: files 0600, directories 0700,
whatever creates them: SQLite, the spool, ffmpeg, temporary files), the data directory is
created 0700, and the SQLite file is created 0600 before SQLite opens it (SQLite gives its
-wal and -shm files the database file's mode).
"""

import contextlib
import os
from pathlib import Path

from mediakeep.config import Settings

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """`mkdir -p path`, the directory itself 0700 when this call creates it (an operator's
    existing directory keeps the mode they gave it)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):  # another process made it first
        path.mkdir(mode=DIR_MODE)
        path.chmod(DIR_MODE)  # mkdir's mode passes through the umask


def private_file(path: Path) -> None:
    """Create `path` empty and 0600 unless it exists."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def prepare_data_dir(settings: Settings) -> None:
    """Before anything is written: the umask, the data directory and the SQLite file."""
    os.umask(int(settings.umask, 8))
    private_dir(settings.data_dir)
    database = settings.sqlite_path
    if database is not None:
        private_dir(database.parent)
        private_file(database)
