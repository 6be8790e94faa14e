"""Normalize: resources → one load package on disk (schema + load files), or nothing at all.

The package is written under ``normalizing/`` and moved to ``packages/`` in one rename when it
is complete, so a failure here (bad data, a frozen contract) leaves no half package behind.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.destination import ATOMIC_APPEND, strategy_problem
from loadbay.common.exceptions import ConfigurationError, SchemaError, SourceError
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.types import Schema, Table
from loadbay.common.storage.package import JobFile, LoadPackage, PackageStorage
from loadbay.common.storage.package_writer import PackageWriter
from loadbay.extract import Resource
from loadbay.faults import crash_point
from loadbay.cursor import CURSORS_KEY
from loadbay.interrupts import RunStopped
from loadbay.progress import RunProgress
from loadbay.sources.files import reading_file

GC_THRESHOLD = 100_000

WRITE_DISPOSITIONS = ("append", "replace", "merge")


DISPOSITION_KEYS = ("disposition", "strategy", "validity_columns")
"""What a ``write_disposition`` dict may say; ``validity_columns`` names scd2's two timestamp columns."""


def parse_disposition(value: str | dict[str, Any] | None) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if isinstance(value, str):
        disposition, strategy = value, None
    else:
        unknown = sorted(set(value) - set(DISPOSITION_KEYS))
        if unknown:
            raise ValueError(f"write_disposition has unknown key(s) {unknown}; known: {DISPOSITION_KEYS}")
        disposition, strategy = value.get("disposition"), value.get("strategy")
    if disposition not in WRITE_DISPOSITIONS:
        raise ValueError(f"write_disposition must be one of {WRITE_DISPOSITIONS}, not {disposition!r}")
    return disposition, strategy


def parse_validity_columns(value: str | dict[str, Any] | None) -> tuple[str, str] | None:
    """The ``validity_columns`` of a ``write_disposition`` dict (two names), None when not given."""
    names = value.get("validity_columns") if isinstance(value, dict) else None
    if names is None:
        return None
    if not isinstance(names, (list, tuple)) or len(names) != 2 or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"validity_columns must be two column names (valid from, valid to), not {names!r}")
    return names[0], names[1]


class _RaisedThresholds:
    """The collector's thresholds, raised while at least one normalize runs: threads of one process share
    one collector, so the first normalize in raises them and the last one out restores what it found
    (each restoring its own would leave them raised for good when two overlap)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._saved: tuple[int, int, int] = gc.get_threshold()

    def enter(self) -> None:
        with self._lock:
            if not self._running:
                self._saved = gc.get_threshold()
                gc.set_threshold(max(self._saved[0], GC_THRESHOLD), *self._saved[1:])
            self._running += 1

    def leave(self) -> None:
        with self._lock:
            self._running -= 1
            if not self._running:
                gc.set_threshold(*self._saved)


_RAISED = _RaisedThresholds()


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Run the cyclic garbage collector less often while normalizing, and restore it afterwards.

    Normalizing allocates millions of short-lived, acyclic dicts; with the default threshold
    (700 allocations) the collector scans them hundreds of times per batch for no garbage, about
    15% of the time of a nested run. Reference counting still frees them at once; the collector
    still runs (every GC_THRESHOLD more allocations than frees), so cycles are still collected.
    """
    _RAISED.enter()
    try:
        yield
    finally:
        _RAISED.leave()


LARGE_TABLE_ROWS = 20_000
"""Rows of one table after which a package's follower is told large files are coming (``large_files_ahead``)."""


class PackageFollower(Protocol):
    """Reads a package's load files while normalize is still writing it.

    ``begin`` comes first; ``file_closed`` for each file whose rows are final while writing goes
    on; then ``finish`` before the package is committed, or ``abandon`` before it is discarded.
    Every call comes from the normalizing thread.
    """

    def begin(self, package: LoadPackage, row_id_prefix: str) -> None:
        """``package`` is being written; every ``_lb_id`` of its rows starts with ``row_id_prefix``."""

    def file_closed(self, job: JobFile, tables: list[Table]) -> None:
        """``job`` (in new_jobs) is final; ``tables``: snapshots of its table, then of that table's parents."""

    def large_files_ahead(self, table: Table) -> bool:
        """``table`` passed ``LARGE_TABLE_ROWS`` rows in the package: files worth loading in bulk are coming, so the
        follower may get ready now (connect; SQLite starts its load worker). True once it did (it is not told
        again); False when the table's files are not its to load (a merge's)."""

    def finish(self) -> None:
        """Every file is written: return once no file is being read; raise if the package cannot be committed."""

    def abandon(self) -> bool:
        """The package does not complete: undo what was done with its files; False keeps it on disk
        (under ``normalizing/``) for the next run to finish undoing."""


def _is_arrow_batch(batch: Any) -> bool:
    """Whether an extracted batch is columnar (a pyarrow RecordBatch or Table), told without importing pyarrow."""
    return type(batch).__module__.startswith("pyarrow") and hasattr(batch, "schema")


@fewer_gc_passes()  # here, so every caller gets it: a run, a dry run
def normalize(resources: Sequence[Resource], schema: Schema, capabilities: DestinationCapabilities,
              storage: PackageStorage, *, file_format: str, contract: SchemaContract,
              batch_size: int | None, file_max_items: int | None, follower: PackageFollower | None = None,
              stop: threading.Event | None = None, atomic_appends: bool = False,
              columnar_format: str | None = "parquet", max_table_nesting: int | None = None, progress: RunProgress | None = None,
              timings: dict[str, float] | None = None) -> tuple[LoadPackage, Schema]:
    """Write a committed package for ``resources``; returns it and the evolved schema.

    A ``follower`` is told of each file as it closes, and is finished before the package is
    committed (or abandoned before it is discarded). ``progress`` counts rows and files; ``timings["extract"]``
    grows by the time spent waiting for the resources' data.
    """
    evolved = Schema.from_dict(schema.to_dict())  # the pipeline's schema changes only on success
    load_id = storage.new_load_id()
    package = storage.create(load_id)
    try:
        normalizer = RelationalNormalizer(evolved, capabilities, load_id, contract,
                                          known_tables=set(schema.tables), max_table_nesting=max_table_nesting)
        on_file_closed = None
        if follower is not None:
            follower.begin(package, normalizer.id_prefix)
            on_file_closed = _telling(follower, evolved)
        if progress is not None:
            on_file_closed = _counting(progress, on_file_closed)
        writer = PackageWriter(package, evolved, file_format, capabilities, file_max_items,
                               on_file_closed=on_file_closed, columnar_format=columnar_format)
        roots: list[str] = []
        told_large = False
        for res in resources:
            disposition, strategy = parse_disposition(res.write_disposition)
            _check_strategy(res.name, disposition, strategy, capabilities)
            if atomic_appends and strategy is None and _disposition(normalizer, res, disposition) == "append":
                disposition, strategy = "append", ATOMIC_APPEND
            table = normalizer.apply_hints(res.name, write_disposition=disposition, strategy=strategy,
                                           primary_key=res.primary_key, merge_key=res.merge_key,
                                           columns=res.columns, max_table_nesting=res.max_table_nesting,
                                           validity_columns=parse_validity_columns(res.write_disposition))
            if table is None:
                continue
            _check_upsert_key(normalizer, table)
            roots.append(table.name)
            for batch in _timed(res.batches(batch_size), timings):
                if stop is not None and stop.is_set():
                    raise RunStopped(f"normalizing of package {load_id} stopped by a signal")
                try:
                    _normalize_batch(normalizer, writer, res.name, batch, progress)
                except SchemaError as exc:
                    path = reading_file()
                    raise exc.in_file(path) if path else exc
                except SourceError as exc:  # a file's line parsed for its exact value (json_rows)
                    raise exc.within(table=res.name) from exc
                crash_point("normalize.batch")
                if follower is not None and not told_large:
                    told_large = any(follower.large_files_ahead(evolved.tables[name])
                                     for name, rows in writer.rows_per_table.items() if rows >= LARGE_TABLE_ROWS)
        writer.close()
        _check_keys(normalizer, writer, roots)
        if follower is not None:
            finishing = time.monotonic()
            follower.finish()  # the files still waiting load now: load time, not normalizing
            if timings is not None:
                timings["drain"] = timings.get("drain", 0.0) + time.monotonic() - finishing
        package.save_schema(evolved)
        cursors = {res.name: res.incremental.state() for res in resources if res.incremental is not None}
        package.write_meta(root_tables=roots, file_format=file_format, rows=writer.rows_per_file,
                           schema_name=evolved.name, **({CURSORS_KEY: cursors} if cursors else {}))
        committed = storage.commit(package)
        crash_point("normalize.committed")
        return committed, evolved
    except BaseException:
        if follower is None or follower.abandon():
            storage.discard(package)
        raise


def _normalize_batch(normalizer: RelationalNormalizer, writer: PackageWriter, resource: str, batch: Any,
                     progress: RunProgress | None) -> None:
    """One batch of ``resource`` normalized into the package's files: Arrow tables per table for a record
    batch (no Python per row), rows per table for a list."""
    if _is_arrow_batch(batch):
        from loadbay.common.normalizer_arrow import normalize_arrow
        from loadbay.sources.json_rows import exact_rows

        for table_name, data in normalize_arrow(normalizer, resource, batch, exact_rows(batch)).items():
            if data.num_rows:
                writer.write_arrow(table_name, data)
                if progress is not None:
                    progress.normalized(table_name, data.num_rows)
        return
    for table_name, rows in normalizer.normalize(resource, batch).items():
        if rows:
            writer.write(table_name, rows)
            if progress is not None:
                progress.normalized(table_name, len(rows))


def _counting(progress: RunProgress, then: Callable[[JobFile], None] | None) -> Callable[[JobFile], None]:
    """The writer's file-closed callback: counts the file, then calls ``then``."""
    def closed(job: JobFile) -> None:
        progress.file_written(f"{job.path.parent.parent.name}/{job.job_id}", job.path.stat().st_size)
        if then is not None:
            then(job)

    return closed


def _timed(batches: Iterator[Any], timings: dict[str, float] | None) -> Iterator[Any]:
    """``batches``, adding the time spent getting each (the user's generator, a file read) to ``timings["extract"]``."""
    if timings is None:
        yield from batches
        return
    clock = time.monotonic
    while True:
        started = clock()
        try:
            batch = next(batches)
        except StopIteration:
            timings["extract"] = timings.get("extract", 0.0) + clock() - started
            return
        timings["extract"] = timings.get("extract", 0.0) + clock() - started
        yield batch


def _telling(follower: PackageFollower, schema: Schema) -> Callable[[JobFile], None]:
    """The writer's file-closed callback: tells ``follower`` with snapshots of the file's tables."""
    def tell(job: JobFile) -> None:
        follower.file_closed(job, _lineage(schema, job.table_name))
    return tell


def _lineage(schema: Schema, name: str) -> list[Table]:
    """Snapshots of table ``name`` and its parents (the schema goes on evolving in this thread)."""
    out = []
    table: Table | None = schema.tables[name]
    while table is not None:
        out.append(Table.from_dict(table.to_dict()))
        table = schema.tables[table.parent] if table.parent else None
    return out


def _disposition(normalizer: RelationalNormalizer, res: Resource, asked: str | None) -> str:
    """The disposition the resource's table will load with: asked for, else the table's own."""
    if asked:
        return asked
    known = normalizer.schema.tables.get(normalizer.table_name(res.name))
    return known.write_disposition if known is not None else "append"


def _check_strategy(name: str, disposition: str | None, strategy: str | None,
                    capabilities: DestinationCapabilities) -> None:
    """A strategy the destination does not have stops the run before anything is written
    (``strategy_problem``, the one check, which the job client makes again before running a table's SQL)."""
    if strategy is None:
        return
    problem = strategy_problem(disposition, strategy, capabilities)
    if problem is not None:
        raise ValueError(f"resource {name!r}: {problem}")


KEYED_STRATEGIES = ("upsert", "insert-only")
"""Merge strategies that find rows by primary key alone."""


def _check_upsert_key(normalizer: RelationalNormalizer, table: Table) -> None:
    """An upsert (or insert-only merge) finds rows by primary key: without one it is refused now, before any
    row is normalized, rather than by the loader (the package would then wait, holding back newer ones)."""
    if table.write_disposition != "merge" or table.strategy not in KEYED_STRATEGIES or table.columns_with("primary_key"):
        return
    if any(h.get("primary_key") for h in normalizer.untyped_hinted_columns().get(table.name, {}).values()):
        return
    raise ConfigurationError(f"pipeline {normalizer.schema.name!r}: table {table.name!r}: the {table.strategy} strategy "
                             "needs a primary_key (primary_key=... in run() or loadbay.resource(), or a column hint); "
                             "nothing was loaded")


def _check_keys(normalizer: RelationalNormalizer, writer: PackageWriter, roots: list[str]) -> None:
    """A merge key that never got a value would merge nothing silently: name it instead."""
    for root in roots:
        pending = normalizer.untyped_hinted_columns().get(root, {})
        keys = [name for name, hints in pending.items() if hints.get("primary_key") or hints.get("merge_key")]
        if keys and writer.rows_per_table.get(root):
            raise SchemaError(f"table {root!r}: key column(s) {keys} never received a value; check "
                              "primary_key / merge_key against the field names in the data")
