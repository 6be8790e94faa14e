"""Schema evolution: new columns, variant columns, contracts, naming, and the system tables."""

from __future__ import annotations

import shutil

import pytest

import loadbay

from loadbay.common.exceptions import SchemaContractViolation
from loadbay.destinations.testing.conformance.helpers import (as_int, as_json, count, heavy_case, ident, query, run_ok,
                                                              select, table_columns, wide_int_type)


def _nothing_pending(p) -> bool:
    return not p.pending_packages() and not list((p.pipeline_dir / "normalizing").iterdir())


def test_new_columns_on_second_run_are_null_for_old_rows(make_pipeline):
    """Two columns at once: one ALTER where the destination adds several in one (Spark's ``ADD COLUMNS (...)``)."""
    p = make_pipeline()
    run_ok(p, [{"id": 1, "a": "x"}, {"id": 2, "a": "y"}], table_name="t")
    assert "b" not in table_columns(p, "t")
    run_ok(p, [{"id": 3, "a": "z", "b": 7, "c": "w"}], table_name="t")
    assert (table_columns(p, "t")["b"], table_columns(p, "t")["c"]) == ("bigint", "text")
    assert select(p, "t", "id", "a", "b", "c") == [(1, "x", None, None), (2, "y", None, None), (3, "z", 7, "w")]


def test_new_column_in_child_table(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "kids": [{"n": 1}]}], table_name="t")
    run_ok(p, [{"id": 2, "kids": [{"n": 2, "extra": "e"}]}], table_name="t")
    assert table_columns(p, "t__kids")["extra"] == "text"
    assert select(p, "t__kids", "n", "extra") == [(1, None), (2, "e")]


def test_new_columns_in_the_middle_of_one_run(make_pipeline):
    p = make_pipeline()
    rows = [{"id": 1}, {"id": 2, "b": "x"}, {"id": 3}, {"id": 4, "c": 1.5, "b": "y"}]
    run_ok(p, rows, table_name="t")
    assert select(p, "t", "id", "b", "c") == [(1, None, None), (2, "x", None), (3, None, None), (4, "y", 1.5)]


def test_type_conflict_goes_to_variant_column(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "x": 1}, {"id": 2, "x": 2}], table_name="t")
    run_ok(p, [{"id": 3, "x": "abc"}, {"id": 4, "x": 4}], table_name="t")
    cols = table_columns(p, "t")
    assert cols["x"] == "bigint"
    assert cols["x__v_text"] == "text"
    assert select(p, "t", "id", "x", "x__v_text") == [(1, 1, None), (2, 2, None), (3, None, "abc"), (4, 4, None)]
    # a later run keeps using both columns
    run_ok(p, [{"id": 5, "x": "def"}, {"id": 6, "x": 6}], table_name="t")
    assert select(p, "t", "id", "x", "x__v_text")[-2:] == [(5, None, "def"), (6, 6, None)]


def test_type_conflict_within_one_run(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "x": 1}, {"id": 2, "x": "abc"}, {"id": 3, "x": True}], table_name="t")
    cols = table_columns(p, "t")
    assert cols["x"] == "bigint" and cols["x__v_text"] == "text" and cols["x__v_bool"] == "bool"
    assert select(p, "t", "id", "x", "x__v_text", "x__v_bool") == [
        (1, 1, None, None), (2, None, "abc", None), (3, None, None, True)]


def test_hinted_type_conflict_goes_to_variant_instead_of_failing(make_pipeline):
    p = make_pipeline()
    info = run_ok(p, [{"id": 1, "n": 5}, {"id": 2, "n": "five"}], table_name="t",
                  columns={"n": {"data_type": "bigint"}})
    assert not info.has_failed_jobs
    assert select(p, "t", "id", "n", "n__v_text") == [(1, 5, None), (2, None, "five")]


def test_integer_beyond_bigint_in_new_column_is_exact(make_pipeline):
    p = make_pipeline()
    big = 10**30 + 7
    run_ok(p, [{"id": 1, "x": big}], table_name="t")
    assert table_columns(p, "t")["x"] == wide_int_type(p, big)
    assert [as_int(v) for (v,) in query(p, "SELECT x FROM t")] == [big]


def test_integer_beyond_bigint_in_bigint_column_goes_to_exact_variant(make_pipeline):
    p = make_pipeline()
    big = 10**30 + 7
    run_ok(p, [{"id": 1, "x": 1}], table_name="t")
    run_ok(p, [{"id": 2, "x": big}], table_name="t")
    variant = f"x__v_{wide_int_type(p, big)}"
    assert [(i, x, as_int(v)) for i, x, v in select(p, "t", "id", "x", variant)] == [(1, 1, None), (2, None, big)]


def test_integer_beyond_decimal_precision_goes_to_text_variant(make_pipeline):
    p = make_pipeline()
    if wide_int_type(p, 10**30) != "decimal":
        pytest.skip(f"{p.destination.destination_type} keeps 31-digit integers as text already "
                    f"(max_decimal_precision {p.capabilities.max_decimal_precision})")
    run_ok(p, [{"id": 1, "x": 10**30}], table_name="t")
    huge = 10 ** (p.capabilities.max_decimal_precision + 5) + 1  # wider than any decimal here
    assert len(str(huge)) > p.capabilities.max_decimal_precision
    run_ok(p, [{"id": 2, "x": huge}], table_name="t")
    rows = select(p, "t", "id", "x", "x__v_text")
    assert [(i, as_int(x), v) for i, x, v in rows] == [(1, 10**30, None), (2, None, str(huge))]


def test_integer_beyond_decimal_precision_in_new_column_is_text(make_pipeline):
    p = make_pipeline()
    huge = 10 ** (p.capabilities.max_decimal_precision + 5) + 1
    run_ok(p, [{"id": 1, "x": huge}], table_name="t")
    assert table_columns(p, "t")["x"] == "text"
    assert query(p, "SELECT x FROM t") == [(str(huge),)]


def test_freeze_rejects_new_column_and_loads_nothing(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "a": "x"}], table_name="t")
    schema_before = p.schema.to_dict()
    with pytest.raises(SchemaContractViolation) as err:
        p.run([{"id": 2, "a": "y"}, {"id": 3, "a": "z", "new_col": 1}], table_name="t", schema_contract="freeze")
    assert "new_col" in str(err.value) and "'t'" in str(err.value)
    assert count(p, "t") == 1
    assert "new_col" not in table_columns(p, "t")
    assert count(p, "_lb_loads") == 1
    assert _nothing_pending(p)
    assert p.schema.to_dict() == schema_before
    # rows that fit the frozen schema still load under freeze
    run_ok(p, [{"id": 4, "a": "w"}], table_name="t", schema_contract="freeze")
    assert select(p, "t", "id", "a") == [(1, "x"), (4, "w")]


def test_freeze_rejects_new_table_and_new_variant(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "n": 1}], table_name="t")
    with pytest.raises(SchemaContractViolation):
        p.run([{"id": 1}], table_name="other", schema_contract="freeze")
    with pytest.raises(SchemaContractViolation):
        p.run([{"id": 2, "n": "text"}], table_name="t", schema_contract="freeze")
    with pytest.raises(SchemaContractViolation):
        p.run([{"id": 2, "kids": [1]}], table_name="t", schema_contract="freeze")
    assert count(p, "t") == 1
    assert set(table_columns(p, "t")) == {"_lb_load_id", "_lb_id", "id", "n"}
    assert _nothing_pending(p)
    with p.sql_client() as client:
        assert client.table_columns(["other", "t__kids"]) == {}


def test_discard_value_and_discard_row_contracts(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "a": "x"}], table_name="t")
    run_ok(p, [{"id": 2, "a": "y", "new": 1}], table_name="t", schema_contract="discard_value")
    run_ok(p, [{"id": 3, "a": "z", "new": 1}, {"id": 4, "a": "w"}], table_name="t",
           schema_contract={"columns": "discard_row"})
    assert "new" not in table_columns(p, "t")
    assert select(p, "t", "id", "a") == [(1, "x"), (2, "y"), (4, "w")]


def test_keys_that_normalize_alike_do_not_collide(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "userId": "camel", "user_id": "snake", "User ID": "spaced"}], table_name="t")
    cols = [c for c in table_columns(p, "t") if c.startswith("user_id")]
    assert len(cols) == 3
    values = query(p, f"SELECT {', '.join(ident(p, c) for c in cols)} FROM t")
    assert sorted(values[0]) == ["camel", "snake", "spaced"]


def test_long_names_are_shortened_and_stay_distinct(make_pipeline):
    p = make_pipeline()
    limit = p.capabilities.max_identifier_length
    prefix = "a_very_long_column_name_" * (limit // 24 + 2)
    row = {"id": 1, prefix + "one": "v1", prefix + "two": "v2"}
    run_ok(p, [row], table_name="t")
    cols = [c for c in table_columns(p, "t") if c.startswith("a_very")]
    assert len(cols) == 2
    assert all(len(c.encode()) <= limit for c in cols)
    values = query(p, f"SELECT {', '.join(ident(p, c) for c in cols)} FROM t")
    assert sorted(values[0]) == ["v1", "v2"]
    # deterministic: a second run with the same keys reuses the same columns
    run_ok(p, [{**row, "id": 2}], table_name="t")
    assert [c for c in table_columns(p, "t") if c.startswith("a_very")] == cols
    assert count(p, "t") == 2


def test_a_document_nested_sixty_levels_deep_loads_every_level(make_pipeline):
    """Each level is a child table whose name joins every level above it: names are shortened to the
    destination's limit and, whatever that is, to what a load file's name can hold (it starts with the table's).
    Capped at 16 levels where statements are costly: their names pass Spark's 128 characters from the 9th on."""
    p = make_pipeline()
    levels = heavy_case(p, 60, 16)
    doc: dict = {"id": 1}
    level = doc
    for depth in range(levels):
        level[f"child_level_{depth}"] = [{"depth": depth}]
        level = level[f"child_level_{depth}"][0]
    run_ok(p, [doc], table_name="docs")
    tables = sorted((t for t in p.schema.data_tables() if t.name != "docs"), key=lambda t: len(t.name))
    assert len(tables) == levels
    limit = min(p.capabilities.max_identifier_length, 200)
    assert all(len(t.name.encode()) <= limit for t in tables)
    unshortened = "docs" + "".join(f"__child_level_{depth}" for depth in range(levels))
    assert len(unshortened) > limit  # the case reaches the shortening, capped or not
    assert len({t.name for t in tables}) == levels  # shortened names stay distinct
    depths = sorted(as_int(select(p, t.name, "depth")[0][0]) for t in tables)
    assert depths == list(range(levels))


def _deep(depth: int) -> dict:
    """``{"id": 1, "level_0": [{"depth": 0, "level_1": [...]}]}``, ``depth`` lists deep."""
    doc: dict = {"id": 1}
    level = doc
    for n in range(depth):
        level[f"level_{n}"] = [{"depth": n, "meta": {"n": n}}]
        level = level[f"level_{n}"][0]
    return doc


def test_max_table_nesting_keeps_deeper_data_as_json(make_pipeline):
    """Dicts and lists open one nesting level each (flattened columns, child tables) up to the limit; a
    dict or list beyond it is a json column holding the whole value. A resource's limit wins over the
    pipeline's; dict rows and Arrow data make the same tables."""
    import pyarrow as pa

    p = make_pipeline(max_table_nesting=2)
    run_ok(p, [_deep(12)], table_name="docs")  # MariaDB checks JSON only 32 levels deep
    tables = {t.name: t for t in p.schema.data_tables()}
    assert set(tables) == {"docs", "docs__level_0", "docs__level_0__level_1"}
    deepest = tables["docs__level_0__level_1"].columns
    assert deepest["meta"].data_type == "json" and deepest["level_2"].data_type == "json"
    assert tables["docs__level_0"].columns["meta__n"].data_type == "bigint"  # level 2: still flattened
    kept = as_json(select(p, "docs__level_0__level_1", "level_2", order_by=["depth"])[0][0])
    assert kept[0]["depth"] == 2 and kept[0]["level_3"][0]["level_4"][0]["depth"] == 4  # nothing lost
    assert select(p, "docs__level_0", "depth", "meta__n") == [(0, 0)]

    flat = make_pipeline(name="flat", max_table_nesting=5)
    run_ok(flat, loadbay.resource([_deep(3)], "docs", max_table_nesting=0))
    assert [t.name for t in flat.schema.data_tables()] == ["docs"]
    assert as_json(select(flat, "docs", "level_0", order_by=["id"])[0][0])[0]["level_1"][0]["depth"] == 1

    arrow = make_pipeline(name="arrow", max_table_nesting=2)
    run_ok(arrow, pa.Table.from_pylist([_deep(4)]), table_name="docs")
    assert {t.name: {c.name: c.data_type for c in t.columns.values()} for t in arrow.schema.data_tables()} == \
        {t.name: {c.name: c.data_type for c in t.columns.values()} for t in p.schema.data_tables()}
    assert as_json(select(arrow, "docs__level_0__level_1", "level_2", order_by=["depth"])[0][0])[0]["level_3"][0]["depth"] == 3


def test_reserved_words_as_table_and_column_names(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"select": 1, "from": "f", "where": True, "group": [1, 2]}], table_name="order")
    assert query(p, f"SELECT {ident(p, 'select')}, {ident(p, 'from')}, {ident(p, 'where')} "
                    f"FROM {ident(p, 'order')}") == [(1, "f", True)]
    assert count(p, "order__group") == 2


def test_loads_table_gets_one_row_per_package(make_pipeline):
    p = make_pipeline()
    ids = []
    for i in range(3):
        ids += run_ok(p, [{"id": i, "kids": [i]}], table_name="t").loads_ids
    ids += run_ok(p, [{"id": 9}], table_name="other").loads_ids
    assert len(set(ids)) == 4
    loaded = [r[0] for r in query(p, "SELECT load_id FROM _lb_loads ORDER BY load_id")]
    assert loaded == sorted(ids)
    assert query(p, "SELECT DISTINCT _lb_load_id FROM t ORDER BY _lb_load_id") == [(i,) for i in sorted(ids[:3])]
    assert query(p, "SELECT count(*) FROM _lb_pipeline_state") == [(4,)]
    # the stored schema knows every table loaded so far
    versions = query(p, "SELECT count(*) FROM _lb_version")[0][0]
    assert versions >= 2
    with p.destination.client(p.config) as client:
        stored = client.stored_schema(p.pipeline_name)
    assert stored is not None and {"t", "t__kids", "other"} <= set(stored.tables)


def test_discard_row_contract_drops_rows_of_a_new_table(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1}], table_name="t")
    p.run([{"id": 1}], table_name="other", schema_contract={"tables": "discard_row"}).raise_on_failed_jobs()
    with p.sql_client() as client:
        assert client.table_columns(["other"]) == {}
    assert _nothing_pending(p)
    assert count(p, "t") == 1


def test_data_key_named_like_a_system_column_keeps_links_intact(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 1, "_lb_id": "mine", "kids": [1]}, {"id": 2, "_lb_id": "mine", "kids": [2]}], table_name="t")
    assert query(p, "SELECT count(DISTINCT _lb_id) FROM t") == [(2,)]
    assert query(p, "SELECT count(*) FROM t__kids k WHERE NOT EXISTS "
                    "(SELECT 1 FROM t WHERE t._lb_id = k._lb_parent_id)") == [(0,)]


def test_schema_is_restored_from_the_destination_on_a_new_machine(make_pipeline):
    """Local state lost (a new machine): the next run continues with the stored schema."""
    p = make_pipeline()
    run_ok(p, [{"id": 1, "x": 1}], table_name="t")
    run_ok(p, [{"id": 2, "x": "not a number"}], table_name="t")  # makes x__v_text
    shutil.rmtree(p.pipeline_dir)
    fresh = loadbay.pipeline(p.pipeline_name, destination=p.destination, dataset_name=p.dataset_name,
                             pipelines_dir=p.pipeline_dir.parent)
    assert fresh.schema.tables == {}
    run_ok(fresh, [{"id": 3, "x": "again text"}], table_name="t")
    assert "x__v_text" in fresh.schema.tables["t"].columns
    assert fresh.schema.tables["t"].columns["x"].data_type == "bigint"
    assert count(fresh, "t") == 3
