"""Identifier naming: snake_case, byte-bounded deterministic shortening, paths, tags and variants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadbay.common.capabilities import DEFAULTS
from loadbay.common.schema.naming import (
    join_path,
    normalize_identifier,
    shorten,
    snake_case,
    tagged,
    variant_name,
)

REPO = Path(__file__).resolve().parents[2]
LIMIT = DEFAULTS.with_(max_identifier_length=63).max_identifier_length


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


# -- snake_case --------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("createdAt", "created_at"),
    ("userId", "user_id"),
    ("userID", "user_id"),
    ("ID", "id"),
    ("HTTPRequest ID", "http_request_id"),
    ("XMLHttpRequest", "xml_http_request"),
    ("getHTTPResponseCode", "get_http_response_code"),
    ("value2Go", "value2_go"),
    ("already_snake", "already_snake"),
    ("Foo Bar!", "foo_bar_"),
    ("foo-bar", "foo_bar"),
    ("a.b c", "a_b_c"),
    ("a  b", "a_b"),
    ("  padded  ", "padded"),
    ("a___b", "a__b"),
    ("1st", "_1st"),
    ("123", "_123"),
    ("", "_empty"),
    ("Größe", "größe"),
    ("ÄpfelBaum", "äpfel_baum"),
    ("éclair Count", "éclair_count"),
    ("名前", "名前"),
])
def test_snake_case(raw: str, expected: str) -> None:
    assert snake_case(raw) == expected


def test_snake_case_keeps_plus_and_minus_numbers_apart() -> None:
    names = {snake_case("+1"), snake_case("-1"), snake_case("1")}
    assert len(names) == 3
    assert snake_case("+1") == "plus1"
    assert snake_case("-1") == "minus1"


@pytest.mark.parametrize("raw", ["createdAt", "HTTPRequest ID", "1st", "+1", "-1", "Foo Bar!", "a___b",
                                 "ÄpfelBaum", "名前", "", "  x  "])
def test_snake_case_is_idempotent(raw: str) -> None:
    """Hints name columns by their normalized names, which must normalize to themselves."""
    once = snake_case(raw)
    assert snake_case(once) == once


@pytest.mark.parametrize("raw", ["a", "createdAt", "Größe", "名前", "1st", "!!!"])
def test_snake_case_output_is_an_identifier_that_starts_with_no_digit(raw: str) -> None:
    out = snake_case(raw)
    assert out
    assert not out[0].isdigit()
    assert all(ch.isalnum() or ch == "_" for ch in out)


def test_snake_case_hyphen_between_word_and_digit_is_a_separator() -> None:
    """Only a leading sign reads as "minus"; "utf-8" once became "utfminus8"."""
    cases = {"utf-8": "utf_8", "iso-8859-1": "iso_8859_1", "address-line-2": "address_line_2"}
    assert {raw: snake_case(raw) for raw in cases} == cases


# -- shorten -----------------------------------------------------------------------------------

def test_shorten_leaves_names_that_fit_unchanged() -> None:
    exact = "x" * LIMIT
    assert shorten(exact, LIMIT) == exact
    three_byte = "名" * (LIMIT // 3)  # exactly LIMIT bytes when LIMIT is a multiple of 3
    assert _utf8_len(three_byte) <= LIMIT
    assert shorten(three_byte, LIMIT) == three_byte


def test_shorten_counts_bytes_not_characters() -> None:
    name = "名" * 30  # 30 characters, 90 bytes
    assert len(name) <= LIMIT < _utf8_len(name)
    out = shorten(name, LIMIT)
    assert out != name
    assert _utf8_len(out) <= LIMIT


@pytest.mark.parametrize("unit", ["é", "名", "😀", "aé名😀"])
def test_shorten_respects_a_utf8_byte_limit_and_never_splits_a_character(unit: str) -> None:
    name = unit * 40
    for limit in range(12, 70):
        out = shorten(name, limit)
        assert _utf8_len(out) <= limit, limit
        prefix = out.rsplit("_", 1)[0] if out != name else out
        assert name.startswith(prefix), limit  # the kept part is whole characters of the original


def test_a_100_character_name_fits_63() -> None:
    name = "customer_lifetime_value_prediction_" + "x" * 65
    assert len(name) == 100
    out = shorten(name, LIMIT)
    assert _utf8_len(out) <= LIMIT
    assert out.startswith("customer_lifetime_value_prediction_")


def test_shorten_is_deterministic_within_a_process() -> None:
    name = "a_rather_long_column_name_that_will_certainly_not_fit_into_sixty_three_bytes"
    assert shorten(name, LIMIT) == shorten(name, LIMIT)
    shorten.cache_clear()
    assert shorten(name, LIMIT) == shorten(name, LIMIT)


def test_shorten_is_deterministic_across_processes() -> None:
    """A schema stored by one run must name columns exactly as the next run does."""
    name = "名前_a_rather_long_column_name_that_will_certainly_not_fit_into_the_limit"
    code = ("import sys; from loadbay.common.schema.naming import shorten; "
            f"sys.stdout.buffer.write(shorten({name!r}, {LIMIT}).encode('utf-8'))")
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
        outs.add(done.stdout.decode("utf-8"))
    assert outs == {shorten(name, LIMIT)}


def test_long_names_with_a_shared_prefix_stay_distinct() -> None:
    prefix = "transactions__access_list__storage_keys__" + "p" * 60
    names = [f"{prefix}{i}" for i in range(500)]
    outs = [shorten(n, LIMIT) for n in names]
    assert len(set(outs)) == len(names)
    assert all(_utf8_len(o) <= LIMIT for o in outs)


# -- paths, tags, variants ---------------------------------------------------------------------

def test_join_path_joins_with_a_double_underscore() -> None:
    assert join_path("payload", "commits", LIMIT) == "payload__commits"


def test_join_path_shortens_the_whole_path() -> None:
    parent = "p" * 50
    out = join_path(parent, "child_name_that_is_long", LIMIT)
    assert _utf8_len(out) <= LIMIT
    assert out != join_path(parent, "child_name_that_is_longer", LIMIT)


def test_normalize_identifier_is_snake_case_then_shortened() -> None:
    raw = "SomeVeryLongCamelCaseName" * 5
    out = normalize_identifier(raw, LIMIT)
    assert _utf8_len(out) <= LIMIT
    assert out == shorten(snake_case(raw), LIMIT)
    assert out.startswith("some_very_long_camel_case_name")


def test_tagged_sets_apart_names_from_different_sources() -> None:
    a = tagged("block_hash", "blockHash", LIMIT)
    b = tagged("block_hash", "block_hash", LIMIT)
    assert a != b
    assert a != "block_hash" and a.startswith("block_hash_")
    assert tagged("block_hash", "blockHash", LIMIT) == a


def test_tagged_fits_the_limit() -> None:
    out = tagged("名" * 30, "source", LIMIT)
    assert _utf8_len(out) <= LIMIT


def test_variant_name() -> None:
    assert variant_name("amount", "text", LIMIT) == "amount__v_text"
    long = "c" * 70
    variants = {variant_name(long, t, LIMIT) for t in ("text", "double", "bool", "json")}
    assert len(variants) == 4
    assert all(_utf8_len(v) <= LIMIT for v in variants)
