"""SQLAlchemy job client: types through SQLAlchemy type objects, compiled by the engine's dialect."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.destination import LoadJob
from loadbay.common.schema.types import Column
from loadbay.destinations.job_client import SqlJobClient
from loadbay.destinations.load_jobs import InsertValuesJob
from loadbay.destinations.sqlalchemy.jobs import ExecutemanyJob, ParquetExecutemanyJob
from loadbay.destinations.type_mapping import TypeMapper

KEY_VARCHAR_LENGTH = 255
"""MySQL cannot index TEXT without a prefix: key columns of type text become VARCHAR(255) there."""


class SqlalchemyTypeMapper(TypeMapper):
    """loadbay types → SQLAlchemy types → the dialect's DDL; reflected SQLAlchemy types → loadbay types."""

    def __init__(self, capabilities: Any, dialect: Any = None) -> None:
        super().__init__(capabilities)
        self.dialect = dialect

    def sqlalchemy_type(self, column: Column) -> Any:
        import sqlalchemy as sa

        family = getattr(self.dialect, "name", "")
        mysql = family in ("mysql", "mariadb")
        t = column.data_type
        if t == "text":
            if column.precision:
                return sa.String(int(column.precision))
            if mysql and (column.primary_key or column.merge_key or column.unique):
                return sa.String(KEY_VARCHAR_LENGTH)
            if mysql:
                from sqlalchemy.dialects.mysql import LONGTEXT
                return LONGTEXT()
            return sa.Text()
        if t == "bigint":
            return sa.BigInteger()
        if t == "double":
            return sa.Double()
        if t == "bool":
            return sa.Boolean()
        if t == "timestamp":
            if mysql:
                from sqlalchemy.dialects.mysql import DATETIME
                return DATETIME(fsp=6)
            return sa.DateTime(timezone=column.timezone is not False)
        if t == "date":
            return sa.Date()
        if t == "time":
            if mysql:
                from sqlalchemy.dialects.mysql import TIME
                return TIME(fsp=6)
            return sa.Time()
        if t == "decimal":
            precision, scale = self.capabilities.decimal_precision
            return sa.Numeric(column.precision or precision, column.scale if column.scale is not None else scale)
        if t == "json":
            return sa.JSON()
        if mysql:
            from sqlalchemy.dialects.mysql import LONGBLOB
            return LONGBLOB()
        return sa.LargeBinary()

    def to_db_type(self, column: Column) -> exp.DataType:
        compiled = self.sqlalchemy_type(column).compile(dialect=self.dialect)
        # verbatim: the dialect's own name for the type (sqlglot would turn SQLite's BOOLEAN into INTEGER)
        return exp.DataType(this=exp.DataType.Type.USERDEFINED, kind=compiled)

    def from_db_type(self, db_type: Any, precision: Any = None, scale: Any = None) -> tuple[str, dict[str, Any]]:
        """A reflected SQLAlchemy type object (or a type name) back to a loadbay type."""
        import sqlalchemy as sa

        if isinstance(db_type, str):
            return super().from_db_type(db_type, precision, scale)
        checks: list[tuple[Any, str]] = [
            (sa.Boolean, "bool"), (sa.BigInteger, "bigint"), (sa.Integer, "bigint"), (sa.Float, "double"),
            (sa.Numeric, "decimal"), (sa.DateTime, "timestamp"), (sa.Date, "date"), (sa.Time, "time"),
            (sa.JSON, "json"), (sa.LargeBinary, "binary"), (sa.String, "text"),
        ]
        name = type(db_type).__name__.upper()
        if name in ("TINYINT",) and getattr(db_type, "display_width", None) == 1:
            return "bool", {}
        for sa_type, data_type in checks:
            if isinstance(db_type, sa_type):
                if data_type == "decimal" and isinstance(db_type, sa.Float):
                    return "double", {}
                return data_type, {}
        if "BLOB" in name or "BINARY" in name:
            return "binary", {}
        return "text", {}


class SqlalchemyJobClient(SqlJobClient):
    type_mapper_class = SqlalchemyTypeMapper
    load_jobs: ClassVar[dict[str, type[LoadJob]]] = {
        "jsonl": ExecutemanyJob, "parquet": ParquetExecutemanyJob, "insert_values": InsertValuesJob,
    }

    def __init__(self, config: Any, capabilities: Any, sql_client: Any) -> None:
        super().__init__(config, capabilities, sql_client)
        self.type_mapper = SqlalchemyTypeMapper(capabilities, sql_client.engine.dialect)

    def lock_tables_for_merge(self, table_names: list[str]) -> None:
        self.sql_client.lock_tables([self.sql_client.qualified(n) for n in table_names])  # type: ignore[attr-defined]

    def upsert_syntax(self) -> str:
        family = self.sql_client.family  # type: ignore[attr-defined]
        if family == "mysql":
            return "on_duplicate_key"
        if family == "postgresql":
            return "merge" if self.sql_client.native_connection.dialect.server_version_info >= (15,) else "on_conflict"
        if family == "sqlite":
            return "on_conflict"
        return "merge"
