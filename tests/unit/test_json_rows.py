"""``json_rows``: a JSON file's record batch gives back its rows as ``json.loads`` does, by position, also
after filters, for JSON lines (blank lines, gzip), a JSON array document and JSON lines named ``.json``."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loadbay.sources import json_reader, json_rows

ROWS = [{"id": i, "doc": {"k": i} if i % 2 else {"other": [i]}, "big": 2**70 + i} for i in range(10)]


def write(path: Path, how: str) -> Path:
    if how == "array":
        path.write_text(json.dumps(ROWS))
        return path
    text = "".join(json.dumps(r) + ("\n\n  \n" if r["id"] == 3 else "\n") for r in ROWS)  # blank lines too
    if how == "gzip":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def source(path: Path, fmt: str, compression: str = "none") -> json_rows.RowSource:
    return json_rows.RowSource(path, fmt=fmt, compression=compression, opener=json_reader._open,
                               loads=json_reader.loads)


@pytest.mark.parametrize("how,name,fmt,compression", [("lines", "r.jsonl", "newline_delimited", "none"),
                                                      ("gzip", "r.jsonl.gz", "newline_delimited", "gzip"),
                                                      ("array", "r.json", "auto", "none"),
                                                      ("lines", "r.json", "auto", "none")])
def test_rows_by_position_forward_and_back(tmp_path, how, name, fmt, compression):
    rows = source(write(tmp_path / name, how), fmt, compression)
    try:
        assert rows.rows(np.array([0, 1])) == ROWS[:2]
        assert rows.rows(np.array([4, 9])) == [ROWS[4], ROWS[9]]  # past the blank lines, forward
        assert rows.rows(np.array([2])) == [ROWS[2]]  # back: read again from the start
        with pytest.raises(ValueError, match="row 10"):
            rows.rows(np.array([10]))
    finally:
        rows.close()


def test_a_tagged_batch_gives_its_rows_after_filters_and_none_once_its_reader_closed(tmp_path):
    rows = source(write(tmp_path / "r.jsonl", "lines"), "newline_delimited")
    batch = rows.tag(pa.RecordBatch.from_pylist([{"id": i} for i in range(4, 10)]), first_row=4)
    assert json_rows.exact_rows(batch)(np.array([0, 5])) == [ROWS[4], ROWS[9]]
    once = json_rows.filtered(batch, pa.array([False, True, True, False, True, True]))  # rows 5, 6, 8, 9
    twice = json_rows.filtered(once, pa.array([True, False, None, True]))  # rows 5, 9
    assert twice.column("id").to_pylist() == [5, 9]
    assert json_rows.exact_rows(twice)(np.array([0, 1])) == [ROWS[5], ROWS[9]]
    assert json_rows.exact_rows(pa.RecordBatch.from_pylist([{"id": 1}])) is None  # no file behind it
    rows.close()
    assert json_rows.exact_rows(batch) is None


def test_the_reader_tags_its_batches_with_their_first_row(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "big"} for r in ROWS]  # integers past 64 bits: Python rows
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    seen = []
    for batch in json_reader.json_batches(path, 3):
        exact = json_rows.exact_rows(batch)
        assert exact is not None
        ids = batch.column("id").to_pylist()
        assert exact(np.arange(batch.num_rows)) == [r for r in rows if r["id"] in ids]
        seen.extend(ids)
    assert seen == list(range(10))


@pytest.mark.parametrize("how,name,compression", [("lines", "r.jsonl", "none"), ("gzip", "r.jsonl.gz", "gzip")])
def test_an_ask_back_within_the_batch_reads_on_from_the_batch_not_the_file(tmp_path, how, name, compression):
    """The null-line check asks for a row deep in a batch, the json values then for all of it: the second ask
    seeks back to the batch's first line (uncompressed files), or takes the batch's lines read so far from
    memory (a compressed file, which cannot seek), instead of reading the file from its start."""
    opened = []

    def opener(path, compression):
        opened.append(path)
        return json_reader._open(path, compression)

    rows = json_rows.RowSource(write(tmp_path / name, how), fmt="newline_delimited", compression=compression,
                               opener=opener, loads=json_reader.loads)
    try:
        rows.tag(pa.RecordBatch.from_pylist([{"id": 0}]), first_row=4)
        assert rows.rows(np.array([8])) == [ROWS[8]]
        assert rows.rows(np.array([4, 5, 6])) == ROWS[4:7]  # past the blank lines after row 3, from the batch
        assert rows.rows(np.array([7, 9])) == [ROWS[7], ROWS[9]]  # partly read already, partly ahead
        assert rows.rows(np.array([4, 9])) == [ROWS[4], ROWS[9]]
        assert len(opened) == 1
        assert rows.rows(np.array([1])) == [ROWS[1]]  # before the batch: the file from its start
        assert len(opened) == 2
    finally:
        rows.close()
