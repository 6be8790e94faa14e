"""A large JSON Lines file's columns and types found in parallel parts instead of one whole-file pass.

``json_reader`` types a file from every row (DuckDB's ``sample_size=-1``), and DuckDB does that pass in one
thread: 1.4 s of the 2.8 s a 1M-row, 190 MB file takes to load into DuckDB on a 2-core machine, with the
other core idle. Here the file is cut at line ends into one part per core, each part typed by its own
DuckDB connection in its own thread (DuckDB releases the GIL; a part is served to it as a file of its own
by an fsspec file system over the byte range), which took 0.8 s for that file.

The parts' columns are combined only as far as the whole-file pass is known to combine them (``combine``): a
column typed alike in every part keeps its type (merging a type with itself changes nothing), a key first
seen in a later part is added after the earlier parts' keys, and a column holding only nulls in a part
takes the type the other parts give it: files that grow columns over time take this path. Any other
difference (a fraction where a part had integers, a string where it had numbers, nested fields that
differ), or a part that fails (a malformed line: its message and line number come from the whole-file
pass), and the caller makes the whole-file pass as before, the parts' time spent on top.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
from fsspec.spec import AbstractFileSystem

logger = logging.getLogger(__name__)

PART_MIN_BYTES = 32 * 1024 * 1024
"""Smallest part worth a thread and a connection: a file under twice this is typed in one pass."""
MAX_PARTS = 8
"""At most this many parts, whatever the core count (each holds a DuckDB connection while it runs)."""
PROTOCOL = "loadbay-part"


def cores() -> int:
    """The cores this process may run on (its affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def part_bounds(path: Path, parts: int) -> list[tuple[int, int]]:
    """Byte ranges ``[start, end)`` cutting the file into about ``parts`` equal parts, each a run of whole
    lines: a cut moves to the first line start at or after it (a part left empty by a very long line is
    dropped)."""
    size = path.stat().st_size
    starts = [0]
    with path.open("rb") as f:
        for i in range(1, parts):
            starts.append(_line_start(f, max(size * i // parts, starts[-1] + 1), size))
    ends = [*starts[1:], size]
    return [(start, end) for start, end in zip(starts, ends) if end > start]


def _line_start(f: Any, offset: int, size: int, chunk: int = 1 << 16) -> int:
    """The first line start at or after ``offset`` (``size`` if none), read a chunk at a time: a very long
    line is not read into memory whole."""
    at = offset - 1  # the byte before: a newline there makes ``offset`` itself a line start
    while at < size:
        f.seek(at)
        data = f.read(chunk)
        newline = data.find(b"\n")
        if newline >= 0:
            return at + newline + 1
        if len(data) < chunk:
            break
        at += len(data)
    return size


def columns_in_parts(path: Path, query: str, params: Mapping[str, Any], *,
                     parts: int | None = None) -> tuple[list[str], list[duckdb.DuckDBPyType]] | None:
    """The names and types ``query`` (a ``read_json`` of ``$p`` with ``sample_size=-1``) binds to over the
    whole file, found in parallel parts; ``None`` when the file is too small to split, the parts differ or
    one fails (the caller then binds over the whole file)."""
    wanted = parts or min(cores(), MAX_PARTS, path.stat().st_size // PART_MIN_BYTES)
    if wanted < 2:
        return None
    bounds = part_bounds(path, wanted)
    if len(bounds) < 2:
        return None
    try:
        connections = [duckdb.connect() for _ in bounds]
    except duckdb.Error:
        return None
    pool = ThreadPoolExecutor(max_workers=len(bounds), thread_name_prefix="loadbay-json-part")
    try:
        futures = [pool.submit(_columns_of_part, con, path, b, query, params) for con, b in zip(connections, bounds)]
        found = [future.result() for future in futures]
    except BaseException:  # Ctrl-C: stop the parts' statements rather than wait for them
        for con in connections:
            con.interrupt()
        raise
    finally:
        pool.shutdown(wait=True)
        for con in connections:
            con.close()
    combined = None if any(part is None for part in found) else combine(found)  # type: ignore[arg-type]
    if not combined:  # None, or no columns at all (rows of empty objects): the whole-file pass says what to do
        logger.info("file %s: its %d parts were typed apart (or one failed); typing it in one pass", path, len(bounds))
        return None
    logger.debug("file %s: columns found in %d parallel parts", path, len(bounds))
    return list(combined), list(combined.values())


def combine(parts: list[list[tuple[str, duckdb.DuckDBPyType]]]) -> dict[str, duckdb.DuckDBPyType] | None:
    """The columns the whole file has, from its parts' in file order; ``None`` where the parts do not say.

    Only what the whole-file pass is known to do is done here: a column keeps the place of its first part (a
    key first seen in a later part comes after the earlier parts' keys, as it is first seen after them); a
    column typed alike in every part that has it keeps that type; one holding only nulls in some parts takes
    the type of the others. Any other difference (a BIGINT beside a DOUBLE, nested types that differ, keys
    of two parts that differ only by case, which DuckDB would rename) is ``None``: DuckDB's own merge of them
    is not repeated here."""
    columns: dict[str, duckdb.DuckDBPyType] = {}
    cased: dict[str, str] = {}
    for part in parts:
        for name, t in part:
            if cased.setdefault(name.lower(), name) != name:
                return None
            known = columns.get(name)
            if known is None or (known.id == "null" and t.id != "null"):
                columns[name] = t  # a dict keeps the place of the first insertion
            elif str(known) != str(t) and t.id != "null":
                return None
    return columns


def _columns_of_part(con: duckdb.DuckDBPyConnection, path: Path, bounds: tuple[int, int], query: str,
                     params: Mapping[str, Any]) -> list[tuple[str, duckdb.DuckDBPyType]] | None:
    """The (name, type) columns of one part, on ``con`` (the caller's, to interrupt and close); ``None`` if
    it cannot be typed (a malformed line, an interrupted statement)."""
    try:
        con.register_filesystem(_PartFileSystem(path, bounds))
        relation = con.sql(query, params={**params, "p": f"{PROTOCOL}://part.jsonl"})
        return list(zip(relation.columns, relation.types))
    except (duckdb.Error, OSError) as exc:
        logger.debug("file %s: part %s could not be typed: %s", path, bounds, str(exc).splitlines()[0] if str(exc) else exc)
        return None


class _PartFileSystem(AbstractFileSystem):
    """One read-only file, ``part.jsonl``: bytes ``[start, end)`` of ``path``. Not cached by fsspec (each
    part has its own), and never listed or written."""

    protocol = PROTOCOL
    cachable = False

    def __init__(self, path: Path, bounds: tuple[int, int]) -> None:
        super().__init__()
        self.path, self.bounds = path, bounds

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        start, end = self.bounds
        return {"name": path, "size": end - start, "type": "file"}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        return [self.info(path)] if detail else [path]

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> io.BufferedReader:
        if "r" not in mode or "+" in mode:
            raise OSError(f"{PROTOCOL}: {path} is read-only")
        return io.BufferedReader(_Range(self.path, *self.bounds), buffer_size=1 << 20)


class _Range(io.RawIOBase):
    """Bytes ``[start, end)`` of a file as a file of their own (on a file handle of their own)."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        super().__init__()
        self._file = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._start, self._size, self._pos = start, end - start, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(base + offset, 0)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._size - self._pos)
        if n <= 0:
            return 0
        self._file.seek(self._start + self._pos)
        got = self._file.readinto(memoryview(buffer)[:n]) or 0
        self._pos += got
        return got

    def close(self) -> None:
        if not self.closed:
            self._file.close()
        super().close()
