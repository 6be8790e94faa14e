"""Load files written from Arrow tables (what ``normalizer_arrow`` makes), no Python per row: parquet, or
Arrow IPC files for a destination that scans Arrow data itself (DuckDB).

The file's columns are the table's columns when it opens, typed by ``arrow_type`` like every loadbay
parquet file; a batch without some of them gets NULLs there. Small batches are gathered into row
groups (IPC: record batches) of ``ROW_GROUP_ROWS`` rows (a child table may get a handful of rows per batch, and thousands
of tiny row groups make a file slow to read). Text with NUL characters is repaired as the dict path's
writers repair it (removed, with one warning per table), found by one numpy pass over each text column's
bytes (JSON text: its backslashes), confirmed by an Arrow kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pyarrow.parquet as pq

from loadbay.common.schema.types import LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID
from loadbay.common.storage.text_repair import ESCAPED_NUL, NUL, holds_byte, repair_text
from loadbay.common.arrow_types import arrow_type
from loadbay.common.storage.writers import LoadFileWriter, dumps_json, rows_to_table

ROW_GROUP_ROWS = 64 * 1024
"""Rows gathered before a row group is written (a batch larger than this is one row group of its own)."""
ROW_GROUP_BYTES = 64 << 20
"""...or bytes of Arrow data gathered, whichever comes first: wide rows flush sooner."""
COMPRESSION = "snappy"
"""Measured on 1M rows of ints, floats, text and timestamps (2 cores): DuckDB inserts from snappy files
as fast as from uncompressed ones (0.74 s against 0.73 s), the files are a third of the size (48 MB
against 131 MB) and writing costs about the same; row groups of 16k to 100k rows, bigger pages and
version-1 pages made no difference. No column statistics are written (8% of the writing time): a load
file is read whole, once."""
GENERATED_IDS = frozenset((LOAD_ID, ROW_ID, PARENT_ID, ROOT_ID))
"""Text columns whose values the normalizer makes (the load id's digits, hex row ids): never checked for NUL."""
DICTIONARY_COLUMNS = ("_lb_load_id",)
"""Columns dictionary-encoded: the load id is one value per file. Elsewhere dictionaries cost more
writing time than they save in reading (unique ids, free text), so the encoder is not asked to try."""


class ArrowFileWriter(LoadFileWriter):
    """A file from Arrow tables whose columns are named and typed as the table's (``write_table``);
    subclasses open the format's writer (``open_writer``), whose ``write_table`` and ``close`` are used."""

    from_arrow = True

    def open_writer(self) -> Any:
        raise NotImplementedError

    def write_header(self) -> None:
        self._schema = pa.schema([pa.field(c.name, arrow_type(c, self.capabilities), nullable=True)
                                  for c in self.columns])
        # loadbay's own ids are made by the normalizer (a user's key of that name gets a tagged column)
        self._text = [c.name for c in self.columns if c.data_type == "text" and c.name not in GENERATED_IDS]
        self._json = [c.name for c in self.columns if c.data_type == "json"]
        self._writer = self.open_writer()
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._pending_bytes = 0

    def write_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        """Dict rows, for a caller that has them (the package writer sends them to ``ParquetWriter``)."""
        self.write_table(_from_rows(rows, self._schema, self._json))

    def write_table(self, table: pa.Table) -> None:
        """Append ``table``'s rows: its columns are a subset of the file's, in any order."""
        if not table.num_rows:
            return
        table = self._repaired(self._aligned(table))
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self._pending_bytes += table.nbytes
        self.row_count += table.num_rows
        if self._pending_rows >= ROW_GROUP_ROWS or self._pending_bytes >= ROW_GROUP_BYTES:
            self._flush()

    def write_footer(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        table = self._pending[0] if len(self._pending) == 1 else pa.concat_tables(self._pending)
        self.write_group(table)
        self._pending, self._pending_rows, self._pending_bytes = [], 0, 0

    def write_group(self, table: pa.Table) -> None:
        """Write gathered rows as one row group (parquet) or record batch (IPC)."""
        raise NotImplementedError

    def _aligned(self, table: pa.Table) -> pa.Table:
        """``table`` with the file's columns in the file's order and types (NULLs where it has none)."""
        if table.schema.equals(self._schema):
            return table
        names = set(table.column_names)
        unknown = names - set(self._schema.names)
        if unknown:
            raise ValueError(f"table {self.table_name!r}: columns {sorted(unknown)} are not in the file "
                             f"{self.path} (its columns: {self._schema.names})")
        columns = []
        for field in self._schema:
            if field.name not in names:
                columns.append(pa.nulls(table.num_rows, field.type))
                continue
            column = table.column(field.name)
            columns.append(column if column.type == field.type else column.cast(field.type))
        return pa.Table.from_arrays(columns, schema=self._schema)

    def _repaired(self, table: pa.Table) -> pa.Table:
        """NUL characters removed from text and from json values (and their keys), warned once per table."""
        found: set[str] = set()
        for name in self._text:
            column = table.column(name)
            if holds_byte(column, 0) and pc.any(pc.match_substring(column, NUL)).as_py():
                repaired = pc.replace_substring(column, NUL, "")
                table = table.set_column(table.schema.get_field_index(name), name, repaired)
                found.add(name)
        for name in self._json:
            column = table.column(name)
            if not holds_byte(column, ord("\\")):  # orjson writes NUL as \u0000
                continue
            suspects = pc.match_substring(column, ESCAPED_NUL.decode())
            if pc.any(suspects).as_py():
                repaired, changed = _repair_json(column, suspects)
                if changed:
                    table = table.set_column(table.schema.get_field_index(name), name, repaired)
                    found.add(name)
        if found:
            self.repairs.report(self.table_name, "nul", found)
        return table


class ArrowParquetWriter(ArrowFileWriter):
    """Parquet: snappy, no statistics, the load id dictionary-encoded (see ``COMPRESSION``)."""

    file_format = "parquet"

    def open_writer(self) -> pq.ParquetWriter:
        dictionary = [name for name in DICTIONARY_COLUMNS if name in self._schema.names]
        return pq.ParquetWriter(self._file, self._schema, compression=COMPRESSION,
                                use_dictionary=dictionary or False, write_statistics=False)

    def write_group(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))


class ArrowIpcWriter(ArrowFileWriter):
    """An Arrow IPC file (uncompressed, one record batch per gathered group): the reader maps it into memory
    and hands it to the database as it is, no decoding. Measured on 1M rows of the bench columns plus
    loadbay's: written in about a fifth of parquet's time, inserted into DuckDB ~15% faster; the file is
    ~2.5x parquet's size (124 MB against 48 MB), which a load package holds only until it is loaded."""

    file_format = "arrow"

    def open_writer(self) -> pa.ipc.RecordBatchFileWriter:
        return pa.ipc.new_file(self._file, self._schema)

    def write_group(self, table: pa.Table) -> None:
        self._writer.write_table(table, max_chunksize=max(table.num_rows, 1))


ARROW_WRITERS: dict[str, type[ArrowFileWriter]] = {w.file_format: w for w in (ArrowParquetWriter, ArrowIpcWriter)}


def _repair_json(column: pa.ChunkedArray, suspects: pa.ChunkedArray) -> tuple[pa.Array, bool]:
    """The JSON texts that may hold a NUL, parsed, repaired and written again (a backslash spelled
    before ``u0000`` is no NUL: such a value comes back unchanged)."""
    texts = column.to_pylist()
    changed = False
    for i, suspect in enumerate(suspects.to_pylist()):
        if suspect:
            value = orjson.loads(texts[i])
            fixed = _without_nul(value)
            if fixed != value:
                texts[i] = dumps_json(fixed)
                changed = True
    return pa.array(texts, pa.string()), changed


def _without_nul(value: Any) -> Any:
    """A parsed JSON value with NULs removed from its strings and keys (``text_repair.repair_text``)."""
    if isinstance(value, str):
        return repair_text(value)[0]
    if isinstance(value, dict):
        return {repair_text(k)[0]: _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _from_rows(rows: Sequence[dict[str, Any]], schema: pa.Schema, json_columns: list[str]) -> pa.Table:
    if json_columns:
        rows = [{**row, **{c: dumps_json(row[c]) for c in json_columns if row.get(c) is not None}} for row in rows]
    return rows_to_table(pa, rows, pa.struct(list(schema)))
