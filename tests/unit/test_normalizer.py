"""RelationalNormalizer: flattening, child tables and their links, hints, variants, contracts."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest

from loadbay.common.capabilities import DEFAULTS, DestinationCapabilities
from loadbay.common.exceptions import SchemaContractViolation, SchemaError
from loadbay.common.normalizer import RelationalNormalizer, Rows
from loadbay.common.schema.contracts import SchemaContract
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Schema
from loadbay.destinations.testing.conformance.helpers import load_sample

LOAD = "1700000000000001"


def _normalizer(schema: Schema | None = None, *, contract: Any = None,
                capabilities: DestinationCapabilities = DEFAULTS) -> RelationalNormalizer:
    return RelationalNormalizer(schema if schema is not None else Schema("test"), capabilities, LOAD,
                                SchemaContract.parse(contract))


def _all_rows(out: Rows) -> list[dict[str, Any]]:
    return [row for rows in out.values() for row in rows]


def _by_parent(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row[PARENT_ID]].append(row)
    for group in groups.values():
        group.sort(key=lambda r: r[LIST_IDX])
    return groups


def _assert_linked(schema: Schema, out: Rows, root: str) -> None:
    """Every child row points at an existing parent row of its parent table and at that parent's root."""
    root_of_row = {r[ROW_ID]: r[ROW_ID] for r in out[root]}
    for table in schema.children_of(root):
        parent_ids = {r[ROW_ID] for r in out[table.parent]}
        for group in _by_parent(out.get(table.name, [])).values():
            assert [r[LIST_IDX] for r in group] == list(range(len(group))), table.name
        for row in out.get(table.name, []):
            assert row[PARENT_ID] in parent_ids, table.name
            assert row[ROOT_ID] == root_of_row[row[PARENT_ID]], table.name
            assert LOAD_ID not in row
            root_of_row[row[ROW_ID]] = row[ROOT_ID]


# -- flattening and child tables ---------------------------------------------------------------

def test_nested_dicts_flatten_into_double_underscore_columns() -> None:
    n = _normalizer()
    out = n.normalize("users", [{"id": 1, "profile": {"name": "Ann", "address": {"city": "Oslo"}}}])
    (row,) = out["users"]
    assert row["profile__name"] == "Ann"
    assert row["profile__address__city"] == "Oslo"
    columns = n.schema.tables["users"].columns
    assert "profile" not in columns and "profile__address" not in columns
    assert list(out) == ["users"]


def test_lists_of_dicts_become_a_child_table() -> None:
    n = _normalizer()
    out = n.normalize("orders", [{"id": 1, "items": [{"sku": "a"}, {"sku": "b"}]}, {"id": 2, "items": [{"sku": "c"}]}])
    roots, items = out["orders"], out["orders__items"]
    assert [i["sku"] for i in items] == ["a", "b", "c"]
    assert [i[LIST_IDX] for i in items] == [0, 1, 0]
    assert [i[PARENT_ID] for i in items] == [roots[0][ROW_ID]] * 2 + [roots[1][ROW_ID]]
    assert [i[ROOT_ID] for i in items] == [i[PARENT_ID] for i in items]
    assert n.schema.tables["orders__items"].parent == "orders"
    assert "items" not in n.schema.tables["orders"].columns


def test_lists_of_scalars_go_to_a_value_column() -> None:
    n = _normalizer()
    out = n.normalize("posts", [{"id": 1, "tags": ["x", "y", None, "z"]}])
    tags = out["posts__tags"]
    assert [t.get("value") for t in tags] == ["x", "y", None, "z"]
    assert [t[LIST_IDX] for t in tags] == [0, 1, 2, 3]
    assert n.schema.tables["posts__tags"].columns["value"].data_type == "text"


def test_an_empty_list_makes_no_child_table() -> None:
    n = _normalizer()
    out = n.normalize("posts", [{"id": 1, "tags": []}])
    assert "posts__tags" not in out
    assert "posts__tags" not in n.schema.tables


def test_scalar_items_go_to_a_value_column() -> None:
    out = _normalizer().normalize("numbers", [1, 2, 3])
    assert [r["value"] for r in out["numbers"]] == [1, 2, 3]


def test_load_id_is_on_root_rows_only() -> None:
    n = _normalizer()
    out = n.normalize("orders", [{"id": 1, "items": [{"sku": "a", "parts": [1, 2]}]}])
    assert [r[LOAD_ID] for r in out["orders"]] == [LOAD]
    children = out["orders__items"] + out["orders__items__parts"]
    assert children and all(LOAD_ID not in r for r in children)
    assert LOAD_ID in n.schema.tables["orders"].columns
    assert LOAD_ID not in n.schema.tables["orders__items"].columns
    for table in ("orders__items", "orders__items__parts"):
        cols = n.schema.tables[table].columns
        assert {PARENT_ID, LIST_IDX, ROOT_ID, ROW_ID} <= set(cols)
        assert cols[ROOT_ID].root_key and not cols[PARENT_ID].nullable


def test_ethereum_blocks_link_every_child_to_its_parent_and_root() -> None:
    blocks = load_sample("ethereum_blocks.json")
    n = _normalizer()
    out = n.normalize("blocks", blocks)
    txs = [tx for b in blocks for tx in b["transactions"]]
    logs = [log for tx in txs for log in tx["logs"]]
    assert len(out["blocks"]) == len(blocks)
    assert len(out["blocks__transactions"]) == len(txs)
    assert len(out["blocks__transactions__logs"]) == len(logs)
    assert len(out["blocks__transactions__logs__topics"]) == sum(len(log["topics"]) for log in logs)
    assert len(out["blocks__uncles"]) == sum(len(b["uncles"]) for b in blocks)
    access = [a for tx in txs for a in (tx.get("accessList") or [])]
    assert len(out["blocks__transactions__access_list"]) == len(access)
    assert len(out["blocks__transactions__access_list__storage_keys"]) == sum(len(a["storageKeys"]) for a in access)
    _assert_linked(n.schema, out, "blocks")


def test_ethereum_grandchildren_follow_the_source_nesting() -> None:
    blocks = load_sample("ethereum_blocks.json")
    out = _normalizer().normalize("blocks", blocks)
    txs = _by_parent(out["blocks__transactions"])
    logs = _by_parent(out["blocks__transactions__logs"])
    topics = _by_parent(out["blocks__transactions__logs__topics"])
    for block, root in zip(blocks, out["blocks"], strict=True):
        assert root["hash"] == block["hash"]
        tx_rows = txs.get(root[ROW_ID], [])
        assert [r["hash"] for r in tx_rows] == [tx["hash"] for tx in block["transactions"]]
        for tx, tx_row in zip(block["transactions"], tx_rows, strict=True):
            log_rows = logs.get(tx_row[ROW_ID], [])
            assert [r["log_index"] for r in log_rows] == [log["logIndex"] for log in tx["logs"]]
            for log, log_row in zip(tx["logs"], log_rows, strict=True):
                assert log_row[ROOT_ID] == root[ROW_ID]
                topic_rows = topics.get(log_row[ROW_ID], [])
                assert [r["value"] for r in topic_rows] == log["topics"]
                assert all(r[ROOT_ID] == root[ROW_ID] for r in topic_rows)


def test_github_events_commit_rows_match_the_commit_lists() -> None:
    events = load_sample("github_events.json")
    n = _normalizer()
    out = n.normalize("events", events)
    assert len(out["events"]) == len(events)
    assert len(out["events__payload__commits"]) == sum(len(e["payload"].get("commits", [])) for e in events)
    assert n.schema.tables["events"].columns["actor__id"].data_type == "bigint"
    _assert_linked(n.schema, out, "events")


def test_row_ids_are_unique_across_all_rows() -> None:
    n = _normalizer()
    first = _all_rows(n.normalize("events", load_sample("github_events.json")))
    second = _all_rows(n.normalize("issues", load_sample("github_issues.json")))
    ids = [r[ROW_ID] for r in first + second]
    assert len(ids) == len(first) + len(second)
    assert len(set(ids)) == len(ids)


def test_row_ids_differ_between_normalizers() -> None:
    a = _normalizer().normalize("t", [{"x": 1}])["t"][0][ROW_ID]
    b = _normalizer().normalize("t", [{"x": 1}])["t"][0][ROW_ID]
    assert a != b


def test_schema_round_trips_and_lists_children_parents_first() -> None:
    n = _normalizer()
    n.normalize("blocks", load_sample("ethereum_blocks.json"))
    schema = n.schema
    again = Schema.from_dict(json.loads(schema.to_json()))
    assert again.to_dict() == schema.to_dict()
    assert again.version_hash == schema.version_hash
    seen = {"blocks"}
    children = schema.children_of("blocks")
    assert {t.name for t in children} == set(schema.tables) - {"blocks"}
    for table in children:
        assert table.parent in seen
        seen.add(table.name)


# -- names -------------------------------------------------------------------------------------

def test_keys_that_normalize_alike_get_distinct_columns() -> None:
    n = _normalizer()
    (row,) = n.normalize("logs", [{"blockHash": "A", "block_hash": "B"}])["logs"]
    assert row["block_hash"] == "A"
    others = {k: v for k, v in row.items() if k.startswith("block_hash_")}
    assert list(others.values()) == ["B"]
    tagged = next(iter(others))
    assert tagged in n.schema.tables["logs"].columns
    again = _normalizer().normalize("logs", [{"blockHash": "A", "block_hash": "B"}])["logs"][0]
    assert tagged in again  # the tag is the same on every run


def test_a_key_colliding_with_a_flattened_path_gets_a_distinct_column() -> None:
    (row,) = _normalizer().normalize("t", [{"a__b": 1, "a": {"b": 2}}])["t"]
    data = {k: v for k, v in row.items() if not k.startswith("_lb_")}
    assert sorted(data.values()) == [1, 2]
    assert len(data) == 2


def test_ethereum_logs_keep_both_block_hash_keys() -> None:
    blocks = load_sample("ethereum_blocks.json")
    n = _normalizer()
    out = n.normalize("blocks", blocks)
    columns = [c for c in n.schema.tables["blocks__transactions__logs"].columns
               if c == "block_hash" or c.startswith("block_hash_")]
    assert len(columns) == 2
    logs = [log for b in blocks for tx in b["transactions"] for log in tx["logs"]]
    rows = out["blocks__transactions__logs"]
    assert [r["block_hash"] for r in rows] == [log["blockHash"] for log in logs]
    tagged = next(c for c in columns if c != "block_hash")
    assert [r[tagged] for r in rows] == [log["block_hash"] for log in logs]


def test_names_fit_the_identifier_limit() -> None:
    caps = DEFAULTS.with_(max_identifier_length=30)
    n = _normalizer(capabilities=caps)
    item = {"名前" * 10: 1, "outer_" * 6: {"inner_" * 6: 2, "inner_" * 7: 3},
            "long_list_name_" * 4: [{"deeply_nested_key_" * 3: 4}]}
    out = n.normalize("a_rather_long_root_table_name", [item])
    for table in n.schema.tables.values():
        assert len(table.name.encode()) <= 30
        for column in table.columns:
            assert len(column.encode()) <= 30
    values = sorted(v for r in _all_rows(out) for k, v in r.items() if not k.startswith("_lb_"))
    assert values == [1, 2, 3, 4]


# -- hints -------------------------------------------------------------------------------------

def test_column_hints_win_over_inference() -> None:
    n = _normalizer()
    n.apply_hints("t", columns={"createdAt": {"data_type": "text"}, "n": {"data_type": "double"},
                                "when": {"data_type": "timestamp"}, "payload": {"data_type": "json"}})
    (row,) = n.normalize("t", [{"createdAt": "2023-01-01T00:00:00Z", "n": 3, "when": "2023-01-01T00:00:00Z",
                                "payload": {"a": [1, 2]}}])["t"]
    cols = n.schema.tables["t"].columns
    assert (cols["created_at"].data_type, row["created_at"]) == ("text", "2023-01-01T00:00:00Z")
    assert cols["n"].data_type == "double" and type(row["n"]) is float
    assert cols["when"].data_type == "timestamp" and row["when"].year == 2023 and row["when"].tzinfo
    assert row["payload"] == {"a": [1, 2]}
    assert "payload__a" not in cols and "t__payload__a" not in n.schema.tables


def test_a_hint_without_a_type_merges_with_the_inferred_type() -> None:
    n = _normalizer()
    n.apply_hints("t", columns={"x": {"nullable": False, "sort": True}})
    n.normalize("t", [{"x": 5}])
    col = n.schema.tables["t"].columns["x"]
    assert (col.data_type, col.nullable, col.sort) == ("bigint", False, True)


def test_a_type_hint_on_an_existing_column_of_another_type_is_refused_and_other_hints_apply() -> None:
    """The destination's column keeps its type: a schema saying text over a BIGINT column made its load fail."""
    n = _normalizer()
    n.normalize("t", [{"x": 5}])
    with pytest.raises(SchemaError, match=r"column 'x' is of type bigint in the schema .* asks for text"):
        n.apply_hints("t", columns={"x": {"data_type": "text"}})
    assert n.schema.tables["t"].columns["x"].data_type == "bigint"
    n.apply_hints("t", columns={"x": {"data_type": "bigint", "nullable": False}})  # the same type: fine
    assert not n.schema.tables["t"].columns["x"].nullable
    with pytest.raises(SchemaError, match=r"column 'x' \(NOT NULL, bigint\) got str value '6'.* takes no variant"):
        n.normalize("t", [{"x": "6"}])  # a variant would leave the NOT NULL column NULL


def test_primary_key_columns_are_not_nullable() -> None:
    n = _normalizer()
    n.apply_hints("t", primary_key=["id", "userId"])
    n.normalize("t", [{"id": 1, "userId": 2, "other": 3}])
    cols = n.schema.tables["t"].columns
    for name in ("id", "user_id"):
        assert cols[name].primary_key and not cols[name].nullable
    assert not cols["other"].primary_key and cols["other"].nullable


def test_primary_key_on_an_already_typed_column() -> None:
    n = _normalizer()
    n.normalize("t", [{"id": 1, "other": 3}])
    n.apply_hints("t", write_disposition="merge", primary_key="id")
    table = n.schema.tables["t"]
    assert table.columns["id"].primary_key and not table.columns["id"].nullable
    assert table.write_disposition == "merge"
    assert [c.name for c in table.columns_with("primary_key")] == ["id"]


# -- variants ----------------------------------------------------------------------------------

def test_a_type_conflict_makes_variant_columns() -> None:
    n = _normalizer()
    rows = n.normalize("t", [{"a": 1}, {"a": "x"}, {"a": True}, {"a": 1.5}, {"a": 2**70}, {"a": 2}])["t"]
    cols = n.schema.tables["t"].columns
    assert cols["a"].data_type == "bigint"
    expected = {"a__v_text": "text", "a__v_bool": "bool", "a__v_double": "double", "a__v_decimal": "decimal"}
    assert {name: cols[name].data_type for name in expected} == expected
    assert all(cols[name].variant_of == "a" for name in expected)
    data = [{k: v for k, v in r.items() if not k.startswith("_lb_")} for r in rows]
    assert data == [{"a": 1}, {"a__v_text": "x"}, {"a__v_bool": True}, {"a__v_double": 1.5},
                    {"a__v_decimal": Decimal(2**70)}, {"a": 2}]


def test_ints_beyond_64_bits_in_a_bigint_column_go_to_a_variant() -> None:
    blocks = load_sample("ethereum_blocks.json")
    n = _normalizer()
    rows = n.normalize("blocks", blocks)["blocks__transactions"]
    values = [tx["value"] for b in blocks for tx in b["transactions"]]
    big = [v for v in values if v > 2**63 - 1]
    assert big, "the sample has transaction values beyond 64 bits"
    assert n.schema.tables["blocks__transactions"].columns["value"].data_type == "bigint"
    assert [r.get("value__v_decimal") for r in rows if "value" not in r] == [Decimal(v) for v in big]
    assert [r["value"] for r in rows if "value" in r] == [v for v in values if v <= 2**63 - 1]


def test_a_decimal_variant_keeps_the_inferred_precision() -> None:
    """Without (38, 0) a decimal variant falls back to (38, 9) and cannot hold 30+ digit ints."""
    n = _normalizer()
    n.normalize("t", [{"v": 1}, {"v": 10**35}])
    col = n.schema.tables["t"].columns["v__v_decimal"]
    assert (col.precision, col.scale) == (38, 0)


def test_ints_wider_than_max_decimal_precision_never_land_in_a_decimal_column() -> None:
    n = _normalizer()
    rows = n.normalize("t", [{"v": 2**70}, {"v": 10**40}])["t"]
    assert n.schema.tables["t"].columns["v"].data_type == "decimal"
    assert "v" not in rows[1]
    assert rows[1]["v__v_text"] == str(10**40)


# -- contracts ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    (None, SchemaContract("evolve", "evolve", "evolve")),
    ("freeze", SchemaContract("freeze", "freeze", "freeze")),
    ("discard_row", SchemaContract("discard_row", "discard_row", "discard_row")),
    ("discard_value", SchemaContract("discard_row", "discard_value", "discard_value")),
    ({"columns": "freeze"}, SchemaContract("evolve", "freeze", "evolve")),
])
def test_schema_contract_parse(value: Any, expected: SchemaContract) -> None:
    assert SchemaContract.parse(value) == expected


@pytest.mark.parametrize("value", ["frozen", {"column": "freeze"}, {"tables": "discard_value"},
                                   {"data_type": "strict"}])
def test_schema_contract_parse_rejects_bad_values(value: Any) -> None:
    with pytest.raises(ValueError):
        SchemaContract.parse(value)


@pytest.fixture
def known() -> Schema:
    """A schema that already holds table t (id, a: bigint) and its child t__items (x)."""
    schema = Schema("known")
    _normalizer(schema).normalize("t", [{"id": 1, "a": 1, "items": [{"x": 1}]}])
    return schema


def test_evolve_adds_columns_to_a_known_table(known: Schema) -> None:
    n = _normalizer(known, contract="evolve")
    n.normalize("t", [{"id": 2, "b": 3}])
    assert "b" in known.tables["t"].columns


def test_freeze_names_the_new_column(known: Schema) -> None:
    with pytest.raises(SchemaContractViolation) as err:
        _normalizer(known, contract="freeze").normalize("t", [{"id": 2, "a": 2, "newCol": 3}])
    assert (err.value.table, err.value.what, err.value.names) == ("t", "columns", ["new_col"])
    assert "new_col" in str(err.value)
    assert "new_col" not in known.tables["t"].columns


def test_freeze_names_the_new_table(known: Schema) -> None:
    with pytest.raises(SchemaContractViolation) as err:
        _normalizer(known, contract="freeze").normalize("other", [{"id": 1}])
    assert (err.value.table, err.value.names) == ("other", ["other"])
    assert "'other'" in str(err.value)


def test_freeze_names_a_new_child_table(known: Schema) -> None:
    with pytest.raises(SchemaContractViolation) as err:
        _normalizer(known, contract="freeze").normalize("t", [{"id": 2, "tags": ["x"]}])
    assert err.value.names == ["t__tags"]


def test_freeze_on_data_types_names_the_column(known: Schema) -> None:
    with pytest.raises(SchemaContractViolation) as err:
        _normalizer(known, contract={"data_type": "freeze"}).normalize("t", [{"id": 2, "a": "text"}])
    assert err.value.what == "data types"
    assert err.value.names[0].startswith("a (bigint)")


def test_freeze_accepts_rows_that_fit(known: Schema) -> None:
    before = known.to_dict()
    out = _normalizer(known, contract="freeze").normalize("t", [{"id": 2, "a": 5, "items": [{"x": 2}]}])
    assert [r["a"] for r in out["t"]] == [5]
    assert known.to_dict() == before


def test_discard_row_drops_rows_that_would_change_the_schema(known: Schema) -> None:
    out = _normalizer(known, contract="discard_row").normalize(
        "t", [{"id": 2, "a": 2}, {"id": 3, "b": 1}, {"id": 4, "a": "text"}, {"id": 5, "a": 5}])
    assert [r["id"] for r in out["t"]] == [2, 5]
    assert set(known.tables["t"].columns) == {LOAD_ID, ROW_ID, "id", "a"}


def test_discard_value_drops_only_the_value(known: Schema) -> None:
    out = _normalizer(known, contract="discard_value").normalize(
        "t", [{"id": 2, "a": 2, "b": 1}, {"id": 3, "a": "text"}])
    data = [{k: v for k, v in r.items() if not k.startswith("_lb_")} for r in out["t"]]
    assert data == [{"id": 2, "a": 2}, {"id": 3}]
    assert set(known.tables["t"].columns) == {LOAD_ID, ROW_ID, "id", "a"}


def test_discard_row_on_a_new_table_drops_its_rows() -> None:
    n = _normalizer(contract="discard_row")
    out = n.normalize("brand_new", [{"a": 1}])
    assert out.get("brand_new", []) == []
    assert "brand_new" not in n.schema.tables


def test_a_discarded_row_leaves_no_child_rows(known: Schema) -> None:
    out = _normalizer(known, contract="discard_row").normalize(
        "t", [{"id": 2, "items": [{"x": 1}, {"x": 2, "y": 3}]}])
    assert out["t"] == []
    assert out.get("t__items", []) == []


# -- reported defects --------------------------------------------------------------------------

def test_a_list_field_named_like_a_table_still_gets_its_own_child_table() -> None:
    n = _normalizer()
    out = n.normalize("events", [{"id": 1, "events": [{"x": 1}]}])
    assert [r.get("id") for r in out["events"]] == [1]
    assert [r["x"] for r in out["events__events"]] == [1]


def test_data_keys_named_like_system_columns_do_not_overwrite_them() -> None:
    n = _normalizer()
    out = n.normalize("t", [{"_lb_id": "from-data", "_lb_load_id": "from-data", "items": [1]}])
    (root,) = out["t"]
    assert root[LOAD_ID] == LOAD
    assert root[ROW_ID] == out["t__items"][0][PARENT_ID]


@pytest.mark.parametrize("dict_first", [True, False])
def test_a_list_under_a_dict_and_under_a_list_of_dicts_get_tables_of_their_own(dict_first) -> None:
    """``o.n1`` (``o`` a dict) and ``o[].n1`` (``o`` a list of dicts) both join to ``t__o__n1``: the second met
    gets a tagged name, so every child table has one parent."""
    n = _normalizer()
    as_dict, as_list = {"id": 1, "o": {"n1": [1, 2]}}, {"id": 2, "o": [{"n1": [3]}]}
    out = n.normalize("t", [as_dict, as_list] if dict_first else [as_list, as_dict])
    tables = n.schema.tables
    under_lists = [name for name, table in tables.items() if table.parent == "t__o"]
    assert tables["t__o__n1"].parent == ("t" if dict_first else "t__o")
    tagged = next(name for name in tables if name.startswith("t__o__n1_"))
    assert tables[tagged].parent == ("t__o" if dict_first else "t") and len(under_lists) == 1
    ids = {table: {row[ROW_ID] for row in rows} for table, rows in out.items()}
    for name, rows in out.items():
        parent = tables[name].parent
        if parent is not None:
            assert {row[PARENT_ID] for row in rows} <= ids[parent], name  # each row's parent in its table
    assert sorted(r["value"] for r in out["t__o__n1"]) == ([1, 2] if dict_first else [3])


@pytest.mark.parametrize("role", ["primary_key", "merge_key"])
def test_a_key_value_of_another_type_is_refused_not_sent_to_a_variant(role) -> None:
    """A variant would leave the key NULL: a merge on NULL keys, or a NOT NULL violation at load time."""
    n = _normalizer()
    n.apply_hints("t", write_disposition="merge", **{role: "id"})
    n.normalize("t", [{"id": 1}])
    with pytest.raises(SchemaError, match=rf"column 'id' \({role.replace('_', ' ')}, bigint\) got str value 'abc'"):
        n.normalize("t", [{"id": "abc"}])
    assert "id__v_text" not in n.schema.tables["t"].columns
    lenient = _normalizer(contract={"data_type": "discard_row"})  # the contract drops such rows instead
    lenient.apply_hints("t", write_disposition="merge", **{role: "id"})
    assert len(lenient.normalize("t", [{"id": 1}, {"id": "abc"}])["t"]) == 1
