"""Read a destination back and compare it, value by value, with what was sent.

Rows are compared as multisets of full rows without the ``_lb_*`` columns, so a row lost, doubled,
stale (an old version a merge should have replaced) or foreign (of a batch a replace should have
removed) all show. Child rows are compared through their link: each child's ``_lb_parent_id`` is
resolved to its root row's ``id``, and ``_lb_root_id`` must equal ``_lb_parent_id`` (the children
hang off the root directly). Messages name counts per batch generation, so "generation 3 doubled"
reads as what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from tests.crash.data import CHILD, ROOT, ChildRow, RootRow
from tests.crash.targets import TableMissing, Target

ROOT_SQL = ("SELECT id, name, score, active, created_at, note, amount, meta__source, meta__rank, _lb_id "
            "FROM {table}")
CHILD_SQL = "SELECT _lb_parent_id, _lb_root_id, _lb_list_idx, sku, qty, price FROM {table}"
SAMPLES = 3


@dataclass
class Snapshot:
    """What the destination holds, as comparable rows, plus link problems found on the way."""

    roots: Counter[RootRow] = field(default_factory=Counter)
    children: Counter[ChildRow] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite keeps ISO text
        value = datetime.fromisoformat(value.replace(" ", "T"))
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def read(target: Target, credentials: str, dataset: str) -> Snapshot:
    snap = Snapshot()
    try:
        roots = target.query(credentials, dataset, ROOT_SQL.format(table=target.qualified(dataset, ROOT)))
    except TableMissing as exc:
        snap.problems.append(f"{ROOT}: cannot be read ({exc})")
        return snap
    try:
        children = target.query(credentials, dataset, CHILD_SQL.format(table=target.qualified(dataset, CHILD)))
    except TableMissing as exc:
        snap.problems.append(f"{CHILD}: cannot be read ({exc})")
        children = []
    by_lb_id: dict[str, int] = {}
    for i, name, score, active, created_at, note, amount, source, rank, lb_id in roots:
        snap.roots[(int(i), name, float(score), bool(active), _timestamp(created_at), note, _opt_float(amount),
                    source, None if rank is None else int(rank))] += 1
        by_lb_id[lb_id] = int(i)
    orphans: list[str] = []
    bad_root_link: list[str] = []
    wrong_parent: list[str] = []
    for parent_id, root_id, idx, sku, qty, price in children:
        root = by_lb_id.get(parent_id)
        if root is None:
            orphans.append(sku)
            continue
        if root_id != parent_id:
            bad_root_link.append(sku)
        if not str(sku).startswith(f"sku-{root}-"):
            wrong_parent.append(f"{sku} under id {root}")
        snap.children[(root, int(idx), sku, None if qty is None else int(qty), _opt_float(price))] += 1
    for what, found in (("child rows whose _lb_parent_id matches no root row (orphans)", orphans),
                        ("child rows whose _lb_root_id differs from _lb_parent_id", bad_root_link),
                        ("child rows linked to another id's root row", wrong_parent)):
        if found:
            snap.problems.append(f"{CHILD}: {len(found)} {what}, e.g. {found[:SAMPLES]}")
    return snap


def _generation_of(row: tuple[Any, ...], child: bool) -> int:
    if child:  # sku-<id>-<version>-<index>
        return int(str(row[2]).split("-")[2])
    return int(str(row[1]).rsplit("#", 1)[1].split(".")[1])  # "<text> #<id>.<version>"


def _samples(rows: Counter[Any], child: bool) -> str:
    """A few rows, named by what identifies them: the sku of a child, id and version of a root."""
    names = [str(row[2]) if child else f"id {row[0]} v{_generation_of(row, child)}" for row in list(rows)[:SAMPLES]]
    return ", ".join(names)


def _by_generation(rows: Counter[Any], child: bool) -> str:
    counts: Counter[int] = Counter()
    for row, n in rows.items():
        counts[_generation_of(row, child)] += n
    return ", ".join(f"gen {g}: {n}" for g, n in sorted(counts.items()))


def compare(table: str, expected: Counter[Any], actual: Counter[Any], *, child: bool) -> list[str]:
    """Problems (none when equal): how many rows are missing, doubled, or not expected at all."""
    if expected == actual:
        return []
    missing = expected - actual
    extra = actual - expected
    doubled = Counter({row: n for row, n in extra.items() if row in expected})
    foreign = extra - doubled
    parts = [f"{table}: expected {sum(expected.values())} rows, found {sum(actual.values())}"]
    if missing:
        parts.append(f"{sum(missing.values())} missing ({_by_generation(missing, child)}; "
                     f"e.g. {_samples(missing, child)})")
    if doubled:
        parts.append(f"{sum(doubled.values())} extra copies of rows sent once ({_by_generation(doubled, child)}; "
                     f"e.g. {_samples(doubled, child)})")
    if foreign:
        parts.append(f"{sum(foreign.values())} rows that should not be there, stale or of a replaced batch "
                     f"({_by_generation(foreign, child)}; e.g. {_samples(foreign, child)})")
    return ["; ".join(parts)]


def check_contents(snap: Snapshot, roots: Counter[RootRow], children: Counter[ChildRow]) -> list[str]:
    """Every difference between ``snap`` and the expected multisets, link problems first."""
    return [*snap.problems, *compare(ROOT, roots, snap.roots, child=False),
            *compare(CHILD, children, snap.children, child=True)]
