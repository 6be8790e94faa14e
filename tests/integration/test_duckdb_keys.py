"""DuckDB with keys declared (``create_indexes``): merges of many keys that the table already holds, on a database
file closed and opened again between runs (its primary key's ART index read back from disk), the case in which
DuckDB's indexes once made "over-eager" unique checks on a key deleted and inserted in one transaction. Whether
``ddl_hints`` lists the keys for DuckDB rests on this (destinations/duckdb/capabilities.py)."""

from __future__ import annotations

import duckdb
import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import run_ok

ROWS = 20_000


def rows(first: int, version: str) -> list[dict[str, object]]:
    return [{"id": i, "region": "eu" if i % 2 else "us", "email": f"{i}@x", "v": version}
            for i in range(first, first + ROWS)]


@pytest.mark.parametrize("strategy", ["delete-insert", "upsert", "insert-only"])
def test_merges_of_keys_the_reopened_file_holds(tmp_path, strategy):
    database = tmp_path / "lake.duckdb"
    merge = {"disposition": "merge", "strategy": strategy}
    hints = {"primary_key": ["id", "region"], "columns": {"email": {"unique": True}}}
    for first, version in ((0, "1"), (ROWS // 2, "2"), (ROWS // 2, "3")):  # half new, half held; then all held
        destination = loadbay.destination("duckdb", credentials=str(database), create_indexes=True)
        p = loadbay.pipeline("keys", destination=destination, dataset_name="raw", pipelines_dir=tmp_path / "p")
        run_ok(p, rows(first, version), table_name="t", write_disposition=merge, **hints)
    with duckdb.connect(str(database), read_only=True) as con:
        found = con.execute("SELECT v, count(*), count(DISTINCT (id, region)), count(DISTINCT email) FROM raw.t "
                            "GROUP BY v ORDER BY v").fetchall()
        keys = con.execute("SELECT constraint_type FROM duckdb_constraints() WHERE schema_name = 'raw' AND "
                           "table_name = 't' AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') ORDER BY 1").fetchall()
    half = ROWS // 2
    expected = [("1", ROWS, ROWS, ROWS), ("2", half, half, half)] if strategy == "insert-only" else \
        [("1", half, half, half), ("3", ROWS, ROWS, ROWS)]
    assert found == expected
    assert keys == [("PRIMARY KEY",), ("UNIQUE",)]
