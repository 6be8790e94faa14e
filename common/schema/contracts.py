"""Schema contracts: what may change in a schema, per entity.

``"evolve"`` lets new tables, columns and variant columns in; ``"freeze"`` raises an error naming
what is new; ``"discard_row"`` drops a row that would change the schema; ``"discard_value"``
drops only the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MODES = ("evolve", "freeze", "discard_row", "discard_value")


@dataclass(frozen=True)
class SchemaContract:
    tables: str = "evolve"
    columns: str = "evolve"
    data_type: str = "evolve"

    @classmethod
    def parse(cls, value: str | dict[str, Any] | SchemaContract | None) -> SchemaContract:
        if value is None:
            return cls()
        if isinstance(value, SchemaContract):
            return value
        if isinstance(value, str):
            _check(value, "schema_contract")
            return cls(value if value != "discard_value" else "discard_row", value, value)
        unknown = set(value) - {"tables", "columns", "data_type"}
        if unknown:
            raise ValueError(f"schema_contract has unknown keys {sorted(unknown)}; "
                             "use 'tables', 'columns' and 'data_type'")
        for key, mode in value.items():
            _check(mode, f"schema_contract[{key!r}]")
        if value.get("tables") == "discard_value":
            raise ValueError("schema_contract['tables'] cannot be 'discard_value'")
        return cls(**value)


def _check(mode: str, where: str) -> None:
    if mode not in MODES:
        raise ValueError(f"{where} must be one of {MODES}, not {mode!r}")
