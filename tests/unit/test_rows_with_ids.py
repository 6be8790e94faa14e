"""``RowsWithIds``: a flat batch's rows as items plus ids, read as the dicts the writers always got."""

from loadbay.common.schema.types import LOAD_ID, ROW_ID
from loadbay.common.storage.rows_with_ids import RowsWithIds


def test_reads_as_the_rows_it_stands_for_and_leaves_the_items_alone():
    items = [{"a": 1}, {"a": 2, "b": None}, {"a": 3}]
    rows = RowsWithIds(items, "L", ["x", "y", "z"], {"a": [1, 2, 3]})
    expected = [{"a": 1, LOAD_ID: "L", ROW_ID: "x"}, {"a": 2, "b": None, LOAD_ID: "L", ROW_ID: "y"},
                {"a": 3, LOAD_ID: "L", ROW_ID: "z"}]
    assert list(rows) == expected and rows == expected and expected == rows
    assert len(rows) == 3 and rows[1] == expected[1] and rows[-1] == expected[-1]
    part = rows[1:]
    assert isinstance(part, RowsWithIds) and list(part) == expected[1:] and part.row_ids == ["y", "z"]
    assert items == [{"a": 1}, {"a": 2, "b": None}, {"a": 3}]  # never copied into, never changed
    assert rows != expected[:2] and bool(RowsWithIds([], "L", [], {})) is False


def test_the_value_lists_are_sliced_with_the_rows():
    rows = RowsWithIds([{"a": 1}, {"a": 2}, {"a": 3}], "L", ["x", "y", "z"], {"a": [1, 2, 3]})
    part = rows[1:]
    assert part.columns == {"a": [2, 3]} and [r["a"] for r in part] == part.columns["a"]
