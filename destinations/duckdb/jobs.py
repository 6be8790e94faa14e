"""DuckDB load jobs: the engine's own bulk readers (read_json, read_csv, read_parquet) and its scan of
Arrow data (Arrow IPC load files, memory-mapped)."""

from __future__ import annotations

import csv
import hashlib
from typing import TYPE_CHECKING, Any, ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationTerminalError
from loadbay.common.schema.types import Column
from loadbay.destinations import statements as sql
from loadbay.destinations.job_errors import columns_for, naming_file, where

if TYPE_CHECKING:
    from loadbay.destinations.job_client import SqlJobClient


def _arg(name: str, value: exp.Expression) -> exp.PropertyEQ:
    return exp.PropertyEQ(this=exp.var(name), expression=value)


class DuckDbReaderJob(LoadJob):
    """``INSERT INTO t (cols) SELECT <casts> FROM <reader>(file, columns := {...})``."""

    reader: ClassVar[str] = ""
    binary_decoder: ClassVar[str | None] = None
    """SQL function turning the file's text encoding of binary values into BLOB."""

    def reader_options(self) -> list[exp.Expression]:
        return []

    def file_type(self, column: Column, client: SqlJobClient) -> str:
        if column.data_type == "binary" and self.binary_decoder:
            return "VARCHAR"
        return client.type_mapper.render(column)

    def select_expression(self, column: Column) -> exp.Expression:
        ref = exp.column(column.name, quoted=True)
        if column.data_type == "binary" and self.binary_decoder:
            return exp.Anonymous(this=self.binary_decoder, expressions=[ref])
        return ref

    def run(self, client: SqlJobClient) -> None:
        client.sql_client.execute_sql(self.insert(client))

    def insert(self, client: SqlJobClient) -> exp.Insert:
        columns = self.file_columns()
        args: list[exp.Expression] = [exp.Literal.string(str(self.job_file.path))]
        args.extend(self.reader_options())
        if self.reader != "read_parquet":
            args.append(_arg("columns", exp.Struct(expressions=[
                exp.PropertyEQ(this=exp.Literal.string(c.name), expression=exp.Literal.string(self.file_type(c, client)))
                for c in columns])))
        source = exp.Table(this=exp.Anonymous(this=self.reader, expressions=args))
        select = exp.select(*[self.select_expression(c) for c in columns]).from_(source)
        schema = exp.Schema(this=self.target.copy(), expressions=[exp.to_identifier(c.name, quoted=True) for c in columns])
        return exp.Insert(this=schema, expression=select)

    def file_columns(self) -> list[Column]:
        return list(self.table.columns.values())


class JsonlJob(DuckDbReaderJob):
    reader = "read_json"
    binary_decoder = "from_base64"

    def reader_options(self) -> list[exp.Expression]:
        return [_arg("format", exp.Literal.string("newline_delimited"))]


class CsvJob(DuckDbReaderJob):
    """csv written by loadbay: a header, NULL as an unquoted empty field, '' as a quoted one."""

    reader = "read_csv"
    binary_decoder = "from_hex"

    def reader_options(self) -> list[exp.Expression]:
        return [_arg("header", exp.true()), _arg("delim", exp.Literal.string(",")),
                _arg("quote", exp.Literal.string('"')), _arg("escape", exp.Literal.string('"')),
                _arg("nullstr", exp.Literal.string("")), _arg("allow_quoted_nulls", exp.false()),
                _arg("auto_detect", exp.false()), _arg("strict_mode", exp.true())]

    def file_columns(self) -> list[Column]:
        with open(self.job_file.path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f))
        return [self.table.columns[name] for name in header]

    def select_expression(self, column: Column) -> exp.Expression:
        """Binary arrives as ``\\x`` + hex: drop the prefix, decode the digits."""
        ref = exp.column(column.name, quoted=True)
        if column.data_type == "binary":
            return exp.Anonymous(this="from_hex", expressions=[
                exp.Substring(this=ref, start=exp.Literal.number(3))])
        return ref


DUCKDB_MAX_DECIMAL_DIGITS = 38


def _unordered(job: LoadJob, client: SqlJobClient, insert: exp.Expression) -> None:
    """Run ``insert`` with ``preserve_insertion_order`` off (see ``ParquetJob``), naming the file on failure."""
    with naming_file(job):
        sql_client = client.sql_client
        sql_client.execute_sql(sql.set_variable("preserve_insertion_order", exp.false()))
        sql_client.execute_sql(insert)
        # not reached when the insert fails: the aborted transaction refuses any SET, and SET is
        # not rolled back, so later inserts on this connection stay unordered (which is harmless)
        sql_client.execute_sql(sql.raw("RESET preserve_insertion_order"))


def _check_decimals(job: LoadJob, schema: Any) -> None:
    import pyarrow as pa

    for field in schema:
        if pa.types.is_decimal(field.type) and field.type.precision > DUCKDB_MAX_DECIMAL_DIGITS:
            raise DestinationTerminalError(
                f"{where(job)} column {field.name!r}: {field.type} is wider than DuckDB's decimals "
                f"({DUCKDB_MAX_DECIMAL_DIGITS} digits), which it would read as DOUBLE")


def _typed_select(column: Column) -> exp.Expression:
    """A columnar file's column as the table's: json arrives as text and is cast (which checks it)."""
    ref = exp.column(column.name, quoted=True)
    if column.data_type == "json":
        return exp.Cast(this=ref, to=exp.DataType.build("JSON"))
    return ref


class ParquetJob(DuckDbReaderJob):
    """``read_parquet`` as it is: the file's columns are already typed as the table's (``arrow_type``),
    json as JSON text (cast, which checks it), binary as BLOB, decimals as DECIMAL, timestamps aware
    (UTC) or naive as the column is.

    The rows of one file are inserted in whatever order DuckDB's threads read them
    (``preserve_insertion_order`` off for the statement): half the time of an ordered insert for a flat
    file (bench/parquet_jobs.py), and nothing in loadbay depends on the order rows sit in a table
    (a merge keeps the last row by ``_lb_id``, never by position).
    """

    reader = "read_parquet"

    def run(self, client: SqlJobClient) -> None:
        with naming_file(self):  # reading the file's schema may fail too
            _unordered(self, client, self.insert(client))

    def file_columns(self) -> list[Column]:
        import pyarrow.parquet as pq

        schema = pq.read_schema(self.job_file.path)
        _check_decimals(self, schema)
        return columns_for(self, schema.names)

    def select_expression(self, column: Column) -> exp.Expression:
        return _typed_select(column)


class ArrowIpcJob(LoadJob):
    """An Arrow IPC file, memory-mapped and scanned by DuckDB as an Arrow table (as DuckDB scans any Arrow
    table a Python program hands it: zero copy, in parallel), inserted without preserving order as
    ``ParquetJob`` does. The scan is registered on the job's connection under a name of its own."""

    def run(self, client: SqlJobClient) -> None:
        import pyarrow as pa
        import pyarrow.ipc

        with naming_file(self), pa.memory_map(str(self.job_file.path)) as source:
            data = pa.ipc.open_file(source).read_all()
            _check_decimals(self, data.schema)
            columns = columns_for(self, data.schema.names)
            view = scan_name(self.job_file.path.name)
            connection = client.sql_client.native_connection
            select = exp.select(*[_typed_select(c) for c in columns]).from_(exp.to_identifier(view, quoted=True))
            schema = exp.Schema(this=self.target.copy(),
                                expressions=[exp.to_identifier(c.name, quoted=True) for c in columns])
            connection.register(view, data)
            try:
                _unordered(self, client, exp.Insert(this=schema, expression=select))
            finally:
                _unregister(connection, view)


def scan_name(file_name: str) -> str:
    """The name a file's scan is registered under: from a hash of its name (the same in a dry run's
    statements every time), never the table name itself, which may hold any character."""
    return f"_lb_scan_{hashlib.blake2b(file_name.encode(), digest_size=8).hexdigest()}"


def _unregister(connection: Any, view: str) -> None:
    """Drop a registered scan; after a failed insert the aborted transaction refuses that, and the rollback
    that follows drops the registration instead."""
    import duckdb

    try:
        connection.unregister(view)
    except duckdb.Error:
        pass

