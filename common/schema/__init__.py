"""Data types, tables and schemas; inference, naming and contracts."""

from loadbay.common.schema.types import DATA_TYPES, Column, Schema, Table

__all__ = ["DATA_TYPES", "Column", "Schema", "Table"]
