"""NaN and ±infinity, gated by the capability ``supports_nan_infinity``: a destination that has it keeps them
in the double column, exactly, through every file format (JSON has no spelling for them); one that lacks it
gets them as text (``'NaN'``, ``'Infinity'``, ``'-Infinity'``) in the column's text variant, the double
column NULL, with a warning naming table and column (README, "Bad values")."""

from __future__ import annotations

import logging
import math

import pytest

from loadbay.destinations.testing.conformance.helpers import (ALL_FORMATS, by_id, ident, query, require_format,
                                                              run_ok, table_columns, values_of)

PATHS = {"row_by_row": {}, "in_batches": {"batch_size": 2}}
"""The first batch is typed row by row; later ones (``batch_size=2``: from row 3 on) a column at a time."""


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_nan_and_infinities_stay_exact_or_go_to_the_text_variant(make_pipeline, file_format, path, caplog):
    p = make_pipeline(**PATHS[path])
    require_format(p, file_format)
    caplog.set_level(logging.WARNING)
    rows = [{"id": 1, "f": 1.5, "xs": [0.5]}, {"id": 2, "f": 2.5},
            {"id": 3, "f": math.nan, "xs": [1.0, math.inf]}, {"id": 4, "f": 4.0},
            {"id": 5, "f": math.inf}, {"id": 6, "f": -math.inf},
            {"id": 7, "f": 7.0, "g": -math.inf}, {"id": 8}]  # g: a new column whose first value is -inf
    run_ok(p, rows, table_name="t", loader_file_format=file_format)

    columns = table_columns(p, "t")
    if p.capabilities.supports_nan_infinity:  # the double column holds them
        assert "f__v_text" not in columns and "g__v_text" not in columns
        got = {i: v for i, (v,) in by_id(p, "t", "f").items()}
        assert math.isnan(got.pop(3)) and got == {1: 1.5, 2: 2.5, 4: 4.0, 5: math.inf, 6: -math.inf, 7: 7.0, 8: None}
        assert by_id(p, "t", "g")[7] == (-math.inf,)
        assert values_of(p, "t__xs") == [0.5, 1.0, math.inf]
        return
    # the same values, spelled as text in the variant column; the double column is NULL
    assert columns["f"] == "double" and columns["f__v_text"] == "text" and columns["g__v_text"] == "text"
    assert by_id(p, "t", "f", "f__v_text") == {
        1: (1.5, None), 2: (2.5, None), 3: (None, "NaN"), 4: (4.0, None), 5: (None, "Infinity"),
        6: (None, "-Infinity"), 7: (7.0, None), 8: (None, None)}
    assert by_id(p, "t", "g", "g__v_text")[7] == (None, "-Infinity")
    assert values_of(p, "t__xs") == [0.5, 1.0, None]
    assert [r[0] for r in query(p, f"SELECT {ident(p, 'value__v_text')} FROM {ident(p, 't__xs')} "
                                   f"WHERE {ident(p, 'value__v_text')} IS NOT NULL")] == ["Infinity"]
    assert any("'f__v_text'" in r.getMessage() and "table 't' column 'f'" in r.getMessage() for r in caplog.records)
