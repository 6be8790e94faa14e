"""DuckDB: loadbay reads live columns from ``duckdb_columns()`` of its own database file (twice as cheap as
INFORMATION_SCHEMA, a view over it); what it reads must be what INFORMATION_SCHEMA says."""

from __future__ import annotations

from datetime import date, datetime, time, timezone
from decimal import Decimal

import duckdb

import loadbay
from loadbay.destinations.testing.conformance.helpers import run_ok

ROWS = [{"id": 1, "s": "x", "f": 1.5, "b": True, "ts": datetime(2024, 1, 1, tzinfo=timezone.utc), "d": date(2024, 1, 1),
         "t": time(1, 2), "n": Decimal("1.25"), "j": {"a": 1}, "bin": b"\x00", "wide": 2**70}]
HINTS = {"j": {"data_type": "json"}, "n": {"data_type": "decimal", "precision": 10, "scale": 2},
         "s": {"data_type": "text", "nullable": False}}


def test_live_columns_read_as_information_schema_does(tmp_path):
    database = tmp_path / "lake.duckdb"
    p = loadbay.pipeline("cat", destination=loadbay.destination("duckdb", credentials=str(database)),
                         dataset_name="raw", pipelines_dir=tmp_path / "p")
    run_ok(p, ROWS, table_name="typed", columns=HINTS)
    other = tmp_path / "other.duckdb"  # an attached file with a schema and table of the same names
    con = duckdb.connect(str(other))
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.typed (other_column INTEGER)")
    con.close()
    with p.sql_client() as client:
        client.execute_sql(f"ATTACH '{other}' AS other_db")
        client.execute_sql('ALTER TABLE "typed" DROP COLUMN "f"')
        read = client.table_columns(["typed", "_lb_loads", "missing"])
        info: dict[str, list[tuple[object, ...]]] = {}
        for table, *rest in client.execute_sql(
                "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable FROM "
                "information_schema.columns WHERE table_catalog = current_database() AND table_schema = 'raw' "
                "AND table_name IN ('typed', '_lb_loads') ORDER BY table_name, ordinal_position") or []:
            info.setdefault(table, []).append(tuple(rest))
    assert read == info
    assert "other_column" not in [c[0] for c in read["typed"]] and "f" not in [c[0] for c in read["typed"]]
    assert ("n", "DECIMAL(10,2)", 10, 2, "YES") in read["typed"] and ("s", "VARCHAR", None, None, "NO") in read["typed"]
