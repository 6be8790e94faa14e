"""MySQL/MariaDB job client: its type map, InnoDB utf8mb4 tables, and LOAD DATA load jobs."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column, Table
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.mysql.jobs import CsvLoadDataJob, JsonlLoadDataJob, ParquetLoadDataJob
from loadbay.destinations.mysql.sql_client import MysqlSqlClient
from loadbay.destinations.type_mapping import DType, TypeMapper


INNODB_MAX_KEY_BYTES = 3072
"""InnoDB's longest index key (DYNAMIC rows on 16 KB pages): a primary key over four VARCHAR(255) columns of
utf8mb4 (four bytes a character) does not fit."""


def key_problem(columns: list[Column], key_varchar_length: int) -> str | None:
    """Why MySQL/MariaDB cannot declare a key over ``columns`` (None: it can): a binary or json column is a
    LONGBLOB or LONGTEXT, which InnoDB indexes by a prefix only (a prefix key would refuse two values that
    share their first characters); or the key passes ``INNODB_MAX_KEY_BYTES``. A text key column is a
    ``VARCHAR(key_varchar_length)`` (or of its ``precision``) and fits alone."""
    size = 0
    for column in columns:
        if column.data_type in ("binary", "json"):
            return (f"column {column.name!r} is {column.data_type}, a LONG column that MySQL indexes only by a "
                    "prefix of its values")
        if column.data_type == "text":
            size += 4 * int(column.precision or key_varchar_length)
        else:
            size += 32 if column.data_type == "decimal" else 8
    if size > INNODB_MAX_KEY_BYTES:
        return f"the key takes up to {size} bytes (utf8mb4 text four a character), past InnoDB's {INNODB_MAX_KEY_BYTES}"
    return None


class MysqlTypeMapper(TypeMapper):
    """LONGTEXT and LONGBLOB, microsecond DATETIME (UTC wall time: MySQL keeps no zone) and TIME, and VARCHAR
    keys (MySQL cannot index TEXT without a prefix length)."""

    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        **TypeMapper.TYPE_MAPPING,
        "text": DType.LONGTEXT,
        "binary": DType.LONGBLOB,
    }

    KEY_VARCHAR_LENGTH = 255
    """Length of a text column that is a primary, merge or unique key (the upsert's unique index needs it)."""

    def key_text_type(self, column: Column) -> exp.DataType | None:
        """``VARCHAR(n)`` for a text column hinted with ``precision``, ``VARCHAR(255)`` for a key."""
        if not column.precision and (column.primary_key or column.merge_key or column.unique):
            return exp.DataType.build(f"VARCHAR({self.KEY_VARCHAR_LENGTH})", dialect="mysql")
        return TypeMapper.text_type(self, column)

    def fractional_type(self, column: Column) -> exp.DataType:
        """``DATETIME(p)``/``TIME(p)``: ``precision`` fractional digits, else the destination's (6)."""
        base = "TIME" if column.data_type == "time" else "DATETIME"
        digits = int(column.precision if column.precision is not None else self.capabilities.timestamp_precision)
        return exp.DataType.build(f"{base}({digits})", dialect="mysql")

    HINTED: ClassVar[dict[str, Any]] = {**TypeMapper.HINTED, "text": key_text_type, "timestamp": fractional_type,
                                        "time": fractional_type}

    def from_db_type(self, db_type: str, precision: Any = None, scale: Any = None) -> tuple[str, dict[str, Any]]:
        """``tinyint(1)`` is MySQL's BOOLEAN; every other type as the base reads it."""
        if db_type.lower() == "tinyint(1)":
            return "bool", {}
        return super().from_db_type(db_type, precision, scale)


class MysqlJobClient(SqlJobClient):
    type_mapper_class = MysqlTypeMapper
    sql_client: MysqlSqlClient
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {
        "jsonl": JsonlLoadDataJob, "csv": CsvLoadDataJob, "parquet": ParquetLoadDataJob, "insert_values": InsertValuesJob,
    }

    def key_problem(self, columns: list[Column]) -> str | None:
        return key_problem(columns, MysqlTypeMapper.KEY_VARCHAR_LENGTH)

    def create_table_sql(self, table: Table, target: exp.Table | None = None) -> exp.Expression:
        """InnoDB (transactional) and utf8mb4 (any Unicode character, whatever the server's default), compared
        byte for byte (``MysqlSqlClient.table_collation``)."""
        create = super().create_table_sql(table, target)
        create.set("properties", exp.Properties(expressions=[
            exp.EngineProperty(this=exp.var("InnoDB")), exp.CharacterSetProperty(this=exp.var("utf8mb4"), default=True),
            exp.CollateProperty(this=exp.var(self.sql_client.table_collation()), default=True)]))
        return create
