"""The same data loaded as Python dicts and through the Arrow path gives identical tables.

Each sample file of ``../shared/data`` is loaded twice on the destination under test, into two
datasets: once as the parsed items (the row path: ``RelationalNormalizer``), once by path as a JSONL
file (read by a columnar reader, normalized by ``common/normalizer_arrow``). The two must agree on
every table, column and type of the schema, and on every row. ``_lb_id`` values differ between any
two runs, so rows are matched by their place in the data instead: a root row by its position (ids
grow in load order), a child row by its parent's place and its ``_lb_list_idx``; a wrong parent link
therefore shows as a difference too, and a child's ``_lb_root_id`` must name the root row of its place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import loadbay
from loadbay.common.schema.types import LIST_IDX, LOAD_ID, PARENT_ID, ROOT_ID, ROW_ID, Schema
from loadbay.destinations.testing.conformance.helpers import as_int, as_json, ident, load_sample, query
from loadbay.sources import json_reader

SAMPLES = ["github_events.json", "github_issues.json", "ethereum_blocks.json", "ethereum_blocks.json:gwei",
           "weird_rows.json"]
"""``:gwei``: the blocks with every integer past 64 bits (wei amounts, total difficulty) divided by 10**9 until
it fits, so the file is read as Arrow throughout; as they are, those integers send it to Python rows."""
ROW_PATH = {"ethereum_blocks.json"}  # samples whose file is read as Python rows (exactly as json.loads gives)
SYSTEM = {LOAD_ID, ROW_ID, PARENT_ID, LIST_IDX, ROOT_ID}

Place = tuple[int, ...]


def as_jsonl(items: Any, path: Path) -> Path:
    """The items of a sample file, one JSON document per line (the Arrow path reads it by path)."""
    rows = items if isinstance(items, list) else [items]
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def schema_shape(schema: Schema) -> dict[str, dict[str, str]]:
    """Table → column → data type (with precision/scale where set) of every data table."""
    shape = {}
    for table in schema.data_tables():
        shape[table.name] = {
            c.name: c.data_type + (f"({c.precision},{c.scale})" if c.precision or c.scale else "")
            for c in table.columns.values()}
    return shape


def depth(schema: Schema, name: str) -> int:
    table, n = schema.tables[name], 0
    while table.parent:
        table, n = schema.tables[table.parent], n + 1
    return n


def rows_by_place(p: loadbay.Pipeline) -> dict[str, dict[Place, dict[str, Any]]]:
    """Every data table's rows keyed by their place in the data, without loadbay's id values."""
    schema = p.schema
    places: dict[str, Place] = {}  # _lb_id → place
    out: dict[str, dict[Place, dict[str, Any]]] = {}
    for name in sorted((t.name for t in schema.data_tables()), key=lambda n: depth(schema, n)):
        table = schema.tables[name]
        columns = sorted(table.columns)
        json_columns = {c.name for c in table.columns.values() if c.data_type == "json"}
        select = ", ".join(ident(p, c) for c in columns)
        rows = [dict(zip(columns, row)) for row in query(p, f"SELECT {select} FROM {ident(p, name)}")]
        keyed: dict[Place, dict[str, Any]] = {}
        if table.parent is None:
            rows.sort(key=lambda r: r[ROW_ID])
        for position, row in enumerate(rows):
            place = (position,) if table.parent is None else places[row[PARENT_ID]] + (int(row[LIST_IDX]),)
            if table.parent is not None:
                assert places[row[ROOT_ID]] == place[:1], f"table {name}: row {place} names another root row"
            places[row[ROW_ID]] = place
            keyed[place] = {c: (as_json(v) if c in json_columns else v) for c, v in row.items() if c not in SYSTEM}
        out[name] = keyed
    return out


def differences(left: dict[Place, dict[str, Any]], right: dict[Place, dict[str, Any]]) -> Iterable[str]:
    for place in sorted(set(left) | set(right)):
        a, b = left.get(place), right.get(place)
        if a != b:
            changed = sorted(c for c in set(a or {}) | set(b or {}) if (a or {}).get(c) != (b or {}).get(c))
            yield f"row {place}: " + "; ".join(f"{c}: {(a or {}).get(c)!r:.60} != {(b or {}).get(c)!r:.60}"
                                               for c in changed[:4])


def assert_same_rows(expected: loadbay.Pipeline, got: loadbay.Pipeline) -> None:
    """Every data table of ``got`` holds the rows of ``expected``'s, place by place."""
    want, have = rows_by_place(expected), rows_by_place(got)
    assert set(have) == set(want)
    for name, rows in want.items():
        diff = list(differences(rows, have[name]))
        assert not diff, f"table {name}: {len(diff)} rows differ, first: {diff[:3]}"
        assert rows, f"table {name} is empty: the comparison would prove nothing"


def assert_frame_loads_as_its_dicts(make_pipeline: Any, frame: Any, rows: list[dict[str, Any]]) -> None:
    """``frame`` and ``rows`` (its dicts), each loaded into table ``t`` of a pipeline of its own, make the same
    schema and the same rows."""
    as_dicts, as_frame = make_pipeline("as_dicts"), make_pipeline("as_frame")
    as_dicts.run(rows, table_name="t").raise_on_failed_jobs()
    as_frame.run(frame, table_name="t").raise_on_failed_jobs()
    assert schema_shape(as_frame.schema) == schema_shape(as_dicts.schema)
    assert_same_rows(as_dicts, as_frame)


def fitting_64_bits(value: Any) -> Any:
    """``value`` with each integer past 64 bits divided by 10**9 until it fits."""
    if isinstance(value, dict):
        return {k: fitting_64_bits(v) for k, v in value.items()}
    if isinstance(value, list):
        return [fitting_64_bits(v) for v in value]
    while isinstance(value, int) and not isinstance(value, bool) and not -2**63 <= value < 2**63:
        value //= 10**9
    return value


def sample_items(sample: str) -> list[Any]:
    name, _, variant = sample.partition(":")
    items = load_sample(name)
    items = items if isinstance(items, list) else [items]
    return fitting_64_bits(items) if variant == "gwei" else items


@pytest.mark.parametrize("sample", SAMPLES)
def test_dicts_and_arrow_give_identical_tables(make_pipeline, tmp_path, sample):
    items = sample_items(sample)
    table = sample.split(".")[0]
    as_dicts = make_pipeline("as_dicts")
    as_arrow = make_pipeline("as_arrow")
    path = as_jsonl(items, tmp_path / f"{table}.jsonl")
    read_as = {"rows" if isinstance(b, list) else "arrow" for b in json_reader.json_batches(path, None)}
    assert read_as == ({"rows"} if sample in ROW_PATH else {"arrow"})  # else the test compares dicts with dicts
    as_dicts.run(items, table_name=table)
    as_arrow.run(path, table_name=table)

    assert schema_shape(as_arrow.schema) == schema_shape(as_dicts.schema)
    assert_same_rows(as_dicts, as_arrow)


JSON_SHAPES = [
    ("github_events.json", {"columns": {"payload": {"data_type": "json"}}}),  # each event type its own keys
    ("github_events.json", {"max_table_nesting": 1}),
    ("github_events.json", {"max_table_nesting": 0}),
    ("lists_of_objects", {}),
]


def objects_in_lists() -> list[Any]:
    """Lists of lists of objects whose keys come and go (a list in a list is json), and null elements."""
    return [{"id": 0, "grid": [[{"a": 1}, {"b": None}], [], None, [{"a": 2, "c": {"d": 1}}]]},
            {"id": 1, "grid": None},
            {"id": 2, "grid": [[{}], [{"b": "x", "a": None}]]}]


@pytest.mark.parametrize("sample,hints", JSON_SHAPES, ids=["payload_json", "nesting_1", "nesting_0", "lists"])
def test_objects_stored_as_json_keep_the_keys_they_were_written_with(make_pipeline, tmp_path, sample, hints):
    """A JSON file's object becomes a struct of every key the file has (a missing key reads as null); where
    it is stored as json text, it is stored as written, as its dict is: no key added, none lost."""
    items = objects_in_lists() if sample == "lists_of_objects" else sample_items(sample)
    table = sample.split(".")[0]
    path = as_jsonl(items, tmp_path / f"{table}.jsonl")
    assert {"rows" if isinstance(b, list) else "arrow" for b in json_reader.json_batches(path, None)} == {"arrow"}
    as_dicts, as_arrow = make_pipeline("as_dicts"), make_pipeline("as_arrow")
    as_dicts.run(loadbay.resource(items, table, **hints))
    as_arrow.run(loadbay.resource(path, table, **hints))

    shape = schema_shape(as_dicts.schema)
    assert schema_shape(as_arrow.schema) == shape
    assert any("json" in columns.values() for columns in shape.values())  # else nothing here is json text
    assert_same_rows(as_dicts, as_arrow)


def _object_cases() -> dict[str, list[Any]]:
    """Values of one pandas object column that Arrow would refuse or change (a date from a Decimal, a
    double from a bool, a date from a datetime, structs and lists from tuples and sets)."""
    import datetime as dt
    import uuid
    from decimal import Decimal

    return {
        "date_decimal": [dt.date(2020, 1, 2), Decimal("1.5"), None],
        "datetime_uuid": [dt.datetime(2020, 1, 1, 1, 2, 3), uuid.UUID(int=3), None],
        "int_uuid": [7, uuid.UUID(int=3), 8],
        "float_bool": [0.5, True, None],
        "text_bytes": ["a", b"\x01", None],
        "int_float": [1, 2.5, 3],
        "lists_int_float": [[1, 2.5], [3], None],
        "tuple_set": [(1, 2), {3}, frozenset()],
        "date_datetime": [dt.date(2020, 1, 2), dt.datetime(2020, 1, 1, 5), None],
        "aware_naive": [dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2020, 1, 1, 3), None],
        "int_past_64_bits": [1, 2**70, None],
        "lone_surrogate": ["ok", "bad \ud800 here", None],
    }


@pytest.mark.parametrize("case", list(_object_cases()))
def test_a_pandas_object_column_loads_as_its_dicts_do(make_pipeline, case):
    """An object column Arrow cannot keep as it is makes the frame load as its dicts: the same tables, the
    same variant columns, no value coerced."""
    pd = pytest.importorskip("pandas")
    values = _object_cases()[case]
    rows = [{"id": i, "c": v} for i, v in enumerate(values)]
    frame = pd.DataFrame({"id": range(len(values)), "c": pd.Series(values, dtype=object)})
    assert_frame_loads_as_its_dicts(make_pipeline, frame, rows)


def test_arrow_values_pandas_and_polars_frames_load_as_their_dicts_do(make_pipeline):
    """Dictionary-encoded structs and lists (Arrow casts no dictionary to a nested type), a polars ``Object``
    column (exported by Arrow as 8-byte addresses), a polars ``Int128`` (no Arrow type) and pandas column
    labels that are not text."""
    pd, pl = pytest.importorskip("pandas"), pytest.importorskip("polars")
    import uuid

    rows = [{"id": 0, "d": {"a": 1}, "l": [1, 2], "u": uuid.UUID(int=5)}, {"id": 1, "d": {"a": 2}, "l": [], "u": None}]
    encoded = pa.table({"id": [0, 1],  # each value once in the dictionary, named by index
                        "d": pa.DictionaryArray.from_arrays(pa.array([0, 1]), pa.array([{"a": 1}, {"a": 2}])),
                        "l": pa.DictionaryArray.from_arrays(pa.array([0, 1]), pa.array([[1, 2], []]))})
    objects = pl.DataFrame({"id": [0, 1], "u": pl.Series([uuid.UUID(int=5), None], dtype=pl.Object),
                            "wide": pl.Series([2**100, -5], dtype=pl.Int128)})  # no Arrow type for polars' Int128
    labels = pd.DataFrame({0: [0, 1], 1: ["a", "b"]})
    as_dicts, as_columns = make_pipeline("as_dicts"), make_pipeline("as_columns")
    as_dicts.run([loadbay.resource([{k: v for k, v in r.items() if k != "u"} for r in rows], "arrow"),
                  loadbay.resource([{"id": r["id"], "u": r["u"], "wide": w} for r, w in zip(rows, [2**100, -5])],
                                   "objects"),
                  loadbay.resource([{"0": 0, "1": "a"}, {"0": 1, "1": "b"}], "labels")]).raise_on_failed_jobs()
    as_columns.run([loadbay.resource(encoded, "arrow"), loadbay.resource(objects, "objects"),
                    loadbay.resource(labels, "labels")]).raise_on_failed_jobs()

    assert schema_shape(as_columns.schema) == schema_shape(as_dicts.schema)
    assert_same_rows(as_dicts, as_columns)
    assert rows_by_place(as_dicts)["objects"][(0,)]["u"] == str(uuid.UUID(int=5))


def _nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


JSON_FILE_CASES = {
    # a batch with an integer past 64 bits is read as Python rows: from its lines, not from DuckDB's structs
    "past_64_bits_json_objects": ([{"o": {"a": 1}, "n": 2**64}, {"o": {"b": 2}, "n": 1}], {"max_table_nesting": 0}),
    "past_64_bits_key_order": ([{"a": 1, "n": 2**64}, {"b": 0.5, "a": 1.5}], {}),
    # child tables first met in one root row, in the order the dict path walks it
    "tables_by_element": ([{"a": [{"x": [], "y": [1]}, {"x": [1]}]}], {}),
    "tables_depth_first": ([{"a": [{"y": [1]}], "b": [1]}], {}),
    # past DuckDB's Arrow export (63 levels) and its parser (128): Python rows
    "nested_63": ([{"id": 1, "d": _nested(63)}], {}),
    "nested_129": ([{"id": 1, "d": _nested(129)}], {}),
}


@pytest.mark.parametrize("case", list(JSON_FILE_CASES))
def test_a_json_file_makes_its_dicts_tables_and_columns_in_their_order(make_pipeline, tmp_path, case):
    items, hints = JSON_FILE_CASES[case]
    as_dicts, as_file = make_pipeline("as_dicts"), make_pipeline("as_file")
    path = as_jsonl(items, tmp_path / "t.jsonl")
    as_dicts.run(loadbay.resource(items, "t", **hints)).raise_on_failed_jobs()
    as_file.run(loadbay.resource(path, "t", **hints)).raise_on_failed_jobs()

    def order(p: loadbay.Pipeline) -> list[tuple[str, list[str]]]:
        return [(t.name, list(t.columns)) for t in p.schema.data_tables()]

    assert order(as_file) == order(as_dicts)
    assert_same_rows(as_dicts, as_file)


def test_a_list_under_a_dict_then_under_a_list_of_dicts_loads_as_its_dicts_do(make_pipeline):
    """``o.n1`` then, in a later run, ``o[].n1``: both join to ``t__o__n1``; the second gets a table of its own
    (a tagged name) on both paths, so each child row's parent is in its table's parent table."""
    runs = [[{"id": 1, "o": {"n1": [1, 2]}}], [{"id": 2, "o": [{"n1": [3]}]}]]
    as_dicts, as_arrow = make_pipeline("as_dicts"), make_pipeline("as_arrow")
    for rows in runs:
        as_dicts.run(rows, table_name="t").raise_on_failed_jobs()
        as_arrow.run(pa.Table.from_pylist(rows), table_name="t").raise_on_failed_jobs()

    def order(p: loadbay.Pipeline) -> list[tuple[str, str | None, list[str]]]:
        return [(t.name, t.parent, list(t.columns)) for t in p.schema.data_tables()]

    assert order(as_arrow) == order(as_dicts)
    assert [t.parent for t in as_dicts.schema.data_tables() if t.name.startswith("t__o__n1")] == ["t", "t__o"]
    for p in (as_dicts, as_arrow):
        for table in p.schema.data_tables():
            if table.parent is not None:  # every child row's parent is a row of the table's parent
                orphans = query(p, f"SELECT count(*) FROM {ident(p, table.name)} c WHERE NOT EXISTS (SELECT 1 FROM "
                                   f"{ident(p, table.parent)} t WHERE t.{ident(p, ROW_ID)} = c.{ident(p, PARENT_ID)})")
                assert orphans[0][0] == 0, table.name
        assert sorted(r["value"] for name, rows in rows_by_place(p).items() if name.startswith("t__o__n1")
                      for r in rows.values()) == [1, 2, 3]


@pytest.mark.parametrize("arrow", [False, True])
def test_a_merge_key_of_another_type_is_refused_naming_it_on_both_paths(make_pipeline, arrow):
    """A variant column would leave the key NULL: the staging table's NOT NULL refused it at load time, with
    a bare constraint error; now the run stops while normalizing, and the table keeps its rows."""
    from loadbay.common.exceptions import SchemaError

    p = make_pipeline()
    first, second = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], [{"id": "abc", "v": "c"}]
    p.run(loadbay.resource(pa.Table.from_pylist(first) if arrow else first, "t", write_disposition="merge",
                           primary_key="id")).raise_on_failed_jobs()
    with pytest.raises(SchemaError, match=r"column 'id' \(primary key, bigint\) got .* 'abc'"):
        p.run(loadbay.resource(pa.Table.from_pylist(second) if arrow else second, "t", write_disposition="merge",
                               primary_key="id"))
    assert sorted(query(p, f"SELECT {ident(p, 'id')} FROM {ident(p, 't')}")) == [(1,), (2,)]
    assert p.pending_packages() == []


@pytest.mark.parametrize("arrow", [False, True])
def test_a_key_value_of_another_type_is_discarded_by_a_discard_row_contract_though_a_variant_exists(
        make_pipeline, arrow):
    """``id__v_text`` was made while ``id`` was no key yet; the merge's ``"xyz"`` went to it with a NULL key,
    and the load failed on the staging table's NOT NULL (the package stuck pending). Discarded now."""
    p = make_pipeline()
    p.run([{"id": 1, "v": "a"}], table_name="t").raise_on_failed_jobs()
    p.run([{"id": "abc", "v": "b"}], table_name="t").raise_on_failed_jobs()  # a variant, while id is no key
    for rows in ([{"id": 2, "v": "c"}], [{"id": "xyz", "v": "d"}]):
        p.run(loadbay.resource(pa.Table.from_pylist(rows) if arrow else rows, "t", write_disposition="merge",
                               primary_key="id"), schema_contract={"data_type": "discard_row"}).raise_on_failed_jobs()
    got = query(p, f"SELECT {ident(p, 'id')}, {ident(p, 'v')}, {ident(p, 'id__v_text')} FROM {ident(p, 't')}")
    assert sorted((v, None if i is None else as_int(i), text) for i, v, text in got) == [
        ("a", 1, None), ("b", None, "abc"), ("c", 2, None)]
    assert p.pending_packages() == []


@pytest.mark.parametrize("rows_path", [False, True])
def test_list_columns_of_arrows_own_to_pandas_load_as_their_dicts_do(make_pipeline, rows_path):
    """``Table.to_pandas()`` makes numpy arrays of list cells (also inside structs): Arrow takes them back
    exactly; where another column sends the frame row by row, they become lists, as in the frame's dicts."""
    pytest.importorskip("pandas")
    import uuid

    table = pa.table({"id": [1, 2, 3], "tags": [["a", "b"], [], None], "n": [[1, 2], [3], []],
                      "items": [[{"v": 1, "w": [1.5]}], [{"v": 2, "w": []}], None]})
    frame = table.to_pandas()
    assert type(frame["tags"][0]).__name__ == "ndarray"  # the case this test is about
    rows = table.to_pylist()
    if rows_path:  # a UUID column: Arrow would change it, so the frame goes as rows
        frame["u"] = [uuid.UUID(int=i) for i in range(3)]
        rows = [{**row, "u": uuid.UUID(int=i)} for i, row in enumerate(rows)]
    assert_frame_loads_as_its_dicts(make_pipeline, frame, rows)


def test_rows_a_contract_discards_leave_no_column_or_table_for_later_runs(make_pipeline):
    """Run 2 discards row 2 (text in a bool column) on both paths; its new column ``n`` (walked before the
    refused key on the dict path) and its list made a bigint column and a child table on the Arrow path,
    so run 3's ``n: "hello"`` was a new type and its row was discarded too: a row lost."""
    runs = [[{"id": 1, "c": True}],
            [{"id": 2, "n": 5, "items": [{"e": 1}], "c": "x"}, {"id": 3, "c": None}],
            [{"id": 4, "n": "hello"}]]
    as_dicts, as_arrow = make_pipeline("as_dicts"), make_pipeline("as_arrow")
    for number, rows in enumerate(runs):
        contract = {"data_type": "discard_row"} if number else None
        as_dicts.run(rows, table_name="t", schema_contract=contract).raise_on_failed_jobs()
        as_arrow.run(pa.Table.from_pylist(rows), table_name="t", schema_contract=contract).raise_on_failed_jobs()
    assert schema_shape(as_arrow.schema) == schema_shape(as_dicts.schema)
    assert "t__items" not in as_arrow.schema.tables and as_arrow.schema.tables["t"].columns["n"].data_type == "text"
    for p in (as_dicts, as_arrow):
        got = query(p, f"SELECT {ident(p, 'id')}, {ident(p, 'n')} FROM {ident(p, 't')} ORDER BY 1")
        assert [(as_int(i), n) for i, n in got] == [(1, None), (3, None), (4, "hello")]
