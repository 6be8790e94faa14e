"""Loading a package's append files while it is still being normalized (``load_while_normalizing``).

The ``LoadFeed`` is the normalizer's follower: it loads each append file as it closes, through the
``Loader``'s own job runner, and records in the package which tables it created or altered, so that a
package abandoned mid-normalize can be cleaned up and a committed one knows its tables.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from loadbay.common.destination import JobClient, needs_preparation
from loadbay.common.exceptions import DestinationError, LoadbayError
from loadbay.common.schema.types import Schema, Table
from loadbay.common.storage.package import JobFile, LoadPackage
from loadbay.load import DEFINITIONS_KEY, PREFIX_KEY, TABLES_KEY

if TYPE_CHECKING:
    from loadbay.load import Loader

logger = logging.getLogger(__name__)


class LoadFeed:
    """The Loader's intake for one package being normalized (a ``PackageFollower``).

    Append files are loaded one at a time, as they close, on a thread and a connection of its own
    (the normalizing thread keeps its core), through ``Loader._run_job``. Once every file is written,
    ``finish`` loads the ones still waiting with as many connections as the loader would give them
    (``Loader.workers_for``: the normalizing core is free now) before the package is committed. The
    first file that does not complete (failed, out of retries, stopped) ends the feed, and ``abandon``
    ends it at once; files not loaded by then stay in new_jobs and load with the rest of the package
    once it is committed (or go with it).
    """

    def __init__(self, loader: Loader) -> None:
        self.loader = loader
        self.package: LoadPackage | None = None
        self.row_id_prefix = ""
        self.tables: list[str] = []
        """Tables that may hold rows of the package (also in its meta)."""
        self.definitions: dict[str, Table] = {}
        """What the destination may have been given: the tables and their parents."""
        self._migrated: dict[str, int] = {}  # table → columns its live table has been given
        self._initialized = False
        self._queue: queue.SimpleQueue[tuple[JobFile, list[Table]] | None] = queue.SimpleQueue()
        self._closed: list[JobFile] = []  # every file queued, to size the drain
        self._ended = threading.Event()
        self._lock = threading.Lock()  # the package meta, the DDL and the fields above, between drain threads
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    def begin(self, package: LoadPackage, row_id_prefix: str) -> None:
        self.package, self.row_id_prefix = package, row_id_prefix

    def file_closed(self, job: JobFile, tables: list[Table]) -> None:
        """Load ``job`` into ``tables[0]`` (snapshots, with every column the file has, of its table
        and then of that table's parents), unless the table is reset when the package loads."""
        if self._ended.is_set() or needs_preparation(tables[0]):
            return
        self._start_thread()
        self._closed.append(job)
        self._queue.put((job, tables))

    def large_files_ahead(self, table: Table) -> bool:
        """Get the feed's connection ready before the first file of ``table`` closes
        (``JobClient.prepare_for_large_files``), unless the feed does not load its files."""
        if self._ended.is_set() or needs_preparation(table):
            return False
        self._start_thread()
        self._queue.put(_GET_READY)
        return True

    def _start_thread(self) -> None:
        if self._thread is None:
            assert self.package is not None, "begin() comes first"
            self._thread = threading.Thread(target=self._run, name=f"load-feed-{self.package.load_id}", daemon=True)
            self._thread.start()

    def finish(self) -> None:
        """Every file is written: load the files still waiting, several at a time where they are large
        enough to be worth more connections, and return once none is loading. Raises when a job's file
        could not be moved between job folders: the package cannot tell which rows it holds."""
        if self._thread is not None:
            # not started yet (still in new_jobs); the feed's thread may start one meanwhile: it then counts 0 bytes
            waiting = [] if self._ended.is_set() else [job for job in self._closed if job.path.exists()]
            threads = [self._thread]
            for n in range(1, self.loader.workers_for(waiting) if waiting else 1):
                threads.append(threading.Thread(target=self._run, daemon=True,
                                                name=f"load-feed-{self.package.load_id if self.package else ''}-{n}"))
                threads[-1].start()
            self._end(threads)
        self._ended.set()
        if self._failure is not None:
            load_id = self.package.load_id if self.package is not None else "?"
            raise LoadFeedFailed(f"package {load_id}: loading while normalizing failed: {self._failure}") \
                from self._failure

    def _end(self, threads: list[threading.Thread]) -> None:
        """One end mark per thread, after every queued file: each thread stops at its own."""
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()
        self._thread = None

    def abandon(self) -> bool:
        """End the feed (the file loading now completes, no other starts) and delete the rows it
        loaded; False (the package stays under normalizing/ and the next run deletes them) when the
        destination cannot be reached now."""
        self._ended.set()
        try:
            self.finish()
        except LoadFeedFailed:  # the package is being discarded already
            logger.debug("loading while normalizing had failed too", exc_info=True)
        if not self.tables or self.package is None:
            return True
        try:
            self.loader.remove_abandoned_rows(self.package)
        except DestinationError as exc:
            logger.error("package %s did not complete and the rows it loaded while normalizing, in %s, could not "
                         "be removed now (%s); the next run of the pipeline removes them", self.package.load_id,
                         self.tables, exc)
            return False
        return True

    def _run(self) -> None:
        loader = self.loader
        client: JobClient | None = None
        try:
            while (item := self._queue.get()) is not None:
                if self._ended.is_set() or loader.stop.is_set():
                    continue  # left in new_jobs: it loads with the rest of the package
                if item is _GET_READY:
                    if client is None:
                        client = self._ready_client(loader)
                    continue
                job, tables = item
                if client is None:
                    try:
                        client = loader.destination.client(loader.config)
                    except Exception as exc:  # noqa: BLE001 - no client, no feed; it must not fail the package
                        self._stopped_at(job, exc)
                        continue
                    if not self._attempt(job, loader._with_retries, client, client.open, "connect"):
                        continue
                    client.beside_normalizing = True
                if not self._attempt(job, self._load, client, job, tables):
                    self._ended.set()
        except BaseException as exc:  # noqa: BLE001 - a job folder could not be updated: fail the package
            self._failure = exc
            self._ended.set()
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001 - closing a broken connection may fail too
                    logger.debug("closing the connection of loading while normalizing failed", exc_info=True)

    def _ready_client(self, loader: Loader) -> JobClient | None:
        """The feed's client, connected and told large files are coming; None when that failed (the first file
        then connects as it would have, and reports what fails)."""
        client = None
        try:
            client = loader.destination.client(loader.config)
            loader._with_retries(client, client.open, "connect")
            client.beside_normalizing = True
            client.prepare_for_large_files()
            return client
        except Exception:  # noqa: BLE001 - only a head start: the first file's job tries again
            logger.debug("getting ready for large files failed", exc_info=True)
            if client is not None:
                try:
                    client.close()
                except Exception:  # noqa: BLE001
                    pass
            return None

    def _attempt(self, job: JobFile, action: Callable[..., Any], *args: Any) -> bool:
        """Run ``action``; False when it returned False (a job failed terminally) or raised: an error
        ends the feed, and ``job`` and the rest load (or are reported) once the package is committed,
        the loader settling a job left in started_jobs by its done-record as on any resume. Only an
        OSError (a job file that could not be moved) fails the whole package."""
        try:
            return action(*args) is not False
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loader runs it again after normalizing, and reports it
            self._stopped_at(job, exc)
            return False

    def _stopped_at(self, job: JobFile, exc: Exception) -> None:
        self._ended.set()
        logger.warning("loading while normalizing stopped at %s; it and the rest load after normalizing: %s",
                       job.path.name, exc)

    def _load(self, client: JobClient, job: JobFile, tables: list[Table]) -> bool:
        assert self.package is not None
        table = tables[0]
        with self._lock:
            if len(table.columns) > self._migrated.get(table.name, 0):  # snapshots only ever grow
                self._record(tables)  # in the meta before the table's DDL or rows
                self.loader._with_retries(client, lambda: self._migrate(client, table),
                                          f"create or alter {table.name}")
                self._migrated[table.name] = len(table.columns)
        return self.loader._run_job(client, self.package, Schema(self.package.load_id, {table.name: table}), job)

    def _migrate(self, client: JobClient, table: Table) -> None:
        if not self._initialized:
            client.initialize_storage()
            self._initialized = True
        client.migrate_tables([table])

    def _record(self, tables: list[Table]) -> None:
        """Note ``tables`` in the package meta: which may hold rows (deleted if the package is
        abandoned) and what their definitions were (kept in the pipeline's schema then)."""
        assert self.package is not None
        if tables[0].name not in self.tables:
            self.tables.append(tables[0].name)
        for table in tables:
            known = self.definitions.get(table.name)
            if known is None or len(table.columns) > len(known.columns):
                self.definitions[table.name] = table
        self.package.write_meta(**{TABLES_KEY: self.tables, PREFIX_KEY: self.row_id_prefix,
                                   DEFINITIONS_KEY: [t.to_dict() for t in self.definitions.values()]})



class LoadFeedFailed(LoadbayError):
    """Moving a file loaded while normalizing between job folders failed: the package cannot say which rows it holds."""


_GET_READY: Any = object()
"""A queue item: connect and get ready for large files (``large_files_ahead``)."""


def created_tables(package: LoadPackage) -> list[Table]:
    """Definitions of the tables (and their parents) that loading while normalizing may have created for ``package``."""
    return [Table.from_dict(d) for d in package.read_meta().get(DEFINITIONS_KEY, [])]


def with_tables(schema: Schema, tables: list[Table]) -> Schema:
    """``schema`` plus ``tables`` and their columns: what an abandoned package created in the
    destination stays known, so later runs agree with it (a column created as double gets a
    variant for a str instead of a COPY that fails)."""
    out = Schema.from_dict(schema.to_dict())
    for table in tables:
        known = out.tables.get(table.name)
        if known is None:
            out.tables[table.name] = Table.from_dict(table.to_dict())
            continue
        for column in table.columns.values():
            known.columns.setdefault(column.name, column)
    return out
