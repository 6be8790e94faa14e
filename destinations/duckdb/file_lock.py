"""One writing process per DuckDB file, held by loadbay for the whole life of its connections.

DuckDB itself refuses a second writing process, but only while the first one's database is open;
loadbay's own advisory lock (``<file>.lock``) is taken before DuckDB opens the file and let go
only after the last connection of this process has closed it (checkpoint included), so a waiting
pipeline never opens the file in between. Connections of one process share the lock (DuckDB allows
several in one process). Where fcntl does not exist (Windows), DuckDB's lock alone applies.

The lock is a POSIX record lock (``lockf``), not ``flock``: a flock belongs to the open file and so
is shared with every child forked while it is open. A thread that starts a subprocess at the moment
another thread lets the lock go and takes it again (a user's app, or the crash harness beside the
tests) would then hold it for the child's few milliseconds before ``exec`` and make this process
refuse its own file. A POSIX lock belongs to the process and is never inherited. Its one trap,
closing any descriptor of the file drops it, cannot bite: only this module opens the lock file,
once per process.
"""

from __future__ import annotations

import errno
import threading
from pathlib import Path
from typing import IO, Any

from loadbay.common.exceptions import DestinationLockedError

_held: dict[str, tuple[IO[Any], int]] = {}  # lock file → (open handle, connections of this process)
_guard = threading.Lock()


def lock_path(database: str) -> str | None:
    """The lock file of a database file; None for an in-memory database."""
    if not database or database.startswith(":memory:"):
        return None
    return str(Path(database).resolve()) + ".lock"


def acquire(database: str) -> None:
    """Take the file's lock for one more connection; ``DestinationLockedError`` if another process has it."""
    path = lock_path(database)
    if path is None:
        return
    try:
        import fcntl
    except ImportError:
        return
    with _guard:
        held = _held.get(path)
        if held is not None:
            _held[path] = (held[0], held[1] + 1)
            return
        handle = open(path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            handle.close()
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            raise DestinationLockedError(f"DuckDB file {database} is being written by another process "
                                         f"(lock file {path})") from None
        _held[path] = (handle, 1)


def release(database: str) -> None:
    """One connection fewer; the last one lets the lock go."""
    path = lock_path(database)
    if path is None:
        return
    with _guard:
        held = _held.get(path)
        if held is None:
            return
        handle, count = held
        if count > 1:
            _held[path] = (handle, count - 1)
            return
        del _held[path]
        handle.close()  # closing the descriptor releases the lock
