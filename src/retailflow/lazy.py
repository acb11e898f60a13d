"""Modules imported when first used rather than when their user is imported.

Ibis, with sqlglot and the twenty SQL compilers its `compilers` package imports, is about 0.45 s of a
process's start on this machine, three times the rest of the command line. A command that only reads what a
stage stored (answers.py) runs SQL text through the driver and never needs it, so the modules on that path
(backends/, catalog, sql_cache) name Ibis through a `LazyModule`: the import happens at the first attribute
read, e.g. when a statement is first compiled.

    ibis = LazyModule("ibis")
    ir = LazyModule("ibis.expr.types")

Type annotations stay plain (`ir.Table`): with `from __future__ import annotations` they are never evaluated.
A class defined at import time cannot subclass a lazy module's class; such classes live in modules imported
only to compile (backends/compiling.py, the engines' compilers).
"""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """The module `name`, imported at the first attribute read; each attribute is then kept on this object."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(importlib.import_module(self._name), attribute)
        setattr(self, attribute, value)
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"
