"""The data users bring, loaded end to end on every built-in destination: pandas and polars frames, Arrow
objects, and files by path (every format, compressed, a folder, a glob), each checked by the rows the
destination holds afterwards. A malformed file stops the run naming pipeline, table, file and line, and
leaves nothing loaded.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import loadbay
from loadbay.common.exceptions import SchemaError, SourceError
from loadbay.sources import json_reader
from loadbay.destinations.testing.conformance.helpers import (as_bool, as_int, as_utc, by_id, count, count_or_none,
                                                              ident, load_sample, query, run_ok, table_columns)

UTC = timezone.utc


# -- DataFrames and Arrow --------------------------------------------------------------------------

def test_pandas_frame_loads_its_values_nulls_and_named_index(make_pipeline):
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    p = make_pipeline(batch_size=2)  # three batches
    df = pd.DataFrame({
        "id": [1, 2, 3, 4],
        "f": [1.5, np.nan, -2.25, 0.0],
        "i": pd.array([10, None, 30, 40], dtype="Int64"),
        "b": pd.array([True, None, False, True], dtype="boolean"),
        "s": pd.array(["a", None, "c", "ü"], dtype="string"),
        "cat": pd.Categorical(["x", "y", None, "x"]),
        "tz": pd.to_datetime(["2024-01-01T00:00:00Z", None, "2024-06-01T12:30:00+02:00", "2024-01-02T00:00:00Z"],
                             utc=True),
        "naive": [pd.Timestamp("2024-03-01 01:02:03.456789"), pd.NaT, pd.Timestamp("2024-03-03"), pd.NaT],
    }).set_index("id")  # a named index: loaded as the column id
    run_ok(p, df, table_name="frame")

    got = by_id(p, "frame", "f", "i", "b", "s", "cat", "tz", "naive")
    assert set(got) == {1, 2, 3, 4}
    assert {k: v[0] for k, v in got.items()} == {1: 1.5, 2: None, 3: -2.25, 4: 0.0}
    assert {k: as_int(v[1]) for k, v in got.items()} == {1: 10, 2: None, 3: 30, 4: 40}
    assert {k: None if v[2] is None else as_bool(v[2]) for k, v in got.items()} == {1: True, 2: None, 3: False, 4: True}
    assert {k: v[3] for k, v in got.items()} == {1: "a", 2: None, 3: "c", 4: "ü"}
    assert {k: v[4] for k, v in got.items()} == {1: "x", 2: "y", 3: None, 4: "x"}
    assert {k: as_utc(v[5]) for k, v in got.items()} == {
        1: datetime(2024, 1, 1, tzinfo=UTC), 2: None, 3: datetime(2024, 6, 1, 10, 30, tzinfo=UTC),
        4: datetime(2024, 1, 2, tzinfo=UTC)}
    assert as_utc(got[1][6]) == datetime(2024, 3, 1, 1, 2, 3, 456789, tzinfo=UTC) and got[2][6] is None


def test_pandas_columns_of_several_arrow_chunks_load(make_pipeline):
    """pandas 3's strings are Arrow-backed, and ``pd.concat`` leaves such a column in chunks, as does a frame
    made from a chunked Arrow table with ``ArrowDtype``: each loads as its rows do."""
    pd = pytest.importorskip("pandas")
    concat = pd.concat([pd.DataFrame({"id": [1, 2], "s": ["a", None]}), pd.DataFrame({"id": [3], "s": ["c"]})],
                       ignore_index=True)
    chunked = pa.concat_tables([pa.table({"id": [1, 2], "n": [10, None]}), pa.table({"id": [3], "n": [30]})])
    framed = chunked.to_pandas(types_mapper=pd.ArrowDtype)
    assert framed["n"].array._pa_array.num_chunks == 2  # the case this test is about
    p = make_pipeline()  # one slice of each frame holds both chunks
    run_ok(p, concat, table_name="concat")
    run_ok(p, framed, table_name="framed")
    assert by_id(p, "concat", "s") == {1: ("a",), 2: (None,), 3: ("c",)}
    assert {k: None if v[0] is None else as_int(v[0]) for k, v in by_id(p, "framed", "n").items()} == \
        {1: 10, 2: None, 3: 30}


def test_an_unnamed_pandas_index_is_not_loaded(make_pipeline):
    """A RangeIndex, or the unnamed index a filter leaves, is pandas' bookkeeping, not data: no column."""
    pd = pytest.importorskip("pandas")
    p = make_pipeline()
    df = pd.DataFrame({"id": [1, 2, 3, 4], "v": ["a", "b", "c", "d"]})
    run_ok(p, [loadbay.resource(df, name="ranged"), loadbay.resource(df[df.id % 2 == 0], name="filtered")])
    for name, ids in (("ranged", {1, 2, 3, 4}), ("filtered", {2, 4})):
        assert set(by_id(p, name, "v")) == ids
        assert {c for c in table_columns(p, name) if not c.startswith("_lb_")} == {"id", "v"}, name


def test_an_index_named_as_a_column_and_keys_that_are_not_text_are_refused_by_name(make_pipeline):
    """pyarrow would load such an index as a column ``__index_level_0__``; a dict's int key has no column name
    (a frame's int labels do: they load as their text)."""
    pd = pytest.importorskip("pandas")
    p = make_pipeline()
    clash = pd.DataFrame({"a": [1, 2], "v": [3, 4]}, index=pd.Index([10, 20], name="a"))
    with pytest.raises(SourceError, match=r"index level\(s\) \['a'\] have the name of a column"):
        p.run(clash, table_name="clash")
    with pytest.raises(SchemaError, match=r"table 'keys': key 0 is of type int, not text"):
        p.run([{0: 1, "b": 2}], table_name="keys")
    assert count_or_none(p, "clash") is None and count_or_none(p, "keys") is None


def test_polars_values_and_nulls_arrive(make_pipeline):
    pl = pytest.importorskip("polars")
    p = make_pipeline()
    frame = pl.DataFrame({"id": [1, 2, 3], "n": [10, None, -3], "f": [0.5, None, 2.5],
                          "at": [datetime(2024, 1, 1, tzinfo=UTC), None, datetime(2024, 2, 29, 23, 59, tzinfo=UTC)],
                          "kind": pl.Series(["a", None, "a"], dtype=pl.Categorical), "ok": [True, None, False]})
    run_ok(p, frame, table_name="pframe")
    got = by_id(p, "pframe", "n", "f", "at", "kind", "ok")
    assert {k: (as_int(v[0]), v[1], as_utc(v[2]), v[3], None if v[4] is None else as_bool(v[4]))
            for k, v in got.items()} == {
        1: (10, 0.5, datetime(2024, 1, 1, tzinfo=UTC), "a", True),
        2: (None, None, None, None, None),
        3: (-3, 2.5, datetime(2024, 2, 29, 23, 59, tzinfo=UTC), "a", False)}


def test_polars_frames_and_arrow_objects_load_into_their_tables(make_pipeline, tmp_path):
    pl = pytest.importorskip("polars")
    p = make_pipeline(batch_size=2)
    table = pa.table({"id": [1, 2, 3], "name": ["a", None, "c"]})
    pq.write_table(table, tmp_path / "t.parquet")
    resources = [
        loadbay.resource(pl.DataFrame({"id": [1, 2, 3], "name": ["a", None, "c"]}), name="eager"),
        loadbay.resource(pl.LazyFrame({"id": [1, 2, 3, 4]}).filter(pl.col("id") > 1)
                         .with_columns(name=pl.lit("lazy")), name="lazy"),
        loadbay.resource(table, name="arrow_table"),
        loadbay.resource(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()), name="arrow_reader"),
        loadbay.resource(pads.dataset(tmp_path / "t.parquet"), name="arrow_dataset"),
        loadbay.resource(table.to_batches()[0], name="arrow_batch"),
    ]
    run_ok(p, resources)
    expected = {1: ("a",), 2: (None,), 3: ("c",)}
    for name in ("eager", "arrow_table", "arrow_reader", "arrow_dataset", "arrow_batch"):
        assert by_id(p, name, "name") == expected, name
    assert by_id(p, "lazy", "name") == {2: ("lazy",), 3: ("lazy",), 4: ("lazy",)}


def test_a_frame_resource_merges_by_its_primary_key(make_pipeline):
    pd = pytest.importorskip("pandas")
    p = make_pipeline()
    first = pd.DataFrame({"id": [1, 2], "v": ["one", "two"]})
    run_ok(p, loadbay.resource(first, name="users", write_disposition="merge", primary_key="id"))
    second = pd.DataFrame({"id": [2, 3], "v": ["TWO", "three"]})
    run_ok(p, loadbay.resource(second, name="users", write_disposition="merge", primary_key="id"))
    assert by_id(p, "users", "v") == {1: ("one",), 2: ("TWO",), 3: ("three",)}


# -- files -----------------------------------------------------------------------------------------

ROWS = [{"id": i, "name": f"name {i}, \"quoted\"", "amount": i + 0.25,
         "at": datetime(2024, 1, 1 + i % 28, 12, 0, i % 60, tzinfo=UTC)} for i in range(27)]


def _iso(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "at": row["at"].isoformat().replace("+00:00", "Z")}


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(_iso(r)) + "\n" for r in rows).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    def field(value: Any) -> str:
        text = str(value)
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n') else text
    lines = ["id,name,amount,at"] + [",".join(field(v) for v in _iso(r).values()) for r in rows]
    return ("\n".join(lines) + "\n").encode()


def write_every_format(folder: Path) -> None:
    """Three rows of ``ROWS`` per file, in every format loadbay reads by name."""
    zstd = pytest.importorskip("zstandard")
    part = iter(ROWS[i:i + 3] for i in range(0, len(ROWS), 3))
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(_jsonl(next(part)))
    (folder / "b.ndjson").write_bytes(_jsonl(next(part)))
    (folder / "c.json").write_text(json.dumps([_iso(r) for r in next(part)], indent=1))
    (folder / "d.json").write_text(json.dumps(_iso(next(part)[0])))  # a single object: one row
    (folder / "e.csv").write_bytes(_csv(next(part)))
    pq.write_table(pa.Table.from_pylist(next(part)), folder / "f.parquet")
    (folder / "g.jsonl.gz").write_bytes(gzip.compress(_jsonl(next(part))))
    (folder / "h.json.zst").write_bytes(zstd.ZstdCompressor().compress(json.dumps([_iso(r) for r in next(part)]).encode()))
    (folder / "i.csv.gz").write_bytes(gzip.compress(_csv(next(part))))


def test_a_folder_of_every_format_loads_into_one_table(make_pipeline, tmp_path):
    p = make_pipeline(batch_size=2)
    write_every_format(tmp_path / "exports")
    expected = {r["id"]: r for r in ROWS if r["id"] not in (10, 11)}  # d.json holds one object of its three
    run_ok(p, tmp_path / "exports")  # the table is named after the folder
    got = by_id(p, "exports", "name", "amount", "at")
    assert set(got) == set(expected)
    for key, (name, amount, at) in got.items():
        assert (name, float(amount), as_utc(at)) == (expected[key]["name"], expected[key]["amount"],
                                                     expected[key]["at"]), key


def test_a_glob_of_sample_files_merges_into_one_table(make_pipeline, data_dir, tmp_path):
    events = load_sample("github_events.json")
    half = len(events) // 2
    (tmp_path / "events-1.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events[:half]))
    (tmp_path / "events-2.json.gz").write_bytes(gzip.compress(json.dumps(events[half:]).encode()))
    p = make_pipeline()
    source = loadbay.files(str(tmp_path / "events-*"))
    run_ok(p, loadbay.resource(source, write_disposition="merge", primary_key="id"))
    run_ok(p, loadbay.resource(loadbay.files(str(tmp_path / "events-2*")), name="events",
                               write_disposition="merge", primary_key="id"))  # the same rows again: replaced
    assert count(p, "events") == len({e["id"] for e in events})
    commits = sum(len(e["payload"].get("commits", [])) for e in events)
    assert count(p, "events__payload__commits") == commits
    assert {as_int(r[0]) for r in query(p, f"SELECT {ident(p, 'actor__id')} FROM {ident(p, 'events')}")} == \
        {e["actor"]["id"] for e in events}


def test_a_malformed_file_stops_the_run_naming_everything_and_loads_nothing(make_pipeline, tmp_path):
    p = make_pipeline(batch_size=2)
    folder = tmp_path / "events"
    folder.mkdir()
    (folder / "a.jsonl").write_bytes(_jsonl(ROWS[:5]))
    (folder / "b.jsonl").write_bytes(_jsonl(ROWS[5:7]) + b'{"id": 7, "name": }\n' + _jsonl(ROWS[8:9]))
    with pytest.raises(SourceError) as caught:
        p.run(folder)
    message = str(caught.value)
    assert message.startswith("pipeline 'test_pipeline', table 'events': file ") and "b.jsonl, line 3:" in message
    assert caught.value.line == 3
    assert count_or_none(p, "events") in (None, 0)
    assert p.pending_packages() == []


def test_a_csv_column_widened_late_leaves_the_others_as_the_file_wrote_them(make_pipeline, tmp_path, monkeypatch):
    """A value of column ``a`` that does not fit in a later block widens ``a`` only; the zip codes (text in
    the first block, digits only later) keep their leading zeros, and a value longer than a block loads."""
    from loadbay.sources import csv_reader

    monkeypatch.setattr(csv_reader, "BLOCK_BYTES", 512)
    long_value = "y" * 3000
    lines = [f"{i},{i % 1000:05d},{long_value if i == 5 else 'v'}" for i in range(200)]
    lines[0] = "0,abc,v"
    lines[150] = "oops,00150,v"
    (tmp_path / "zips.csv").write_text("a,zip,note\n" + "\n".join(lines) + "\n")
    p = make_pipeline()
    run_ok(p, tmp_path / "zips.csv")
    got = query(p, f"SELECT {ident(p, 'zip')}, {ident(p, 'note')} FROM {ident(p, 'zips')}")
    assert sorted(zip_code for zip_code, _ in got) == sorted(["abc"] + [f"{i % 1000:05d}" for i in range(1, 200)])
    assert sorted(len(note) for _, note in got)[-2:] == [1, 3000]
    assert count(p, "zips") == 200


@pytest.mark.parametrize("name,text,line,reason", [
    # DuckDB reads objects one after another; neither json.loads nor JSON lines does
    ("pretty.json", '{\n  "id": 1,\n  "o": {"a": 1}\n}\n{\n  "id": 2,\n  "o": {"b": 2}\n}\n', 5, "Extra data"),
    ("tab.jsonl", '{"id": 1}\n{"id": "a\tb"}\n', 2, "Invalid control character at column 10"),  # not "at at"
])
def test_a_file_only_duckdb_reads_is_refused_naming_its_line(make_pipeline, tmp_path, name, text, line, reason):
    p = make_pipeline()
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SourceError) as caught:
        p.run(path, table_name="t")
    message = str(caught.value)
    assert message.startswith("pipeline 'test_pipeline', table 't': file ") and f"{name}, line {line}:" in message
    assert reason in message and "at at" not in message
    assert count_or_none(p, "t") in (None, 0)


def test_columns_first_seen_in_one_row_take_that_rows_key_order(make_pipeline, tmp_path):
    """A JSON file's fields come in the order keys first appear anywhere in the file (nulls included); the dict
    path adds the columns a row brings in the order of that row's keys, and so does a file by path."""
    items = [{"a": None, "s": None, "n": 1, "l": [{"q": None}]},
             {"s": {"y": 1, "x": 2}, "b": 1, "a": 2, "n": 1.5, "l": [{"p": 1, "q": 2}]},
             {"c": 3, "l": [{"r": 1}, {"q": 1, "p": 2}]}]
    path = tmp_path / "order.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    as_dicts, as_file = make_pipeline("as_dicts"), make_pipeline("as_file")
    run_ok(as_dicts, items, table_name="order")
    run_ok(as_file, path)
    for table in ("order", "order__l"):
        expected = list(as_dicts.schema.tables[table].columns)
        assert list(as_file.schema.tables[table].columns) == expected
    assert [c for c in expected if not c.startswith("_lb")] == ["p", "q", "r"]
    assert [c for c in as_file.schema.tables["order"].columns if not c.startswith("_lb")] == \
        ["n", "s__y", "s__x", "b", "a", "n__v_double", "c"]


@pytest.mark.parametrize("token", ["nan", "inf", "-inf", "NAN"])
def test_a_number_json_loads_refuses_is_malformed_though_duckdb_reads_it(make_pipeline, tmp_path, token):
    path = tmp_path / "floats.jsonl"
    path.write_text('{"id": 1, "f": 1.5}\n{"id": 2, "f": 2}\n{"id": 3, "f": %s}\n' % token)
    p = make_pipeline()
    with pytest.raises(SourceError) as caught:
        p.run(path)
    assert "floats.jsonl, line 3: malformed JSON" in str(caught.value) and caught.value.line == 3
    assert count_or_none(p, "floats") is None


def test_a_null_line_is_refused_as_its_item_is_and_an_empty_object_loads(make_pipeline, tmp_path):
    """DuckDB reads ``null`` as a record of nulls, like ``{}``; the dict path refuses a None item of a dict
    resource, so the file does too, naming the item and the file."""
    good, bad = tmp_path / "good.jsonl", tmp_path / "bad.jsonl"
    good.write_text('{"a": 1}\n{}\n{"a": null}\n{"a": 2}\n')
    bad.write_text('{"a": 1}\n{"a": null}\nnull\n{"a": 2}\n')
    p = make_pipeline()
    run_ok(p, good)
    assert sorted((as_int(r[0]) if r[0] is not None else -1) for r in query(p, f"SELECT a FROM {ident(p, 'good')}")) \
        == [-1, -1, 1, 2]
    with pytest.raises(SchemaError, match="item 3 of resource 'bad'.*NoneType") as caught:
        p.run(bad)
    assert caught.value.path == str(bad)
    assert count_or_none(p, "bad") is None


def test_a_duplicate_key_beside_multibyte_text_loads_as_its_dict_does(make_pipeline, tmp_path):
    """DuckDB's error for a key given twice quotes the object cut at a byte count, here inside a character,
    which its Python package then cannot decode: the file still loads, as Python rows (the last value wins)."""
    line = '{"a": {"x": "%s日本語日本語日本語日本語", "x": 1}}\n' % ("x" * 40)
    path = tmp_path / "dup.jsonl"
    path.write_text(line.replace(": ", ":").replace(", ", ","), encoding="utf-8")
    p = make_pipeline()
    run_ok(p, path)
    assert table_columns(p, "dup")["a__x"] == "bigint"
    assert [as_int(r[0]) for r in query(p, f"SELECT {ident(p, 'a__x')} FROM {ident(p, 'dup')}")] == [1]


@pytest.mark.parametrize("bad_file", ["b.csv", "b.jsonl", "b.parquet"])
def test_rows_a_contract_refuses_are_named_by_their_file_and_nothing_of_the_run_loads(make_pipeline, tmp_path,
                                                                                       bad_file):
    """A frozen data type meets text in a bigint column in the second file of a folder: the error names the
    pipeline, table, column, value and that file (not the first), and the destination keeps what it had."""
    p = make_pipeline()
    run_ok(p, [{"id": 0, "n": 5}], table_name="events")
    folder = tmp_path / "events"
    folder.mkdir()
    pq.write_table(pa.table({"id": [1, 2], "n": [6, 7]}), folder / "a.parquet")
    bad = pa.table({"id": [3, 4], "n": ["not a number", "nor this"]})
    if bad_file.endswith(".csv"):
        (folder / bad_file).write_text("id,n\n3,not a number\n4,nor this\n")
    elif bad_file.endswith(".jsonl"):
        (folder / bad_file).write_text("".join(json.dumps(row) + "\n" for row in bad.to_pylist()))
    else:
        pq.write_table(bad, folder / bad_file)
    with pytest.raises(SchemaError) as caught:
        p.run(folder, table_name="events", schema_contract={"data_type": "freeze"})
    message = str(caught.value)
    assert "'test_pipeline'" in message and "table 'events'" in message and "n (bigint)" in message
    assert "not a number" in message
    assert caught.value.path == str(folder / bad_file) and message.endswith(f"(while reading file {folder / bad_file})")
    assert count(p, "events") == 1
    assert p.pending_packages() == []


def test_rows_not_read_from_a_file_name_no_file(make_pipeline):
    p = make_pipeline()
    run_ok(p, [{"id": 0, "n": 5}], table_name="events")
    with pytest.raises(SchemaError) as caught:
        p.run(pa.table({"id": [1], "n": ["x"]}), table_name="events", schema_contract={"data_type": "freeze"})
    assert caught.value.path is None and "file" not in str(caught.value)


def test_a_missing_file_stops_the_run_naming_pipeline_table_and_file(make_pipeline, tmp_path):
    p = make_pipeline()
    for data, kwargs, table in ((tmp_path / "nope.jsonl", {"table_name": "t"}, "t"),
                                (loadbay.resource(tmp_path / "gone.csv"), {}, "gone"),
                                ([{"id": 1}, tmp_path / "also.parquet"], {"table_name": "t"}, "t")):
        with pytest.raises(SourceError) as caught:
            p.run(data, **kwargs)
        missing = Path(caught.value.path or "")
        assert str(caught.value) == f"pipeline 'test_pipeline', table '{table}': file {missing} does not exist"
        assert missing.parent == tmp_path and missing.name in ("nope.jsonl", "gone.csv", "also.parquet")
        assert count_or_none(p, table) is None
    assert p.pending_packages() == []


# -- JSON files load exactly as their parsed rows ----------------------------------------------------

def _tricky_rows(kind: str) -> list[dict[str, Any]]:
    """Rows whose types change partway (DuckDB types them from the whole file)."""
    if kind == "columnar":  # read as Arrow throughout: new keys late, a key null until late, 64-bit extremes
        return [{"id": i, "s": {"x": i}, "later": None, "tags": [], "big": 2**63 - 1 - i, "f": i + 0.5}
                for i in range(12)] + \
            [{"id": 12, "s": {"x": 12, "y": "new"}, "later": "v", "tags": ["a", "b"], "big": -(2**63), "f": 1e-3,
              "extra": {"deep": [1, 2]}}]
    if kind == "mixed_numbers":  # ints and floats under one key (bigint + variant, or double), read as Arrow
        return [{"id": 0, "n": 1, "s": {"x": 1.5}, "l": [1, 2.5], "o": [{"v": 2.0}, {"v": 3}], "z": -0},
                {"id": 1, "n": 2.5, "s": {"x": 2}, "l": [], "o": [], "z": -0.0},
                {"id": 2, "n": 2**63 - 1, "s": None, "l": [7], "o": [{"v": 1e3}], "z": 0.5},
                {"id": 3, "n": None, "s": {"x": None}, "l": None, "o": None, "z": None}] + \
            [{"id": 4, "n": 4.5, "m": 1.5, "l": [4, 4.25], "z": 1}, {"id": 5, "n": 5, "m": 2, "z": 2e-3}] + \
            [{"id": 6 + i, "n": -(2**63) + i, "m": 1e300 if i else 7, "z": i / 3} for i in range(3)]
    if kind == "case_keys":  # keys differing only by case, which DuckDB takes for one name: Python rows
        return [{"id": i, "a": i, "s": {"x": i}} for i in range(5)] + [{"id": 5, "A": 1.5, "s": {"x": 5, "X": "five"}}]
    # numbers of several kinds under one key, integers past 64 bits: those batches go as Python rows
    return [{"id": i, "n": i} for i in range(6)] + [{"id": 6, "n": 6.5}, {"id": 7, "n": "seven"},
                                                     {"id": 8, "n": 2**64}, {"id": 9, "n": 9},
                                                     {"id": 10, "n": 2**70}, {"id": 11, "n": -(2**70)}]


@pytest.mark.parametrize("kind", ["columnar", "mixed_numbers", "python", "case_keys"])
def test_a_json_lines_file_loads_exactly_as_its_rows(make_pipeline, tmp_path, kind):
    from tests.integration.test_arrow_differential import differences, rows_by_place, schema_shape

    items = _tricky_rows(kind)
    path = tmp_path / "tricky.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    read_as = ["rows" if isinstance(b, list) else "arrow" for b in json_reader.json_batches(path, 4)]
    assert (set(read_as) == {"arrow"}) if kind in ("columnar", "mixed_numbers") else ("rows" in read_as)
    as_dicts, as_file = make_pipeline("as_dicts", batch_size=4), make_pipeline("as_file", batch_size=4)
    run_ok(as_dicts, json.loads(json.dumps(items)), table_name="tricky")
    run_ok(as_file, path)
    assert schema_shape(as_file.schema) == schema_shape(as_dicts.schema)
    expected, got = rows_by_place(as_dicts), rows_by_place(as_file)
    assert set(got) == set(expected)
    for name, rows in expected.items():
        assert rows and not list(differences(rows, got[name])), name


@pytest.mark.parametrize("mode", ["discard_value", "discard_row", "freeze"])
def test_ints_and_floats_under_one_json_key_meet_the_data_type_contract_as_their_rows_do(make_pipeline, tmp_path,
                                                                                        mode):
    """A float into a bigint column is a new data type: the contract decides, on the columnar path too."""
    from tests.integration.test_arrow_differential import schema_shape

    items = [{"id": 1, "n": 2}, {"id": 2, "n": 2.5}, {"id": 3, "n": 3}]
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    assert [b.schema.field("n").type.extension_name for b in json_reader.json_batches(path, None)] == \
        ["loadbay.json_numbers"]
    as_dicts, as_file = make_pipeline("as_dicts"), make_pipeline("as_file")
    for p in (as_dicts, as_file):
        run_ok(p, [{"id": 0, "n": 1}], table_name="mixed")  # n: bigint
    if mode == "freeze":
        for p, data in ((as_dicts, items), (as_file, path)):
            with pytest.raises(SchemaError, match="mixed.*n \\(bigint\\) got float 2.5"):
                p.run(data, table_name="mixed", schema_contract={"data_type": mode})
            assert count(p, "mixed") == 1
        return
    run_ok(as_dicts, items, table_name="mixed", schema_contract={"data_type": mode})
    run_ok(as_file, path, table_name="mixed", schema_contract={"data_type": mode})
    assert schema_shape(as_file.schema) == schema_shape(as_dicts.schema)
    assert "n__v_double" not in schema_shape(as_file.schema)["mixed"]
    expected = [(0, 1), (1, 2), (2, None), (3, 3)] if mode == "discard_value" else [(0, 1), (1, 2), (3, 3)]
    for p in (as_dicts, as_file):  # two loads: rows are told apart by id, not by place
        rows = query(p, f"SELECT {ident(p, 'id')}, {ident(p, 'n')} FROM {ident(p, 'mixed')}")
        assert sorted((as_int(i), n if n is None else as_int(n)) for i, n in rows) == expected


@pytest.mark.parametrize("how", ["cursor", "discard_row"])
def test_json_objects_keep_their_keys_when_rows_of_the_batch_are_left_out(make_pipeline, tmp_path, how):
    """Stored as json text, an object is taken from the file's own row: still the right row when an
    incremental cursor or the schema contract has left rows of the batch out."""
    items = [{"id": i, "doc": {"k": i} if i % 2 else {"other": [i], "k": None}} for i in range(8)]
    items[5]["late"] = "a new column, which discard_row keeps out"
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    hints = {"columns": {"doc": {"data_type": "json"}}}
    got = {}
    for name, data in (("as_dicts", items), ("as_file", path)):
        p = make_pipeline(name)
        if how == "cursor":
            run_ok(p, loadbay.resource(items[:3], "docs", incremental=loadbay.incremental("id"), **hints))
            run_ok(p, loadbay.resource(data, "docs", incremental=loadbay.incremental("id"), **hints))
        else:
            run_ok(p, loadbay.resource(items[:1], "docs", **hints))
            run_ok(p, loadbay.resource(data, "docs", **hints), schema_contract={"columns": "discard_row"})
        docs = query(p, f"SELECT {ident(p, 'id')}, {ident(p, 'doc')} FROM {ident(p, 'docs')}")
        got[name] = sorted((as_int(i), json.loads(d) if isinstance(d, str) else d) for i, d in docs)
    assert got["as_file"] == got["as_dicts"]
    kept = [item for item in items if how == "cursor" or "late" not in item]
    assert got["as_file"] == sorted((item["id"], item["doc"]) for item in
                                    (kept if how == "cursor" else [items[0]] + kept))


def test_json_date_and_time_strings_load_as_the_same_dicts_do(make_pipeline, tmp_path):
    """Only ISO 8601 timestamps and YYYY-MM-DD dates are typed; "01-02-2020", "12:00:00" and a UUID (whose
    case DuckDB's own UUID type would lose) stay text as written."""
    from tests.integration.test_arrow_differential import differences, rows_by_place, schema_shape

    items = [{"id": 1, "d": "01-02-2020", "t": "12:00:00", "iso": "2020-01-02", "at": "2020-01-01T10:00:00+02:00",
              "u": "123E4567-E89B-12D3-A456-426614174000"},
             {"id": 2, "d": "13-02-2020", "t": "23:59:59.5", "iso": "2020-01-03", "at": "2020-06-01T10:00:00Z",
              "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}]
    path = tmp_path / "dates.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    as_dicts, as_file = make_pipeline("as_dicts"), make_pipeline("as_file")
    run_ok(as_dicts, items, table_name="dates")
    run_ok(as_file, path)
    assert schema_shape(as_file.schema) == schema_shape(as_dicts.schema)
    columns = schema_shape(as_file.schema)["dates"]
    assert [columns[name] for name in ("d", "t", "iso", "at", "u")] == ["text", "text", "date", "timestamp", "text"]
    uuids = query(as_file, f"SELECT {ident(as_file, 'u')} FROM {ident(as_file, 'dates')} ORDER BY {ident(as_file, 'id')}")
    assert [r[0] for r in uuids] == [item["u"] for item in items]
    expected, got = rows_by_place(as_dicts), rows_by_place(as_file)
    assert set(got) == set(expected) and not list(differences(expected["dates"], got["dates"]))
    texts = query(as_file, f"SELECT {ident(as_file, 'd')}, {ident(as_file, 't')} FROM {ident(as_file, 'dates')} "
                           f"ORDER BY {ident(as_file, 'id')}")
    assert [tuple(r) for r in texts] == [("01-02-2020", "12:00:00"), ("13-02-2020", "23:59:59.5")]


@pytest.mark.parametrize("arrow", [False, True])
def test_a_row_without_a_cursor_value_is_refused_naming_pipeline_table_and_row(make_pipeline, arrow):
    p = make_pipeline()
    rows = [{"id": 1, "at": 10}, {"id": 2, "at": None}]
    data = pa.Table.from_pylist(rows) if arrow else rows
    with pytest.raises(SourceError) as caught:
        p.run(loadbay.resource(data, "events", incremental=loadbay.incremental("at")))
    message = str(caught.value)
    assert message.startswith("pipeline 'test_pipeline', table 'events': ") and "'at'" in message
    assert ("nulls in column" if arrow else "row 2 of a batch has no value") in message
    assert count_or_none(p, "events") in (None, 0)
