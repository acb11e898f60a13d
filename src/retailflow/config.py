"""Settings: command-line options first, then environment variables, then defaults.

Every environment variable retailflow reads is declared once in `VARIABLES`, with what it does, and read through
`env()` — no other module reads the environment for a setting of ours (the README documents each; a test checks
both). Defaults stay beside the code they tune, where the measurement behind them is written.
"""

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


@dataclass(frozen=True)
class Variable:
    """An environment variable retailflow reads."""

    name: str
    description: str
    #: An empty value is a value (an empty list), not "unset".
    keeps_empty: bool = False
    #: Never printed (a password, a key).
    secret: bool = False


VARIABLES: dict[str, Variable] = {variable.name: variable for variable in (
    Variable("RETAILFLOW_DB", "Database URL (as --db)."),
    Variable("RETAILFLOW_RULES", "YAML file adding or overriding data-quality rules (as --rules)."),
    Variable("RETAILFLOW_SOURCES", "YAML source mapping for exports not in the contract (as --sources)."),
    Variable("RETAILFLOW_QUIET", "1, true or yes: no progress bars or timing lines (as --quiet)."),
    Variable("RETAILFLOW_ANONYMOUS_IDS", "Customer ids meaning no loyalty card, comma-separated; empty = none.",
             keeps_empty=True),
    Variable("RETAILFLOW_LOYALTY_TIERS", "Tier thresholds, e.g. Bronze:0,Silver:500,Gold:1500,Platinum:4000."),
    Variable("RETAILFLOW_PII_KEY", "Secret key of the pseudonyms `forget` writes (at least 16 characters).",
             secret=True),
    Variable("RETAILFLOW_SMTP_HOST", "SMTP server for `notify --sender smtp`."),
    Variable("RETAILFLOW_SMTP_PORT", "SMTP port (default 25)."),
    Variable("RETAILFLOW_SMTP_STARTTLS", "1, true or yes: STARTTLS before logging in."),
    Variable("RETAILFLOW_SMTP_USER", "SMTP user name."),
    Variable("RETAILFLOW_SMTP_PASSWORD", "SMTP password.", secret=True),
    Variable("RETAILFLOW_DUCKDB_MEMORY_LIMIT", "DuckDB's memory limit (default 3GB; spills past it)."),
    Variable("RETAILFLOW_DUCKDB_THREADS", "DuckDB's threads (default: every core)."),
    Variable("RETAILFLOW_POSTGRES_WORK_MEM", "PostgreSQL work_mem of retailflow's sessions (default 64MB)."),
    Variable("RETAILFLOW_MYSQL_JOIN_BUFFER", "MySQL / MariaDB join buffer of retailflow's sessions (default 256M)."),
    Variable("RETAILFLOW_CACHE_DIR", "Where compiled SQL is cached (default $XDG_CACHE_HOME/retailflow)."),
)}


def env(name: str) -> str | None:
    """The value of a declared variable; None when unset (or empty, unless an empty value means something)."""
    variable = VARIABLES[name]
    value = os.environ.get(name)
    return value if value or (value is not None and variable.keeps_empty) else None


def env_flag(name: str) -> bool:
    """Whether a declared yes/no variable says yes (1, true or yes)."""
    return (env(name) or "").lower() in ("1", "true", "yes")


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
    #: ./retailflow.yaml when there is one (docs/reference/sources.md).
    sources_path: Path | None = None

    @classmethod
    def resolve(cls, db_url: str | None = None, rules_path: Path | None = None, quiet: bool = False,
                sources_path: Path | None = None) -> "Settings":
        rules = rules_path or (Path(env("RETAILFLOW_RULES")) if env("RETAILFLOW_RULES") else None)
        quiet = quiet or env_flag("RETAILFLOW_QUIET")
        sources = sources_path or (Path(env("RETAILFLOW_SOURCES")) if env("RETAILFLOW_SOURCES")
                                   else Path(DEFAULT_SOURCES) if Path(DEFAULT_SOURCES).is_file() else None)
        return cls(db_url or env("RETAILFLOW_DB") or DEFAULT_DB, rules, quiet, sources)

    def sources(self) -> "SourceMap":
        """The source mapping, loaded and checked (the contract alone when there is none)."""
        from retailflow.sources.mapping import SourceMap, load_sources

        return load_sources(self.sources_path) if self.sources_path else SourceMap()


#: Customer ids that mean "no loyalty card" on a sale (RETAILFLOW_ANONYMOUS_IDS, comma-separated, compared
#: without regard to case); an empty cell always does.
DEFAULT_ANONYMOUS_IDS = ("0", "GUEST", "ANON", "ANONYMOUS")


def anonymous_ids() -> tuple[str, ...]:
    """The placeholder customer ids a sale may carry instead of a loyalty card's, upper-cased."""
    text = env("RETAILFLOW_ANONYMOUS_IDS")
    ids = DEFAULT_ANONYMOUS_IDS if text is None else tuple(part.strip() for part in text.split(","))
    return tuple(sorted({value.upper() for value in ids if value}))
