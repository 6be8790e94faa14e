"""Values of dict rows that the JSON lines and csv writers spell as text themselves, before orjson encodes
the rows: what JSON cannot hold (NaN and the infinities in double columns) and what orjson writes wrong
(times of day: orjson 3.13 writes 13,000 µs as ``.13000``, a tenfold error). Each pass copies only the rows
that hold such a value."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from datetime import time
from itertools import repeat
from typing import Any

from loadbay.common.schema.inference import NON_FINITE_TEXT


def spell_non_finite(rows: Sequence[dict[str, Any]], columns: list[str]) -> Sequence[dict[str, Any]]:
    """Rows with NaN/±inf in the double ``columns`` as "NaN", "Infinity", "-Infinity"; a C-level sum finds
    them, so the common batch without any costs one pass per double column and no copies."""
    get = dict.get
    suspects = [name for name in columns  # filter(None, ...) drops None values (NULLs) and zeros
                if not math.isfinite(sum(filter(None, map(get, rows, repeat(name), repeat(0.0)))))]
    if not suspects:
        return rows
    return _respelled(rows, suspects, lambda v: isinstance(v, float) and not math.isfinite(v),
                      lambda v: "NaN" if v != v else NON_FINITE_TEXT[v])


def time_text(value: Any) -> str:
    """A time of day as ISO text, by Python (see the module doc)."""
    return value.isoformat() if isinstance(value, time) else str(value)


def spell_times(rows: Sequence[dict[str, Any]], columns: list[str]) -> Sequence[dict[str, Any]]:
    """Rows with the times of the time ``columns`` as ISO text (``time_text``)."""
    return _respelled(rows, columns, lambda v: isinstance(v, time), time_text)


def _respelled(rows: Sequence[dict[str, Any]], columns: list[str], needs: Callable[[Any], bool],
               spell: Callable[[Any], str]) -> Sequence[dict[str, Any]]:
    out = []
    for row in rows:
        fixed = None
        for name in columns:
            value = row.get(name)
            if needs(value):
                fixed = fixed or dict(row)
                fixed[name] = spell(value)
        out.append(fixed or row)
    return out
