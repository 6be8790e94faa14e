"""Arrow tables back to dict rows, for a destination that loads no parquet files.

The Arrow normalizer keeps json values as JSON text; the dict path's writers expect them as Python
values (they serialize json columns themselves), so those are parsed back. Everything else is what
``to_pylist`` gives: the same Python types the dict path's rows hold (None is NULL, as a missing key).
"""

from __future__ import annotations

from typing import Any

import orjson
import pyarrow as pa

from loadbay.common.schema.types import Table


def arrow_rows(table: pa.Table, schema_table: Table) -> list[dict[str, Any]]:
    """The rows of ``table`` as dicts, json columns as Python values."""
    json_columns = [name for name in table.column_names
                    if name in schema_table.columns and schema_table.columns[name].data_type == "json"]
    rows = table.drop_columns(json_columns).to_pylist()
    loads = orjson.loads
    for name in json_columns:
        for row, text in zip(rows, table.column(name).to_pylist()):
            row[name] = None if text is None else loads(text)
    return rows
