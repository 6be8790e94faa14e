"""Parquet load files from Arrow data: rotation, per-destination file sizes, column types, NUL repair,
and rows instead of parquet where a destination (or the run) asks for another format."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loadbay.common.normalizer import RelationalNormalizer
from loadbay.common.normalizer_arrow import normalize_arrow
from loadbay.common.storage.package import LoadPackage
from loadbay.common.storage.package_writer import PackageWriter
from tests.unit.test_normalizer_arrow import DUCKDB, SQLITE, normalizer


def package_writer(tmp_path: Path, norm: RelationalNormalizer, caps: Any = DUCKDB, file_format: str = "jsonl",
                   file_max_items: int | None = 100_000, rotated: list[Any] | None = None) -> PackageWriter:
    package = LoadPackage(tmp_path / "pkg")
    (package.root / "new_jobs").mkdir(parents=True)
    return PackageWriter(package, norm.schema, file_format, caps, file_max_items,
                         on_file_closed=rotated.append if rotated is not None else None)


def write(writer: PackageWriter, norm: RelationalNormalizer, data: pa.Table) -> None:
    for name, table in normalize_arrow(norm, "t", data).items():
        writer.write_arrow(name, table)


def test_parquet_files_rotate_at_file_max_items_and_when_the_table_gains_columns(tmp_path):
    norm, rotated = normalizer(), []
    writer = package_writer(tmp_path, norm, file_max_items=5, rotated=rotated)  # named: holds for Arrow too
    write(writer, norm, pa.table({"id": list(range(7)), "xs": [[1, 2]] * 7}))
    write(writer, norm, pa.table({"id": [7, 8], "new": ["a", None]}))
    writer.write("t", [{"_lb_load_id": "load1", "_lb_id": "x", "id": 9}])  # dict rows beside: a jsonl file
    writer.close()
    files = sorted(p.name for p in (tmp_path / "pkg" / "new_jobs").iterdir())
    assert files == ["t.00000.0.parquet", "t.00001.0.parquet", "t.00002.0.parquet", "t.00003.0.jsonl",
                     "t__xs.00000.0.parquet", "t__xs.00001.0.parquet", "t__xs.00002.0.parquet"]
    assert [pq.read_table(tmp_path / "pkg" / "new_jobs" / f).num_rows for f in files if f.endswith("parquet")] == \
        [5, 2, 2, 5, 5, 4]
    third = pq.read_table(tmp_path / "pkg" / "new_jobs" / "t.00002.0.parquet")
    assert third.column("new").to_pylist() == ["a", None] and third.schema.field("_lb_id").type == pa.string()
    assert writer.rows_per_table == {"t": 10, "t__xs": 14}
    assert writer.rows_per_file["t.00000"] == 5 and writer.rows_per_file["t.00003"] == 1
    told = [job.path.name for job in rotated]  # as they closed: rotated, then by close()
    assert told[:4] == ["t.00000.0.parquet", "t__xs.00000.0.parquet", "t__xs.00001.0.parquet", "t.00001.0.parquet"]
    assert sorted(told[4:]) == ["t.00002.0.parquet", "t.00003.0.jsonl", "t__xs.00002.0.parquet"]


def test_a_destination_may_take_bigger_files_of_arrow_data_than_of_rows(tmp_path):
    """DuckDB's columnar_file_max_items (one transaction per 1M Arrow rows) unless the run names a size."""
    norm = normalizer()
    writer = package_writer(tmp_path, norm, DUCKDB.with_(columnar_file_max_items=6), file_max_items=None)
    write(writer, norm, pa.table({"id": list(range(7))}))
    writer.write("t", [{"_lb_load_id": "load1", "_lb_id": str(i), "id": i} for i in range(3)])
    writer.close()
    assert writer.rows_per_file == {"t.00000": 6, "t.00001": 1, "t.00002": 3}
    assert writer.file_max_items == 100_000


def test_parquet_columns_are_typed_for_the_destination(tmp_path):
    norm = normalizer(columns={"j": {"data_type": "json"}})
    writer = package_writer(tmp_path, norm)
    write(writer, norm, pa.table({"j": pa.array([{"a": [1]}]),
                                  "ts": pa.array([datetime(2024, 1, 1)], pa.timestamp("ns")),
                                  "d": pa.array([Decimal("1.5")], pa.decimal128(4, 1)),
                                  "fine": pa.array([Decimal("1.5")], pa.decimal128(12, 11))}))
    writer.close()
    table = pq.read_table(next((tmp_path / "pkg" / "new_jobs").iterdir()))
    assert table.schema.field("j").type == pa.string() and json.loads(table.column("j")[0].as_py()) == {"a": [1]}
    assert table.schema.field("ts").type == pa.timestamp("us", "UTC")
    assert table.schema.field("d").type == pa.decimal128(38, 9)  # the destination's default decimal
    assert table.schema.field("fine").type == pa.decimal128(12, 11)  # too fine for it: its own


def test_nul_characters_are_removed_with_one_warning_per_table(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    norm = normalizer(columns={"j": {"data_type": "json"}})
    writer = package_writer(tmp_path, norm)
    write(writer, norm, pa.table({"s": ["a\x00b", "ok"], "j": pa.array([{"k": "x\x00y"}, {"k": "\\u0000"}])}))
    write(writer, norm, pa.table({"s": ["\x00late"], "j": pa.array([{"k\x00": "v"}])}))
    writer.close()
    table = pq.read_table(next((tmp_path / "pkg" / "new_jobs").iterdir()))
    assert table.column("s").to_pylist() == ["ab", "ok", "late"]
    assert [json.loads(v) for v in table.column("j").to_pylist()] == [{"k": "xy"}, {"k": "\\u0000"}, {"k": "v"}]
    warned = [r.getMessage() for r in caplog.records if r.name == "loadbay.common.storage.text_repair"]
    assert len(warned) == 1 and "'s'" in warned[0] and "'j'" in warned[0], warned


def test_a_destination_without_parquet_gets_rows_of_its_format(tmp_path):
    norm = normalizer(SQLITE, columns={"j": {"data_type": "json"}})
    writer = package_writer(tmp_path, norm, caps=SQLITE.with_(supported_loader_file_formats=("jsonl",),
                                                                preferred_loader_file_format="jsonl"))
    write(writer, norm, pa.table({"id": [1, 2], "j": pa.array([{"a": 1}, None]), "xs": [["p"], []]}))
    writer.close()
    files = sorted((tmp_path / "pkg" / "new_jobs").iterdir())
    assert [f.name for f in files] == ["t.00000.0.jsonl", "t__xs.00000.0.jsonl"]
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert [(r["id"], r.get("j")) for r in rows] == [(1, {"a": 1}), (2, None)]


def test_a_negative_scale_decimal_loads_as_the_same_integers_at_scale_zero(tmp_path):
    data = pa.table({"id": [1, 2], "x": pa.array([Decimal("12300"), Decimal("-99900")], pa.decimal128(5, -2))})
    norm = normalizer()
    writer = package_writer(tmp_path, norm, file_format="parquet")
    write(writer, norm, data)
    writer.close()
    written = pq.read_table(tmp_path / "pkg" / "new_jobs" / "t.00000.0.parquet")
    assert written.schema.field("x").type.scale >= 0
    assert written.column("x").to_pylist() == [Decimal("12300"), Decimal("-99900")]
