"""Streams normalized rows into a package's load files, one open file per table.

Files rotate when they reach ``file_max_items`` rows (bounded files load in parallel and retry
cheaply) and, for formats with a header, when the table gained columns since the file opened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from common.capabilities import DestinationCapabilities
from common.schema.types import Schema
from common.storage.package import JobFile, LoadPackage, job_file_name
from common.storage.text_repair import TextRepairs
from common.storage.writers import WRITERS, LoadFileWriter

DEFAULT_FILE_MAX_ITEMS = 100_000


class PackageWriter:
    def __init__(self, package: LoadPackage, schema: Schema, file_format: str,
                 capabilities: DestinationCapabilities, file_max_items: int = DEFAULT_FILE_MAX_ITEMS,
                 on_rotate: Callable[[JobFile], None] | None = None) -> None:
        self.package = package
        self.schema = schema
        self.writer_class = WRITERS[file_format]
        self.capabilities = capabilities
        self.file_max_items = file_max_items
        self.on_rotate = on_rotate  # told of each file closed while writing goes on (not at close())
        self.repairs = TextRepairs()  # one for every file: a table's repairs are reported once
        self._open: dict[str, LoadFileWriter] = {}
        self._file_ids: dict[str, int] = {}
        self.rows_per_table: dict[str, int] = {}
        self.rows_per_file: dict[str, int] = {}  # job id (table.file_id) → rows

    def write(self, table_name: str, rows: Sequence[dict[str, Any]]) -> None:
        start = 0
        while start < len(rows):
            writer = self._writer(table_name)
            room = self.file_max_items - writer.row_count
            chunk = rows[start:start + room]
            writer.write_rows(chunk)
            start += len(chunk)
        self.rows_per_table[table_name] = self.rows_per_table.get(table_name, 0) + len(rows)

    def _writer(self, table_name: str) -> LoadFileWriter:
        table = self.schema.tables[table_name]
        writer = self._open.get(table_name)
        if writer is not None:
            header_stale = self.writer_class.file_format != "jsonl" and len(writer.columns) != len(table.columns)
            if writer.row_count >= self.file_max_items or header_stale:
                self._close(writer)
                del self._open[table_name]
                if self.on_rotate is not None:
                    self.on_rotate(JobFile(writer.path))
                writer = None
        if writer is None:
            file_id = self._file_ids.get(table_name, 0)
            self._file_ids[table_name] = file_id + 1
            name = job_file_name(table_name, f"{file_id:05d}", 0, self.writer_class.file_format)
            writer = self.writer_class(self.package.root / "new_jobs" / name, table, self.capabilities,
                                       repairs=self.repairs)
            self._open[table_name] = writer
        return writer

    def _close(self, writer: LoadFileWriter) -> None:
        job_id = ".".join(writer.path.name.split(".")[:2])
        self.rows_per_file[job_id] = writer.close()

    def close(self) -> dict[str, int]:
        for writer in self._open.values():
            self._close(writer)
        self._open.clear()
        return dict(self.rows_per_table)
