"""PostgreSQL's csv from Arrow (destinations/arrow_csv.py) without a server: bytea hex text for
every kind of binary array, the exact text of each type, and a rendering error reaching COPY's reader."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from loadbay.destinations.arrow_csv import CsvStream, bytea_hex, render

VALUES = [b"", None, b"\x00\x01\xff", bytes(range(256)), None, b"abc", b"\\x", b'"\n,']


@pytest.mark.parametrize("array", [
    pa.array(VALUES, pa.binary()), pa.array(VALUES, pa.large_binary()), pa.array(VALUES, pa.binary_view()),
    pa.array(VALUES, pa.binary())[2:7], pa.array([None, None], pa.binary()), pa.array([b""], pa.binary()),
    pa.array([], pa.binary()), pa.array([b"ab", None, b"\xff\x00"], pa.binary(2)),
], ids=["binary", "large", "view", "sliced", "all-null", "one-empty", "empty", "fixed-size"])
def test_bytea_hex(array):
    assert bytea_hex(array).to_pylist() == [None if v is None else "\\x" + v.hex() for v in array.to_pylist()]


def test_every_type_renders_as_postgresql_reads_it():
    batch = pa.record_batch({
        "s": pa.array(["", None, 'q"x', "a,b\nc"]),
        "f": pa.array([math.nan, -math.inf, -0.0, 0.1]),
        "ts": pa.array([datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc), None,
                        datetime(1, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 1, tzinfo=timezone.utc)],
                       pa.timestamp("us", tz="UTC")),
        "local": pa.array([datetime(2024, 1, 2, 3, 4, 5, 6)] * 4, pa.timestamp("us")),
        "d": pa.array([Decimal("12.345"), None, Decimal("-1"), Decimal(0)], pa.decimal128(38, 9)),
        "b": pa.array([True, False, None, True]),
        "tm": pa.array([time(13, 14, 15, 1), None, time(0, 0), time(23, 59, 59, 999999)], pa.time64("us")),
        "dd": pa.array([date(2024, 2, 29), None, date(1970, 1, 1), date(9999, 12, 31)]),
        "bin": pa.array([b"\x00", None, b"", b"'"]),
        "cat": pa.array(["x", None, "y", ""]).dictionary_encode(),
    })
    assert render(batch).to_pybytes().decode() == (
        '"",nan,"2024-01-02 03:04:05.123456Z",2024-01-02 03:04:05.000006,12.345000000,true,13:14:15.000001,'
        '2024-02-29,"\\x00","x"\n'
        ',-inf,,2024-01-02 03:04:05.000006,,false,,,,\n'
        '"q""x",-0,"0001-01-01 00:00:00.000000Z",2024-01-02 03:04:05.000006,-1.000000000,,00:00:00.000000,'
        '1970-01-01,"\\x","y"\n'
        '"a,b\nc",0.1,"2024-01-01 00:00:00.000000Z",2024-01-02 03:04:05.000006,0E-9,true,23:59:59.999999,'
        '9999-12-31,"\\x27",""\n')


def test_a_rendering_error_is_raised_to_the_reader_and_the_thread_ends():
    def batches():
        yield pa.record_batch({"a": pa.array([1, 2])})
        raise pa.ArrowInvalid("damaged row group")

    with CsvStream(batches()) as stream:
        assert stream.read(1 << 20) == b"1\n2\n"
        with pytest.raises(pa.ArrowInvalid, match="damaged row group"):
            stream.read(1 << 20)
    assert not stream._thread.is_alive()


def test_a_reader_that_stops_early_stops_the_renderer():
    with CsvStream(pa.record_batch({"a": pa.array([i] * 1000)}) for i in range(100)) as stream:
        assert stream.read(10) == b"0\n0\n0\n0\n0\n"
    assert not stream._thread.is_alive()
