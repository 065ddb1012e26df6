"""Files only the hub's own user may read: the data directory, the SQLite database, the local object
store and the master key are created with mode 0700 (directories) or 0600 (files), whatever the umask."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("govhub.files")

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """The directory `path`, created private if it is missing (its parents as the umask says)."""
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=DIRECTORY_MODE)
    except FileExistsError:
        return path  # made by another process at the same moment
    os.chmod(path, DIRECTORY_MODE)  # mkdir's mode is narrowed by the umask, never widened: set it whole
    return path


def create_private_file(path: Path) -> None:
    """Create `path` empty and private if it does not exist yet (an existing file is left as it is)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def keep_private(path: Path) -> None:
    """Take away the group's and others' access to an existing file of ours (key material written by an
    older version, or copied in by hand); says so in the log when it cannot."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, mode & ~0o077)
            log.warning("%s was readable by others (mode %o); made it private", path, mode)
    except OSError as exc:
        log.warning("%s could not be made private: %s", path, exc)
