"""A dry run normalizes the data and lists every statement its load would run (DDL, the bulk load of each
file, merge or replace, the load records) without changing the destination or the pipeline."""

from __future__ import annotations

import pytest

from loadbay.common.exceptions import DestinationError
from loadbay.destinations.sql_destination import SqlDestination
from loadbay.destinations.testing.conformance.helpers import count, run_ok, select

ROWS = [{"id": i, "name": f"n{i}", "tags": ["a", "b"]} for i in range(5)]


@pytest.fixture
def sql_pipeline(make_pipeline):
    p = make_pipeline()
    if not isinstance(p.destination, SqlDestination):
        pytest.skip(f"{p.destination.destination_type} runs no SQL")
    return p


def _mentions(statements: list[str], *words: str) -> list[str]:
    return [s for s in statements if all(w in s for w in words)]


def test_a_dry_run_of_a_new_table_lists_its_ddl_and_loads_and_changes_nothing(sql_pipeline):
    p = sql_pipeline
    info = p.run(ROWS, table_name="events", dry_run=True)
    assert info.dry_run and info.row_counts == {"events": 5, "events__tags": 10}
    assert "dry run: nothing was loaded" in str(info)
    statements = info.statements
    assert _mentions(statements, "CREATE TABLE", "events__tags") and _mentions(statements, "_lb_loads")
    loads = [s for s in statements if "events" in s and s.lstrip().upper().startswith(("INSERT", "COPY", "LOAD DATA"))]
    assert loads, statements  # the bulk load (or insert) of each file
    with pytest.raises(DestinationError):  # no table, no dataset
        count(p, "events")
    assert p.pending_packages() == [] and not p.schema_path.exists()
    run_ok(p, ROWS, table_name="events")  # a real run afterwards loads as if there had been none
    assert count(p, "events") == 5 and count(p, "events__tags") == 10


def test_a_dry_run_of_a_merge_lists_the_merge_and_leaves_the_rows(sql_pipeline):
    p = sql_pipeline
    run_ok(p, ROWS, table_name="events", write_disposition="merge", primary_key="id")
    changed = [{"id": 1, "name": "changed", "tags": []}, {"id": 9, "name": "new", "tags": ["z"]}]
    info = p.run(changed, table_name="events", write_disposition="merge", primary_key="id", dry_run=True)
    staging = p.config.staging_dataset_name
    assert _mentions(info.statements, "CREATE TABLE", staging)  # the staging tables the merge reads
    assert (_mentions(info.statements, "DELETE", "events__tags") or _mentions(info.statements, "MERGE", "events")
            or _mentions(info.statements, "RENAME TO", "events__tags"))  # Spark rebuilds and swaps the tables
    assert select(p, "events", "id", "name") == [(i, f"n{i}") for i in range(5)]
    assert count(p, "events__tags") == 10 and p.pending_packages() == []
