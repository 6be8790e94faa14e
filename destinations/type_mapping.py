"""TypeMapper: loadbay data types ⇄ database types, through sqlglot DataType objects.

A destination subclasses it and sets the class tables: ``TYPE_MAPPING`` for the plain types and
``HINTED``, the hooks that read a column's hints (precision, scale, time zone) into its type. Reading
a live table back goes through ``REVERSE_MAPPING`` on the parsed sqlglot type, so ``VARCHAR(20)``,
``character varying`` and ``TEXT`` all come back as ``text``.
"""

from __future__ import annotations

from collections.abc import Callable
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
        DType.NCHAR: "text", DType.UUID: "text", DType.TINYTEXT: "text", DType.MEDIUMTEXT: "text",
        DType.LONGTEXT: "text",
        DType.BIGINT: "bigint", DType.INT: "bigint", DType.SMALLINT: "bigint", DType.TINYINT: "bigint",
        DType.UBIGINT: "bigint", DType.UINT: "bigint", DType.USMALLINT: "bigint", DType.UTINYINT: "bigint",
        DType.MEDIUMINT: "bigint", DType.UMEDIUMINT: "bigint",
        DType.DOUBLE: "double", DType.FLOAT: "double",
        DType.BOOLEAN: "bool",
        DType.TIMESTAMPTZ: "timestamp", DType.TIMESTAMP: "timestamp", DType.TIMESTAMPLTZ: "timestamp",
        DType.DATETIME: "timestamp",
        DType.DATE: "date", DType.TIME: "time", DType.TIMETZ: "time",
        DType.DECIMAL: "decimal", DType.BIGDECIMAL: "decimal", DType.INT128: "decimal", DType.UINT128: "decimal",
        DType.JSON: "json", DType.JSONB: "json",
        DType.VARBINARY: "binary", DType.BINARY: "binary", DType.BLOB: "binary", DType.TINYBLOB: "binary",
        DType.MEDIUMBLOB: "binary", DType.LONGBLOB: "binary",
    }
    """sqlglot type → loadbay data type, for reading live tables."""

    def __init__(self, capabilities: DestinationCapabilities) -> None:
        self.capabilities = capabilities

    def decimal_precision(self, column: Column) -> tuple[int, int]:
        """(precision, scale) of a decimal column: its hints, else the destination's default."""
        default_p, default_s = self.capabilities.decimal_precision
        return int(column.precision or default_p), int(column.scale if column.scale is not None else default_s)

    def decimal_type(self, column: Column) -> exp.DataType:
        return exp.DataType.build("DECIMAL({}, {})".format(*self.decimal_precision(column)))

    def timestamp_type(self, column: Column) -> exp.DataType | None:
        """``TIMESTAMP_WITHOUT_TZ`` for a column hinted ``timezone=False``."""
        return exp.DataType(this=self.TIMESTAMP_WITHOUT_TZ) if column.timezone is False else None

    def text_type(self, column: Column) -> exp.DataType | None:
        """``VARCHAR(n)`` for a text column hinted with ``precision`` (its length)."""
        return exp.DataType.build(f"VARCHAR({int(column.precision)})") if column.precision else None

    HINTED: ClassVar[dict[str, Callable[[Any, Column], exp.DataType | None]]] = {
        "decimal": decimal_type, "timestamp": timestamp_type, "text": text_type,
    }
    """Per data type, the hook that turns a column's hints into its type; a hook returning None leaves
    the ``TYPE_MAPPING`` type. A subclass changes a hook by replacing its entry (``{**TypeMapper.HINTED,
    "bigint": integer_type}``), as sqlglot dialects do with their tables."""

    def to_db_type(self, column: Column) -> exp.DataType:
        hook = self.HINTED.get(column.data_type)
        hinted = hook(self, column) if hook is not None else None
        return hinted if hinted is not None else exp.DataType(this=self.TYPE_MAPPING[column.data_type])

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
