"""Settings: command-line options first, then environment variables, then defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from retailflow.sources.mapping import SourceMap

DEFAULT_DB = "duckdb:///./retailflow.duckdb"
#: The source mapping read when neither --sources nor RETAILFLOW_SOURCES names one, if it exists.
DEFAULT_SOURCES = "retailflow.yaml"


@dataclass
class Settings:
    """What every command needs to know: which database and which rules."""

    #: Database URL (RETAILFLOW_DB): duckdb:///relative.duckdb, duckdb:////abs/path.duckdb, postgresql://...,
    #: mysql://..., pyspark://local[2]?warehouse=/path or sc://host:15002
    db_url: str = DEFAULT_DB
    #: Extra or overriding data-quality rules (RETAILFLOW_RULES), a YAML file.
    rules_path: Path | None = None
    #: No progress bars or timing lines (RETAILFLOW_QUIET=1); results are still printed.
    quiet: bool = False
    #: How to read exports not in the contract (RETAILFLOW_SOURCES), a YAML source mapping; default
    #: ./retailflow.yaml when there is one (docs/sources.md).
    sources_path: Path | None = None

    @classmethod
    def resolve(cls, db_url: str | None = None, rules_path: Path | None = None, quiet: bool = False,
                sources_path: Path | None = None) -> "Settings":
        rules = rules_path or (Path(os.environ["RETAILFLOW_RULES"]) if os.environ.get("RETAILFLOW_RULES") else None)
        quiet = quiet or os.environ.get("RETAILFLOW_QUIET", "").lower() in ("1", "true", "yes")
        sources = sources_path or (Path(os.environ["RETAILFLOW_SOURCES"]) if os.environ.get("RETAILFLOW_SOURCES")
                                   else Path(DEFAULT_SOURCES) if Path(DEFAULT_SOURCES).is_file() else None)
        return cls(db_url or os.environ.get("RETAILFLOW_DB") or DEFAULT_DB, rules, quiet, sources)

    def sources(self) -> "SourceMap":
        """The source mapping, loaded and checked (the contract alone when there is none)."""
        from retailflow.sources.mapping import SourceMap, load_sources

        return load_sources(self.sources_path) if self.sources_path else SourceMap()


#: Customer ids that mean "no loyalty card" on a sale (RETAILFLOW_ANONYMOUS_IDS, comma-separated, compared
#: without regard to case); an empty cell always does.
DEFAULT_ANONYMOUS_IDS = ("0", "GUEST", "ANON", "ANONYMOUS")


def anonymous_ids() -> tuple[str, ...]:
    """The placeholder customer ids a sale may carry instead of a loyalty card's, upper-cased."""
    text = os.environ.get("RETAILFLOW_ANONYMOUS_IDS")
    ids = DEFAULT_ANONYMOUS_IDS if text is None else tuple(part.strip() for part in text.split(","))
    return tuple(sorted({value.upper() for value in ids if value}))
