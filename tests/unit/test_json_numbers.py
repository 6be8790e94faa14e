"""``json_reader.number_array`` types a batch of JSON number texts with one regex pass where they are all
floats: a differential test against the two-pass function it replaced (copied here as the oracle), over
integers, fractions, exponents, signs, leading zeros, numbers past 64 bits, texts that are no JSON number,
NULLs and batches that mix them. Where the old function gave up on integers beside fractions, the new one
hands on ``JsonNumbers`` holding what ``json.loads`` gives for each text."""

from __future__ import annotations

import json
import random
import re

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from loadbay.common.arrow_json import JsonNumbers
from loadbay.sources.json_reader import _MixedNumbers, number_array

_OLD_INTEGER = r"^-?[0-9]+$"
_OLD_NUMBER = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"


def old_number_array(text: pa.Array) -> pa.Array:
    text = text.cast(pa.string())
    if text.null_count == len(text):
        return pa.nulls(len(text))
    if not pc.all(pc.match_substring_regex(text, _OLD_NUMBER)).as_py():
        raise _MixedNumbers
    integers = pc.match_substring_regex(text, _OLD_INTEGER)
    if not pc.any(integers).as_py():
        return pc.cast(text, pa.float64())
    if not pc.all(integers).as_py():
        raise _MixedNumbers
    try:
        return pc.cast(text, pa.int64())
    except pa.ArrowInvalid:
        raise _MixedNumbers from None


INTEGERS = ["0", "-0", "7", "-12", "9223372036854775807", "-9223372036854775808"]
FLOATS = ["0.5", "-0.0", "773.96", "1e5", "1E5", "1e+5", "1e-5", "-2.5E-3", "1.5e300", "0e0", "123456789.123456789"]
ODD = ["01", "-01", "1.", ".5", "+1", "1e", "1e+", "--1", "1.5.5", "", " 1", "1 ", "true", '"1"', "NaN", "Infinity",
       "0x10", "9223372036854775808", "-9223372036854775809", "99999999999999999999", "1_000", "١"]


def outcome(f, values: list[str | None]):
    try:
        result = f(pa.array(values, pa.string()))
    except _MixedNumbers:
        return "mixed" if f is number_array else both_kinds(values)
    if isinstance(result.type, JsonNumbers):
        loaded = result.to_pylist()
        return "json_numbers", [(type(v), v) for v in loaded]
    return result.type, result.to_pylist()


def both_kinds(values: list[str | None]):
    """What the new function gives where the old one gave up: ``JsonNumbers`` when every text is a JSON
    number, the integers fit 64 bits and both kinds are there; otherwise it gives up too."""
    texts = [v for v in values if v is not None]
    if not all(re.fullmatch(_OLD_NUMBER, v) for v in texts):
        return "mixed"
    loaded = [json.loads(v) for v in texts]
    if any(isinstance(v, int) and not -2**63 <= v < 2**63 for v in loaded):
        return "mixed"
    if {type(v) for v in loaded} != {int, float}:
        return "mixed"
    return "json_numbers", [(type(v), v) for v in (None if v is None else json.loads(v) for v in values)]


@pytest.mark.parametrize("value", INTEGERS + FLOATS + ODD)
def test_each_text_alone_and_beside_others_types_as_before(value: str) -> None:
    for values in ([value], [value, None], [value] * 3, [value, "1"], [value, "1.5"], [None, value, "2e3"]):
        assert outcome(number_array, values) == outcome(old_number_array, values), values


def test_random_batches_type_as_before() -> None:
    rng = random.Random(3)
    pools = [INTEGERS, FLOATS, ODD, INTEGERS + FLOATS]
    for _ in range(500):
        pool = rng.choice(pools)
        values = [None if rng.random() < 0.2 else rng.choice(pool) for _ in range(rng.randint(1, 8))]
        assert outcome(number_array, values) == outcome(old_number_array, values), values
    assert outcome(number_array, [None, None]) == outcome(old_number_array, [None, None])


def test_the_usual_batches() -> None:
    assert outcome(number_array, ["773.96", None, "1.0"]) == (pa.float64(), [773.96, None, 1.0])
    assert outcome(number_array, ["1", None, "-2"]) == (pa.int64(), [1, None, -2])
    assert outcome(number_array, ["1", "1.5"]) == ("json_numbers", [(int, 1), (float, 1.5)])
    assert outcome(number_array, ["1", "1.5", "x"]) == "mixed"
    assert outcome(number_array, ["1.5", "18446744073709551616"]) == "mixed"
