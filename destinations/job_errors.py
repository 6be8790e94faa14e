"""A failing load job names its file and table: a driver's or Arrow's message names neither."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loadbay.common.destination import LoadJob
from loadbay.common.exceptions import DestinationKeyViolation, DestinationTerminalError
from loadbay.common.schema.types import Column


def where(job: LoadJob) -> str:
    """``file <name>: table '<table>'``, the start of every error a job raises about its file."""
    return f"file {job.job_file.path.name}: table {job.table.name!r}"


@contextmanager
def naming_file(job: LoadJob) -> Iterator[None]:
    """Terminal errors inside get the file and table in front of their message (keeping ``.orig`` and
    ``.statement``); a file Arrow cannot read is a terminal error too. Transient errors pass unchanged:
    they are retried, not shown."""
    import pyarrow as pa

    prefix = where(job)
    try:
        yield
    except DestinationTerminalError as exc:
        if str(exc).startswith(prefix):
            raise
        kind = DestinationKeyViolation if isinstance(exc, DestinationKeyViolation) else DestinationTerminalError
        raise kind(f"{prefix}: {exc}", orig=exc.orig, statement=exc.statement) from exc
    except pa.ArrowException as exc:  # not a parquet file, or one whose bytes are damaged
        raise DestinationTerminalError(f"{prefix}: cannot read the file: {type(exc).__name__}: {exc}") from exc


def columns_for(job: LoadJob, names: list[str]) -> list[Column]:
    """The table's columns for a file's column names, in the file's order; a column the table has not
    fails the job (the file belongs to another schema version or was edited by hand)."""
    unknown = [n for n in names if n not in job.table.columns]
    if unknown:
        raise DestinationTerminalError(f"{where(job)}: the file has columns {unknown} the table has not")
    return [job.table.columns[n] for n in names]
