"""The column-at-a-time batch path gives the same rows as the row-by-row path, and falls back on anything new."""

from __future__ import annotations

import copy
import datetime as dt
import random
from typing import Any

import pytest

from loadbay.common.capabilities import DEFAULTS
from loadbay.common.normalizer import RelationalNormalizer, Rows
from loadbay.common.normalizer_batch import normalize_batch
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Schema
from loadbay.destinations.testing.conformance.helpers import load_sample

LOAD = "1700000000000001"
SYSTEM = (LOAD_ID, ROW_ID, PARENT_ID, LIST_IDX, ROOT_ID)


def _orders(n: int) -> list[dict[str, Any]]:
    """Records shaped like the PostgreSQL benchmark's: a nested dict, a list of dicts, a list of scalars."""
    r = random.Random(5)
    base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return [{"id": i, "amount": round(r.random() * 100, 2), "at": base + dt.timedelta(seconds=i),
             "meta": {"source": "web" if i % 3 else "ios", "geo": {"city": None if i % 4 == 0 else f"c{i % 7}"}},
             "items": [{"sku": f"s{r.randrange(50)}", "qty": r.randrange(1, 9)} for _ in range(r.randrange(4))],
             "tags": [r.choice("abc") for _ in range(r.randrange(3))]} for i in range(n)]


def _normalize(items: list[Any], batch_size: int, as_list: bool) -> tuple[Rows, RelationalNormalizer]:
    """All rows of ``items`` fed in batches; ``as_list=False`` passes tuples, which only the row path takes."""
    norm = RelationalNormalizer(Schema("test"), DEFAULTS, LOAD)
    out: Rows = {}
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        for table, rows in norm.normalize("data", chunk if as_list else tuple(chunk)).items():
            out.setdefault(table, []).extend(rows)
    return out, norm


def _canonical(out: Rows) -> dict[str, list[tuple[Any, ...]]]:
    """Rows with their ids replaced by where they sit (root position, then list indexes), None
    values dropped (a None value and a missing key are both NULL), sorted: comparable across paths."""
    place: dict[str, tuple[Any, ...]] = {}
    result: dict[str, list[tuple[Any, ...]]] = {}
    for table in sorted(out, key=lambda t: t.count("__")):  # parents before their children
        rows = []
        for position, row in enumerate(out[table]):
            if PARENT_ID in row:
                where = (*place[row[PARENT_ID]], table, row[LIST_IDX])
                assert place[row[ROOT_ID]] == where[:1], "root id is not the root's"
            else:
                where = (position,)
                assert row[LOAD_ID] == LOAD
            assert row[ROW_ID] not in place, "row id used twice"
            place[row[ROW_ID]] = where
            data = tuple(sorted((k, repr(v)) for k, v in row.items() if k not in SYSTEM and v is not None))
            rows.append((where, data))
        result[table] = sorted(rows)
    return result


@pytest.mark.parametrize("sample", ["github_events.json", "github_issues.json", "ethereum_blocks.json", "orders"])
def test_batch_path_makes_the_same_rows_and_schema(sample: str) -> None:
    items = _orders(3000) if sample == "orders" else load_sample(sample) * 4  # repeated: shapes recur
    batch_size = 100 if sample == "orders" else 2
    by_row, row_norm = _normalize(copy.deepcopy(items), batch_size, as_list=False)
    by_batch, batch_norm = _normalize(copy.deepcopy(items), batch_size, as_list=True)
    assert _canonical(by_batch) == _canonical(by_row)
    assert batch_norm.schema.to_dict() == row_norm.schema.to_dict()


def test_batch_path_is_taken_once_the_shapes_are_known() -> None:
    items = _orders(400)
    norm = RelationalNormalizer(Schema("test"), DEFAULTS, LOAD)
    norm.normalize("data", items[:200])  # the row path learns names, types and child tables
    state = norm.known_state("data")
    assert state is not None
    out = normalize_batch(norm, state, items[200:])
    assert out is not None
    assert len(out["data"]) == 200
    assert len(out["data__items"]) == sum(len(i["items"]) for i in items[200:])
    assert {r["value"] for r in out["data__tags"]} <= set("abc")


@pytest.mark.parametrize("change,column", [
    ({"id": 2 ** 70}, "id__v_decimal"),  # beyond 64 bits: a variant column, row by row
    ({"id": "x1"}, "id__v_text"),  # a new Python type for a known column
    ({"new_key": 1.5}, "new_key"),  # a new column
])
def test_anything_new_in_a_batch_goes_row_by_row(change: dict[str, Any], column: str) -> None:
    items = _orders(400)
    norm = RelationalNormalizer(Schema("test"), DEFAULTS, LOAD)
    norm.normalize("data", items[:200])
    later = items[200:]
    later[57] = {**later[57], **change}
    state = norm.known_state("data")
    assert state is not None
    assert normalize_batch(norm, state, later) is None
    out = norm.normalize("data", later)
    assert column in norm.schema.tables["data"].columns
    assert sum(1 for row in out["data"] if column in row) == 1


def test_new_child_table_in_a_batch_goes_row_by_row() -> None:
    items = _orders(400)
    norm = RelationalNormalizer(Schema("test"), DEFAULTS, LOAD)
    norm.normalize("data", items[:200])
    later = [{**item, "notes": [{"n": 1}]} if k == 10 else item for k, item in enumerate(items[200:])]
    out = norm.normalize("data", later)
    assert [row["n"] for row in out["data__notes"]] == [1]
    assert out["data__notes"][0][PARENT_ID] == out["data"][10][ROW_ID]
