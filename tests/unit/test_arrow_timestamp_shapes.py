"""ISO text columns of one fixed shape skip the regex (``arrow_shapes.uniform_shape``) and must parse exactly as
before: a differential test against the regex-only functions as they were (copied here as the oracle), over
columns of many shapes (offsets, fractions of 1-9 digits, 'T' or a space, z or Z, no seconds), values of those
shapes that are no dates (Feb 29 of a common year, month 13, hour 24), and columns that are not uniform
(mixed shapes, nulls, empty strings, "NaT", non-ASCII digits, a trailing newline, slices, NULL slots holding
bytes, large strings)."""

from __future__ import annotations

import random
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from loadbay.common import arrow_build
from loadbay.common.arrow_convert import NAT_TEXT, Rules, _text_to_dates, _text_to_timestamps, parse_dates, parse_timestamps
from loadbay.common.arrow_shapes import uniform_shape
from loadbay.common.arrow_types import ISO_DATE, ISO_DATETIME
from loadbay.common.schema.inference import NotCoercible, parse_date, parse_datetime
from loadbay.common.schema.types import Column

_UTC = pa.timestamp("us", "UTC")


# -- the oracle: the functions before the fast path, verbatim but for names ----------------------------

def old_parse_timestamps(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    text = array if array.type == pa.string() else array.cast(pa.string())
    matches = pc.fill_null(pc.match_substring_regex(text, ISO_DATETIME), arrow_build.FALSE)
    if not pc.any(matches).as_py():
        return pa.nulls(len(text), _UTC), matches
    candidates = pc.if_else(matches, text, arrow_build.scalar(None, pa.string()))
    try:
        parsed = candidates.cast(_UTC)
    except pa.ArrowInvalid:
        parsed = _old_canonical(candidates)
    return parsed, pc.fill_null(parsed.is_valid(), arrow_build.FALSE)


def _old_canonical(candidates: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(candidates, "z$", "Z")
    text = pc.replace_substring_regex(text, r"(\.\d{6})\d+", r"\1")
    zoned = pc.match_substring_regex(text, r"(Z|[+-]\d{2}(:?\d{2})?)$")
    text = pc.if_else(zoned, text, pc.binary_join_element_wise(text, "Z", ""))
    try:
        return text.cast(_UTC)
    except pa.ArrowInvalid:
        return pa.array([_old_try(parse_datetime, v) for v in candidates.to_pylist()], _UTC)


def old_parse_dates(array: pa.Array) -> tuple[pa.Array, pa.Array]:
    text = array if array.type == pa.string() else array.cast(pa.string())
    matches = pc.fill_null(pc.match_substring_regex(text, ISO_DATE), arrow_build.FALSE)
    if not pc.any(matches).as_py():
        return pa.nulls(len(text), pa.date32()), matches
    candidates = pc.if_else(matches, text, arrow_build.scalar(None, pa.string()))
    try:
        parsed = candidates.cast(pa.date32())
    except pa.ArrowInvalid:
        parsed = pa.array([_old_try(parse_date, v) for v in candidates.to_pylist()], pa.date32())
    return parsed, pc.fill_null(parsed.is_valid(), arrow_build.FALSE)


def _old_try(parse, value):
    if value is None:
        return None
    try:
        return parse(value)
    except NotCoercible:
        return None


def old_parsed_failures(array: pa.Array, ok: pa.Array) -> pa.Array | None:
    failed = pc.and_(pc.invert(ok), pc.not_equal(array, NAT_TEXT))
    return failed if pc.any(failed).as_py() else None


# -- columns -------------------------------------------------------------------------------------------

SHAPES = [  # D = a random digit
    "DDDD-DD-DDTDD:DD:DD+00:00", "DDDD-DD-DDTDD:DD:DDZ", "DDDD-DD-DDTDD:DD:DDz", "DDDD-DD-DD DD:DD:DD",
    "DDDD-DD-DD DD:DD", "DDDD-DD-DDTDD:DD", "DDDD-DD-DDTDD:DDZ", "DDDD-DD-DDTDD:DD:DD-05:30",
    "DDDD-DD-DDTDD:DD:DD+0530", "DDDD-DD-DDTDD:DD:DD+05", "DDDD-DD-DDTDD:DD:DD+DD:DD", "DDDD-DD-DDTDD:DD:DD-DDDD",
    *[f"DDDD-DD-DDTDD:DD:DD.{'D' * k}{zone}" for k in range(1, 10) for zone in ("", "Z", "+00:00", "-08:00", "z")],
    "DDDD-DD-DD DD:DD:DD.DDDDDD+01", "DDDD-DD-DDTDD:DD:DD:DD", "DDDD-DD-DDTDD:DD:DD.", "DDDD-DD-DDXDD:DD:DD",
    "DDDD-DD-DD", "DDDD/DD/DD DD:DD:DD", "DDDD-DD-DDTDD:DD:DD.DDDDDDDDDD", "DDDDD-DD-DDTDD:DD:DD",
]


def realistic(rng: random.Random) -> dict[str, str]:
    """Digits that make a date and time most of the time, and the odd one that does not (Feb 29 in a common
    year, Feb 30, month 13, day 00, hour 24, minute 60, second 60)."""
    year, month, day = rng.choice([2024, 2023, 1900, 2000, 1969, 9999, 1]), rng.randint(1, 12), rng.randint(1, 28)
    hour, minute, second = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    odd = rng.random()
    if odd < 0.02:
        month, day = 2, rng.choice([29, 30])
    elif odd < 0.03:
        month = 13
    elif odd < 0.04:
        day = 0
    elif odd < 0.05:
        hour = 24
    elif odd < 0.06:
        minute = 60
    elif odd < 0.07:
        second = 60
    digits = f"{year:04d}{month:02d}{day:02d}{hour:02d}{minute:02d}{second:02d}"
    return {"date": digits}


def fill(shape: str, rng: random.Random, *, valid_dates: bool) -> str:
    digits = iter(realistic(rng)["date"] if valid_dates else "")
    out = []
    for ch in shape:
        if ch == "D":
            out.append(next(digits, None) or str(rng.randint(0, 9)))
        else:
            out.append(ch)
    return "".join(out)


def column(shape: str, n: int, rng: random.Random, *, nulls: float = 0.0, valid_dates: bool = True) -> pa.Array:
    values = [None if rng.random() < nulls else fill(shape, rng, valid_dates=valid_dates) for _ in range(n)]
    return pa.array(values, pa.string())


def assert_same(array: pa.Array, *, convert: bool = True) -> None:
    for new, old in ((parse_timestamps, old_parse_timestamps), (parse_dates, old_parse_dates)):
        got_values, got_mask = new(array)
        want_values, want_mask = old(array)
        assert got_values.type == want_values.type
        assert got_values.equals(want_values), (new.__name__, array.to_pylist()[:5])
        assert got_mask.equals(want_mask), (new.__name__, array.to_pylist()[:5])
    if not convert:
        return
    rules = Rules(decimal_default=(38, 9), max_decimal_precision=38, nan_infinity=True)
    for to_type, old, storage, data_type in ((_text_to_timestamps, old_parse_timestamps, _UTC, "timestamp"),
                                             (_text_to_dates, old_parse_dates, pa.date32(), "date")):
        values, failed = to_type(array, Column(name="c", data_type=data_type), storage, rules)
        want_values, ok = old(array)
        want_failed = old_parsed_failures(array, ok)
        assert values.equals(want_values.cast(storage))
        assert (failed is None and want_failed is None) or failed.equals(want_failed)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("nulls", [0.0, 0.5])
def test_columns_of_one_shape_parse_as_with_the_regex(shape: str, nulls: float) -> None:
    rng = random.Random(f"{shape}-{nulls}")
    for valid_dates in (True, False):
        array = column(shape, 300, rng, nulls=nulls, valid_dates=valid_dates)
        assert_same(array)
        assert_same(array.slice(7, 200))
        assert_same(array.cast(pa.large_string()))
        assert_same(array.cast(pa.string_view()), convert=False)  # conversions get plain arrays (no views)


def test_the_fast_path_is_taken_for_uniform_columns_only() -> None:
    iso = re.compile(ISO_DATETIME.encode())
    rng = random.Random(1)
    assert uniform_shape(column("DDDD-DD-DDTDD:DD:DD+00:00", 100, rng, nulls=0.5), iso)
    assert uniform_shape(column("DDDD-DD-DDTDD:DD:DD.DDDDDDDDDz", 100, rng), iso)
    assert uniform_shape(column("DDDD-DD-DDTDD:DD:DD+00:00", 100, rng).slice(3, 50), iso)
    assert not uniform_shape(pa.array(["2024-01-01T00:00:00Z", "2024-01-01 00:00:00Z"]), iso)  # T and a space
    assert not uniform_shape(pa.array(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00z"]), iso)
    assert not uniform_shape(pa.array(["2024-01-01T00:00:00Z", "2024-01-01T00:00:0AZ"]), iso)
    assert not uniform_shape(pa.array(["2024/01/01T00:00:00Z", "2024/01/01T00:00:00Z"]), iso)  # same, not ISO
    a = "2024-01-01T00:00:00Z"  # values whose lengths differ but whose bytes, cut every 20, look like a's
    assert not uniform_shape(pa.array([a, a[:10], a[10:] + a]), iso)
    assert not uniform_shape(pa.array([a, a[:10], None, a[10:] + a]), iso)
    assert_same(pa.array([a, a[:10], None, a[10:] + a]))
    assert not uniform_shape(pa.array([None, None], pa.string()), iso)
    assert not uniform_shape(pa.array(["", ""]), iso)


def test_mixed_and_odd_columns_parse_as_with_the_regex() -> None:
    rng = random.Random(7)
    odd = ["", "NaT", " 2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z ", "2024-01-01T00:00:00Z\n",
           "２024-01-01T00:00:00Z", "2024-01-01T00:00:0２Z", "2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z",
           "2024-01-01T00:00:00.123456789+05:30", "2024-01-01 00:00", "2024-01-01", "2024-13-01", None]
    for value in odd:
        assert_same(pa.array([value] * 3, pa.string()))
        assert_same(pa.array([value, None, value], pa.string()))
    for _ in range(40):
        shapes = rng.sample(SHAPES, 3)
        values = [None if rng.random() < 0.2 else rng.choice(odd + [fill(s, rng, valid_dates=True) for s in shapes])
                  for _ in range(60)]
        assert_same(pa.array(values, pa.string()))
    # one shape but for one value of another length, or the same length and another separator
    base = column("DDDD-DD-DDTDD:DD:DD+00:00", 50, rng).to_pylist()
    for other in ("2024-01-01T00:00:00Z", "2024-01-01 00:00:00+00:00", "2024-01-01T00:00:00-00:00", "NaT"):
        assert_same(pa.array(base[:25] + [other] + base[25:], pa.string()))


def test_null_slots_that_hold_bytes_do_not_pass_for_values() -> None:
    """A NULL's slot may hold bytes (Arrow does not forbid it): the column is then not shown uniform."""
    values = b"2024-01-01T00:00:00Zxxxx2024-01-02T00:00:00Z"
    offsets = np.array([0, 20, 24, 44], dtype=np.int32)
    validity = pa.py_buffer(np.packbits(np.array([1, 0, 1], dtype=bool), bitorder="little"))
    array = pa.Array.from_buffers(pa.string(), 3, [validity, pa.py_buffer(offsets), pa.py_buffer(values)], null_count=1)
    assert not uniform_shape(array, re.compile(ISO_DATETIME.encode()))
    assert_same(array)
    offsets = np.array([0, 20, 20, 40], dtype=np.int32)  # the usual layout: an empty NULL slot
    array = pa.Array.from_buffers(pa.string(), 3, [validity, pa.py_buffer(offsets),
                                                   pa.py_buffer(values[:20] + values[24:])], null_count=1)
    assert uniform_shape(array, re.compile(ISO_DATETIME.encode()))
    assert_same(array)
