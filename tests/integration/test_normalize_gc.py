"""Normalizing runs the cyclic garbage collector less often (``loadbay.normalize.fewer_gc_passes``) in a run
and in a dry run alike, and gives the collector its thresholds back afterwards, also when normalizing fails or
runs overlap in threads."""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import loadbay
from loadbay.normalize import GC_THRESHOLD

ROWS = [{"id": i, "meta": {"k": i}, "tags": ["a", "b"]} for i in range(10)]


def watched(seen: list[tuple[int, int, int]], fail: bool = False) -> Iterator[dict[str, Any]]:
    """ROWS, noting the collector's thresholds while the normalizer takes them."""
    for row in ROWS:
        seen.append(gc.get_threshold())
        yield row
    if fail:
        raise RuntimeError("the source broke")


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield gc.get_threshold()
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry run"])
def test_normalizing_raises_the_young_threshold_and_restores_it(tmp_path: Path, thresholds: tuple[int, int, int],
                                                                 dry_run: bool) -> None:
    destination = loadbay.destination("duckdb", credentials=str(tmp_path / "gc.duckdb"))
    p = loadbay.pipeline("gc", destination=destination, pipelines_dir=tmp_path / "pipes")
    seen: list[tuple[int, int, int]] = []
    info = p.run(watched(seen), table_name="t", dry_run=dry_run)
    assert info.row_counts == {"t": 10, "t__tags": 20}
    assert seen and set(seen) == {(GC_THRESHOLD, *thresholds[1:])}
    assert gc.get_threshold() == thresholds


def test_thresholds_come_back_when_normalizing_fails(tmp_path: Path, thresholds: tuple[int, int, int]) -> None:
    p = loadbay.pipeline("gc_fails", destination="noop", pipelines_dir=tmp_path / "pipes")
    seen: list[tuple[int, int, int]] = []
    with pytest.raises(Exception, match="the source broke"):
        p.run(watched(seen, fail=True), table_name="t")
    assert seen and set(seen) == {(GC_THRESHOLD, *thresholds[1:])}
    assert gc.get_threshold() == thresholds


def test_runs_that_overlap_in_threads_leave_the_thresholds_as_they_found_them(
        tmp_path: Path, thresholds: tuple[int, int, int]) -> None:
    """First in raises, last out restores: A starts, B starts, A ends, B ends (a run that saved the raised
    thresholds on entry and put them back on exit would leave the collector raised for good)."""
    a_in, b_in, a_done = threading.Event(), threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def rows(entered: threading.Event, then: Callable[[], object]) -> Iterator[dict[str, Any]]:
        entered.set()  # normalizing has begun
        yield from ROWS
        then()

    def run(name: str, data: Iterator[dict[str, Any]], done: threading.Event | None = None) -> None:
        try:
            p = loadbay.pipeline(name, destination="noop", pipelines_dir=tmp_path / name)
            p.run(data, table_name="t")
        except BaseException as exc:  # noqa: BLE001 - reported by the test thread
            errors.append(exc)
        finally:
            if done is not None:
                done.set()

    a = threading.Thread(target=run, args=("a", rows(a_in, lambda: b_in.wait(10)), a_done))
    b = threading.Thread(target=run, args=("b", rows(b_in, lambda: a_done.wait(10))))
    a.start()
    assert a_in.wait(10)
    b.start()
    a.join(30)
    b.join(30)
    assert not errors and a_done.is_set() and b_in.is_set()
    assert gc.get_threshold() == thresholds
