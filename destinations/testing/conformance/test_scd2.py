"""The ``scd2`` merge strategy against a reference model in Python.

Each run is a full extract (or, with a merge key, the records of the keys it holds); the model keeps every
version of a record: a version of the extract that is not current is opened at the run's package time, a
current version the extract no longer holds is closed at that time, and a version's child rows are the
nested lists it had. Versions are told apart by their whole content, nested lists included (the model
uses its own json of the item, not loadbay's hash). Each test compares everything the destination holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

import loadbay
from loadbay.common.exceptions import SchemaError
from loadbay.common.storage.package import PackageStorage
from loadbay.destinations.testing.conformance.helpers import (as_int, as_utc, count, count_or_none, ident,
                                                              orphans, query, run_ok)

SCD2 = {"disposition": "merge", "strategy": "scd2"}


@dataclass
class Version:
    item: dict[str, Any]
    valid_from: datetime
    valid_to: datetime | None = None

    @property
    def content(self) -> str:
        return _content(self.item)


def _content(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True)


def scd2_model(runs: list[tuple[datetime, list[dict[str, Any]]]], merge_key: str | None = None,
               deleted: str | None = None) -> list[Version]:
    """Every version the table must hold after ``runs`` (package time, extract), in the order opened."""
    versions: list[Version] = []
    for at, batch in runs:
        kept = {_content(item): item for item in batch if not (deleted and item.get(deleted))}
        keys = {item[merge_key] for item in batch} if merge_key else None
        for version in versions:
            if (version.valid_to is None and version.content not in kept
                    and (keys is None or version.item[merge_key] in keys)):
                version.valid_to = at
        current = {v.content for v in versions if v.valid_to is None}
        versions.extend(Version(item, at) for content, item in kept.items() if content not in current)
    return versions


@pytest.fixture
def make_scd2_pipeline(make_pipeline, destination_capabilities):
    if "scd2" not in destination_capabilities.merge_strategies:
        pytest.skip("the destination has no scd2 merge strategy")
    return make_pipeline


def load(p: loadbay.Pipeline, batches: list[list[dict[str, Any]]], **kwargs: Any) -> list[tuple[datetime, list]]:
    """Run each batch as its own package; (package time, batch) per run, for the model."""
    runs = []
    disposition = kwargs.pop("write_disposition", SCD2)
    for batch in batches:
        info = run_ok(p, batch, table_name="t", write_disposition=disposition, **kwargs)
        runs.append((PackageStorage.created_at(info.loads_ids[-1]), batch))
    return runs


def held(p: loadbay.Pipeline, valid_from: str = "_lb_valid_from",
         valid_to: str = "_lb_valid_to") -> list[tuple[int, str, datetime, datetime | None, tuple[str, ...]]]:
    """(id, name, valid from, valid to, tags in list order) of every row of ``t``, sorted."""
    r, c = ident(p, "r"), ident(p, "c")
    tags: dict[str, list[str]] = {}
    if count_or_none(p, "t__tags") is not None:  # no row ever had tags: no child table
        for root_id, value in query(p, f"SELECT {c}.{ident(p, '_lb_root_id')}, {c}.{ident(p, 'value')} FROM "
                                       f"{ident(p, 't__tags')} {c} ORDER BY {c}.{ident(p, '_lb_list_idx')}"):
            tags.setdefault(root_id, []).append(value)
    rows = query(p, f"SELECT {r}.{ident(p, 'id')}, {r}.{ident(p, 'name')}, {r}.{ident(p, valid_from)}, "
                    f"{r}.{ident(p, valid_to)}, {r}.{ident(p, '_lb_id')} FROM {ident(p, 't')} {r}")
    return sorted(((as_int(i), name, as_utc(start), as_utc(end), tuple(tags.get(row_id, ())))
                   for i, name, start, end, row_id in rows), key=_order)


def _order(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Sort key of a version: a NULL time first."""
    return tuple((value is not None, value) if isinstance(value, datetime) or value is None else value
                 for value in row)


def expected(versions: list[Version]) -> list[tuple[int, str, datetime, datetime | None, tuple[str, ...]]]:
    return sorted(((v.item["id"], v.item["name"], v.valid_from, v.valid_to, tuple(v.item.get("tags", ())))
                   for v in versions), key=_order)


FULL_EXTRACTS = [
    [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": "b", "tags": ["y", "z"]}, {"id": 3, "name": "c"}],
    # 1 unchanged; 2 renamed; 3 gone; 4 new (twice, the same: one version)
    [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": "b2", "tags": ["y", "z"]},
     {"id": 4, "name": "d", "tags": []}, {"id": 4, "name": "d", "tags": []}],
    # the same extract again: nothing opens or closes
    [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": "b2", "tags": ["y", "z"]}, {"id": 4, "name": "d", "tags": []}],
    # only a nested list changes (1); 2 goes back to what it was first; 3 comes back as it was
    [{"id": 1, "name": "a", "tags": ["x", "w"]}, {"id": 2, "name": "b", "tags": ["y", "z"]},
     {"id": 3, "name": "c"}, {"id": 4, "name": "d", "tags": []}],
]


def test_full_extracts_open_and_close_versions_as_the_model_does(make_scd2_pipeline):
    p = make_scd2_pipeline()
    runs = load(p, FULL_EXTRACTS)
    assert held(p) == expected(scd2_model(runs))
    assert count(p, "t") == 3 + 2 + 0 + 3 and orphans(p, "t__tags") == 0
    current = query(p, f"SELECT count(*) FROM {ident(p, 't')} WHERE {ident(p, '_lb_valid_to')} IS NULL")
    assert as_int(current[0][0]) == 4  # one current version per record of the last extract


def test_a_record_missing_from_the_extract_is_retired_and_children_stay_with_their_version(make_scd2_pipeline):
    p = make_scd2_pipeline()
    runs = load(p, [[{"id": 1, "name": "a", "tags": ["x", "y"]}, {"id": 2, "name": "b", "tags": ["z"]}],
                    [{"id": 2, "name": "b", "tags": ["z"]}]])
    rows = held(p)
    assert rows == expected(scd2_model(runs))
    assert rows[0][:2] == (1, "a") and rows[0][3] == runs[1][0] and rows[0][4] == ("x", "y")


def test_merge_key_retires_only_records_of_the_keys_loaded(make_scd2_pipeline):
    """A partial (incremental) load: a record whose key the package does not hold stays current."""
    p = make_scd2_pipeline()
    batches = [
        [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 3, "name": "c"}],
        [{"id": 2, "name": "b2"}],  # 1 and 3 are not in this load: still current
        [{"id": 3, "name": "c"}, {"id": 1, "name": "a1"}],
    ]
    runs = load(p, batches, merge_key="id")
    assert held(p) == expected(scd2_model(runs, merge_key="id"))
    assert len([r for r in held(p) if r[3] is None]) == 3


def test_a_row_flagged_by_hard_delete_retires_its_record_and_opens_nothing(make_scd2_pipeline):
    p = make_scd2_pipeline()
    batches = [
        [{"id": 1, "name": "a", "gone": False}, {"id": 2, "name": "b", "gone": False}],
        [{"id": 1, "name": "a", "gone": True}],
    ]
    runs = load(p, batches, merge_key="id", columns={"gone": {"data_type": "bool", "hard_delete": True}})
    model = scd2_model(runs, merge_key="id", deleted="gone")
    assert held(p) == expected(model)
    assert [(r[0], r[3] is None) for r in held(p)] == [(1, False), (2, True)]


def test_validity_columns_take_the_names_asked_for_once(make_scd2_pipeline):
    p = make_scd2_pipeline()
    named = {**SCD2, "validity_columns": ["effective_from", "effective_to"]}
    runs = load(p, [[{"id": 1, "name": "a"}], [{"id": 1, "name": "b"}]], write_disposition=named)
    assert held(p, "effective_from", "effective_to") == expected(scd2_model(runs))
    with pytest.raises(SchemaError, match="cannot be renamed"):
        p.run([{"id": 1, "name": "c"}], table_name="t",
              write_disposition={**SCD2, "validity_columns": ["valid_from", "valid_to"]})
    run_ok(p, [{"id": 1, "name": "c"}], table_name="t")  # the table remembers its strategy and names
    assert [(r[1], r[3] is None) for r in held(p, "effective_from", "effective_to")] == [
        ("a", False), ("b", False), ("c", True)]


def test_rows_loaded_before_the_table_was_scd2_retire_at_its_first_scd2_load(make_scd2_pipeline):
    """Rows of a delete-insert table have no hash: their content is unknown, so the first scd2 load closes
    them and opens its own versions."""
    p = make_scd2_pipeline()
    run_ok(p, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], table_name="t", write_disposition="merge",
           primary_key="id")
    (at, _), = load(p, [[{"id": 1, "name": "a"}]])
    assert held(p) == [(1, "a", None, at, ()), (1, "a", at, None, ()), (2, "b", None, at, ())]


def test_a_table_with_rows_from_before_scd2_takes_new_versions_with_a_merge_key(make_scd2_pipeline):
    """Rows without a hash whose key a partial load does not hold stay current; they must not stop every
    later version from being inserted (a NULL in ``NOT IN`` makes it unknown for every row)."""
    p = make_scd2_pipeline()
    run_ok(p, [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], table_name="t")
    (first, _), (second, _) = load(p, [[{"id": 1, "name": "a2"}], [{"id": 3, "name": "c"}]], merge_key="id")
    assert held(p) == [(1, "a", None, first, ()), (1, "a2", first, None, ()), (2, "b", None, None, ()),
                       (3, "c", second, None, ())]


def test_with_a_primary_key_one_version_per_key_opens_the_last_row_loaded(make_scd2_pipeline):
    p = make_scd2_pipeline()
    (at, _), = load(p, [[{"id": 1, "name": "a"}, {"id": 1, "name": "b"}, {"id": 2, "name": "c"}]], primary_key="id")
    assert held(p) == [(1, "b", at, None, ()), (2, "c", at, None, ())]


def test_with_a_primary_key_an_earlier_row_of_the_key_keeps_no_version_open(make_scd2_pipeline):
    """The key's current version matches the package's first row of it, not its last: it retires (the
    last row opens the new one), and a last row flagged by hard_delete retires the record."""
    p = make_scd2_pipeline()
    (first, _), (second, _) = load(p, [[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
                                       [{"id": 1, "name": "a"}, {"id": 1, "name": "a2"}, {"id": 2, "name": "b"}]],
                                   primary_key="id")
    assert held(p) == [(1, "a", first, second, ()), (1, "a2", second, None, ()), (2, "b", first, None, ())]
    deleting = make_scd2_pipeline()
    gone = {"gone": {"data_type": "bool", "hard_delete": True}}
    load(deleting, [[{"id": 1, "name": "a", "gone": False}],
                    [{"id": 1, "name": "a", "gone": False}, {"id": 1, "name": "a", "gone": True}]],
         primary_key="id", columns=gone)
    assert [(r[0], r[3] is None) for r in held(deleting)] == [(1, False)]
