"""The rebuild SQL of engines that cannot delete rows (``destinations/rebuild_jobs.py``), without a database:
each strategy's queries render in Spark SQL and parse back, keep the key semantics of a DELETE (anti joins,
where a NULL key never matches), and children follow their roots. They run for real in the conformance
suite on Spark and in tests/integration/test_spark.py."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from loadbay.common.schema.types import Column, Table
from loadbay.destinations.rebuild_jobs import new_contents, swap_names


def _table(name: str, *columns: Column, **kwargs: object) -> Table:
    return Table(name, {c.name: c for c in columns}, **kwargs)  # type: ignore[arg-type]


ROOT = _table("t", Column("_lb_id", "text"), Column("id", "bigint", primary_key=True), Column("m", "text", merge_key=True),
              Column("gone", "bool", hard_delete=True), write_disposition="merge")
CHILD = _table("t__items", Column("_lb_id", "text"), Column("_lb_root_id", "text"), Column("x", "bigint"), parent="t")


def _target(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(name, quoted=True), db=exp.to_identifier("d", quoted=True))


def _staging(name: str) -> exp.Table:
    return exp.Table(this=exp.to_identifier(f"{name}__L", quoted=True), db=exp.to_identifier("d_staging", quoted=True))


@pytest.mark.parametrize("disposition, strategy", [("merge", "delete-insert"), ("merge", "upsert"),
                                                   ("merge", "insert-only"), ("replace", "insert-from-staging"),
                                                   ("append", "insert-from-staging")])
def test_every_rebuild_renders_in_spark_and_parses_back(disposition: str, strategy: str) -> None:
    contents = new_contents(ROOT, [CHILD], _target, _staging, disposition, strategy)
    assert list(contents) == ["t", "t__items"]
    for query in contents.values():
        text = query.sql("spark")
        assert sqlglot.parse_one(text, read="spark").sql("spark") == text


def test_delete_insert_keeps_target_rows_by_anti_joins_on_each_key_and_drops_hard_deletes() -> None:
    root = new_contents(ROOT, [CHILD], _target, _staging, "merge", "delete-insert")["t"].sql("spark")
    assert root.count("LEFT ANTI JOIN") == 2  # the primary key and the merge key, each on its own
    assert "ROW_NUMBER() OVER (PARTITION BY `id`" in root and "`gone` IS NULL OR `gone` = FALSE" in root
    child = new_contents(ROOT, [CHILD], _target, _staging, "merge", "delete-insert")["t__items"].sql("spark")
    assert child.count("LEFT SEMI JOIN") == 2 and "`_lb_t`.`_lb_root_id` IN (SELECT `_lb_id`" in child


def test_upsert_matches_on_the_primary_key_only() -> None:
    root = new_contents(ROOT, [], _target, _staging, "merge", "upsert")["t"].sql("spark")
    assert root.count("LEFT ANTI JOIN") == 1 and "SELECT DISTINCT `id` FROM `d_staging`" in root


def test_replace_reads_staging_only_and_append_both() -> None:
    assert "`d`.`t`" not in new_contents(ROOT, [], _target, _staging, "replace", "insert-from-staging")["t"].sql("spark")
    assert " UNION ALL " in new_contents(ROOT, [], _target, _staging, "append", "insert-from-staging")["t"].sql("spark")


def test_swap_names_are_the_packages_own_and_fit() -> None:
    new, old = swap_names("t" * 200, "1795767124958634_7b7598", 128)
    assert new != old and len(new) <= 128 and len(old) <= 128


def test_a_spark_load_job_reads_the_staged_copy_when_there_is_one(tmp_path) -> None:
    """``[destination.spark.staging]``: the INSERT reads the stage's URL (the cluster's shared storage), else the
    package's own file; the path is quoted by sqlglot either way."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from loadbay.common.storage.package import JobFile
    from loadbay.destinations.spark.jobs import ParquetInsertJob

    path = tmp_path / "t.00000.0.parquet"
    pq.write_table(pa.table({"id": [1], "_lb_id": ["a"]}), path)
    table = _table("t", Column("id", "bigint"), Column("_lb_id", "text"))
    local = ParquetInsertJob(JobFile(path), table, _target("t")).insert().sql(dialect="spark")
    staged = ParquetInsertJob(JobFile(path), table, _target("t"),
                              staged_url="s3a://bucket/stage/ds/1/t.00000.parquet").insert().sql(dialect="spark")
    assert f"parquet.`{path.resolve()}`" in local
    assert "parquet.`s3a://bucket/stage/ds/1/t.00000.parquet`" in staged and str(path) not in staged
