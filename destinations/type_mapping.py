"""TypeMapper: loadbay data types ⇄ database types, through sqlglot DataType objects.

A destination subclasses it and sets the class tables; the hooks handle precision. Reading a
live table back goes through ``REVERSE_MAPPING`` on the parsed sqlglot type, so ``VARCHAR(20)``,
``character varying`` and ``TEXT`` all come back as ``text``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlglot import exp

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.common.schema.types import Column

DType = exp.DataType.Type


class TypeMapper:
    TYPE_MAPPING: ClassVar[dict[str, DType]] = {
        "text": DType.TEXT,
        "bigint": DType.BIGINT,
        "double": DType.DOUBLE,
        "bool": DType.BOOLEAN,
        "timestamp": DType.TIMESTAMPTZ,
        "date": DType.DATE,
        "time": DType.TIME,
        "decimal": DType.DECIMAL,
        "json": DType.JSON,
        "binary": DType.VARBINARY,
    }
    """loadbay data type → sqlglot type."""

    TIMESTAMP_WITHOUT_TZ: ClassVar[DType] = DType.TIMESTAMP
    """Type of a timestamp column hinted ``timezone=False``."""

    REVERSE_MAPPING: ClassVar[dict[DType, str]] = {
        DType.TEXT: "text", DType.VARCHAR: "text", DType.CHAR: "text", DType.NVARCHAR: "text",
        DType.NCHAR: "text", DType.UUID: "text",
        DType.BIGINT: "bigint", DType.INT: "bigint", DType.SMALLINT: "bigint", DType.TINYINT: "bigint",
        DType.UBIGINT: "bigint", DType.UINT: "bigint", DType.USMALLINT: "bigint", DType.UTINYINT: "bigint",
        DType.DOUBLE: "double", DType.FLOAT: "double",
        DType.BOOLEAN: "bool",
        DType.TIMESTAMPTZ: "timestamp", DType.TIMESTAMP: "timestamp", DType.TIMESTAMPLTZ: "timestamp",
        DType.DATETIME: "timestamp",
        DType.DATE: "date", DType.TIME: "time", DType.TIMETZ: "time",
        DType.DECIMAL: "decimal", DType.BIGDECIMAL: "decimal", DType.INT128: "decimal", DType.UINT128: "decimal",
        DType.JSON: "json", DType.JSONB: "json",
        DType.VARBINARY: "binary", DType.BINARY: "binary", DType.BLOB: "binary",
    }
    """sqlglot type → loadbay data type, for reading live tables."""

    def __init__(self, capabilities: DestinationCapabilities) -> None:
        self.capabilities = capabilities

    def to_db_type(self, column: Column) -> exp.DataType:
        t = column.data_type
        if t == "decimal":
            return self.decimal_type(column)
        if t == "timestamp" and column.timezone is False:
            return exp.DataType(this=self.TIMESTAMP_WITHOUT_TZ)
        if t == "text" and column.precision:
            return exp.DataType.build(f"VARCHAR({int(column.precision)})")
        return exp.DataType(this=self.TYPE_MAPPING[t])

    def decimal_type(self, column: Column) -> exp.DataType:
        default_p, default_s = self.capabilities.decimal_precision
        p = column.precision or default_p
        s = column.scale if column.scale is not None else default_s
        return exp.DataType.build(f"DECIMAL({int(p)}, {int(s)})")

    def from_db_type(self, db_type: str, precision: Any = None, scale: Any = None) -> tuple[str, dict[str, Any]]:
        """(loadbay type, hints) of a type name read from INFORMATION_SCHEMA."""
        try:
            parsed = exp.DataType.build(db_type, dialect=self.capabilities.sqlglot_dialect)
        except Exception:  # noqa: BLE001 - an engine-specific type sqlglot does not know
            return "text", {}
        data_type = self.REVERSE_MAPPING.get(parsed.this, "text")
        hints: dict[str, Any] = {}
        if data_type == "decimal" and precision is not None:
            hints = {"precision": int(precision), "scale": int(scale or 0)}
        if parsed.this == DType.TIMESTAMP:
            hints["timezone"] = False
        return data_type, hints

    def render(self, column: Column) -> str:
        return self.to_db_type(column).sql(dialect=self.capabilities.sqlglot_dialect)
