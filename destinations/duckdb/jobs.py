"""DuckDB load jobs: the engine's own bulk readers (read_json, read_csv, read_parquet)."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, ClassVar

from sqlglot import exp

from common.destination import LoadJob
from common.schema.types import Column

if TYPE_CHECKING:
    from destinations.job_client import SqlJobClient


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
        client.sql_client.execute_sql(exp.Insert(this=schema, expression=select))

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


class ParquetJob(DuckDbReaderJob):
    reader = "read_parquet"

    def file_columns(self) -> list[Column]:
        import pyarrow.parquet as pq

        names = pq.read_schema(self.job_file.path).names
        return [self.table.columns[name] for name in names]

    def select_expression(self, column: Column) -> exp.Expression:
        ref = exp.column(column.name, quoted=True)
        if column.data_type == "json":
            return exp.Cast(this=ref, to=exp.DataType.build("JSON"))
        return ref

