"""Pure parts of early loading: what an abandoned package leaves in the pipeline's schema."""

from __future__ import annotations

from loadbay.common.schema.types import Column, Schema, Table
from loadbay.early_load import with_tables


def test_with_tables_adds_new_tables_and_columns_and_keeps_what_was_known() -> None:
    schema = Schema("s", {"events": Table("events", {"id": Column("id", "bigint")})})
    created = [Table("events__tags", {"value": Column("value", "text")}, parent="events"),
               Table("events", {"id": Column("id", "text"), "score": Column("score", "double")})]
    out = with_tables(schema, created)
    assert {n: c.data_type for n, c in out.tables["events"].columns.items()} == {"id": "bigint", "score": "double"}
    assert out.tables["events__tags"].parent == "events"
    assert out.root_of("events__tags").name == "events"
    assert "score" not in schema.tables["events"].columns  # the input is not changed
