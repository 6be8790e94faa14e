"""Files, globs, folders and stdin → bounded batches, read by Arrow and DuckDB, never line by line in Python.

``pathlib.Path`` is a file or a folder; a glob, several sources, stdin or a forced format go through
``loadbay.files(...)`` (a bare ``str`` stays refused by ``run()``: it is as likely data as a path)::

    p.run(Path("events.jsonl"), table_name="events")
    p.run(loadbay.files("exports/*.csv.gz"), table_name="orders")
    p.run(loadbay.files("dump/", format="jsonl"), table_name="events")   # a folder, every file as jsonl
    p.run(loadbay.files("-"), table_name="events")                        # JSONL on stdin

Formats by name: ``.jsonl``/``.ndjson``, ``.json`` (an array of objects or a single object), ``.csv``,
``.parquet``; the first three also ``.gz`` or ``.zst`` compressed. All files of one ``Files`` load into one
table, read one after another in name order. A folder is the files directly in it whose format its name
tells (others are skipped with a warning), or every file when a format is given. A 0-byte file holds no
rows, compressed or not; a binary file named or forced as text (Parquet, gzip or zstd data, a zip archive)
is refused, naming what it holds.
"""

from __future__ import annotations

import glob as globbing
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from loadbay.common.exceptions import SourceError

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

FORMATS = ("jsonl", "ndjson", "json", "csv", "parquet")
COMPRESSIONS = {".gz": "gzip", ".zst": "zstd", ".zstd": "zstd"}
ACCEPTED = ".jsonl, .ndjson, .json, .csv, .parquet (the first four also .gz or .zst compressed)"
STDIN = "-"
STDIN_CHUNK_BYTES = 64 << 20
"""JSONL on stdin is cut at line ends into chunks of about this size, each read like a file."""


@dataclass(frozen=True)
class InputFile:
    """One file to read: where, in which format, how compressed; ``path`` None is stdin (or ``stream``)."""

    path: Path | None
    format: str
    compression: str | None = None
    stream: IO[bytes] | None = None

    @property
    def display(self) -> str:
        return str(self.path) if self.path is not None else "<stdin>"


def format_of(path: Path, forced: str | None = None) -> tuple[str, str | None]:
    """``(format, compression)`` of ``path`` from its name, or ``forced`` format with the compression."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression:
        suffixes = suffixes[:-1]
    fmt = forced or (suffixes[-1].lstrip(".") if suffixes else "")
    if fmt not in FORMATS:
        raise SourceError(f"file {path}: cannot tell its format from its name; loadbay reads {ACCEPTED}. "
                          "Name the format with --format (CLI) or loadbay.files(..., format=...)", path=str(path))
    if fmt == "parquet" and compression:
        raise SourceError(f"file {path}: a Parquet file compresses inside; decompress the {compression} "
                          "wrapper first", path=str(path))
    return fmt, compression


def _check_format(fmt: str | None) -> None:
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"unknown input format {fmt!r}; one of {', '.join(FORMATS)}")


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def expand(source: str | Path, fmt: str | None) -> list[InputFile]:
    """The files one source names: a file, a folder's files, a glob's matches, or stdin."""
    if isinstance(source, str) and source == STDIN:
        return [InputFile(None, fmt or "jsonl")]
    if isinstance(source, str) and _is_glob(source) and not Path(source).exists():
        matches = sorted(Path(m) for m in globbing.glob(source, recursive=True))
        found = [f for m in matches for f in (_folder(m, fmt, quiet=True) if m.is_dir() else [_file(m, fmt)])]
        if not found:
            raise SourceError(f"no file matches {source!r}")
        return found
    path = Path(source)
    if path.is_dir():
        return _folder(path, fmt)
    if not path.exists():
        raise SourceError(f"file {path} does not exist", path=str(path))
    return [_file(path, fmt)]


def _file(path: Path, fmt: str | None) -> InputFile:
    found, compression = format_of(path, fmt)
    return InputFile(path, found, compression)


def _folder(folder: Path, fmt: str | None, *, quiet: bool = False) -> list[InputFile]:
    out, skipped = [], []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            out.append(_file(path, fmt))
        except SourceError:
            skipped.append(path.name)
    if skipped and not quiet:
        logger.warning("folder %s: skipped %d file(s) of no format loadbay reads: %s", folder, len(skipped),
                       ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""))
    if not out and not quiet:
        raise SourceError(f"folder {folder} holds no file loadbay reads ({ACCEPTED}); name the format with "
                          "--format (CLI) or loadbay.files(..., format=...)", path=str(folder))
    return out


@dataclass(frozen=True)
class Files:
    """Files that load into one table: what ``loadbay.files(...)`` returns (see the module doc)."""

    inputs: tuple[InputFile, ...]
    name: str | None = None
    """The table name these files suggest (a single file's or folder's name), or None."""
    csv_delimiter: str = ","

    def batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch | list[Any]]:
        """Batches of every file in turn; the next file opens when the last batch of the one before is taken.
        While a file's batches are handed on, ``reading_file()`` names it."""
        for item in self.inputs:
            _READING.set(item.display)
            try:
                yield from read_file(item, batch_size, csv_delimiter=self.csv_delimiter)
            finally:
                _READING.set(None)


_READING: ContextVar[str | None] = ContextVar("loadbay_reading_file", default=None)


def reading_file() -> str | None:
    """The file whose batch the caller took last, while that file is being read: normalize names it in the
    errors its rows raise (a generator runs in its caller's context, so the caller sees what it set)."""
    return _READING.get()


def files(*sources: str | Path | IO[bytes], format: str | None = None,  # noqa: A002 - the CLI's --format
          csv_delimiter: str = ",") -> Files:
    """Name files to load into one table: paths, folders, globs (``"data/*.jsonl.gz"``), ``"-"`` for stdin or
    binary file objects; ``format`` forces one of ``jsonl, ndjson, json, csv, parquet``.

    Globs and folders are expanded now: a missing file or a glob that matches nothing raises here.
    """
    if not sources:
        raise SourceError("loadbay.files() needs at least one path, glob or '-'")
    _check_format(format)
    if len(csv_delimiter) != 1 or csv_delimiter in "\r\n\"":
        raise SourceError(f"csv_delimiter must be one character other than a quote or a line break, not "
                          f"{csv_delimiter!r} (a tab: '\\t' in Python, $'\\t' in a shell)")
    inputs: list[InputFile] = []
    for source in sources:
        if hasattr(source, "read"):
            inputs.append(InputFile(None, format or "jsonl", stream=source))  # type: ignore[arg-type]
        else:
            inputs.extend(expand(source, format))  # type: ignore[arg-type]
    names = {name_of(source) for source in sources}
    name = names.pop() if len(names) == 1 else None  # several sources: only a name they all suggest
    return Files(tuple(inputs), name, csv_delimiter)


def name_of(source: Any) -> str | None:
    """The table name a file, folder or glob suggests: ``events.jsonl.gz`` → ``events``, ``exports/`` →
    ``exports``, ``logs/app-*.jsonl`` → ``app``; None for stdin and streams."""
    if not isinstance(source, (str, Path)) or str(source) == STDIN:
        return None
    path = Path(source)
    text = path.name
    if isinstance(source, str) and _is_glob(text):
        text = re.split(r"[*?\[]", text, maxsplit=1)[0]
    stem = re.sub(r"[\W_]+$", "", text.split(".")[0])
    return stem or (path.parent.name if path.parent.name and not _is_glob(path.parent.name) else None)


# -- reading ----------------------------------------------------------------------------------------

def read_file(item: InputFile, batch_size: int | None, *, csv_delimiter: str = ",",
              display: str | None = None) -> Iterator[pa.RecordBatch | list[Any]]:
    """Batches of one file (or of stdin) in its format; ``display`` names it in errors. Each reader is
    imported when its format is met (the JSON reader imports DuckDB, which a parquet file does not need)."""
    if item.path is None:
        yield from _read_stream(item, batch_size, csv_delimiter)
        return
    if not item.path.exists():
        raise SourceError(f"file {item.path} does not exist", path=str(item.path))
    import pyarrow  # the readers' errors (pyarrow is imported by every reader anyway)

    shown = display or str(item.path)
    try:
        yield from _read_path(item, batch_size, csv_delimiter, display)
    except (OSError, pyarrow.ArrowException, UnicodeError, RecursionError) as exc:  # no reader named the file
        kind = f"{item.compression} " if item.compression else ""
        raise SourceError(f"file {shown}: cannot be read as {kind}{item.format} ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'no detail'}); a truncated or damaged file?",
                          path=shown) from exc


_SIGNATURES = {b"PAR1": ("a Parquet file", "read it as parquet (name it .parquet, or --format parquet, format='parquet')"),
               b"\x1f\x8b": ("gzip-compressed data", "name it .gz"),
               b"\x28\xb5\x2f\xfd": ("zstd-compressed data", "name it .zst"),
               b"PK\x03\x04": ("a zip archive", "unzip it first")}
"""The first bytes of files a text reader would misread (an uncompressed Parquet file has no line break:
read as CSV it is a header and no rows)."""


def _check_is_text(item: InputFile, display: str) -> None:
    """Refuse a binary file named (or forced) as CSV or JSON, naming what it is (Parquet by both ends: a CSV
    header may well start with a column named PAR1)."""
    with open(item.path, "rb") as f:  # type: ignore[arg-type]
        head = f.read(4)
        if head == b"PAR1":
            f.seek(-4, 2)
            head = head if f.read(4) == b"PAR1" else b""
    for signature, (what, fix) in _SIGNATURES.items():
        if head.startswith(signature):
            raise SourceError(f"file {display}: holds {what}, not {item.format} text; {fix}", path=display)


def _read_path(item: InputFile, batch_size: int | None, csv_delimiter: str,
               display: str | None) -> Iterator[pa.RecordBatch | list[Any]]:
    assert item.path is not None
    if item.format != "parquet" and item.path.stat().st_size == 0:  # also compressed: nothing to read
        logger.info("file %s is empty: no rows", display or item.path)
        return
    if item.format != "parquet" and item.compression is None:
        _check_is_text(item, display or str(item.path))
    if item.format in ("jsonl", "ndjson", "json"):
        from loadbay.sources import json_reader

        yield from json_reader.json_batches(item.path, batch_size, fmt=item.format, compression=item.compression,
                                            display=display)
    elif item.format == "csv":
        from loadbay.sources import csv_reader

        yield from csv_reader.csv_batches(item.path, batch_size, compression=item.compression,
                                          delimiter=csv_delimiter, display=display)
    else:
        from loadbay.sources import csv_reader

        yield from csv_reader.parquet_batches(item.path, batch_size, display=display)


def _read_stream(item: InputFile, batch_size: int | None, csv_delimiter: str) -> Iterator[pa.RecordBatch | list[Any]]:
    """stdin (or a file object). JSON lines stream: cut into chunks of whole lines, each read like a file.
    A CSV file (whose quoted values may span lines, and which may have to be read again from a row on),
    a JSON document and a Parquet file are spooled to a temporary file first (disk, not memory)."""
    from loadbay.sources import json_reader

    stream = item.stream if item.stream is not None else sys.stdin.buffer
    with tempfile.TemporaryDirectory(prefix="loadbay-stdin-") as tmp:
        if item.format in ("json", "csv", "parquet"):
            spooled = Path(tmp) / f"stdin.{item.format}"
            with open(spooled, "wb") as out:
                shutil.copyfileobj(stream, out, 1 << 20)
            yield from read_file(InputFile(spooled, item.format), batch_size, csv_delimiter=csv_delimiter,
                                 display="<stdin>")
            return
        first_line = 1
        for index, chunk in enumerate(_line_chunks(stream)):
            part = Path(tmp) / f"stdin-{index}.jsonl"
            part.write_bytes(chunk)
            yield from json_reader.json_batches(part, batch_size, fmt="jsonl", display="<stdin>",
                                                first_line=first_line)
            first_line += chunk.count(b"\n")
            part.unlink()


def _line_chunks(stream: IO[bytes]) -> Iterator[bytes]:
    """Chunks of about ``STDIN_CHUNK_BYTES``, each ending at a line end (the last one wherever the stream ends)."""
    rest = b""
    while block := stream.read(STDIN_CHUNK_BYTES):
        block = rest + block
        cut = block.rfind(b"\n") + 1
        if cut == 0:  # one line longer than a chunk: keep reading
            rest = block
            continue
        rest = block[cut:]
        yield block[:cut]
    if rest.strip():
        yield rest
