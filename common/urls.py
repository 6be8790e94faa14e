"""Database URLs (``driver://user:password@host:port/database?key=value``), read and written the way
SQLAlchemy reads and writes them, without importing SQLAlchemy.

Every PostgreSQL or MySQL run reads its credentials from such a URL, and importing SQLAlchemy for that
costs a fresh process 0.2-0.7 s (its package imports the whole SQL toolkit), as long as some CLI loads
take. The grammar is SQLAlchemy's documented one: user and password percent-decoded, the password ends at
the first ``@``, an IPv6 host in brackets, repeated query keys kept as lists;
``tests/unit/test_urls.py`` holds both to the same results on a corpus of odd URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, quote_plus, unquote

_URL = re.compile(r"""
    (?P<drivername>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6>[^/?]+)\]|(?P<host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
""", re.X)


@dataclass(frozen=True)
class Url:
    drivername: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str | None = None
    query: dict[str, str | list[str]] = field(default_factory=dict)


def parse_url(text: str) -> Url:
    """The parts of ``text``; ValueError when it is no URL (no ``scheme://``) or its port is no number
    (an empty one included)."""
    match = _URL.match(text)
    if match is None:
        raise ValueError("not a URL of the form driver://user:password@host:port/database?key=value")
    parts = match.groupdict()
    query: dict[str, str | list[str]] = {}
    for key, value in parse_qsl(parts["query"] or ""):
        if key not in query:
            query[key] = value
        else:
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
    decoded = {name: unquote(parts[name]) if parts[name] is not None else None
               for name in ("username", "password", "database")}
    port = parts["port"]
    return Url(parts["drivername"], host=parts["host"] or parts["ipv6"],
               port=None if port is None else int(port), query=query, **decoded)  # "h:" is refused too


def render_url(url: Url, *, hide_password: bool = True) -> str:
    """``url`` as text that ``parse_url`` reads back; the password as ``***`` unless asked for."""
    text = f"{url.drivername}://"
    if url.username is not None:
        text += quote(url.username, safe=" +")
        if url.password is not None:
            text += ":" + ("***" if hide_password else quote(url.password, safe=" +"))
        text += "@"
    if url.host is not None:
        text += f"[{url.host}]" if ":" in url.host else url.host
    if url.port is not None:
        text += f":{url.port}"
    if url.database is not None:
        text += "/" + quote(url.database, safe=" +/")
    if url.query:
        text += "?" + "&".join(f"{quote_plus(key)}={quote_plus(value)}" for key in sorted(url.query)
                               for value in ([url.query[key]] if isinstance(url.query[key], str) else url.query[key]))
    return text
