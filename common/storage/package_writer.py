"""Streams normalized rows into a package's load files, one open file per table.

Files rotate when they reach ``file_max_items`` rows (bounded files load in parallel and retry
cheaply) and, for formats with a header, when the table gained columns since the file opened.
Arrow tables (``write_arrow``) go to files of their own written by Arrow (parquet, or Arrow IPC where
the destination takes those: ``columnar_format``): a package may then hold both kinds of file for a
table, and the loader picks each file's job by its extension.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.schema.types import Schema
from loadbay.common.schema.values import UnloadableValue
from loadbay.common.storage.package import JobFile, LoadPackage, job_file_name
from loadbay.common.storage.rows_with_ids import RowsWithIds
from loadbay.common.storage.text_repair import TextRepairs
from loadbay.common.storage.writers import WRITERS, LoadFileWriter, unloadable_json_error

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

DEFAULT_FILE_MAX_ITEMS = 100_000


class PackageWriter:
    def __init__(self, package: LoadPackage, schema: Schema, file_format: str,
                 capabilities: DestinationCapabilities, file_max_items: int | None = None,
                 on_file_closed: Callable[[JobFile], None] | None = None,
                 columnar_format: str | None = "parquet") -> None:
        self.package = package
        # Arrow data as files of ``columnar_format`` where the destination loads them (a run's is
        # ``DestinationCapabilities.columnar_format``); else as rows of the package's format
        self.columnar_format = columnar_format if columnar_format in capabilities.supported_loader_file_formats else None
        self.schema = schema
        self.writer_class = WRITERS[file_format]
        self.capabilities = capabilities
        # a size the run names holds for every file; else Arrow data goes in files of the destination's size
        self.file_max_items = file_max_items or DEFAULT_FILE_MAX_ITEMS
        self.columnar_file_max_items = file_max_items or capabilities.columnar_file_max_items or DEFAULT_FILE_MAX_ITEMS
        self.on_file_closed = on_file_closed
        """Told of each file as it closes, while writing goes on and by ``close()``: its rows are
        final, so it may be read before the package is complete."""
        self.repairs = TextRepairs()  # one for every file: a table's repairs are reported once
        self._open: dict[tuple[str, type[LoadFileWriter]], LoadFileWriter] = {}
        self._file_ids: dict[str, int] = {}
        self.rows_per_table: dict[str, int] = {}
        self.rows_per_file: dict[str, int] = {}  # job id (table.file_id) → rows
        self._told_rows = False  # whether the fallback of Arrow data to rows was logged

    def write(self, table_name: str, rows: Sequence[dict[str, Any]]) -> None:
        if isinstance(rows, RowsWithIds) and not self.writer_class.takes_rows_with_ids:
            rows = list(rows)
        start = 0
        while start < len(rows):
            writer = self._writer(table_name)
            room = self._max_items(writer) - writer.row_count
            chunk = rows[start:start + room]
            try:
                writer.write_rows(chunk)
            except (UnloadableValue, RecursionError) as exc:  # a json value holding an unknown type, or itself
                raise unloadable_json_error(self.schema.name, writer.table, chunk, exc) from None
            start += len(chunk)
        self.rows_per_table[table_name] = self.rows_per_table.get(table_name, 0) + len(rows)

    def write_arrow(self, table_name: str, table: pa.Table) -> None:
        """Rows of ``table_name`` as an Arrow table (columns named and typed as ``normalizer_arrow`` makes
        them) into files of ``columnar_format`` written by Arrow, with the same rotation as ``write``. A
        destination that loads no columnar format gets them as rows of its file format instead (slower:
        Python per row)."""
        from loadbay.common.storage.arrow_writer import ARROW_WRITERS

        if self.columnar_format is None:
            self._write_as_rows(table_name, table)
            return
        start = 0
        while start < table.num_rows:
            writer = self._writer(table_name, ARROW_WRITERS[self.columnar_format])
            chunk = table.slice(start, self._max_items(writer) - writer.row_count)
            writer.write_table(chunk)  # type: ignore[attr-defined]
            start += chunk.num_rows
        self.rows_per_table[table_name] = self.rows_per_table.get(table_name, 0) + table.num_rows

    def _write_as_rows(self, table_name: str, table: pa.Table) -> None:
        if not self._told_rows:
            self._told_rows = True
            logger.info("Arrow data is written as %s rows, one Python dict per row (slower than parquet files): "
                        "the run asked for that loader_file_format, or the destination loads no columnar format "
                        "(it loads "
                        "%s)", self.writer_class.file_format, self.capabilities.supported_loader_file_formats)
        from loadbay.common.storage.arrow_rows import arrow_rows

        self.write(table_name, arrow_rows(table, self.schema.tables[table_name]))

    def _writer(self, table_name: str, writer_class: type[LoadFileWriter] | None = None) -> LoadFileWriter:
        """The open file of ``table_name`` written by ``writer_class`` (the package's format by default),
        rotated when full or, for formats with a header, when the table gained columns."""
        writer_class = writer_class or self.writer_class
        table = self.schema.tables[table_name]
        key = (table_name, writer_class)
        writer = self._open.get(key)
        if writer is not None:
            header_stale = writer_class.file_format != "jsonl" and len(writer.columns) != len(table.columns)
            if writer.row_count >= self._max_items(writer) or header_stale:
                self._close(writer)
                del self._open[key]
                if self.on_file_closed is not None:
                    self.on_file_closed(JobFile(writer.path))
                writer = None
        if writer is None:
            file_id = self._file_ids.get(table_name, 0)
            self._file_ids[table_name] = file_id + 1
            name = job_file_name(table_name, f"{file_id:05d}", 0, writer_class.file_format)
            writer = writer_class(self.package.root / "new_jobs" / name, table, self.capabilities,
                                  repairs=self.repairs)
            self._open[key] = writer
        return writer

    def _max_items(self, writer: LoadFileWriter) -> int:
        return self.columnar_file_max_items if writer.from_arrow else self.file_max_items

    def _close(self, writer: LoadFileWriter) -> None:
        job_id = ".".join(writer.path.name.split(".")[:2])
        self.rows_per_file[job_id] = writer.close()

    def close(self) -> dict[str, int]:
        for writer in self._open.values():
            self._close(writer)
            if self.on_file_closed is not None:
                self.on_file_closed(JobFile(writer.path))
        self._open.clear()
        return dict(self.rows_per_table)
