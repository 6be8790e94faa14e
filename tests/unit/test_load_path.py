"""One load path: the Loader alone runs jobs; normalize knows nothing of loading; one name for loading
while normalizing. Read from the source, so a second runner or an old name coming back fails here."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OLD_NAMES = re.compile(r"early[ _-]?load|loads_while_normalizing|on_rotate", re.IGNORECASE)
"""Words once used for what is now ``load_while_normalizing`` everywhere."""


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _calls(path: Path) -> set[str]:
    """Names of the methods and functions ``path`` calls."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            for node in ast.walk(tree) if isinstance(node, ast.Call)}


def test_normalize_imports_nothing_of_loading() -> None:
    imported = _imports(REPO / "loadbay" / "normalize.py")
    assert not {m for m in imported if m.startswith(("loadbay.load", "loadbay.destinations"))}, imported


def test_only_the_loader_runs_jobs() -> None:
    runners = sorted(str(path.relative_to(REPO)) for path in (REPO / "loadbay").rglob("*.py")
                     if {"run_job", "create_load_job"} & _calls(path))
    assert runners == ["loadbay/load.py"]
    assert not (REPO / "loadbay" / "early_load.py").exists()


def test_loading_while_normalizing_has_one_name() -> None:
    files = [REPO / "README.md", *(REPO / "docs").rglob("*.md")]
    for folder in ("loadbay", "common", "destinations", "tests"):
        files += [p for p in (REPO / folder).rglob("*.py") if p.resolve() != Path(__file__).resolve()]
    found = [f"{path.relative_to(REPO)}:{n}: {line.strip()}" for path in files
             for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if OLD_NAMES.search(line)]
    assert found == []
