"""Every write disposition and merge strategy gives the same tables from Arrow data as from dicts.

The conformance suite checks each disposition on dict rows against what it must hold. Here each scenario
of runs (replace with every strategy; merge by delete-insert, upsert, insert-only and scd2, with duplicate
keys, dedup_sort, compound keys, hard deletes, merge keys and nested children) is loaded twice on the
destination under test: as lists of dicts, and as Arrow tables of the same rows. Both must end with the
same tables, columns and types, and the same rows: compared without loadbay's ids, a child row by the
content of its parents and its place in their list, an scd2 validity time by the run that set it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pytest

import loadbay
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_HASH, ROW_ID
from loadbay.common.storage.package import PackageStorage
from loadbay.destinations.testing.conformance.helpers import as_json, as_utc, ident, query, run_ok
from tests.integration.test_arrow_differential import depth, schema_shape

Run = tuple[list[dict[str, Any]], dict[str, Any]]
LINKS = {LOAD_ID, ROW_ID, PARENT_ID, ROOT_ID, LIST_IDX, ROW_HASH}


def merge(strategy: str, **hints: Any) -> dict[str, Any]:
    return {"write_disposition": {"disposition": "merge", "strategy": strategy}, **hints}


def replace(strategy: str) -> dict[str, Any]:
    return {"write_disposition": {"disposition": "replace", "strategy": strategy}}


NESTED = [{"id": 1, "kids": [{"n": "a", "g": [1, 2]}, {"n": "b"}]}, {"id": 2, "kids": [{"n": "c", "g": [3]}]},
          {"id": 3, "kids": [{"n": "d"}]}]
NESTED_AGAIN = [{"id": 1, "kids": [{"n": "x", "g": [7]}]}, {"id": 3, "note": "no kids now"},
                {"id": 4, "kids": [], "note": "new"}]
WITH_DUPLICATES = [{"id": 1, "v": "mid", "seq": 20, "kids": ["m"]}, {"id": 1, "v": "high", "seq": 30, "kids": ["h1", "h2"]},
                   {"id": 1, "v": "low", "seq": 10}, {"id": 2, "v": "only", "seq": 5, "kids": ["o"]}]
HARD_DELETES = [[{"id": 1, "v": "a", "kids": [1, 2]}, {"id": 2, "v": "b", "kids": [3]}, {"id": 3, "v": "c", "kids": [4]}],
                [{"id": 1, "deleted": True}, {"id": 2, "deleted": False, "v": "b2", "kids": [5]},
                 {"id": 9, "deleted": True, "v": "never"}, {"id": 3, "deleted": True}, {"id": 3, "v": "back"}]]
SCD2_EXTRACTS = [
    [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": "b", "tags": ["y", "z"]}, {"id": 3, "name": "c"}],
    [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": "b2", "tags": ["y", "z"]},
     {"id": 4, "name": "d", "tags": []}, {"id": 4, "name": "d", "tags": []}],
    [{"id": 1, "name": "a", "tags": ["x", "w"]}, {"id": 2, "name": "b", "tags": ["y", "z"]}, {"id": 3, "name": "c"}],
]


def scenarios() -> dict[str, tuple[str | None, list[Run]]]:
    """name → (the strategy the destination must have, ``merge:...`` or ``replace:...``, or None; the runs)."""
    out: dict[str, tuple[str | None, list[Run]]] = {}
    for strategy in ("insert-from-staging", "truncate-and-insert", "staging-optimized"):
        out[f"replace {strategy}"] = (f"replace:{strategy}", [(NESTED, replace(strategy)), (NESTED_AGAIN, replace(strategy)),
                                             ([{"id": 5, "note": "no lists at all"}], replace(strategy))])
    for strategy in ("delete-insert", "upsert"):
        keyed = merge(strategy, primary_key="id")
        out[f"merge {strategy} with children"] = (f"merge:{strategy}", [(NESTED, keyed), (NESTED_AGAIN, keyed)])
        out[f"merge {strategy} dedup_sort"] = (f"merge:{strategy}", [
            (WITH_DUPLICATES, merge(strategy, primary_key="id", columns={"seq": {"dedup_sort": "desc"}})),
            (WITH_DUPLICATES[2:], merge(strategy, primary_key="id", columns={"seq": {"dedup_sort": "asc"}}))])
        out[f"merge {strategy} compound key"] = (f"merge:{strategy}", [
            ([{"a": 1, "b": 1, "v": "x"}, {"a": 1, "b": 2, "v": "y"}, {"a": 2, "b": 1, "v": "z"}],
             merge(strategy, primary_key=["a", "b"])),
            ([{"a": 1, "b": 2, "v": "y2"}, {"a": 2, "b": 2, "v": "new"}, {"a": 2, "b": 2, "v": "new2"}],
             merge(strategy, primary_key=["a", "b"]))])
        deleting = merge(strategy, primary_key="id", columns={"deleted": {"hard_delete": True}})
        out[f"merge {strategy} hard_delete"] = (f"merge:{strategy}", [(rows, deleting) for rows in HARD_DELETES])
        by_time = merge(strategy, primary_key="id", columns={"deleted_at": {"hard_delete": True}})
        out[f"merge {strategy} hard_delete by a timestamp"] = (f"merge:{strategy}", [
            ([{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], by_time),
            ([{"id": 1, "deleted_at": "2024-01-01T00:00:00Z"}, {"id": 2, "v": "b2"}], by_time)])
    out["merge key partitions with children"] = ("merge:delete-insert", [
        ([{"day": "mon", "n": 1, "tags": ["x", "y"]}, {"day": "mon", "n": 2}, {"day": "tue", "n": 3, "tags": ["z"]}],
         {"write_disposition": "merge", "merge_key": "day"}),
        ([{"day": "mon", "n": 10, "tags": ["new"]}, {"day": "wed", "n": 4}, {"day": "wed", "n": 5}],
         {"write_disposition": "merge", "merge_key": "day"})])
    insert_only = merge("insert-only", primary_key="id")
    out["merge insert-only"] = ("merge:insert-only", [
        ([{"id": 1, "v": "a", "tags": ["x"]}, {"id": 2, "v": "b", "tags": []}], insert_only),
        ([{"id": 2, "v": "b2", "tags": ["changed"]}, {"id": 3, "v": "c", "tags": ["y", "z"]},
          {"id": 3, "v": "c-last", "tags": ["last"]}], insert_only)])
    out["merge scd2 full extracts"] = ("merge:scd2", [(rows, merge("scd2")) for rows in SCD2_EXTRACTS])
    out["merge scd2 by merge key with a hard delete"] = ("merge:scd2", [
        (SCD2_EXTRACTS[0], merge("scd2", merge_key="id")),
        ([{"id": 2, "name": "b2", "tags": ["y"]}], merge("scd2", merge_key="id")),
        ([{"id": 1, "name": "a", "tags": ["x"], "gone": True}],
         merge("scd2", merge_key="id", columns={"gone": {"hard_delete": True}}))])
    out["append then replace then append"] = (None, [
        (NESTED, {"write_disposition": "append"}), (NESTED_AGAIN, {"write_disposition": "replace"}),
        (NESTED, {"write_disposition": "append"})])
    return out


SCENARIOS = scenarios()


def arrow_of(rows: list[dict[str, Any]]) -> pa.Table:
    """The rows as an Arrow table with the schema of all rows (``from_pylist`` alone takes the first row's)."""
    return pa.Table.from_pylist(rows, schema=pa.schema(list(pa.array(rows).type)))


def load(p: loadbay.Pipeline, runs: list[Run], *, as_arrow: bool) -> dict[datetime, int]:
    """Each run as its own package; package time → run number (scd2 validity times are package times)."""
    times = {}
    for number, (rows, hints) in enumerate(runs):
        info = run_ok(p, arrow_of(rows) if as_arrow else rows, table_name="t", **hints)
        times[PackageStorage.created_at(info.loads_ids[-1])] = number
    return times


def contents(p: loadbay.Pipeline, times: dict[datetime, int]) -> dict[str, list[tuple[str, str]]]:
    """Every data table as a sorted list of (the row's place, its values), without loadbay's ids."""
    schema = p.schema
    labels: dict[str, str] = {}  # _lb_id → the row's place: its values, under its parent's place
    out: dict[str, list[tuple[str, str]]] = {}
    for name in sorted((t.name for t in schema.data_tables()), key=lambda n: depth(schema, n)):
        table = schema.tables[name]
        columns = sorted(table.columns)
        json_columns = {c.name for c in table.columns.values() if c.data_type == "json"}
        times_of = {c.name for c in table.columns.values() if c.valid_from or c.valid_to}
        rows = [dict(zip(columns, row)) for row in query(p, f"SELECT {', '.join(ident(p, c) for c in columns)} "
                                                           f"FROM {ident(p, name)}")]
        placed = []
        for row in rows:
            values = {c: (as_json(v) if c in json_columns else times.get(as_utc(v), "?") if c in times_of and v
                          else v) for c, v in row.items() if c not in LINKS}
            text = json.dumps(values, sort_keys=True, default=str)
            place = text if table.parent is None else f"{labels.get(row[PARENT_ID], '<orphan>')} / {row[LIST_IDX]}"
            labels[row[ROW_ID]] = place
            placed.append((place, text))
        out[name] = sorted(placed)
    return out


def differences(left: list[tuple[str, str]], right: list[tuple[str, str]]) -> Iterable[str]:
    """Rows one side holds more often than the other (a row loaded twice, or a duplicate lost, counts)."""
    ours, theirs = Counter(left), Counter(right)
    for row in sorted(set(ours) | set(theirs)):
        if ours[row] != theirs[row]:
            yield f"{ours[row]}× as dicts, {theirs[row]}× as Arrow: {row[1]:.120} at {row[0]:.80}"


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_arrow_data_loads_as_its_dicts_do(make_pipeline, destination_capabilities, scenario):
    needs, runs = SCENARIOS[scenario]
    if needs:
        disposition, strategy = needs.split(":")
        supported = getattr(destination_capabilities, f"{disposition}_strategies")
        if strategy not in supported:
            pytest.skip(f"the destination has no {disposition} strategy {strategy!r} (supported: {supported})")
    as_dicts, as_arrow = make_pipeline("as_dicts"), make_pipeline("as_arrow")
    dict_times, arrow_times = load(as_dicts, runs, as_arrow=False), load(as_arrow, runs, as_arrow=True)

    assert schema_shape(as_arrow.schema) == schema_shape(as_dicts.schema)
    expected, got = contents(as_dicts, dict_times), contents(as_arrow, arrow_times)
    assert set(got) == set(expected)
    assert any(expected.values()), "nothing loaded: the comparison would prove nothing"
    for name, rows in expected.items():
        assert len(got[name]) == len(rows), f"table {name}: {len(rows)} rows as dicts, {len(got[name])} as Arrow"
        diff = list(differences(rows, got[name]))
        assert not diff, f"table {name}: {len(diff)} rows differ, first: {diff[:4]}"
        assert not any("<orphan>" in place for place, _ in rows), f"table {name}: a child row without its parent"
