"""Configuration: plain dataclasses filled by one visible function, ``resolve``.

Where a value comes from, highest precedence first:

1. an explicit argument (``loadbay.destination("postgres", credentials=...)``);
2. environment variables: ``DESTINATION__POSTGRES__CREDENTIALS__PASSWORD`` or a whole
   ``DESTINATION__POSTGRES__CREDENTIALS=postgresql://...``;
3. ``./.loadbay/secrets.toml``, then ``./.loadbay/config.toml``;
4. ``~/.loadbay/secrets.toml``, then ``~/.loadbay/config.toml``.

A destination named with ``destination_name="warehouse"`` reads ``[destination.warehouse]`` first
and ``[destination.<type>]`` after it. A credentials section may be a connection string or a
table of fields; fields from a higher-precedence place override single fields below it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar, get_type_hints

from loadbay.common.exceptions import ConfigFieldMissingError, ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MASK = "***"
T = TypeVar("T")
Section = tuple[str, ...]


# -- credentials ---------------------------------------------------------------------------------

@dataclass
class Credentials:
    """Base of every credentials class: parse from a string, mask the secret in every rendering.

    Subclasses are declared ``@dataclass(repr=False)`` and their secrets ``field(repr=False)``, so
    the masking ``__repr__`` below is the only one.
    """

    REQUIRED: ClassVar[tuple[str, ...]] = ()
    SECRET_FIELDS: ClassVar[tuple[str, ...]] = ("password",)
    OPEN: ClassVar[bool] = False
    """Whether any key is taken, into the one field ``options``: a backend's own options (fsspec's storage
    options) that no class can list. Every value of an open class is a secret (``StagingCredentials``)."""

    @classmethod
    def parse_string(cls, value: str) -> dict[str, Any]:
        """Fields encoded in a connection string."""
        raise ConfigurationError(f"{cls.__name__} cannot be given as a string")

    def location(self) -> str:
        """Where the data goes, safe to print (no secret)."""
        return repr(self)

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{f.name}={MASK if f.name in self.SECRET_FIELDS and getattr(self, f.name) else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"{type(self).__name__}({shown})"

    __str__ = __repr__


@dataclass(repr=False)
class ConnectionStringCredentials(Credentials):
    """``driver://username:password@host:port/database?key=value``, or the same as fields."""

    drivername: str = ""
    database: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    query: dict[str, str] = field(default_factory=dict)

    REQUIRED: ClassVar[tuple[str, ...]] = ("database",)

    @classmethod
    def parse_string(cls, value: str) -> dict[str, Any]:
        from loadbay.common.urls import parse_url

        try:
            url = parse_url(value)
        except ValueError as exc:
            raise ConfigurationError(f"cannot parse connection string for {cls.__name__}: "
                                     f"{mask_url_text(value)}") from exc
        query = {k: v if isinstance(v, str) else v[0] for k, v in url.query.items()}
        password = url.password if url.password is not None else query.pop("password", None)  # libpq takes both
        parsed = {"drivername": url.drivername, "database": url.database, "username": url.username,
                  "password": password, "host": url.host, "port": url.port, "query": query}
        return {k: v for k, v in parsed.items() if v not in (None, {}, "")}

    def to_url(self, masked: bool = True) -> str:
        from loadbay.common.urls import Url, render_url

        url = Url(self.drivername, username=self.username, password=self.password,
                  host=self.host, port=self.port, database=self.database, query=dict(self.query))
        return render_url(url, hide_password=masked)

    def location(self) -> str:
        return self.to_url(masked=True)


@dataclass(repr=False)
class ServerCredentials(ConnectionStringCredentials):
    """A database server: a URL of one of ``SCHEMES`` (any ``+driver`` after it) or fields. A few query
    options are fields (``QUERY_FIELDS``); the rest pass to the driver (typed by ``QUERY_OPTIONS``)."""

    host: str | None = "localhost"
    connect_timeout: int = 15
    """Seconds to wait for a connection before the attempt counts as a transient failure."""

    SCHEMES: ClassVar[tuple[str, ...]] = ()
    """URL schemes taken; the first is kept as ``drivername``, any other scheme is refused."""
    QUERY_FIELDS: ClassVar[dict[str, type]] = {"connect_timeout": int}
    """Query options of a URL that are fields of the class, with their type."""
    QUERY_OPTIONS: ClassVar[dict[str, type]] = {}
    """The driver's own query options that are not text (a URL holds only text), with their type."""
    PASSWORD_OPTIONS: ClassVar[tuple[str, ...]] = ()
    """Other names the driver takes a password by in the query (pymysql's ``passwd``): made the password,
    so it is masked like one."""

    @classmethod
    def parse_string(cls, value: str) -> dict[str, Any]:
        parsed = super().parse_string(value)
        query = dict(parsed.get("query", {}))
        for key in cls.PASSWORD_OPTIONS:
            if key in query:
                secret = query.pop(key)
                parsed.setdefault("password", secret)
        for key, kind in cls.QUERY_FIELDS.items():
            if key in query:
                parsed[key] = _coerce(query.pop(key), kind, key)
        parsed["query"] = query
        if parsed.get("drivername", "").split("+")[0] not in cls.SCHEMES:
            schemes = " or ".join(f"{scheme}://" for scheme in cls.SCHEMES)
            raise ConfigurationError(f"a {cls.SCHEMES[0]} connection string starts with {schemes}, not "
                                     f"{parsed.get('drivername')}://")
        parsed["drivername"] = cls.SCHEMES[0]
        return parsed

    def driver_options(self) -> dict[str, Any]:
        """The free query options for the driver, typed by ``QUERY_OPTIONS``."""
        return {key: _coerce(value, self.QUERY_OPTIONS.get(key, str), key) for key, value in self.query.items()}


_USERINFO = re.compile(r"(^|[\s/])([^\s:/@]*):(?!/)(\S*)@")  # greedy: a password may hold '@'
_SECRET_OPTION = re.compile(r"(?i)\b((?:ssl)?password|passwd|pwd)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)")


def mask_url_text(value: str) -> str:
    """Hide whatever sits between ``user:`` and the last ``@`` in anything shaped like a URL, even a broken
    one, and the value of a ``password=`` option (a URL's query, a libpq keyword string)."""
    value = _SECRET_OPTION.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", value)
    return _USERINFO.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", value)


# -- providers -----------------------------------------------------------------------------------

class EnvProvider:
    """``DESTINATION__POSTGRES__CREDENTIALS__PASSWORD`` for the key path destination.postgres.credentials.password."""

    name = "environment"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = os.environ if environ is None else environ

    @staticmethod
    def key(path: Section) -> str:
        return "__".join(p.upper() for p in path)

    def get(self, path: Section) -> Any:
        return self.environ.get(self.key(path))

    def names_under(self, path: Section) -> list[str]:
        """The keys set one level below ``path`` (``..._CREDENTIALS__KEY`` is ``key``), lower case."""
        prefix = self.key(path) + "__"
        return sorted(k[len(prefix):].lower() for k in self.environ
                      if k.startswith(prefix) and "__" not in k[len(prefix):])

    def describe(self, path: Section) -> str:
        return f"env {self.key(path)}"


class TomlProvider:
    """One toml file; a missing file is an empty provider."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        try:
            with open(path, "rb") as f:
                self.data: dict[str, Any] = tomllib.load(f)
        except FileNotFoundError:
            self.data = {}
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"cannot parse {path}: {exc}") from exc

    def get(self, path: Section) -> Any:
        node: Any = self.data
        for part in path:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node

    def describe(self, path: Section) -> str:
        *section, key = path
        return f"[{'.'.join(section)}] {key} in {self.path}"


def default_providers(cwd: Path | None = None, home: Path | None = None) -> list[Any]:
    """Providers in precedence order (first wins)."""
    cwd = cwd or Path.cwd()
    home = home or Path.home()
    providers: list[Any] = [EnvProvider()]
    for base in (cwd / ".loadbay", home / ".loadbay"):
        providers.append(TomlProvider(base / "secrets.toml"))
        providers.append(TomlProvider(base / "config.toml"))
    return providers


# -- resolve -------------------------------------------------------------------------------------

def resolve(spec: type[T], sections: Sequence[Section], explicit: Mapping[str, Any] | None = None,
            providers: Sequence[Any] | None = None) -> T:
    """Fill the dataclass ``spec`` from ``explicit`` values and the providers, first hit wins.

    ``sections`` are searched in order (for example ``("destination", "warehouse")`` then
    ``("destination", "postgres")``). A field typed as a ``Credentials`` subclass is merged from
    strings and tables across every place; a field typed as another dataclass is a subsection
    (``[destination.<name>.staging]``), resolved the same way; a required field found nowhere raises
    ``ConfigFieldMissingError`` listing every place searched.
    """
    explicit = {k: v for k, v in (explicit or {}).items() if v is not None}
    providers = list(default_providers() if providers is None else providers)
    hints = _type_hints(spec)
    values: dict[str, Any] = {}
    for f in fields(spec):  # type: ignore[arg-type]
        hint = hints[f.name]
        cred_cls = _credentials_class(hint)
        if cred_cls is not None:
            values[f.name] = _resolve_credentials(cred_cls, sections, f.name, explicit.get(f.name), providers)
            continue
        if dataclasses.is_dataclass(hint) and isinstance(hint, type):
            values[f.name] = _resolve_section(hint, sections, f.name, explicit.get(f.name), providers)
            continue
        if f.name in explicit:
            values[f.name] = explicit[f.name]
            continue
        found = _first(providers, [s + (f.name,) for s in sections])
        if found is not None:
            values[f.name] = _coerce(found, hint, f.name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigFieldMissingError(f.name, spec.__name__, _places(providers, sections, (f.name,)))
    return spec(**values)


@functools.cache
def _type_hints(spec: type) -> dict[str, Any]:
    """The field types of a settings class, evaluated once per class: evaluating the annotation strings
    was half of what resolving cost, paid by every new pipeline object for its settings and its destination's."""
    return get_type_hints(spec)


def _resolve_section(spec: type[T], sections: Sequence[Section], name: str, explicit: Any,
                     providers: Sequence[Any]) -> T:
    """A settings dataclass one level down: ``explicit`` as it is when it is one, else resolved from the
    ``name`` subsection of every section, with ``explicit`` (a mapping) winning field by field."""
    if isinstance(explicit, spec):
        return explicit
    if explicit is not None and not isinstance(explicit, Mapping):
        raise ConfigurationError(f"setting {name!r}: give a {spec.__name__} or a dict of its fields, "
                                 f"not {type(explicit).__name__}")
    return resolve(spec, [s + (name,) for s in sections], explicit, providers)


def _credentials_class(hint: Any) -> type[Credentials] | None:
    candidates = getattr(hint, "__args__", None) or (hint,)
    for c in candidates:
        if isinstance(c, type) and issubclass(c, Credentials):
            return c
    return None


def _resolve_credentials(cls: type[Credentials], sections: Sequence[Section], name: str,
                         explicit: Any, providers: Sequence[Any]) -> Credentials:
    if isinstance(explicit, Credentials):
        return explicit
    merged: dict[str, Any] = {}
    cred_fields = [f.name for f in fields(cls)]
    for section in reversed(sections):  # the first section wins, so it is applied last
        for provider in reversed(providers):  # the first provider wins, so it is applied last
            whole = provider.get(section + (name,))
            if isinstance(whole, str):
                merged.update(cls.parse_string(whole))
            elif isinstance(whole, dict):
                merged.update({k: v for k, v in whole.items() if cls.OPEN or k in cred_fields})
            if isinstance(provider, EnvProvider):
                for fname in provider.names_under(section + (name,)) if cls.OPEN else cred_fields:
                    single = provider.get(section + (name, fname))
                    if single is not None:
                        merged[fname] = single
    if isinstance(explicit, str):
        merged.update(cls.parse_string(explicit))
    elif isinstance(explicit, Mapping):
        merged.update(explicit)
    if cls.OPEN:
        return cls(options=merged)  # type: ignore[call-arg]
    hints = _type_hints(cls)
    merged = {k: _coerce(v, hints[k], k) for k, v in merged.items() if k in cred_fields}
    for required in cls.REQUIRED:
        if merged.get(required) in (None, ""):
            places = ["argument credentials=... (a connection string or a dict)"]
            places += _places(providers, sections, (name,))
            places += _places(providers, sections, (name, required))
            raise ConfigFieldMissingError(f"{name}.{required}", cls.__name__, places)
    return cls(**merged)


def _first(providers: Sequence[Any], paths: Sequence[Section]) -> Any:
    for path in paths:
        for provider in providers:
            value = provider.get(path)
            if value is not None:
                return value
    return None


def _places(providers: Sequence[Any], sections: Sequence[Section], key: Section) -> list[str]:
    return [p.describe(s + key) for s in sections for p in providers]


def _coerce(value: Any, hint: Any, name: str) -> Any:
    """Env values arrive as strings; turn them into the field's type."""
    if not isinstance(value, str):
        return value
    target = hint
    args = [a for a in getattr(hint, "__args__", ()) if a is not type(None)]
    if args:
        target = args[0]
    try:
        if target is bool:
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if target is int:
            return int(value)
        if target is float:
            return float(value)
    except ValueError as exc:
        raise ConfigurationError(f"setting {name!r}: {value!r} is not a valid {target.__name__}") from exc
    return value
