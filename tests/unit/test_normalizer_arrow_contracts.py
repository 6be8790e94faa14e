"""The Arrow normalizer under schema contracts and the scd2 strategy, beside the dict path: what a contract
refuses or discards (a discarded row leaves no column, variant, table or name behind), the destination's
column limit, and the scd2 row hash, which both paths must make alike."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from loadbay.common.exceptions import SchemaContractViolation, SchemaError
from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.normalizer_arrow import normalize_arrow
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.types import Schema
from loadbay.destinations.duckdb.capabilities import capabilities as DUCKDB
from tests.unit.test_normalizer_arrow import arrow_of, normalizer, run_arrow, run_dicts


# -- contracts ------------------------------------------------------------------------------------------

def known(rows: list[dict[str, Any]], contract: str | dict[str, str]) -> RelationalNormalizer:
    """A normalizer whose schema already has table ``t`` (from ``rows``), under ``contract``."""
    first = normalizer()
    run_dicts(first, rows)
    return normalizer(schema=first.schema, contract=SchemaContract.parse(contract))


def test_frozen_columns_refuse_a_new_column():
    norm = known([{"id": 1}], {"columns": "freeze"})
    with pytest.raises(SchemaContractViolation, match="new_col"):
        run_arrow(norm, pa.table({"id": [2], "new_col": [1]}))


def test_discard_value_drops_a_new_column_and_discard_row_its_rows_with_their_children():
    data = pa.Table.from_pylist([{"id": 2, "extra": None, "kids": [{"k": 1}]},
                                 {"id": 3, "extra": "x", "kids": [{"k": 2}]}])
    norm = known([{"id": 1, "kids": [{"k": 0}]}], {"columns": "discard_value"})
    out = run_arrow(norm, data)
    assert [r["id"] for r in out["t"]] == [2, 3] and "extra" not in norm.schema.tables["t"].columns
    norm = known([{"id": 1, "kids": [{"k": 0}]}], {"columns": "discard_row"})
    out = run_arrow(norm, data)
    assert [r["id"] for r in out["t"]] == [2] and [r["k"] for r in out["t__kids"]] == [1]


def test_discard_row_for_a_new_column_of_a_child_table_drops_the_whole_item():
    norm = known([{"id": 1, "kids": [{"k": 0}]}], {"columns": "discard_row"})
    data = pa.Table.from_pylist([{"id": 2, "kids": [{"k": 1}, {"k": 2, "new": 1}]}, {"id": 3, "kids": []}])
    out = run_arrow(norm, data)
    assert [r["id"] for r in out["t"]] == [3] and "t__kids" not in out


def test_a_new_child_table_follows_the_tables_contract():
    data = pa.Table.from_pylist([{"id": 2, "kids": [1]}, {"id": 3, "kids": []}])
    with pytest.raises(SchemaContractViolation, match="t__kids"):
        run_arrow(known([{"id": 1}], {"tables": "freeze"}), data)
    out = run_arrow(known([{"id": 1}], {"tables": "discard_row"}), data)
    assert [r["id"] for r in out["t"]] == [3]


@pytest.mark.parametrize("mode", ["freeze", "discard_row", "discard_value"])
def test_the_data_type_contract_decides_about_variants(mode):
    norm = known([{"id": 1, "n": 1}], {"data_type": mode})
    data = pa.Table.from_pylist([{"id": 2, "n": "two"}, {"id": 3, "n": "3"}, {"id": 4, "n": None}])
    if mode == "freeze":
        with pytest.raises(SchemaContractViolation, match=r"n \(bigint\) got str 'two'"):
            run_arrow(norm, data)
        return
    out = run_arrow(norm, data)["t"]
    assert "n__v_text" not in norm.schema.tables["t"].columns
    kept = [(4, None)] if mode == "discard_row" else [(2, None), (3, None), (4, None)]
    assert [(r["id"], r.get("n")) for r in out] == kept


@pytest.mark.parametrize("order", ["refused key first", "new keys first"])
def test_a_discarded_row_leaves_no_column_variant_or_table_behind(order):
    """Row 2 is discarded for its text in bool column c; its new column n and its list make nothing, on
    either path and in either key order (the dict path walked keys before the refused one), so the next
    row types n by its own value."""
    bad = {"id": 2, "c": "x", "n": 5, "items": [{"e": 1}]}
    if order == "new keys first":
        bad = {"id": 2, "n": 5, "items": [{"e": 1}], "c": "x"}
    rows = [bad, {"id": 3, "c": None, "c2": 7}, {"id": 4, "n": "hello"}]
    schema = pa.schema([("id", pa.int64()), ("c", pa.string()), ("n", pa.int64()),
                        ("items", pa.list_(pa.struct([("e", pa.int64())]))), ("c2", pa.int64())])
    for path in ("dicts", "arrow"):
        norm = known([{"id": 1, "c": True}], {"data_type": "discard_row"})
        if path == "dicts":
            out = run_dicts(norm, rows[:2])
        else:
            out = run_arrow(norm, pa.Table.from_pylist(rows[:2], schema=schema))
        assert [r["id"] for r in out["t"]] == [3], path
        assert list(norm.schema.tables["t"].columns)[-1:] == ["c2"] and "n" not in norm.schema.tables["t"].columns
        assert "t__items" not in norm.schema.tables and "c__v_text" not in norm.schema.tables["t"].columns
        assert norm.new_columns == {"t": ["c2"]}, path
        late = run_dicts(norm, rows[2:]) if path == "dicts" else run_arrow(norm, pa.Table.from_pylist(rows[2:]))
        assert [(r["id"], r["n"]) for r in late["t"]] == [(4, "hello")], path
        assert norm.schema.tables["t"].columns["n"].data_type == "text", path


def test_a_discarded_row_claims_no_column_name():
    """A key of a discarded row walked before the refused one (``C2``) does not take the name ``c2`` from
    the key of a row kept later (which would then get a tagged column)."""
    norm = known([{"id": 1, "c": True}], {"data_type": "discard_row"})
    out = run_dicts(norm, [{"id": 2, "C2": 1, "c": "x"}, {"id": 3, "c2": 7}])
    assert out["t"][0]["c2"] == 7 and [c for c in norm.schema.tables["t"].columns if c.startswith("c2")] == ["c2"]


def test_a_row_discarded_by_type_does_not_trip_a_frozen_tables_contract_with_its_list():
    norm = known([{"id": 1, "c": 1.5}], {"tables": "freeze", "data_type": "discard_row"})
    out = run_arrow(norm, pa.Table.from_pylist([{"id": 2, "c": "x", "items": [1, 2]}, {"id": 3, "c": None, "items": []}]))
    assert [r["id"] for r in out["t"]] == [3] and "t__items" not in norm.schema.tables


def test_a_table_the_contract_keeps_out_gives_nothing():
    norm = normalizer(schema=Schema("s"), contract=SchemaContract.parse({"tables": "discard_row"}))
    assert normalize_arrow(norm, "t", pa.record_batch({"id": [1]})) == {}
    assert "t" not in norm.schema.tables


def test_too_many_columns_names_table_limit_and_item():
    caps = DUCKDB.with_(max_table_columns=6)
    norm = normalizer(caps)
    run_arrow(norm, pa.table({"a": [1], "b": [2], "c": [3]}))
    with pytest.raises(SchemaError, match=r"table 't' would get column 'e'.*item 4 of resource 't'"):
        run_arrow(norm, pa.table({"a": [1, 2, 3], "d": [1, 2, 3], "e": [None, None, 5]}))


# -- scd2 -------------------------------------------------------------------------------------------------

def test_scd2_row_hashes_are_the_same_from_dicts_in_any_batch_and_from_arrow():
    """A version is found by its hash: the dict path (the walk, then the column-at-a-time batch path) and
    the Arrow path must hash the same item alike, a missing key and a null one included."""
    rows = [{"id": i, "user": {"login": f"u{i}", "address": None} if i % 3 else None, "tags": ["x"] * (i % 2),
             "score": None if i % 4 == 0 else i / 2} for i in range(12)]
    sparse = [{k: v for k, v in row.items() if v is not None and v != []} for row in rows]  # the same items: null keys and empty lists out
    scd2 = {"write_disposition": "merge", "strategy": "scd2"}
    hashes = []
    for data, batch_size, by in ((rows, 5, run_dicts), (sparse, 4, run_dicts), (arrow_of(rows), 5, run_arrow)):
        out = by(normalizer(**scd2), data, batch_size)
        hashes.append({row["id"]: row["_lb_row_hash"] for row in out["t"]})
    assert hashes[0] == hashes[1] == hashes[2] and len(set(hashes[0].values())) == 12
    norm = normalizer(**scd2)
    assert [c.name for c in norm.schema.tables["t"].columns.values() if c.valid_from or c.valid_to or c.row_hash] == [
        "_lb_valid_from", "_lb_valid_to", "_lb_row_hash"]
    changed = run_dicts(norm, [{**rows[1], "tags": ["y"]}])["t"][0]["_lb_row_hash"]
    assert changed != hashes[0][1]  # a change in a nested list is a change of the record


@pytest.mark.parametrize("where", ["top", "struct", "list of structs"])
def test_scd2_refuses_two_fields_of_one_name_as_every_disposition_does(where):
    """The row hash reads rows (``to_pylist``) before the walk checks names: it raised Arrow's bare
    ValueError, naming nothing."""
    twice = pa.struct([("a", pa.int64()), ("a", pa.int64())])
    if where == "top":
        data = pa.Table.from_arrays([pa.array([1]), pa.array([2]), pa.array([3])], names=["id", "x", "x"])
    elif where == "struct":
        data = pa.Table.from_arrays([pa.array([1]), pa.array([{"a": 1}], twice)], names=["id", "s"])
    else:
        data = pa.Table.from_arrays([pa.array([1]), pa.array([[{"a": 1}]], pa.list_(twice))], names=["id", "s"])
    named = {"top": "table 't': .* named 'x'", "struct": "table 't': .* named 'a' in struct 's'",
             "list of structs": "table 't.*: .* named 'a'"}[where]  # the child table's walk, or the hash's check
    for hints in ({}, {"write_disposition": "merge", "strategy": "scd2"}):
        with pytest.raises(SchemaError, match=f"pipeline 's': {named}"):
            run_arrow(normalizer(**hints), data)


def test_a_key_of_the_data_named_like_the_scd2_hash_column_is_refused_on_both_paths():
    """The dict path overwrote its values with the hash, silently; the Arrow path said the data had two
    fields of that name."""
    scd2 = {"write_disposition": "merge", "strategy": "scd2"}
    rows = [{"id": 1, "_lb_row_hash": "abc"}]
    for run, data in ((run_dicts, rows), (run_arrow, pa.Table.from_pylist(rows))):
        with pytest.raises(SchemaError, match="table 't': the data has a key '_lb_row_hash', the name of the column"):
            run(normalizer(**scd2), data)
    assert run_dicts(normalizer(), rows)["t"][0]["_lb_row_hash"] == "abc"  # any other disposition: a column


def test_a_key_of_the_data_named_like_a_validity_column_gets_a_column_of_its_own(caplog):
    norm = normalizer(write_disposition="merge", strategy="scd2")
    row = run_dicts(norm, [{"id": 1, "_lb_valid_to": "tomorrow"}])["t"][0]
    assert row.get("_lb_valid_to") is None and "tomorrow" in row.values()
    with pytest.raises(SchemaError, match="two distinct names"):
        normalizer(write_disposition="merge", strategy="scd2", validity_columns=("a", "A"))
    with pytest.raises(SchemaError, match="scd2 merge strategy only"):
        normalizer(write_disposition="merge", validity_columns=("a", "b"))
