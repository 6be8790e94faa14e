"""Sources without a database: every input shape gives bounded batches holding exactly the rows it holds.

Rows (dicts, generators), pandas and polars frames, Arrow objects, and files by path (JSON lines, JSON,
CSV, Parquet, compressed, globs, folders, stdin) go through ``loadbay.sources.iter_batches``; each test
checks the rows that come out (and their Arrow types where the type is the point), batch sizes, and the
errors users see (file and line named).
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import logging
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import loadbay
from loadbay.common.exceptions import SourceError
from loadbay.sources import arrow as arrow_source
from loadbay.sources import iter_batches, json_reader
from loadbay.sources import files as file_source
from loadbay.sources.kinds import kind_of_type
from loadbay.sources.files import format_of, name_of

UTC = dt.timezone.utc


def batches(data: Any, batch_size: int = 2) -> list[Any]:
    out = list(iter_batches(data, batch_size))
    for batch in out:
        assert (batch.num_rows if isinstance(batch, pa.RecordBatch) else len(batch)) <= batch_size
    return out


def rows(data: Any, batch_size: int = 2) -> list[Any]:
    return [row for b in batches(data, batch_size) for row in (b.to_pylist() if isinstance(b, pa.RecordBatch) else b)]


def kinds(data: Any, batch_size: int = 2) -> set[str]:
    return {"arrow" if isinstance(b, pa.RecordBatch) else "rows" for b in batches(data, batch_size)}


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


# -- rows -------------------------------------------------------------------------------------------

def test_rows_come_in_bounded_batches_in_order():
    items = [{"i": i} for i in range(5)]
    assert batches(items) == [items[0:2], items[2:4], items[4:5]]
    assert batches(tuple(items)) == [items[0:2], items[2:4], items[4:5]]
    assert batches(iter(items), 3) == [items[0:3], items[3:5]]
    assert batches({"i": 1}) == [[{"i": 1}]]
    assert rows(i for i in range(3)) == [0, 1, 2]


def test_unset_batch_size_is_5000_items_of_rows_and_65536_rows_of_arrow_data(tmp_path):
    """Arrow batches are long (each costs a fixed time whatever its length), dict rows short (each row is a
    Python object the normalizer holds); a batch_size the user sets applies to both."""
    sizes = lambda data, size=None: [len(b) if isinstance(b, list) else b.num_rows for b in iter_batches(data, size)]  # noqa: E731
    assert sizes([{"i": i} for i in range(12_000)]) == [5_000, 5_000, 2_000]
    assert sizes(i for i in range(5_001)) == [5_000, 1]
    table = pa.table({"i": pa.array(range(140_000))})
    assert sizes(table) == [65_536, 65_536, 8_928]
    assert sizes(table.to_pandas()) == [65_536, 65_536, 8_928]
    pq.write_table(table, tmp_path / "t.parquet")
    assert sizes(tmp_path / "t.parquet") == [65_536, 65_536, 8_928]
    (tmp_path / "t.jsonl").write_text("".join(f'{{"i": {i}}}\n' for i in range(140_000)))
    assert sizes(tmp_path / "t.jsonl") == [65_536, 65_536, 8_928]
    (tmp_path / "t.csv").write_text("i\n" + "".join(f"{i}\n" for i in range(140_000)))
    assert max(sizes(tmp_path / "t.csv")) <= 65_536 and sum(sizes(tmp_path / "t.csv")) == 140_000
    assert len(sizes(tmp_path / "t.csv")) < 140_000 // 5_000
    assert sizes(table, 50_000) == [50_000, 50_000, 40_000]
    assert sizes([{"i": i} for i in range(7)], 3) == [3, 3, 1]


def test_a_generator_may_mix_rows_frames_and_paths(tmp_path):
    pd = pytest.importorskip("pandas")
    path = write_jsonl(tmp_path / "more.jsonl", [{"i": 5}])
    mixed = [{"i": 0}, pd.DataFrame({"i": [1, 2, 3]}), {"i": 4}, path, pa.table({"i": [6]})]
    assert [r["i"] for r in rows(iter(mixed))] == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("bare", ["events.jsonl", b'{"a": 1}'])
def test_a_bare_str_or_bytes_is_refused(bare):
    with pytest.raises(SourceError, match=r"bare (str|bytes).*pathlib.Path.*loadbay.files"):
        batches(bare)


def test_an_object_of_no_known_shape_is_refused():
    with pytest.raises(SourceError, match="cannot load int"):
        batches(42)


def test_shapes_are_recognized_by_module_and_name_without_importing():
    def fake(module: str, name: str) -> type:
        return type(name, (), {"__module__": module})

    assert kind_of_type(fake("pandas", "DataFrame")) == "pandas"
    assert kind_of_type(fake("pandas.core.frame", "DataFrame")) == "pandas"
    assert kind_of_type(fake("polars.dataframe.frame", "DataFrame")) == "polars"
    assert kind_of_type(fake("polars.lazyframe.frame", "LazyFrame")) == "polars_lazy"
    assert kind_of_type(fake("mypandas", "DataFrame")) is None
    assert kind_of_type(type("Sub", (fake("pandas", "DataFrame"),), {})) == "pandas"  # subclasses (GeoDataFrame)
    assert kind_of_type(pads.FileSystemDataset) == "dataset"
    assert kind_of_type(dict) is None


def test_a_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "polars", None)  # import polars → ImportError
    with pytest.raises(SourceError, match=r"pip install 'loadbay\[polars\]'"):
        arrow_source.optional_import("polars", "polars")


# -- pandas -----------------------------------------------------------------------------------------

def test_pandas_missing_values_are_null_and_dtypes_keep_their_type():
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    df = pd.DataFrame({
        "f": [1.5, np.nan, 3.0],
        "i": pd.array([1, None, 3], dtype="Int64"),
        "b": pd.array([True, None, False], dtype="boolean"),
        "s": pd.array(["a", None, "c"], dtype="string"),
        "cat": pd.Categorical(["u", None, "v"]),
        "tz": pd.to_datetime(["2024-01-01T00:00:00Z", None, "2024-01-02T12:00:00+02:00"], utc=True),
        "naive": [pd.Timestamp("2024-01-01 01:02:03"), pd.NaT, pd.Timestamp("2024-01-03")],
        "na": [pd.NA, 1, 2],
    })
    out = batches(df, 2)
    assert all(isinstance(b, pa.RecordBatch) for b in out) and [b.num_rows for b in out] == [2, 1]
    schema = out[0].schema
    assert schema.field("i").type == pa.int64() and schema.field("b").type == pa.bool_()
    assert pa.types.is_string(schema.field("cat").type) or pa.types.is_large_string(schema.field("cat").type)
    assert schema.field("tz").type.tz is not None and schema.field("naive").type.tz is None
    got = rows(df, 2)
    assert got[1] == {"f": None, "i": None, "b": None, "s": None, "cat": None, "tz": None, "naive": None, "na": 1}
    assert got[0]["cat"] == "u" and got[2]["cat"] == "v" and got[2]["i"] == 3 and got[2]["b"] is False
    assert got[2]["tz"] == dt.datetime(2024, 1, 2, 10, 0, tzinfo=UTC)
    assert got[0]["naive"] == dt.datetime(2024, 1, 1, 1, 2, 3) and got[0]["na"] is None


def test_pandas_index_is_kept_only_when_named():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"id": [7, 8], "v": ["a", "b"]})
    assert rows(df) == [{"id": 7, "v": "a"}, {"id": 8, "v": "b"}]  # the RangeIndex is row numbers
    assert rows(df.set_index("id")) == [{"v": "a", "id": 7}, {"v": "b", "id": 8}]
    assert rows(df.set_index(["id", "v"]).assign(x=1)) == [{"x": 1, "id": 7, "v": "a"}, {"x": 1, "id": 8, "v": "b"}]
    unnamed = df.set_index(pd.Index([10, 11]))
    assert rows(unnamed) == [{"id": 7, "v": "a"}, {"id": 8, "v": "b"}]
    assert rows(unnamed.reset_index()) == [{"index": 10, "id": 7, "v": "a"}, {"index": 11, "id": 8, "v": "b"}]


def test_pandas_column_mixing_python_types_loads_as_rows(caplog):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"x": [1, "a", None], "y": [1.0, float("nan"), 2.0]})
    caplog.set_level(logging.WARNING)
    assert kinds(df) == {"rows"}
    assert rows(df) == [{"x": 1, "y": 1.0}, {"x": "a", "y": None}, {"x": None, "y": 2.0}]
    assert any("['x']" in r.getMessage() for r in caplog.records)


def test_pandas_multiindex_columns_are_flattened_like_nested_keys():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame([[1, 2, 3], [4, 5, 6]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y"), ("b", "")]))
    assert rows(df) == [{"a__x": 1, "a__y": 2, "b": 3}, {"a__x": 4, "a__y": 5, "b": 6}]
    mixed = pd.DataFrame([[1, "s"], [2, 3]], columns=pd.MultiIndex.from_tuples([("k", 1), ("k", 2)]))
    assert rows(mixed) == [{"k__1": 1, "k__2": "s"}, {"k__1": 2, "k__2": 3}]  # as Python rows
    with pytest.raises(SourceError, match="DataFrame"):
        batches(pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a__x", "")])))


def test_pandas_duplicate_columns_are_refused():
    pd = pytest.importorskip("pandas")
    with pytest.raises(SourceError, match="DataFrame"):
        batches(pd.DataFrame([[1, 2]], columns=["a", "a"]))


# -- polars -----------------------------------------------------------------------------------------

def test_polars_frames_come_as_plain_arrow_batches():
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"id": [1, 2, 3], "s": ["a", None, "c"], "cat": pl.Series(["u", "v", "u"], dtype=pl.Categorical)})
    out = batches(df)
    assert [b.num_rows for b in out] == [2, 1]
    assert not any(pa.types.is_string_view(f.type) or pa.types.is_dictionary(f.type) for f in out[0].schema)
    assert rows(df) == [{"id": 1, "s": "a", "cat": "u"}, {"id": 2, "s": None, "cat": "v"}, {"id": 3, "s": "c", "cat": "u"}]


def test_polars_lazy_frame_is_collected_in_batches():
    pl = pytest.importorskip("polars")
    lazy = pl.LazyFrame({"id": list(range(10))}).filter(pl.col("id") % 2 == 0).with_columns(sq=pl.col("id") ** 2)
    assert rows(lazy, 3) == [{"id": i, "sq": i * i} for i in range(0, 10, 2)]


# -- pyarrow ----------------------------------------------------------------------------------------

def test_arrow_objects_come_in_bounded_plain_batches(tmp_path):
    table = pa.table({"id": [1, 2, 3], "c": pa.array(["x", "y", "x"]).dictionary_encode()})
    expected = [{"id": 1, "c": "x"}, {"id": 2, "c": "y"}, {"id": 3, "c": "x"}]
    pq.write_table(table, tmp_path / "t.parquet")
    shapes = [lambda: table, lambda: table.to_batches()[0],
              lambda: pa.RecordBatchReader.from_batches(table.schema, table.to_batches()),
              lambda: pads.dataset(tmp_path / "t.parquet")]
    for shape in shapes:
        out = batches(shape())
        assert [b.num_rows for b in out] == [2, 1], type(shape())
        assert not pa.types.is_dictionary(out[0].schema.field("c").type)
        assert rows(shape()) == expected


def test_an_arrow_stream_object_is_read_through_the_capsule_protocol():
    table = pa.table({"id": [1, 2, 3]})

    class Stream:  # any producer of the Arrow PyCapsule stream (DuckDB relations, nanoarrow...)
        def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
            return table.__arrow_c_stream__(requested_schema)

    assert rows(Stream()) == [{"id": 1}, {"id": 2}, {"id": 3}]


# -- file names, globs, folders ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("a.jsonl", ("jsonl", None)), ("a.NDJSON", ("ndjson", None)), ("a.json.gz", ("json", "gzip")),
    ("a.b.csv.zst", ("csv", "zstd")), ("a.parquet", ("parquet", None)), ("a.jsonl.zstd", ("jsonl", "zstd")),
])
def test_format_and_compression_come_from_the_name(name, expected):
    assert format_of(Path(name)) == expected


def test_an_unknown_extension_names_the_accepted_ones_and_format():
    with pytest.raises(SourceError, match=r"data\.txt.*\.jsonl, \.ndjson, \.json, \.csv, \.parquet.*--format"):
        format_of(Path("data.txt"))
    assert format_of(Path("data.txt.gz"), "csv") == ("csv", "gzip")
    with pytest.raises(SourceError, match="compresses inside"):
        format_of(Path("t.parquet.gz"))
    with pytest.raises(SourceError, match="unknown input format 'xml'"):
        loadbay.files("x.xml", format="xml")


@pytest.mark.parametrize(("source", "name"), [
    ("events.jsonl.gz", "events"), (Path("dir/Orders.csv"), "Orders"), ("logs/app-*.jsonl", "app"),
    ("exports/*.csv", "exports"), ("-", None),
])
def test_table_names_come_from_file_folder_and_glob_names(source, name):
    assert name_of(source) == name


def test_missing_files_and_empty_globs_say_so(tmp_path):
    with pytest.raises(SourceError, match=r"file .*nope\.jsonl does not exist"):
        loadbay.files(tmp_path / "nope.jsonl")
    with pytest.raises(SourceError, match=r"no file matches '.*\*\.csv'"):
        loadbay.files(str(tmp_path / "*.csv"))
    with pytest.raises(SourceError, match=r"nope\.jsonl does not exist"):
        batches(tmp_path / "nope.jsonl")


def test_a_glob_reads_its_files_in_name_order_into_one_table(tmp_path):
    for i in (2, 1, 3):
        write_jsonl(tmp_path / f"part-{i}.jsonl", [{"part": i}])
    write_jsonl(tmp_path / "other.jsonl", [{"part": 0}])
    source = loadbay.files(str(tmp_path / "part-*.jsonl"))
    assert rows(source) == [{"part": 1}, {"part": 2}, {"part": 3}]
    assert source.name == "part"


def test_a_folder_reads_the_files_it_can_and_skips_the_rest(tmp_path, caplog):
    folder = tmp_path / "dump"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", [{"x": 1}])
    (folder / "b.csv").write_text("x\n2\n")
    (folder / "README.md").write_text("# notes")
    (folder / ".hidden.jsonl").write_text("not json")
    caplog.set_level(logging.WARNING)
    assert rows(folder) == [{"x": 1}, {"x": 2}]
    assert any("README.md" in r.getMessage() for r in caplog.records)
    assert loadbay.files(folder).name == "dump"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    with pytest.raises(SourceError, match=r"holds no file loadbay reads.*--format"):
        loadbay.files(empty)
    assert rows(loadbay.files(empty, format="jsonl")) == []


def test_several_sources_suggest_a_name_only_when_they_agree(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"x": 1}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"x": 2}])
    assert loadbay.files(a, b).name is None
    assert rows(loadbay.files(a, b)) == [{"x": 1}, {"x": 2}]


# -- JSON and JSON lines ----------------------------------------------------------------------------

def test_json_shapes_and_compressions_read_through_arrow(tmp_path):
    zstd = pytest.importorskip("zstandard")
    items = [{"id": i, "name": f"n{i}", "tags": ["a", "b"][: i % 3], "meta": {"k": i}} for i in range(5)]
    text = "".join(json.dumps(i) + "\n" for i in items)
    (tmp_path / "a.jsonl").write_text(text.replace("\n", "\n\n"))  # blank lines are skipped
    (tmp_path / "b.ndjson").write_text(text)
    (tmp_path / "c.json").write_text(json.dumps(items, indent=2))
    (tmp_path / "d.jsonl.gz").write_bytes(gzip.compress(text.encode()))
    (tmp_path / "e.json.zst").write_bytes(zstd.ZstdCompressor().compress(json.dumps(items).encode()))
    for name in ("a.jsonl", "b.ndjson", "c.json", "d.jsonl.gz", "e.json.zst"):
        assert kinds(tmp_path / name) == {"arrow"}, name
        assert rows(tmp_path / name) == items, name
    (tmp_path / "one.json").write_text(json.dumps({"id": 1, "nested": {"a": [1, 2]}}))
    assert rows(tmp_path / "one.json") == [{"id": 1, "nested": {"a": [1, 2]}}]


def test_sample_files_read_through_arrow_with_python_values(data_dir, tmp_path):
    events = json.loads((data_dir / "github_events.json").read_text())
    got = rows(write_jsonl(tmp_path / "events.jsonl", events), 40)
    assert kinds(tmp_path / "events.jsonl", 40) == {"arrow"}
    assert [e["id"] for e in got] == [e["id"] for e in events]
    assert got[0]["created_at"] == events[0]["created_at"]  # text: typed later, as the dict path types it
    assert [e["payload"].get("commits") for e in got] == [e["payload"].get("commits") for e in events]
    weird = json.loads((data_dir / "weird_rows.json").read_text())
    assert rows(data_dir / "weird_rows.json") == weird


def without_nulls(value: Any) -> Any:
    """``value`` with None members of dicts dropped (a key a row lacks reads back as NULL)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


DUCKDB_SAMPLE = 20480  # rows DuckDB types a JSON file from by default


def test_a_late_row_with_new_keys_is_read_through_arrow(tmp_path):
    items = [{"id": i, "s": {"x": i}} for i in range(DUCKDB_SAMPLE)]
    items.append({"id": DUCKDB_SAMPLE, "s": {"x": 0, "y": "new"}, "extra": [1]})
    path = write_jsonl(tmp_path / "late.jsonl", items)
    assert kinds(path, 5000) == {"arrow"}
    assert [without_nulls(r) for r in rows(path, 5000)] == items


def test_a_key_null_until_a_late_row_keeps_its_later_values(tmp_path):
    items = [{"id": i, "later": None, "tags": []} for i in range(DUCKDB_SAMPLE)]
    items.append({"id": DUCKDB_SAMPLE, "later": "v", "tags": ["t"]})
    got = rows(write_jsonl(tmp_path / "nulls.jsonl", items), 5000)
    assert got[-1] == {"id": DUCKDB_SAMPLE, "later": "v", "tags": ["t"]}
    assert [r["id"] for r in got] == list(range(DUCKDB_SAMPLE + 1))


@pytest.mark.parametrize(("first", "late"), [(1, 1.5), (1, "12"), (1, True), (True, 0), ("s", {"x": 1}), ("s", [1]),
                                             (0.5, "0.5")])
def test_a_value_of_another_json_type_past_duckdbs_sample_is_never_converted(tmp_path, first, late):
    items = [{"a": first}] * DUCKDB_SAMPLE + [{"a": late}]
    got = rows(write_jsonl(tmp_path / "late.jsonl", items), 5000)
    assert json.dumps(got[-1]) == json.dumps({"a": late})  # 1.5 not 2, "12" not 12, true not 1
    assert json.dumps(got) == json.dumps(items)


def test_values_of_several_kinds_under_one_key_go_on_as_python_rows(tmp_path):
    items = [{"id": i, "v": i} for i in range(20)] + [{"id": 20, "v": "text"}, {"id": 21, "v": {"n": 1}}]
    path = write_jsonl(tmp_path / "mixed.jsonl", items)
    assert rows(path, 10) == items  # exactly the Python objects, the int values stay ints
    assert "rows" in kinds(path, 10)


def test_numbers_keep_their_python_kind_and_integers_are_never_rounded(tmp_path):
    big = 50719297655545113494805
    floats = [{"f": 1.5}, {"f": 2.0}, {"f": 1e-7}, {"f": None}]
    out = batches(write_jsonl(tmp_path / "f.jsonl", floats), 5)
    assert out[0].schema.field("f").type == pa.float64() and out[0].column("f").to_pylist() == [1.5, 2.0, 1e-7, None]
    ints_then_floats = [{"f": 2}, {"f": 3}, {"f": 1.5}, {"f": 2.5}]  # a batch of both kinds: Python rows
    out = batches(write_jsonl(tmp_path / "mix.jsonl", ints_then_floats), 2)
    assert isinstance(out[0], pa.RecordBatch) and out[0].schema.field("f").type == pa.int64()
    assert isinstance(out[1], pa.RecordBatch) and out[1].schema.field("f").type == pa.float64()
    got = rows(tmp_path / "mix.jsonl", 4)
    assert got == ints_then_floats and [type(r["f"]) for r in got] == [int, int, float, float]
    bigs = [{"n": big, "l": [{"v": big + 1}]}, {"n": -big, "l": [{"v": 10**20}]}, {"n": 2**64 - 1, "l": []}]
    assert rows(write_jsonl(tmp_path / "big.jsonl", bigs), 5) == bigs  # as Python rows: exact ints
    mixed = [{"n": 1}, {"n": 2}, {"n": big}, {"n": 10**45}, {"n": 5}, {"n": 6}]
    out = batches(write_jsonl(tmp_path / "mixed.jsonl", mixed), 2)
    assert [type(b).__name__ for b in out] == ["RecordBatch", "list", "RecordBatch"]  # only the batch with them
    got = rows(tmp_path / "mixed.jsonl", 2)
    assert got == mixed and all(type(r["n"]) is int for r in got)


def test_number_leaves_inside_lists_of_structs_keep_offsets_and_nulls():
    def batch(*texts: str | None) -> pa.RecordBatch:
        values = pa.StructArray.from_arrays([pa.array(texts, pa.string())], names=["v"])
        lists = pa.ListArray.from_arrays(pa.array([0, 1, 1, 4]), values, mask=pa.array([False, True, False]))
        return pa.RecordBatch.from_arrays([lists.slice(1)], names=["l"])

    typed = json_reader._typed_leaves(batch("7", "2.0", None, "3.25"), [("l", None, "v")], [])
    assert typed.column(0).type.value_type.field("v").type == pa.float64()
    assert typed.column(0).to_pylist() == [None, [{"v": 2.0}, {"v": None}, {"v": 3.25}]]
    assert json_reader._typed_leaves(batch("7.5", "2", None, '"x"'), [("l", None, "v")], []) is None  # Python rows


def test_json_strings_are_typed_only_where_the_dict_path_types_them(tmp_path):
    items = [{"d": "01-02-2020", "t": "12:00:00", "iso": "2020-01-02", "ts": "2020-01-01 10:00:00+02:00",
              "s": {"d": "13-02-2020"}, "l": ["03/04/2020"]},
             {"d": "13-02-2020", "t": "23:59:59.5", "iso": "2020-01-03", "ts": "2020-06-01T10:00:00Z",
              "s": {"d": "01-02-2020"}, "l": ["2020-01-01"]}]
    path = write_jsonl(tmp_path / "dates.jsonl", items)
    assert rows(path) == items  # strings stay text here; ISO ones are typed downstream as dicts' are
    out = batches(path)
    assert all(pa.types.is_string(out[0].schema.field(name).type) for name in ("d", "t", "iso", "ts"))


def test_json_strings_equal_to_the_format_duckdb_is_given_stay_text(tmp_path):
    """DuckDB types the file with a date and timestamp format no date has (``_NO_TEMPORAL_FORMAT``); a column of
    that very text, or of it beside dates, numbers and objects, reads as the same values as any other."""
    never = json_reader._NO_TEMPORAL_FORMAT
    items = [{"f": never, "g": never, "k": [never]}, {"f": never, "g": "2020-01-01", "k": []},
             {"f": never, "g": "2020-01-01T00:00:00Z", "k": [never, "2020-01-01"]}]
    path = write_jsonl(tmp_path / "formats.jsonl", items)
    assert rows(path) == items
    assert all(pa.types.is_string(b.schema.field(name).type) for b in batches(path) for name in ("f", "g"))
    mixed = [{"h": never}, {"h": 1}, {"h": {"x": never}}, {"h": "2020-01-01"}]  # several kinds: Python rows
    assert rows(write_jsonl(tmp_path / "mixed.jsonl", mixed)) == mixed


def test_malformed_json_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3,,}\n{"a": 4}\n')
    with pytest.raises(SourceError, match=r"file .*bad\.jsonl, line 4: malformed JSON") as caught:
        batches(tmp_path / "bad.jsonl")
    assert caught.value.line == 4 and caught.value.path.endswith("bad.jsonl")
    (tmp_path / "bad.json").write_text('[\n  {"a": 1},\n  {"a": 2]\n]')
    with pytest.raises(SourceError, match=r"bad\.json, line 3: malformed JSON"):
        batches(tmp_path / "bad.json")
    (tmp_path / "bad.jsonl.gz").write_bytes(gzip.compress(b'{"a": 1}\n{"a": \n'))
    with pytest.raises(SourceError, match=r"bad\.jsonl\.gz, line 2: malformed JSON"):
        batches(tmp_path / "bad.jsonl.gz")


def test_json_python_takes_but_duckdb_refuses_is_read_as_python_rows(tmp_path):
    (tmp_path / "nan.jsonl").write_text('{"a": 1.5}\n{"a": NaN}\n')
    got = rows(tmp_path / "nan.jsonl")
    assert got[0] == {"a": 1.5} and got[1]["a"] != got[1]["a"]


def test_a_file_name_with_glob_characters_is_read_as_it_is(tmp_path):
    path = write_jsonl(tmp_path / "we[ir]d*.jsonl", [{"a": 1}])
    write_jsonl(tmp_path / "wed.jsonl", [{"a": 2}])
    assert rows(path) == [{"a": 1}]


# -- stdin ------------------------------------------------------------------------------------------

def test_stdin_json_lines_stream_in_chunks_of_whole_lines(monkeypatch):
    monkeypatch.setattr(file_source, "STDIN_CHUNK_BYTES", 64)
    items = [{"id": i, "text": "x" * (i % 7)} for i in range(50)]
    stream = io.BytesIO("".join(json.dumps(i) + "\n" for i in items).encode())
    source = loadbay.files(stream)
    assert source.name is None and rows(source, 8) == items


def test_stdin_malformed_line_counts_from_the_start_of_the_stream(monkeypatch):
    monkeypatch.setattr(file_source, "STDIN_CHUNK_BYTES", 40)
    text = "".join(json.dumps({"id": i}) + "\n" for i in range(20)) + '{"id": oops}\n'
    with pytest.raises(SourceError, match=r"<stdin>, line 21: malformed JSON"):
        batches(loadbay.files(io.BytesIO(text.encode())))


def test_stdin_csv_and_json_documents(monkeypatch):
    assert rows(loadbay.files(io.BytesIO(b"a,b\n1,x\n2,y\n"), format="csv")) == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert rows(loadbay.files(io.BytesIO(b'[{"a": 1}, {"a": 2}]'), format="json")) == [{"a": 1}, {"a": 2}]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b'{"a": 1}\n')))
    assert rows(loadbay.files("-")) == [{"a": 1}]


# -- errors carry the table and pipeline -------------------------------------------------------------

def test_a_source_error_names_table_and_pipeline_once_known(tmp_path):
    (tmp_path / "bad.jsonl").write_text("{\n")
    res = loadbay.resource(tmp_path / "bad.jsonl", name="events")
    with pytest.raises(SourceError) as caught:
        list(res.batches(10))
    assert str(caught.value).startswith("table 'events': file ") and caught.value.line == 1
    named = caught.value.within(pipeline_name="gh")
    assert str(named).startswith("pipeline 'gh', table 'events': file ") and named.path == caught.value.path
