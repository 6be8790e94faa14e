"""loadbay's URL reader and writer (loadbay.common.urls) against SQLAlchemy's, which they replace so that a
run never imports SQLAlchemy for its credentials: the same parts from the same text, the same text from the
same parts, the same refusals, on hand-picked odd URLs and on thousands of random ones."""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from loadbay.common.urls import Url, parse_url, render_url

ODD = [
    "postgresql://u:p@h:5432/db",
    "postgresql://h/db", "postgresql://h", "postgresql://", "postgresql:///db", "duckdb:///rel/path.duckdb",
    "duckdb:////abs/path.duckdb", "sqlite://", "sqlite:///:memory:", "mysql+pymysql://root@127.0.0.1:3306/test",
    "postgresql://u:p%40ss%3Aw%2Ford@h/db", "postgresql://u:p@ss@h/db", "postgresql://u:@h/db", "postgresql://:p@h/db",
    "postgresql://u:p@[::1]:5432/db", "postgresql://u:p@[fe80::1%25eth0]/db",
    "postgresql://h/db?sslmode=require&application_name=a%20b", "postgresql://h/db?a=1&a=2&b=&c",
    "postgresql://h/db?password=secret", "postgresql://h/d%2Fb?x=%26y", "postgresql://us%20er:p+w@h/db",
    "postgresql://h/db/with/slashes", "postgresql://h:5432", "postgresql://user:pa:ss@h/db",
    "mysql://r@h/db?passwd=x&local_infile=1", "postgresql://ü:ö@hé/dä?ä=ö",
]
BAD = ["postgresql://h:notaport/db", "postgresql://u@h:/db", "loader:pw@h/db", "postgresql:/h/db", "", "://h/db", "post gres://h/db"]


def sqlalchemy_parts(text: str) -> dict[str, Any]:
    url = make_url(text)
    query = {k: v if isinstance(v, str) else list(v) for k, v in url.query.items()}
    return {"drivername": url.drivername, "username": url.username, "password": url.password, "host": url.host,
            "port": url.port, "database": url.database, "query": query}


def loadbay_parts(text: str) -> dict[str, Any]:
    url = parse_url(text)
    return {"drivername": url.drivername, "username": url.username, "password": url.password, "host": url.host,
            "port": url.port, "database": url.database, "query": url.query}


@pytest.mark.parametrize("text", ODD)
def test_odd_urls_parse_as_sqlalchemy_parses_them(text: str) -> None:
    assert loadbay_parts(text) == sqlalchemy_parts(text)


@pytest.mark.parametrize("text", BAD)
def test_what_sqlalchemy_refuses_is_refused(text: str) -> None:
    with pytest.raises(Exception):
        make_url(text)
    with pytest.raises(ValueError):
        parse_url(text)


ALPHABET = "aZ09_-.~ :/@?#&=+%[]!$'()*,;é😀\\\""


def random_text(rng: random.Random, empty: bool = True) -> str | None:
    if empty and rng.random() < 0.15:
        return None
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0 if empty else 1, 8)))


def test_random_parts_render_as_sqlalchemy_renders_them_and_read_back() -> None:
    rng = random.Random(20261127)
    for _ in range(3000):
        host = rng.choice([None, "h", "db.example.com", "::1", "10.0.0.1", "hé"])
        query = {random_text(rng, empty=False): random_text(rng, empty=False) for _ in range(rng.randint(0, 2))}
        parts = dict(drivername=rng.choice(["postgresql", "mysql+pymysql", "duckdb"]), username=random_text(rng),
                     password=random_text(rng), host=host, port=rng.choice([None, 5432]),
                     database=random_text(rng), query=query)
        mine = Url(**parts)
        theirs = URL.create(**parts)
        for hide in (True, False):
            assert render_url(mine, hide_password=hide) == theirs.render_as_string(hide_password=hide), parts
        text = render_url(mine, hide_password=False)
        assert loadbay_parts(text) == sqlalchemy_parts(text), text


def test_random_text_parses_as_sqlalchemy_parses_it() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        text = rng.choice(["postgresql://", "mysql+pymysql://", "x://"]) + "".join(
            rng.choice(ALPHABET + "aaaa") for _ in range(rng.randint(0, 30)))
        try:
            expected = sqlalchemy_parts(text)
        except ValueError:
            with pytest.raises(ValueError):
                parse_url(text)
            continue
        assert loadbay_parts(text) == expected, text


def test_reading_postgres_credentials_does_not_import_sqlalchemy() -> None:
    code = ("import sys, loadbay\n"
            "d = loadbay.destination('postgres', credentials='postgresql://u:secret@h:5432/db')\n"
            "p = loadbay.pipeline('urls', destination=d, dataset_name='x', pipelines_dir=sys.argv[1])\n"
            "assert 'secret' not in repr(p.config)\n"
            "print(p.config.credentials.location(), 'sqlalchemy' in sys.modules)")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        done = subprocess.run([sys.executable, "-c", code, folder], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["postgresql://u:***@h:5432/db", "False"]
