"""Pipelines loading one MariaDB dataset at once through the SQLAlchemy destination (threads, each
with its own connections): schema changes serialize on a named lock (GET_LOCK), so two pipelines
adding columns to the same new table both succeed, and disjoint merges both land."""

from __future__ import annotations

import loadbay
from loadbay.destinations.testing.conformance.helpers import query
from tests.integration.sqlalchemy_support import maria  # noqa: F401 - fixture
from tests.integration.test_postgres_concurrency import _at_once

THREADS = 4


def test_pipelines_creating_one_database_and_its_columns_at_once_all_succeed(maria):
    first = maria(name="p0")
    pipelines = [first] + [maria(name=f"p{i}", dataset_name=first.dataset_name) for i in range(1, THREADS)]
    errors = _at_once([lambda p=p, i=i: p.run([{"id": i, f"col_{i}": i, "kids": [i]}], table_name="t")
                       .raise_on_failed_jobs() for i, p in enumerate(pipelines)])
    assert errors == []
    assert query(first, "SELECT id FROM t ORDER BY id") == [(i,) for i in range(THREADS)]
    assert query(first, "SELECT count(*) FROM t__kids") == [(THREADS,)]


def test_merges_of_disjoint_keys_at_once_both_land(maria):
    first = maria(name="p0")
    second = maria(name="p1", dataset_name=first.dataset_name)
    hints = {"table_name": "t", "write_disposition": "merge", "primary_key": "id"}
    first.run([{"id": k, "v": "base"} for k in range(1000)], **hints)
    errors = _at_once([lambda p=p, n=n: p.run([{"id": k, "v": p.pipeline_name, "kids": [k]}
                                               for k in range(n * 500, n * 500 + 1000)], **hints)
                       .raise_on_failed_jobs() for n, p in ((0, first), (2, second))])
    assert errors == []
    assert query(first, "SELECT count(*), count(DISTINCT id) FROM t") == [(2000, 2000)]
    assert query(first, "SELECT v, count(*) FROM t GROUP BY v ORDER BY v") == [("p0", 1000), ("p1", 1000)]
    assert query(first, "SELECT count(*) FROM t__kids") == [(2000,)]
