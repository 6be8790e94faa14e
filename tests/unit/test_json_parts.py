"""A JSON Lines file typed in parallel parts reads exactly as when typed in one whole-file pass.

``json_parts`` cuts a large file at line ends and types each part on its own DuckDB connection; its answer
is used only when every part agrees. These tests lower the size at which a file is cut, so small real
files take that path, and check three things: the cuts fall on line starts and cover the file; a uniform
file is typed in parts (the log says so) to the same columns and rows as the whole-file pass; and a file
whose later part differs in any way the whole-file pass would notice is typed in one pass, its rows
exactly what ``json.loads`` gives.
"""

from __future__ import annotations

import gzip
import json
import logging
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest

from loadbay.common.exceptions import SourceError
from loadbay.sources import json_parts, json_reader
from tests.unit.test_sources import without_nulls

PARALLEL = "parallel parts"
SAMPLES = ["github_events.json", "github_issues.json", "ethereum_blocks.json", "weird_rows.json"]


@pytest.fixture
def cut_small(monkeypatch):
    """Files of a few bytes are cut into parts, two of them (``cores`` says 2 whatever the machine has)."""
    monkeypatch.setattr(json_parts, "PART_MIN_BYTES", 1)
    monkeypatch.setattr(json_parts, "cores", lambda: 2)


def jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


def read(path: Path) -> list[Any]:
    return [row for b in json_reader.json_batches(path, 1000)
            for row in (b if isinstance(b, list) else b.to_pylist())]


def whole_file_columns(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect()
    try:
        relation = con.sql("SELECT * FROM read_json($p, format := 'newline_delimited', records := 'true', "
                           "map_inference_threshold := -1, sample_size := -1)", params={"p": str(path)})
        return [(name, str(t)) for name, t in zip(relation.columns, relation.types)]
    finally:
        con.close()


def parted_columns(path: Path, parts: int) -> list[tuple[str, str]] | None:
    query = ("SELECT * FROM read_json($p, format := 'newline_delimited', records := 'true', "
             "map_inference_threshold := -1, sample_size := -1)")
    found = json_parts.columns_in_parts(path, query, {}, parts=parts)
    return None if found is None else [(name, str(t)) for name, t in zip(*found)]


def test_cuts_fall_on_line_starts_and_cover_the_file(tmp_path):
    rng = random.Random(7)
    lines = [b"x" * rng.randint(0, 300) + b"\n" for _ in range(500)] + [b"x" * 40_000 + b"\n", b"last"]
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"".join(lines))
    starts = {0}
    for line in lines[:-1]:
        starts.add(max(starts) + len(line))
    for parts in (2, 3, 7, 50):
        bounds = json_parts.part_bounds(path, parts)
        assert bounds[0][0] == 0 and bounds[-1][1] == path.stat().st_size
        assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])), "parts must be contiguous"
        assert all(start in starts for start, _ in bounds), "every part starts at a line start"
        assert 2 <= len(bounds) <= parts
    # a file of two equal halves is cut between them, not one line later
    half = tmp_path / "halves.jsonl"
    half.write_bytes(b'{"a": 1}\n' * 10 * 2)
    assert json_parts.part_bounds(half, 2) == [(0, 90), (90, 180)]


def test_a_cut_in_a_long_line_reads_on_chunk_by_chunk(tmp_path):
    """The next line start is found a chunk at a time: across many chunks, at a chunk's edge, or at the end."""
    path = tmp_path / "long.jsonl"
    path.write_bytes(b"a" * 1000 + b"\n" + b"b" * 10 + b"\n" + b"c" * 50)
    with path.open("rb") as f:
        size = path.stat().st_size
        assert json_parts._line_start(f, 3, size, chunk=16) == 1001  # 62 chunks on, past the long line
        assert json_parts._line_start(f, 1001, size, chunk=16) == 1001  # a line start already
        assert json_parts._line_start(f, 1000, size, chunk=1) == 1001  # the newline is the whole chunk
        assert json_parts._line_start(f, 1005, size, chunk=16) == 1012
        assert json_parts._line_start(f, 1013, size, chunk=16) == size  # the last line has no newline


@pytest.mark.parametrize("sample", SAMPLES)
def test_a_uniform_file_is_typed_in_parts_to_what_one_pass_finds(data_dir, tmp_path, cut_small, caplog, sample):
    """Two copies of a sample, cut between them: both parts see the same rows, so they agree; columns,
    Arrow types and rows are those of the whole-file pass."""
    items = json.loads((data_dir / sample).read_text())
    items = items if isinstance(items, list) else [items]
    path = jsonl(tmp_path / "twice.jsonl", items + items)
    assert parted_columns(path, 2) == whole_file_columns(path)

    with caplog.at_level(logging.DEBUG, logger=json_parts.__name__):
        parted = list(json_reader.json_batches(path, 1000))
    assert PARALLEL in caplog.text
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(json_parts, "PART_MIN_BYTES", 1 << 40)
        caplog.clear()
        whole = list(json_reader.json_batches(path, 1000))
        assert PARALLEL not in caplog.text
    assert [type(b).__name__ for b in parted] == [type(b).__name__ for b in whole]
    for a, b in zip(parted, whole):
        assert a == b if isinstance(a, list) else a.equals(b)
    assert [without_nulls(r) for r in read(path)] == [without_nulls(i) for i in items + items]


LATER_PARTS = {  # the last row of the second part → whether the parts' columns can be combined
    "a new key": ({"n": 3, "new": True, "s": {"x": 1}}, True),
    "a key null until then": ({"n": 3, "s": {"x": 1}, "later": "v"}, True),
    "another key order": ({"s": {"x": 2}, "n": 4}, True),
    "a fraction after integers": ({"n": 1.5}, False),
    "a string after integers": ({"n": "7"}, False),
    "a new nested field": ({"n": 3, "s": {"x": 1, "y": "new"}}, False),
    "a list where an object was": ({"n": 3, "s": [1]}, False),
    "an integer past 64 bits": ({"n": 2 ** 70}, False),
}


@pytest.mark.parametrize("later", list(LATER_PARTS), ids=list(LATER_PARTS))
def test_parts_combine_only_as_the_whole_file_pass_does(tmp_path, cut_small, caplog, later):
    last, combined = LATER_PARTS[later]
    first = [{"n": i, "s": {"x": i}, "later": None} for i in range(2000)]
    second = [{"n": i, "s": {"x": i}} for i in range(1999)] + [last]
    path = jsonl(tmp_path / "f.jsonl", first + second)
    parted = parted_columns(path, 2)
    if combined:
        assert parted == whole_file_columns(path)
    else:
        assert parted is None, "the whole-file pass merges these its own way: the parts must not be used"
    with caplog.at_level(logging.DEBUG, logger=json_parts.__name__):
        got = read(path)
    assert (PARALLEL in caplog.text) == combined
    assert [without_nulls(r) for r in got] == [without_nulls(i) for i in first + second]


def test_combine_keeps_first_places_and_fills_null_columns():
    con = duckdb.connect()
    t = {name: con.sql(f"SELECT NULL::{name}").types[0] for name in ("BIGINT", "VARCHAR", "DOUBLE")}
    null = con.sql("SELECT NULL").types[0]
    assert null.id == "null"
    got = json_parts.combine([[("a", t["BIGINT"]), ("b", null)], [("c", t["VARCHAR"]), ("a", t["BIGINT"]), ("b", t["DOUBLE"])],
                              [("b", null), ("d", null)]])
    assert got is not None and [(k, str(v)) for k, v in got.items()] == [
        ("a", "BIGINT"), ("b", "DOUBLE"), ("c", "VARCHAR"), ("d", '"NULL"')]
    assert json_parts.combine([[("a", t["BIGINT"])], [("a", t["DOUBLE"])]]) is None
    assert json_parts.combine([[("a", t["BIGINT"])], [("A", t["BIGINT"])]]) is None  # DuckDB would rename one


@pytest.mark.parametrize("items", [
    [{"a": 1}, {"a": 2}, {"A": 3}, {"A": 4}],            # each part sees one of the two keys
    [{"a": 1.5}, {"A": 2.5}] * 2,                         # DuckDB renames A to A_1, then finds no key A_1
    [{"a": 1, "s": {"x": 1, "X": 2}}, {"s": {"x": 3}}] * 2,  # a STRUCT cannot hold both: DuckDB refuses
], ids=["top level, apart", "top level, together", "nested"])
def test_keys_differing_only_by_case_load_every_value_as_python_rows(tmp_path, cut_small, items):
    """DuckDB takes keys that differ only by case for one name; the dict path keeps them apart, so such a file
    goes as Python rows, with every value (the whole-file bind once lost A's values, read as NULL)."""
    path = jsonl(tmp_path / "cases.jsonl", items)
    batches = list(json_reader.json_batches(path, 1000))
    assert batches and all(isinstance(b, list) for b in batches)
    assert [r for b in batches for r in b] == items


def test_a_malformed_line_in_a_later_part_is_named_by_its_line(tmp_path, cut_small):
    path = tmp_path / "bad.jsonl"
    good = "".join(json.dumps({"n": i}) + "\n" for i in range(3000))
    path.write_text(good + '{"n": 1,,}\n' + good)
    with pytest.raises(SourceError, match=r"bad\.jsonl, line 3001: malformed JSON"):
        read(path)


def test_small_files_and_one_core_type_in_one_pass(tmp_path, caplog, monkeypatch):
    path = jsonl(tmp_path / "small.jsonl", [{"n": i} for i in range(100)])
    with caplog.at_level(logging.DEBUG, logger=json_parts.__name__):
        assert json_parts.columns_in_parts(path, "SELECT 1", {}) is None  # smaller than two parts' minimum
        monkeypatch.setattr(json_parts, "PART_MIN_BYTES", 1)
        monkeypatch.setattr(json_parts, "cores", lambda: 1)
        assert json_parts.columns_in_parts(path, "SELECT 1", {}) is None  # one core: nothing to win
    assert PARALLEL not in caplog.text


def test_a_compressed_file_is_typed_in_one_pass(tmp_path, cut_small, caplog):
    """A byte range of a gzip stream is no gzip stream: such files are never cut."""
    items = [{"n": i, "s": {"x": str(i)}} for i in range(5000)]
    path = tmp_path / "f.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(i) + "\n" for i in items).encode()))
    with caplog.at_level(logging.DEBUG, logger=json_parts.__name__):
        got = [r for b in json_reader.json_batches(path, 1000, compression="gzip") for r in b.to_pylist()]
    assert got == items
    assert caplog.text == "", "no part may even be tried (it would fail and log so)"
