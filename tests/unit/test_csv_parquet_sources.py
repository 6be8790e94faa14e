"""CSV and Parquet files without a database: types, NULLs and quoting, a column widened by a value of a
later block, and every malformed or damaged file (an unclosed quote, truncated gzip/zstd, damaged Parquet
pages, a header that is not UTF-8) refused with a ``SourceError`` naming the file and, where there is one,
the line."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import loadbay
from loadbay.common.exceptions import SourceError
from loadbay.sources import csv_reader
from tests.unit.test_sources import batches, rows

UTC = dt.timezone.utc


def test_csv_types_nulls_and_quoting(tmp_path):
    (tmp_path / "t.csv").write_text('id,name,price,ok,when\n1,"a, ""b""",1.5,true,2024-01-01T00:00:00Z\n'
                                    '2,,,false,\n3,"",2,,2024-01-02T03:04:05Z\n4,"two\nlines",3.5,true,\n')
    got = rows(tmp_path / "t.csv", 3)
    assert got[0] == {"id": 1, "name": 'a, "b"', "price": 1.5, "ok": True, "when": dt.datetime(2024, 1, 1, tzinfo=UTC)}
    assert got[1] == {"id": 2, "name": None, "price": None, "ok": False, "when": None}  # empty: NULL
    assert got[2]["name"] == "" and got[3]["name"] == "two\nlines"  # quoted empty: the empty string


def test_csv_integers_past_64_bits_keep_every_digit(tmp_path, monkeypatch):
    """Arrow types such a column float64 (first block) or widens an int64 column to it (later block):
    either would round; the column is read as text instead, every row once."""
    (tmp_path / "first.csv").write_text("id,a,f\n1,12345678901234567890123,1.5\n2,7,2.5\n")
    assert [(r["a"], r["f"]) for r in rows(tmp_path / "first.csv", 10)] == \
        [("12345678901234567890123", 1.5), ("7", 2.5)]
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 64)  # the big integer comes in a later block
    lines = [f"{i},{i}" for i in range(40)] + ["40,123456789012345678901234567", "41,5"]
    (tmp_path / "later.csv").write_text("id,a\n" + "\n".join(lines) + "\n")
    got = rows(tmp_path / "later.csv", 7)
    assert [r["id"] for r in got] == list(range(42))
    assert [str(r["a"]) for r in got] == [str(i) for i in range(40)] + ["123456789012345678901234567", "5"]


def test_csv_values_that_do_not_fit_a_later_block_widen_the_column(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 64)
    lines = [f"{i},{i},,x{i}" for i in range(80)]
    lines[40] = "40,4.5,later,x40"  # int64 → float64; an all-empty column typed afresh
    lines[70] = "70,oops,7,x70"  # float64 → text
    (tmp_path / "t.csv").write_text("id,n,empty,s\n" + "\n".join(lines) + "\n")
    got = rows(tmp_path / "t.csv", 1000)
    assert [r["id"] for r in got] == list(range(80)) and [r["s"] for r in got] == [f"x{i}" for i in range(80)]
    assert got[0]["n"] == 0 and got[40]["n"] == 4.5 and got[41]["n"] == 41 and got[70]["n"] == "oops"
    assert got[40]["empty"] == "later" and str(got[70]["empty"]) == "7" and got[0]["empty"] is None


def test_malformed_csv_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.csv").write_text('a,b\n1,"x\ny"\n2,3\n4\n5,6\n')
    with pytest.raises(SourceError, match=r"bad\.csv, line 5: malformed CSV: 1 field\(s\) where the header has 2"):
        batches(tmp_path / "bad.csv")
    (tmp_path / "latin.csv").write_bytes(b"a,b\n1,ok\n2,caf\xe9\n")
    with pytest.raises(SourceError, match=r"latin\.csv, line 3: column 'b' is not UTF-8"):
        batches(tmp_path / "latin.csv")


def test_an_unclosed_quote_in_csv_is_refused_not_read_to_the_end_of_the_file(tmp_path):
    """Arrow reads a quoted value that never closes to the end of the file as one value: the rows after it
    would be lost into it without an error."""
    (tmp_path / "open.csv").write_text('id,note\n1,ok\n2,"broken\n3,fine\n4,fine\n')
    with pytest.raises(SourceError, match=r"open\.csv, line 3: malformed CSV: a quoted value opened on this line "
                                          r"never closes"):
        batches(tmp_path / "open.csv")
    (tmp_path / "spans.csv").write_text('id,note\n1,ok\n2,"two\nlines"\n')  # a closed value over lines: fine
    assert rows(tmp_path / "spans.csv") == [{"id": 1, "note": "ok"}, {"id": 2, "note": "two\nlines"}]


@pytest.mark.parametrize("name", ["t.csv.gz", "t.csv.zst", "t.jsonl.zst", "t.parquet", "deep.jsonl", "latin.csv"])
def test_a_damaged_file_is_a_source_error_naming_it(tmp_path, name):
    """Truncated compressed files, damaged Parquet pages, a line nested past Python's recursion limit and a
    header that is not UTF-8 each end in a SourceError naming the file, never a bare OSError or RecursionError."""
    zstd = pytest.importorskip("zstandard")
    text = b"id,s\n" + b"".join(f"{i},{'x' * 40}\n".encode() for i in range(2000))
    lines = b"".join(json.dumps({"id": i, "s": "x" * 40}).encode() + b"\n" for i in range(2000))
    path = tmp_path / name
    if name == "t.parquet":
        pq.write_table(pa.table({"id": list(range(50_000)), "s": [f"v{i}" for i in range(50_000)]}), path,
                       compression="snappy")
        data = bytearray(path.read_bytes())
        for at in range(200, len(data) // 2, 97):  # the pages; the footer at the end stays readable
            data[at] ^= 0xFF
        path.write_bytes(bytes(data))
    elif name == "deep.jsonl":
        path.write_text('{"id": 1}\n' + '{"a": ' * 5000 + "1" + "}" * 5000 + "\n")
    elif name == "latin.csv":
        path.write_bytes(b"caf\xe9,b\n1,2\n")
    else:
        whole = {"t.csv.gz": gzip.compress(text), "t.csv.zst": zstd.ZstdCompressor().compress(text),
                 "t.jsonl.zst": zstd.ZstdCompressor().compress(lines)}[name]
        path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(SourceError, match=re.escape(name)):
        batches(path, 5000)


def test_a_csv_delimiter_must_be_one_character():
    for bad in ("", ";;", "\\t", '"'):
        with pytest.raises(SourceError, match="csv_delimiter must be one character"):
            loadbay.files("-", csv_delimiter=bad)


def test_csv_compressed_empty_and_other_delimiters(tmp_path):
    zstd = pytest.importorskip("zstandard")
    (tmp_path / "a.csv.gz").write_bytes(gzip.compress(b"x,y\n1,2\n"))
    (tmp_path / "b.csv.zst").write_bytes(zstd.ZstdCompressor().compress(b"x,y\n3,4\n"))
    assert rows(tmp_path / "a.csv.gz") == [{"x": 1, "y": 2}]
    assert rows(tmp_path / "b.csv.zst") == [{"x": 3, "y": 4}]
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("x,y\n")
    assert rows(tmp_path / "empty.csv") == [] and rows(tmp_path / "header.csv") == []
    (tmp_path / "semi.csv").write_text("x;y\n1;a,b\n")
    assert rows(loadbay.files(tmp_path / "semi.csv", csv_delimiter=";")) == [{"x": 1, "y": "a,b"}]


def test_parquet_reads_in_bounded_batches_and_names_a_bad_file(tmp_path):
    pq.write_table(pa.table({"id": list(range(5)), "s": ["a", None, "c", "d", "e"]}), tmp_path / "t.parquet",
                   row_group_size=3)
    assert sum(b.num_rows for b in batches(tmp_path / "t.parquet")) == 5  # batches() checks each is <= 2
    assert rows(tmp_path / "t.parquet")[1] == {"id": 1, "s": None}
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(SourceError, match=r"bad\.parquet: not a readable Parquet file"):
        batches(tmp_path / "bad.parquet")


def test_csv_widened_column_that_fails_again_as_the_reader_opens(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 48)
    lines = [f"{i},{i}" for i in range(30)]
    lines[20], lines[21] = "20,2.5", "21,text"  # float64 forced, then text in the first block read again
    (tmp_path / "t.csv").write_text("id,n\n" + "\n".join(lines) + "\n")
    got = rows(tmp_path / "t.csv", 100)
    assert [r["id"] for r in got] == list(range(30)) and got[21]["n"] == "text" and got[0]["n"] == 0


def test_csv_blank_lines_before_a_widened_column_neither_repeat_nor_lose_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 256)
    lines = [f"{i},{i}\n" + ("\n\r\n" if i % 10 == 0 else "") for i in range(200)]
    lines[50] = '50,"x\n\ny"\n'  # a blank line inside a quoted value is no blank line
    lines[150] = "150,abc\n"  # int64 → text, read again past 150 rows and 30 blank lines
    (tmp_path / "t.csv").write_text("\n\ni,a\n" + "".join(lines))
    got = rows(tmp_path / "t.csv", 1000)
    assert [r["i"] for r in got] == list(range(200))
    assert got[150]["a"] == "abc" and got[50]["a"] == "x\n\ny" and got[151]["a"] == "151" and got[0]["a"] == 0


def test_csv_header_naming_a_column_twice_is_refused(tmp_path):
    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(SourceError, match=r"dup\.csv, line 1: the header names column 'a' twice"):
        batches(tmp_path / "dup.csv")


def test_csv_columns_keep_their_types_when_another_column_widens(tmp_path, monkeypatch):
    """Read again from a later row for one column, the others keep the types they had: typed afresh from
    that block, text zip codes, prices, flags and instants would become numbers, bools and timestamps and
    come back as other text ('00042' → '42', '1.50' → '1.5', 'TRUE' → 'true')."""
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 256)
    lines = [f"{i},{i % 1000:05d},{i % 7}.50,{'TRUE' if i % 2 else 'FALSE'},2024-01-0{i % 9 + 1}T10:00:00Z"
             for i in range(120)]
    lines[0] = "0,abc,n/a,maybe,unknown"  # text in the first block
    lines[90] = "oops,00090,1.50,TRUE,2024-01-01T10:00:00Z"  # only column a does not fit
    (tmp_path / "t.csv").write_text("a,zip,price,flag,ts\n" + "\n".join(lines) + "\n")
    got = rows(tmp_path / "t.csv", 1000)
    assert [r["zip"] for r in got[1:]] == [f"{i % 1000:05d}" for i in range(1, 120)]
    assert got[90] == {"a": "oops", "zip": "00090", "price": "1.50", "flag": "TRUE", "ts": "2024-01-01T10:00:00Z"}
    assert got[119]["price"] == "0.50" and got[119]["flag"] == "TRUE" and got[119]["ts"] == "2024-01-03T10:00:00Z"
    assert got[1]["a"] == 1 and got[91]["a"] == "91"  # the widened column: text from its block on


def test_csv_integers_past_64_bits_keep_every_digit_in_a_column_widened_to_double(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 64)
    lines = [f"{i},{i}" for i in range(60)]
    lines[20] = "20,1.5"  # int64 → float64
    lines[50] = "50,123456789012345678901234567890"  # then past 64 bits: never rounded through the double
    (tmp_path / "t.csv").write_text("id,a\n" + "\n".join(lines) + "\n")
    got = rows(tmp_path / "t.csv", 1000)
    assert [r["id"] for r in got] == list(range(60))
    assert got[20]["a"] == 1.5 and str(got[50]["a"]) == "123456789012345678901234567890"


def test_csv_values_longer_than_pythons_csv_field_limit(tmp_path, monkeypatch):
    """Python's csv module stops at 128 KiB values; the checks that use it (rows to skip when a column
    widens, a quote that never closes) read any size, as Arrow does. A row longer than a block (Arrow
    fails: "straddles two block boundaries") is read with blocks that grow to hold it."""
    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 1 << 16)
    big = "x" * 200_000
    lines = [f"{i},{big if i == 3 else 's'}" for i in range(3000)]
    lines[2500] = "oops,s"  # widens column id after the long value was handed on
    (tmp_path / "long.csv").write_text("id,s\n" + "\n".join(lines) + "\n")
    got = rows(tmp_path / "long.csv", 1000)
    assert [str(r["id"]) for r in got] == [str(i) if i != 2500 else "oops" for i in range(3000)]
    assert got[0]["id"] == 0 and got[3]["s"] == big and got[4]["s"] == "s"
    tail = "".join(f"{i},fine\n" for i in range(20_000))  # 170 KB after the quote that never closes
    (tmp_path / "open.csv").write_text('id,note\n1,"broken\n' + tail)
    with pytest.raises(SourceError, match=r"open\.csv, line 2: malformed CSV: a quoted value opened on this line "
                                          r"never closes"):
        batches(tmp_path / "open.csv")
    import csv
    assert csv.field_size_limit() == 131072  # put back


@pytest.mark.parametrize("name,content,what", [
    ("t.csv", "parquet", "holds a Parquet file, not csv text; read it as parquet"),
    ("t.jsonl", "parquet", "holds a Parquet file, not jsonl text"),
    ("t.csv", "gzip", "holds gzip-compressed data, not csv text; name it .gz"),
    ("t.json", "zstd", "holds zstd-compressed data, not json text; name it .zst"),
])
def test_a_binary_file_named_as_text_is_refused_naming_what_it_holds(tmp_path, name, content, what):
    """An uncompressed Parquet file has no line break: read as CSV it would be a header and no rows."""
    path = tmp_path / name
    if content == "parquet":
        pq.write_table(pa.table({"a": [1, 2, 3]}), path, compression="none")
    elif content == "gzip":
        path.write_bytes(gzip.compress(b"a\n1\n"))
    else:
        path.write_bytes(pytest.importorskip("zstandard").ZstdCompressor().compress(b"[{\"a\": 1}]"))
    with pytest.raises(SourceError, match=re.escape(f"{name}: {what}")):
        batches(path)
    forced = loadbay.files(path, format="parquet" if content == "parquet" else "csv")
    if content == "parquet":
        assert rows(forced) == [{"a": 1}, {"a": 2}, {"a": 3}]


def test_a_csv_whose_first_column_is_named_like_parquets_magic_loads(tmp_path):
    (tmp_path / "t.csv").write_text("PAR1,PAR2\n1,2\n")
    assert rows(tmp_path / "t.csv") == [{"PAR1": 1, "PAR2": 2}]


@pytest.mark.parametrize("name", ["e.csv.gz", "e.jsonl.gz", "e.json.zst", "e.ndjson", "e.json"])
def test_an_empty_file_loads_no_rows_compressed_or_not(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    assert rows(tmp_path / name) == []
