"""A process of its own that loads Arrow IPC files into SQLite while this one normalizes.

``sqlite3`` holds the GIL while it binds a row's values, so a load on a thread beside the normalizer takes turns
with it instead of running beside it (1M flat rows: normalizing 2.5 s, loading 2.0 s, 4.6 s together). A worker
process has a GIL and a connection of its own, so the two run on two cores (3.1 s). It is used where that pays
(``SqliteJobClient``): the load feed starts it once a table it loads passes 20,000 rows, while the first file is
still being written, and sends it every file from then on (or a file of ``MIN_ROWS`` rows, if none was started);
dry runs, in-memory databases and drivers other than Python's ``sqlite3`` load in this process as before.

The worker opens the same database file, attaches the same dataset files under the same names, and loads one job
at a time over JSON lines on its stdin and stdout:

- parent → ``{"database", "attach", "busy_timeout_ms", "file", "target", "table_columns", "done": [sql, params]}``
  (the worker reads the file's column names, checks them and their Arrow types against the table's columns, and
  builds the INSERT into ``target`` with each name quoted)
- worker → ``{"ready": true}``: the file's rows and the job's done-record are written in its open transaction;
  or ``{"error": {...}}`` (rolled back): a value that does not fit (column, row), or SQLite's error (class, code)
- parent → ``"commit"``; worker → ``{"committed": true}`` or ``{"error": ...}``

The worker commits only when told to. A parent killed at any moment leaves nothing of the job half-done: the
worker sees its stdin end (or its parent change) and exits without committing, and SQLite rolls the open
transaction back; a parent killed after sending "commit" finds the job's done-record on resume, as after any
lost connection. The worker opens the files with Python's ``sqlite3`` and the busy timeout of the run's connection;
other settings of that connection (``connect_args``, PRAGMAs set on connect) do not carry over (``sqlite_load_worker
= "never"`` keeps every job on it). Its transaction begins deferred, as the run's own: it locks only the files it
writes, so pipelines writing other datasets of the same main file go on beside it.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from datetime import datetime
from typing import IO, Any

from loadbay.common.exceptions import DestinationTransientError
from loadbay.common.schema.types import Column

logger = logging.getLogger(__name__)

MIN_ROWS = 50_000
"""Rows a file loaded beside normalizing needs to start a worker under ``sqlite_load_worker = "auto"`` when none
was started ahead: below, starting it (0.3 s) and the turn-taking it saves are about even."""
MODES = ("auto", "always", "never")
"""``sqlite_load_worker``: "auto" (a worker started ahead of a large table's files, or for a file of ``MIN_ROWS``
rows loaded beside normalizing, takes every file after), "always" (every Arrow IPC file: what the tests use),
"never" (this process only)."""


class WorkerError(Exception):
    """What the worker reported instead of "ready" or "committed": ``error`` is its JSON object."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message", ""))
        self.error = error

    def sqlite_exception(self) -> sqlite3.Error:
        """The worker's sqlite3 exception rebuilt here (class, message, result code and name), so that the SQL
        client classifies it exactly as an error of its own connection."""
        cls = getattr(sqlite3, str(self.error.get("type")), None)
        if not (isinstance(cls, type) and issubclass(cls, sqlite3.Error)):
            cls = sqlite3.Error
        exc = cls(self.error.get("message", ""))
        exc.sqlite_errorcode = self.error.get("errorcode")  # type: ignore[attr-defined]
        exc.sqlite_errorname = self.error.get("errorname")  # type: ignore[attr-defined]
        return exc


class WorkerEnded(DestinationTransientError):
    """The worker process ended in the middle of a job (killed, out of memory, or unable to start at all).
    ``may_have_committed`` is false until "commit" was sent: nothing of the job is in the database then, and the
    job can load in this process at once."""

    def __init__(self, message: str, may_have_committed: bool) -> None:
        super().__init__(message)
        self.may_have_committed = may_have_committed


class SqliteLoadWorker:
    """The parent's end: starts the worker, sends it one job at a time, stops it on ``close``."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self.jobs = 0
        self.peak_mib = 0.0
        """The highest peak memory (RSS) a worker reported: logged when it is closed (bench/mysql_sqlite.py shows it)."""

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the worker unless it runs; ``WorkerEnded`` when no process could be started."""
        if self.running:
            return
        # -P (3.11+): the working folder is not put first on sys.path (a loadbay/ or sqlite3.py there is not imported)
        safe_path = ["-P"] if sys.version_info >= (3, 11) else []
        try:
            self._proc = subprocess.Popen(
                [sys.executable, *safe_path, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                encoding="utf-8")
        except OSError as exc:  # no such interpreter (an embedded one), too many processes or files
            raise WorkerEnded(f"the SQLite load worker could not be started ({exc})", may_have_committed=False) from exc
        logger.debug("SQLite load worker started (pid %d)", self._proc.pid)

    def load(self, request: dict[str, Any], before_commit: Any = None) -> None:
        """Run one job (``request`` as the module says); ``before_commit()`` runs once the worker holds the rows
        and the done-record uncommitted. Raises ``WorkerError`` for what the worker reported (rolled back),
        ``WorkerEnded`` when the worker ended on the way (once "commit" was sent, the job's done-record tells
        whether it committed)."""
        with self._lock:
            try:
                self.start()
                self._send(request)
                self._expect("ready", committing=False)
                if before_commit is not None:
                    before_commit()
                self._send("commit")
                answer = self._expect("committed", committing=True)
            except (WorkerError, WorkerEnded):  # it rolled back and waits for the next job, or it is gone
                raise
            except BaseException:  # interrupted mid-exchange (Ctrl-C), or an answer not understood: an answer may
                self._kill()  # still be on its way, so this worker is not asked again; it rolls back as it ends
                raise
            self.jobs += 1
            self.peak_mib = max(self.peak_mib, float(answer.get("peak_mib", 0.0)))

    def _send(self, message: Any) -> None:
        """A message the worker reads; one it never got (it had ended) cannot have made it commit."""
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(message, default=_json_default) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._ended(committing=False) from exc

    def _expect(self, what: str, committing: bool) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            raise self._ended(committing)
        answer = json.loads(line)
        if "error" in answer:
            raise WorkerError(answer["error"])
        if not answer.get(what):
            raise RuntimeError(f"the SQLite load worker answered {line.strip()!r} where {what!r} was expected")
        return answer  # type: ignore[no-any-return]

    def _ended(self, committing: bool) -> WorkerEnded:
        code = self._kill()
        if committing:
            return WorkerEnded(f"the SQLite load worker ended while committing (exit code {code}); the job runs "
                               "again unless its done-record shows it committed", may_have_committed=True)
        return WorkerEnded(f"the SQLite load worker ended before committing anything (exit code {code})",
                           may_have_committed=False)

    def _kill(self) -> int | None:
        """End the worker at once (SIGKILL unless it ended already) and reap it; its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        code = proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            try:
                if pipe is not None:
                    pipe.close()
            except OSError:  # a broken pipe's buffered data cannot be flushed: nothing to keep
                pass
        return code

    def close(self) -> None:
        """Close its stdin (an idle worker exits at once) and wait for it; kill it after 10 s. One that never got a
        job (started ahead of files that stayed small) is killed at once: it holds nothing."""
        if self._proc is not None and self.jobs == 0:
            logger.debug("SQLite load worker (pid %d) ended unused", self._proc.pid)
            self._kill()
            return
        proc, self._proc = self._proc, None
        if proc is None:
            return
        logger.debug("SQLite load worker (pid %d) closed after %d jobs, peak memory %.0f MiB", proc.pid, self.jobs,
                     self.peak_mib)
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        finally:
            if proc.stdout is not None:
                proc.stdout.close()


def _json_default(value: Any) -> Any:
    """A done-record's ``inserted_at`` as sqlite3's own datetime adapter writes it (``isoformat(" ")``)."""
    if isinstance(value, datetime):
        return value.isoformat(" ")
    raise TypeError(f"{type(value).__name__} cannot be sent to the SQLite load worker")


def column_dicts(columns: list[Column]) -> list[dict[str, Any]]:
    return [asdict(column) for column in columns]


# -- the worker process ------------------------------------------------------------------------------


class _Worker:
    def __init__(self, stdout: IO[str]) -> None:
        self.out = stdout
        self.conn: sqlite3.Connection | None = None
        self.database: str | None = None

    def reply(self, message: dict[str, Any]) -> None:
        self.out.write(json.dumps(message) + "\n")
        self.out.flush()

    def connect(self, request: dict[str, Any]) -> sqlite3.Connection:
        """The connection to the request's database, with exactly its datasets attached."""
        if self.conn is None or self.database != request["database"]:
            if self.conn is not None:
                self.conn.close()
            self.conn = sqlite3.connect(request["database"], isolation_level=None)
            self.database = request["database"]
        self.conn.execute(f"PRAGMA busy_timeout = {int(request['busy_timeout_ms'])}")
        attached = {row[1]: row[2] for row in self.conn.execute("PRAGMA database_list")}
        wanted = dict(request["attach"])
        for name in set(attached) - set(wanted) - {"main", "temp"}:
            self.conn.execute(f"DETACH DATABASE {_quoted(name)}")
        for name, path in wanted.items():
            if attached.get(name) != path:
                if name in attached:
                    self.conn.execute(f"DETACH DATABASE {_quoted(name)}")
                self.conn.execute(f"ATTACH DATABASE ? AS {_quoted(name)}", (path,))
        return self.conn

    def job(self, request: dict[str, Any], commands: Any) -> bool:
        """One job; False when the parent went away (stdin ended) before telling it to commit."""
        conn = self.connect(request)
        error = self.write(conn, request)
        if error is not None:
            self.reply({"error": error})
            return True
        self.reply({"ready": True})
        command = next(commands, None)
        if command != "commit":
            conn.execute("ROLLBACK")
            return False
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            _rollback(conn)
            self.reply({"error": _sqlite_error(exc, "commit")})
            return True
        self.reply({"committed": True, "peak_mib": _peak_mib()})
        return True

    def write(self, conn: sqlite3.Connection, request: dict[str, Any]) -> dict[str, Any] | None:
        """The file's columns checked against the table's, BEGIN, its record batches and the done-record; the error
        (rolled back) or None."""
        import pyarrow as pa

        from loadbay.destinations.arrow_params import BadValue, column_values, file_columns_problem
        from loadbay.destinations.load_jobs import arrow_ipc_batches

        table_columns = {c["name"]: Column(**c) for c in request["table_columns"]}
        step, insert = "begin", None
        try:
            with arrow_ipc_batches(request["file"]) as (schema, batches):
                if (found := file_columns_problem(schema, table_columns)) is not None:
                    return {"kind": "columns" if found[0] is None else "type", "column": found[0], "message": found[1]}
                columns = [table_columns[name] for name in schema.names]
                insert = (f"INSERT INTO {request['target']} ({', '.join(_quoted(n) for n in schema.names)}) "
                          f"VALUES ({', '.join('?' * len(columns))})")
                conn.execute("BEGIN")  # deferred, as the run's own: only the files written are locked
                step = "insert"
                first_row = 0
                for batch in batches:
                    values = []
                    for array, column in zip(batch.columns, columns):
                        try:
                            values.append(column_values(array, column, "sqlite"))
                        except BadValue as exc:
                            _rollback(conn)
                            return {"kind": "value", "column": column.name, "row": first_row + exc.row,
                                    "message": str(exc)}
                        except pa.ArrowInvalid as exc:
                            _rollback(conn)
                            return {"kind": "arrow", "column": column.name, "message": str(exc)}
                    conn.executemany(insert, zip(*values))
                    first_row += batch.num_rows
            step = "done"
            conn.execute(request["done"][0], request["done"][1])
        except sqlite3.Error as exc:
            _rollback(conn)
            return {**_sqlite_error(exc, step), "statement": insert}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which raises it
            _rollback(conn)
            return {"kind": "other", "type": type(exc).__name__, "message": str(exc)}
        return None


def _peak_mib() -> float:
    """This process's peak RSS (``VmHWM``; 0 where /proc has none)."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _sqlite_error(exc: sqlite3.Error, step: str) -> dict[str, Any]:
    return {"kind": "sqlite", "step": step, "type": type(exc).__name__, "message": str(exc),
            "errorcode": getattr(exc, "sqlite_errorcode", None), "errorname": getattr(exc, "sqlite_errorname", None)}


def _exit_with_parent(parent: int) -> None:
    """Exit at once (nothing committed: SQLite rolls the open transaction back) when the parent is gone, even in
    the middle of a file: stdin ending is noticed only between steps."""
    while True:
        time.sleep(0.1)
        if os.getppid() != parent:
            os._exit(3)


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent's run, which then closes this worker
    import pyarrow  # noqa: F401 - before the first job: a worker started ahead of it is ready when it comes

    import loadbay.destinations.arrow_params  # noqa: F401

    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, never into the answers
    worker = _Worker(protocol)
    commands = (json.loads(line) for line in sys.stdin)
    for request in commands:
        if not isinstance(request, dict) or not worker.job(request, commands):
            break
    if worker.conn is not None:
        worker.conn.close()
    protocol.close()
    os._exit(0)  # at once: the interpreter's teardown (pyarrow's) would keep the parent's run waiting ~0.2 s


if __name__ == "__main__":
    main()
