"""Arrow IPC load files on DuckDB: what Arrow data is written as there (``columnar_file_format="arrow"``),
scanned memory-mapped by DuckDB. The values themselves are covered by the conformance suite (every format of
every setup, dict rows included); here: which files a run writes, a million-value file loaded exactly, a
damaged file failing by name and loading once fixed, a refused value failing the whole file.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest

import loadbay
from loadbay.destinations.testing.conformance.helpers import (as_int, as_utc, normalize_only, query, read_columnar,
                                                              run_ok, select, write_columnar)


@pytest.fixture
def duck(tmp_path) -> loadbay.Pipeline:
    return loadbay.pipeline("arrow_files", destination=loadbay.destination("duckdb", credentials=str(tmp_path / "d.duckdb")),
                            dataset_name="raw", pipelines_dir=str(tmp_path / "pipelines"))


def formats_of(info: loadbay.LoadInfo) -> set[str]:
    return {j.file_format for pkg in info.load_packages for j in pkg.jobs}


def orders(n: int) -> pa.Table:
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return pa.table({"id": pa.array(range(n), pa.int64()),
                     "name": pa.array([None if i % 5 == 0 else f"o{i}" for i in range(n)], pa.string()),
                     "at": pa.array([start + timedelta(seconds=i) for i in range(n)], pa.timestamp("us", "UTC")),
                     "lines": pa.array([[i, i + 1] if i % 2 else [] for i in range(n)], pa.list_(pa.int64()))})


def test_arrow_data_goes_as_arrow_ipc_files_unless_the_run_names_a_format(duck):
    info = run_ok(duck, orders(1000), table_name="orders")
    assert formats_of(info) == {"arrow"}
    assert info.row_counts == {"orders": 1000, "orders__lines": 1000}
    info = run_ok(duck, orders(10), table_name="named", loader_file_format="parquet")
    assert formats_of(info) == {"parquet"}
    info = run_ok(duck, orders(10), table_name="rows", loader_file_format="jsonl")
    assert formats_of(info) == {"jsonl"}
    for table in ("orders", "named", "rows"):
        got = query(duck, f"SELECT count(*), sum(id), count(name) FROM {table}")
        n = 1000 if table == "orders" else 10
        assert [tuple(as_int(v) for v in row) for row in got] == [(n, n * (n - 1) // 2, n - (n + 4) // 5)]
    [(linked,)] = query(duck, "SELECT count(*) FROM orders__lines c JOIN orders o ON c._lb_parent_id = o._lb_id")
    assert as_int(linked) == 1000


def test_dict_rows_load_as_arrow_files_when_asked(duck):
    rows = [{"id": i, "doc": {"k": [i, None]}, "blob": bytes([i % 256]), "text": "\x00é😀" if i == 3 else str(i)}
            for i in range(2000)]
    info = run_ok(duck, rows, table_name="t", loader_file_format="arrow")
    assert formats_of(info) == {"arrow"} and info.row_counts == {"t": 2000, "t__doc__k": 4000}
    assert [(as_int(i), bytes(b), t) for i, b, t in select(duck, "t", "id", "blob", "text", order_by=["id"])][:4] == [
        (0, b"\x00", "0"), (1, b"\x01", "1"), (2, b"\x02", "2"), (3, b"\x03", "é😀")]  # NUL removed, as everywhere


def test_a_million_values_arrive_exactly(duck):
    n = 250_000
    info = run_ok(duck, orders(n), table_name="big")
    assert formats_of(info) == {"arrow"}
    [(count, ids, names, first, last)] = query(duck, 'SELECT count(*), sum(id), count(name), min("at"), max("at") FROM big')
    assert (as_int(count), as_int(ids), as_int(names)) == (n, n * (n - 1) // 2, n - n // 5)
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert (as_utc(first), as_utc(last)) == (start, start + timedelta(seconds=n - 1))


def only_arrow_job(package: Any) -> Any:
    [job] = [j for j in package.jobs("new_jobs")]
    assert job.file_format == "arrow"
    return job


def test_a_damaged_file_fails_naming_it_and_loads_once_fixed(duck):
    package = normalize_only(duck, orders(100).drop_columns(["lines"]), "t")
    job = only_arrow_job(package)
    good = read_columnar(job.path, "arrow")
    job.path.write_bytes(b"ARROW1 but not an Arrow IPC file")
    info = duck.run()
    [pkg] = info.load_packages
    [failed] = pkg.failed_jobs
    assert failed.file_format == "arrow" and job.path.name in str(failed.error) and "table 't'" in str(failed.error)
    assert duck.pending_packages() == [package.load_id]
    [pending] = duck.storage.pending()
    [on_disk] = pending.jobs("failed_jobs")
    write_columnar(good, on_disk.path, "arrow")
    assert duck.retry_failed_jobs() == 1
    run_ok(duck)
    assert [as_int(i) for (i,) in select(duck, "t", "id", order_by=["id"])] == list(range(100))


def test_a_value_the_table_refuses_fails_the_file_and_leaves_none_of_its_rows(duck):
    run_ok(duck, [{"id": 1, "n": 1}], table_name="t", columns={"n": {"data_type": "bigint"}})
    package = normalize_only(duck, pa.table({"id": [2, 3], "n": [2, 3]}), "t")
    job = only_arrow_job(package)
    table = read_columnar(job.path, "arrow")
    bad = table.set_column(table.schema.get_field_index("n"), "n", pa.array(["2", "not a number"], pa.string()))
    write_columnar(bad, job.path, "arrow")
    info = duck.run()
    [pkg] = info.load_packages
    [failed] = pkg.failed_jobs
    assert "not a number" in str(failed.error) and job.path.name in str(failed.error)
    assert [as_int(i) for (i,) in select(duck, "t", "id")] == [1]
