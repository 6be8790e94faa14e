"""NaN and ±infinity survive every file format (JSON has no spelling for them: orjson writes null)."""

from __future__ import annotations

import math

import pytest

from loadbay.destinations.testing.conformance.helpers import ALL_FORMATS, query, require_format, run_ok


@pytest.mark.parametrize("file_format", ALL_FORMATS)
def test_nan_and_infinities_round_trip(make_pipeline, destination_name, file_format):
    p = make_pipeline()
    if not p.capabilities.supports_nan_infinity:
        pytest.skip(f"{destination_name}: double columns hold no NaN or infinity; they go to the text variant "
                    "(tests/integration/test_bad_values.py)")
    require_format(p, file_format)
    rows = [{"id": 1, "f": 1.5}, {"id": 2, "f": math.nan}, {"id": 3, "f": math.inf}, {"id": 4, "f": -math.inf},
            {"id": 5}]
    run_ok(p, rows, table_name="t", loader_file_format=file_format)
    got = dict(query(p, "SELECT id, f FROM t"))
    assert got[1] == 1.5 and math.isnan(got[2]) and got[3] == math.inf and got[4] == -math.inf
    assert got[5] is None
