"""The error tree. Every error a user sees derives from LoadbayError.

Destination errors keep the driver's exception as ``.orig`` and the failing statement as
``.statement`` so nothing is lost in translation; the loader decides to retry or stop by class.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class LoadbayError(Exception):
    """Base of everything loadbay raises on purpose."""


class ConfigurationError(LoadbayError):
    """A setting is missing or malformed."""


class ConfigFieldMissingError(ConfigurationError):
    """A required value was found nowhere; the message lists every place that was searched."""

    def __init__(self, field: str, spec_name: str, places: Sequence[str]) -> None:
        self.field = field
        self.places = list(places)
        lines = "\n".join(f"  - {p}" for p in places)
        super().__init__(
            f"missing required value {field!r} for {spec_name}. Looked in, in order:\n{lines}\n"
            "Pass it as an argument, set one of the environment variables or add it to "
            ".loadbay/secrets.toml."
        )


class UnknownDestinationError(ConfigurationError):
    """A destination name or reference did not resolve."""

    def __init__(self, reference: str, known: Iterable[str], reason: str = "") -> None:
        self.reference = reference
        known_list = ", ".join(sorted(known))
        extra = f" ({reason})" if reason else ""
        super().__init__(
            f"unknown destination {reference!r}{extra}. Known destinations: {known_list}. "
            "A custom destination may be given as 'package.module:Factory' or registered in the "
            "'loadbay.destinations' entry-point group."
        )


class SchemaError(LoadbayError):
    """The data or hints do not fit the schema. ``.path`` is the file the offending rows were read from, when
    they came from one (``in_file``)."""

    path: str | None = None

    def in_file(self, path: str) -> SchemaError:
        """This error, its message also naming the file whose rows raised it (once: the innermost file wins)."""
        if self.path is None:
            self.path = path
            message = str(self.args[0]) if self.args else type(self).__name__
            self.args = (f"{message} (while reading file {path})", *self.args[1:])
        return self


class SchemaContractViolation(SchemaError):
    """A frozen contract rejected a new table, column or data type."""

    def __init__(self, schema_name: str, table: str, what: str, names: Sequence[str]) -> None:
        self.table = table
        self.what = what
        self.names = list(names)
        super().__init__(
            f"schema contract of {schema_name!r} is frozen for {what}: table {table!r} would get new "
            f"{what} {', '.join(repr(n) for n in names)}. Change schema_contract to 'evolve' or add "
            "them by hand."
        )


class SourceError(LoadbayError):
    """Input cannot be read: a missing or malformed file, a glob that matches nothing, an object loadbay
    does not take. The message names the file and line; ``.path`` and ``.line`` hold them, and the table
    and pipeline are added once known (the reader does not know them)."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 table: str | None = None, pipeline_name: str | None = None) -> None:
        self.reason = message
        self.path = path
        self.line = line
        self.table = table
        self.pipeline_name = pipeline_name
        where = [f"pipeline {pipeline_name!r}"] if pipeline_name else []
        where += [f"table {table!r}"] if table else []
        super().__init__(f"{', '.join(where)}: {message}" if where else message)

    def within(self, *, table: str | None = None, pipeline_name: str | None = None) -> SourceError:
        """The same error, also naming the table and pipeline it was read for."""
        return type(self)(self.reason, path=self.path, line=self.line, table=self.table or table,
                          pipeline_name=self.pipeline_name or pipeline_name)


class DestinationError(LoadbayError):
    """An error raised while talking to a destination, translated from the driver."""

    def __init__(self, message: str, *, orig: BaseException | None = None, statement: str | None = None):
        super().__init__(message)
        self.orig = orig
        self.statement = statement


class DestinationTerminalError(DestinationError):
    """Retrying cannot help: bad SQL, bad data, a broken constraint, missing permissions."""


class DestinationTransientError(DestinationError):
    """Retrying may help: a lost connection, a deadlock, a lock timeout, a shutdown."""


class DestinationLockedError(DestinationTransientError):
    """Another process holds the database (a DuckDB file has one writer at a time): wait and retry,
    for longer than other transient errors."""


class DestinationUndefinedRelation(DestinationTerminalError):
    """A table, schema or database does not exist (callers may create it and try again)."""


class DestinationKeyViolation(DestinationTerminalError):
    """A row repeats a key that a primary key or unique constraint of the table forbids: loading it again
    cannot help (``SqlJobClient`` names the table and what to do)."""


class LoadJobFailed(LoadbayError):
    """A load job failed terminally; its file stays in failed_jobs of its package."""


class PipelineStepFailed(LoadbayError):
    """A pipeline step failed; ``.step`` names it, ``.load_id`` the package, the cause is chained."""

    def __init__(self, pipeline_name: str, step: str, load_id: str | None, cause: BaseException) -> None:
        self.pipeline_name = pipeline_name
        self.step = step
        self.load_id = load_id
        where = f" package {load_id}" if load_id else ""
        super().__init__(f"pipeline {pipeline_name!r} failed in step {step!r}{where}: {cause}")


class PipelineInterrupted(LoadbayError):
    """SIGINT or SIGTERM stopped a run at a safe point; ``.load_info`` says what loaded and what is
    pending, and the next run resumes it."""

    def __init__(self, message: str, *, signal_number: int, load_info: object = None) -> None:
        super().__init__(message)
        self.signal_number = signal_number
        self.load_info = load_info


def shortened(name: str, limit: int = 100) -> str:
    """``name`` for a message, cut to ``limit`` characters with a mark where it is longer (a name grown by a
    cycle in the data)."""
    return name if len(name) <= limit else f"{name[:limit]}… ({len(name)} characters)"


def preview(item: object) -> str:
    """A short repr of a value for a message."""
    text = repr(item)
    return text if len(text) <= 60 else text[:57] + "..."
