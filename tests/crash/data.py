"""Deterministic batches for the crash harness, and what a destination must hold after them.

Every value is a pure function of ``(id, version)``, so the worker (which sends rows) and the
harness (which checks them) agree without sharing any state, and a row read back names the batch
it came from. A batch is a *generation* of one ``Batches`` series: generation 0 is the base
batch; each later one, for merge and replace, updates ~30% of the ids known so far (new values,
a new child list) and adds new ids; for append it adds new ids only, so every row appears once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

ROOT = "events"
CHILD = "events__items"
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
NAMES = ("plain", "café crème", "naïve façade", "東京 ☃", "emoji 🚀", "quote ' \" and, comma", "Ωmega ß")
SOURCES = ("api", "webhook", "backfill")

RootRow = tuple[Any, ...]
"""(id, name, score, active, created_at, note, amount, meta_source, meta_rank)"""
ChildRow = tuple[Any, ...]
"""(root id, list index, sku, qty, price)"""


def mix(i: int, v: int) -> int:
    """A 32-bit hash of (id, version): cheap, stable across processes (unlike ``hash``)."""
    x = (i * 0x9E3779B1 + v * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x2C1B3C6D) & 0xFFFFFFFF
    x ^= x >> 12
    return x


def record(i: int, v: int) -> dict[str, Any]:
    """The row sent for id ``i`` at version ``v``: typed columns, nulls, a nested dict, a child list."""
    h = mix(i, v)
    return {
        "id": i,
        "name": f"{NAMES[h % len(NAMES)]} #{i}.{v}",
        "score": (i * 1.25 + v) / 7,  # not a short binary fraction: exact round trips are checked
        "active": h % 2 == 1,
        "created_at": EPOCH + timedelta(seconds=i * 37 + v * 86_400, microseconds=(h % 1000) * 1000),
        "note": None if h % 5 == 0 else f"v{v} note {i}",
        "amount": None if h % 7 == 3 else (h % 100_000) / 100,
        "meta": {"source": SOURCES[h % 3], "rank": h % 1000 - 500},
        "items": [{"sku": f"sku-{i}-{v}-{k}", "qty": (h >> k) % 50, "price": ((h >> (k + 3)) % 10_000) / 100}
                  for k in range((h >> 8) % 4)],
    }


def root_row(i: int, v: int) -> RootRow:
    r = record(i, v)
    return (r["id"], r["name"], r["score"], r["active"], r["created_at"], r["note"], r["amount"],
            r["meta"]["source"], r["meta"]["rank"])


def child_rows(i: int, v: int) -> list[ChildRow]:
    return [(i, k, item["sku"], item["qty"], item["price"]) for k, item in enumerate(record(i, v)["items"])]


@dataclass(frozen=True)
class Batches:
    """The batches one pipeline sends: ``ids(generation)`` and the rows for them."""

    disposition: str
    scale: int
    """Root rows of the base batch (generation 0)."""
    offset: int = 0
    """Added to every id: pipelines given different offsets have disjoint keys."""

    @property
    def new_per_generation(self) -> int:
        return self.scale // 2 if self.disposition == "append" else self.scale // 5

    def ids(self, generation: int) -> list[int]:
        if generation == 0:
            return list(range(self.offset, self.offset + self.scale))
        new = self.new_per_generation
        start = self.offset + self.scale + (generation - 1) * new
        if self.disposition == "append":
            return list(range(start, start + new))
        updated = [i for i in range(self.offset, start) if mix(i, 1_000_000 + generation) % 10 < 3]
        return updated + list(range(start, start + new))

    def rows(self, generation: int) -> Iterator[dict[str, Any]]:
        return (record(i, generation) for i in self.ids(generation))

    def state(self, generations: Sequence[int]) -> list[tuple[int, int]]:
        """(id, version) of every root row the destination must hold once ``generations`` loaded, in order."""
        if not generations:
            return []
        if self.disposition == "append":
            return [(i, g) for g in generations for i in self.ids(g)]
        if self.disposition == "replace":
            return [(i, generations[-1]) for i in self.ids(generations[-1])]
        latest: dict[int, int] = {}
        for g in generations:
            latest.update((i, g) for i in self.ids(g))
        return sorted(latest.items())


def expected_tables(state: Iterable[tuple[int, int]]) -> tuple[Counter[RootRow], Counter[ChildRow]]:
    """Multisets of root and child rows for ``state`` ((id, version) pairs), without ``_lb_*`` columns."""
    roots: Counter[RootRow] = Counter()
    children: Counter[ChildRow] = Counter()
    for i, v in state:
        roots[root_row(i, v)] += 1
        children.update(child_rows(i, v))
    return roots, children


class Expected:
    """What the destination must hold, updated one generation at a time (``Batches.state`` and
    ``expected_tables`` redo every batch; a segment chains many)."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self.versions: dict[int, int] = {}
        self.roots: Counter[RootRow] = Counter()
        self.children: Counter[ChildRow] = Counter()
        self.applied: list[int] = []

    def apply(self, generation: int) -> None:
        self.applied.append(generation)
        ids = self.batches.ids(generation)
        if self.batches.disposition == "replace":
            self.versions.clear()
            self.roots.clear()
            self.children.clear()
        for i in ids:
            old = self.versions.get(i) if self.batches.disposition == "merge" else None
            if old is not None:
                self.roots[root_row(i, old)] -= 1
                self.children.subtract(child_rows(i, old))
            self.versions[i] = generation
            self.roots[root_row(i, generation)] += 1
            self.children.update(child_rows(i, generation))
        self.roots = +self.roots  # drop zero counts
        self.children = +self.children
