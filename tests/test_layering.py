"""The package's layers, enforced: which subpackage may import which, read from the source's own imports.

Lower layers never import higher ones, so a change to validation or analytics cannot break how files are parsed
or how an engine runs SQL, and no two subpackages import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "retailflow"
#: Subpackages a layer must never import (at module level or inside a function).
FORBIDDEN = {
    "sources": {"backends", "quality", "analytics", "report", "notify", "privacy", "commands", "integrations"},
    "backends": {"quality", "analytics", "report", "notify", "commands", "integrations"},
    "quality": {"analytics", "report", "notify", "commands", "integrations"},
    "analytics": {"report", "commands", "integrations"},
}


def _imports() -> dict[str, set[str]]:
    """Per subpackage (or top-level module), the retailflow subpackages its modules import."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        layer = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else (
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if parts[0] == "retailflow" and len(parts) > 1 and parts[1] != layer:
                    found.setdefault(layer, set()).add(parts[1])
    return found


def test_lower_layers_never_import_higher_ones():
    imports = _imports()
    wrong = {layer: sorted(imports.get(layer, set()) & forbidden) for layer, forbidden in FORBIDDEN.items()}
    assert not any(wrong.values()), wrong


def test_no_two_subpackages_import_each_other():
    imports = _imports()
    packages = {path.name for path in PACKAGE.iterdir() if (path / "__init__.py").exists()}
    mutual = {tuple(sorted((a, b))) for a in packages for b in imports.get(a, set())
              if b in packages and a in imports.get(b, set())}
    assert not mutual, mutual
