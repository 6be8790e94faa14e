"""Renders the README's destination capabilities table from the capabilities objects themselves.

``python -m loadbay.capabilities_table`` prints it; a test checks the README holds exactly this.
"""

from __future__ import annotations

from dataclasses import fields

from loadbay.common.capabilities import DestinationCapabilities
from loadbay.destinations import BUILTINS, resolve_destination

SHOWN = ("preferred_loader_file_format", "supported_loader_file_formats", "max_identifier_length",
         "max_parameters_per_statement", "decimal_precision", "max_decimal_precision", "supports_ddl_transactions",
         "supports_truncate", "merge_strategies", "replace_strategies", "is_dataset_a_schema", "sqlglot_dialect",
         "max_parallel_load_jobs", "load_while_normalizing", "supports_nan_infinity", "max_table_columns",
         "columnar_file_format", "columnar_file_max_items", "ddl_hints", "staging", "costly_statements")


def _cell(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def columns() -> dict[str, DestinationCapabilities]:
    """One column per built-in destination; the SQLAlchemy one once per dialect it is tested on."""
    from sqlalchemy.engine import make_url

    from loadbay.destinations.sqlalchemy.capabilities import capabilities_for_dialect

    out: dict[str, DestinationCapabilities] = {}
    for name in BUILTINS:
        if name == "noop":
            continue
        if name == "sqlalchemy":
            for label, url in (("sqlite", "sqlite://"), ("mysql/mariadb", "mysql+pymysql://")):
                out[f"sqlalchemy ({label})"] = capabilities_for_dialect(make_url(url).get_dialect()())
        else:
            out[name] = resolve_destination(name).capabilities
    return out


def render() -> str:
    caps = columns()
    names = list(caps)
    known = {f.name for f in fields(DestinationCapabilities)}
    lines = ["| capability | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name in SHOWN:
        assert name in known, name
        lines.append(f"| `{name}` | " + " | ".join(_cell(getattr(caps[n], name)) for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
