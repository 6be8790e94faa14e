"""Renders the README's destination capabilities table from the capabilities objects themselves.

``python -m loadbay.capabilities_table`` prints it; a test checks the README holds exactly this.
"""

from __future__ import annotations

from dataclasses import fields

from common.capabilities import DestinationCapabilities
from destinations import BUILTINS, resolve_destination

SHOWN = ("preferred_loader_file_format", "supported_loader_file_formats", "max_identifier_length",
         "decimal_precision", "max_decimal_precision", "supports_ddl_transactions", "supports_truncate",
         "merge_strategies", "replace_strategies", "sqlglot_dialect", "max_parallel_load_jobs")


def _cell(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def render() -> str:
    names = [n for n in BUILTINS if n != "noop"]
    caps: dict[str, DestinationCapabilities] = {n: resolve_destination(n).capabilities for n in names}
    known = {f.name for f in fields(DestinationCapabilities)}
    lines = ["| capability | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for name in SHOWN:
        assert name in known, name
        lines.append(f"| `{name}` | " + " | ".join(_cell(getattr(caps[n], name)) for n in names) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render())
