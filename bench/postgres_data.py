"""Data of the PostgreSQL benchmark: deterministic generators, the tables loadbay makes of them,
the baseline's CSV files, and checksums computed from the generators (compared with SQL ones).

Kept apart from ``bench/postgres.py`` (which times and verifies) so each fits on a few screens.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

UPDATED_SHARE, NEW_SHARE = 0.2, 0.1

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
BASE_EPOCH = int(BASE.timestamp())
KINDS = ("click", "view", "purchase", "signup")
SOURCES = ("web", "ios", "android")
COUNTRIES = ("de", "us", "fr", "jp", "br")
SKUS = tuple(f"sku-{k:04d}" for k in range(500))
TAGS = ("new", "gift", "promo", "repeat", "bulk", "express", "returned", "vip")

# -- data ------------------------------------------------------------------------------------------


NAMES = tuple(f"user {k}" for k in range(5000))
SECOND = dt.timedelta(seconds=1)


def event(i: int, amount: float, created_at: dt.datetime | None = None) -> dict[str, Any]:
    """One flat row; everything but ``amount`` follows from ``i``, so an update can repeat it.
    ``created_at`` (BASE + i seconds) may be passed in by a caller that steps it along cheaply."""
    return {"id": i, "user_id": (i * 2654435761) % 100_000 + 1, "amount": amount, "is_ok": i % 3 == 0,
            "created_at": BASE + SECOND * i if created_at is None else created_at,
            "name": None if i % 7 == 0 else NAMES[i % 5000], "kind": KINDS[i % 4]}


def flat_rows(n: int) -> Iterator[dict[str, Any]]:
    """The generator is benchmark overhead counted in loadbay's time, so it is kept cheap: names
    come from a table and each timestamp is the previous one plus a second (the same values)."""
    random_ = random.Random(42).random
    created_at = BASE
    for i in range(n):
        yield event(i, round(random_() * 1000, 2), created_at)
        created_at += SECOND


def updated_ids(n: int) -> list[int]:
    """The ids the merge batch updates: a seeded sample of UPDATED_SHARE of the original ids."""
    return sorted(random.Random(7).sample(range(n), round(n * UPDATED_SHARE)))


def merge_rows(n: int, updated: list[int]) -> Iterator[dict[str, Any]]:
    """The merge batch: the ``updated`` ids with a new amount (in [1000, 2000): always changed), then new ids."""
    r = random.Random(43)
    for i in updated:
        yield event(i, round(1000 + r.random() * 1000, 2))
    for i in range(n, n + round(n * NEW_SHARE)):
        yield event(i, round(r.random() * 1000, 2))


def nested_rows(n: int) -> Iterator[dict[str, Any]]:
    """Kept cheap like flat_rows: ``random()`` scaled to an int costs a third of ``randrange``."""
    random_ = random.Random(1234).random

    def randrange(start: int, stop: int | None = None) -> int:
        return int(random_() * start) if stop is None else start + int(random_() * (stop - start))

    for i in range(n):
        yield {
            "id": i, "user_id": (i * 2654435761) % 100_000 + 1, "amount": round(random_() * 1000, 2),
            "created_at": BASE + dt.timedelta(seconds=i),
            "meta": {"source": SOURCES[i % 3], "version": i % 5,
                     "geo": {"country": COUNTRIES[i % 5], "city": None if i % 4 == 0 else f"city {i % 97}"}},
            "items": [{"sku": SKUS[randrange(500)], "qty": randrange(1, 10), "price": round(random_() * 100, 2)}
                      for _ in range(randrange(6))],
            "tags": [TAGS[randrange(len(TAGS))] for _ in range(randrange(5))],
        }


# -- what loadbay makes of it (the baseline tables and CSV files mirror this) ----------------------

SYSTEM_ROOT = [("_lb_load_id", "text NOT NULL"), ("_lb_id", "text NOT NULL")]
SYSTEM_CHILD = [("_lb_parent_id", "text NOT NULL"), ("_lb_list_idx", "bigint NOT NULL"),
                ("_lb_root_id", "text NOT NULL"), ("_lb_id", "text NOT NULL")]
FLAT_TABLE = "events"
FLAT_COLUMNS = SYSTEM_ROOT + [("id", "bigint"), ("user_id", "bigint"), ("amount", "double precision"),
                              ("is_ok", "boolean"), ("created_at", "timestamptz"), ("name", "text"),
                              ("kind", "text")]
NESTED_TABLE = "orders"
ITEMS_TABLE, TAGS_TABLE = f"{NESTED_TABLE}__items", f"{NESTED_TABLE}__tags"
NESTED_COLUMNS = {
    NESTED_TABLE: SYSTEM_ROOT + [("id", "bigint"), ("user_id", "bigint"), ("amount", "double precision"),
                                 ("created_at", "timestamptz"), ("meta__source", "text"),
                                 ("meta__version", "bigint"), ("meta__geo__country", "text"),
                                 ("meta__geo__city", "text")],
    ITEMS_TABLE: SYSTEM_CHILD + [("sku", "text"), ("qty", "bigint"), ("price", "double precision")],
    TAGS_TABLE: SYSTEM_CHILD + [("value", "text")],
}
BASELINE_LOAD_ID = "1700000000000000"


class Ids:
    """``_lb_id`` values shaped like loadbay's: a 12-hex-digit prefix and a 12-hex-digit counter."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"0000b0b0b0b0{self.n:012x}"


def cents(amount: float) -> int:
    return round(amount * 100)


def money(c: int) -> Decimal:
    return Decimal(c).scaleb(-2)


# -- checksums: the same figures from SQL and from the generators -----------------------------------

FLAT_CHECK_SQL = ("SELECT count(*), sum(id), sum(user_id), round(sum(amount::numeric), 2), count(*) FILTER "
                  "(WHERE is_ok), sum(extract(epoch FROM created_at)), count(name), sum(length(name)), "
                  "count(*) FILTER (WHERE kind = 'purchase'), count(DISTINCT id) FROM {}")
FLAT_CHECK_NAMES = ("count", "sum(id)", "sum(user_id)", "sum(amount)", "count(is_ok)", "sum(epoch)",
                    "count(name)", "sum(length(name))", "count(purchase)", "count(distinct id)")


def flat_sums(rows: Iterable[dict[str, Any]], on_row: Callable[[dict[str, Any]], None] | None = None) -> list[int]:
    """Additive figures of FLAT_CHECK_SQL (all but the distinct count), amount in cents."""
    s = [0] * 9
    for row in rows:
        if on_row is not None:
            on_row(row)
        name = row["name"]
        s[0] += 1
        s[1] += row["id"]
        s[2] += row["user_id"]
        s[3] += cents(row["amount"])
        s[4] += row["is_ok"]
        s[5] += BASE_EPOCH + row["id"]  # created_at = BASE + id seconds
        if name is not None:
            s[6] += 1
            s[7] += len(name)
        s[8] += row["kind"] == "purchase"
    return s


def flat_expected(s: list[int]) -> tuple[Any, ...]:
    return (s[0], s[1], s[2], money(s[3]), s[4], s[5], s[6], s[7], s[8], s[0])


NESTED_CHECK_SQL = """
SELECT (SELECT count(*) FROM {root}), (SELECT sum(id) FROM {root}), (SELECT sum(user_id) FROM {root}),
       (SELECT round(sum(amount::numeric), 2) FROM {root}), (SELECT sum(extract(epoch FROM created_at)) FROM {root}),
       (SELECT count(meta__geo__city) FROM {root}), (SELECT sum(meta__version) FROM {root}),
       (SELECT count(*) FILTER (WHERE meta__source = 'web') FROM {root}),
       (SELECT count(*) FROM {items}), (SELECT sum(qty) FROM {items}),
       (SELECT round(sum(price::numeric), 2) FROM {items}), (SELECT sum(_lb_list_idx) FROM {items}),
       (SELECT sum(length(sku)) FROM {items}),
       (SELECT count(*) FROM {tags}), (SELECT sum(length(value)) FROM {tags}), (SELECT sum(_lb_list_idx) FROM {tags}),
       (SELECT count(*) FROM {root} r JOIN {items} i ON i._lb_parent_id = r._lb_id AND i._lb_root_id = r._lb_id),
       (SELECT sum(r.id * i.qty) FROM {root} r JOIN {items} i ON i._lb_parent_id = r._lb_id),
       (SELECT count(*) FROM {root} r JOIN {tags} t ON t._lb_parent_id = r._lb_id AND t._lb_root_id = r._lb_id),
       (SELECT sum(r.id * length(t.value)) FROM {root} r JOIN {tags} t ON t._lb_parent_id = r._lb_id)
"""
NESTED_CHECK_NAMES = ("root count", "sum(id)", "sum(user_id)", "sum(amount)", "sum(epoch)", "count(city)",
                      "sum(version)", "count(web)", "items count", "sum(qty)", "sum(price)", "items sum(idx)",
                      "sum(length(sku))", "tags count", "sum(length(tag))", "tags sum(idx)", "items joined",
                      "sum(id*qty)", "tags joined", "sum(id*length(tag))")


def nested_sums(rec: dict[str, Any], s: list[int]) -> None:
    s[0] += 1
    s[1] += rec["id"]
    s[2] += rec["user_id"]
    s[3] += cents(rec["amount"])
    s[4] += BASE_EPOCH + rec["id"]
    s[5] += rec["meta"]["geo"]["city"] is not None
    s[6] += rec["meta"]["version"]
    s[7] += rec["meta"]["source"] == "web"
    for idx, item in enumerate(rec["items"]):
        s[8] += 1
        s[9] += item["qty"]
        s[10] += cents(item["price"])
        s[11] += idx
        s[12] += len(item["sku"])
        s[17] += rec["id"] * item["qty"]
    for idx, tag in enumerate(rec["tags"]):
        s[13] += 1
        s[14] += len(tag)
        s[15] += idx
        s[19] += rec["id"] * len(tag)
    s[16] = s[8]
    s[18] = s[13]


def nested_expected(s: list[int]) -> tuple[Any, ...]:
    out: list[Any] = list(s)
    out[3], out[10] = money(s[3]), money(s[10])
    return tuple(out)


# -- baseline files --------------------------------------------------------------------------------


def flat_csv_row(row: dict[str, Any], ids: Ids) -> list[Any]:
    name = row["name"]
    return [BASELINE_LOAD_ID, ids(), row["id"], row["user_id"], row["amount"], "t" if row["is_ok"] else "f",
            row["created_at"].isoformat(), "" if name is None else name, row["kind"]]


def write_flat_csv(path: Path, rows: Iterable[dict[str, Any]], ids: Ids,
                   on_row: Callable[[dict[str, Any]], None] | None = None) -> list[int]:
    """The rows as headerless CSV (NULL: an unquoted empty field); returns their flat_sums."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        write = csv.writer(f, lineterminator="\n").writerow

        def each(row: dict[str, Any]) -> None:
            write(flat_csv_row(row, ids))
            if on_row is not None:
                on_row(row)

        return flat_sums(rows, each)


def write_nested_csv(paths: dict[str, Path], rows: Iterable[dict[str, Any]]) -> list[int]:
    ids = Ids()
    sums = [0] * len(NESTED_CHECK_NAMES)
    files = {t: open(p, "w", newline="", encoding="utf-8") for t, p in paths.items()}
    try:
        root_w, items_w, tags_w = (csv.writer(files[t], lineterminator="\n").writerow
                                   for t in (NESTED_TABLE, ITEMS_TABLE, TAGS_TABLE))
        for rec in rows:
            nested_sums(rec, sums)
            root_id = ids()
            meta, geo = rec["meta"], rec["meta"]["geo"]
            root_w([BASELINE_LOAD_ID, root_id, rec["id"], rec["user_id"], rec["amount"], rec["created_at"].isoformat(),
                    meta["source"], meta["version"], geo["country"], "" if geo["city"] is None else geo["city"]])
            for idx, item in enumerate(rec["items"]):
                items_w([root_id, idx, root_id, ids(), item["sku"], item["qty"], item["price"]])
            for idx, tag in enumerate(rec["tags"]):
                tags_w([root_id, idx, root_id, ids(), tag])
    finally:
        for f in files.values():
            f.close()
    return sums
