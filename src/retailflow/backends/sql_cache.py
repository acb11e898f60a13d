"""Compiled SQL kept by the expression it came from, in the process and on disk.

Compiling an Ibis expression costs far more than fingerprinting it: a validation of a dozen
rows spent 1.3 s of its 2.2 s in Ibis's compiler, every night again, for statements that are
the same from one run to the next. The fingerprint is a digest of the whole expression graph
(each node's type and arguments: table names, schemas, literals, columns), of the engine's
compile key (dialect, and what else its SQL depends on, such as MySQL's database name) and of
the code that compiles it (retailflow's own source, Ibis's and sqlglot's versions). Equal
fingerprints mean equal SQL; an edit to retailflow's code starts a new cache. A run value's value
(run_values.py) is left out of the fingerprint: the SQL kept has its slot, which Backend._compiled
fills for each statement.

A query can also be kept under a name (`keep_named`, `named`): what a stage's stored tables answer a command with
(answers.py), found again by that name, a key its caller gives (the engine and the database) and the code version,
without building the expression (and so without importing Ibis).

On disk the entries live under RETAILFLOW_CACHE_DIR (default: $XDG_CACHE_HOME/retailflow, else
~/.cache/retailflow), one small file each, written atomically; past MAX_ENTRIES the oldest
half is removed. An unwritable folder only means no disk cache.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from retailflow.config import env

if TYPE_CHECKING:
    import ibis.expr.types as ir

MAX_ENTRIES = 4000
_memory: dict[str, str] = {}


@functools.cache
def code_version() -> str:
    """Digest of retailflow's source and the compiler libraries' versions (read from their installed metadata:
    importing them costs a command that compiles nothing 0.4 s)."""
    versions = " ".join(_version(distribution, module) for distribution, module in (("ibis-framework", "ibis"),
                                                                                    ("sqlglot", "sqlglot")))
    digest = hashlib.blake2b(versions.encode(), digest_size=16)
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _version(distribution: str, module: str) -> str:
    """An installed library's version from its metadata; from the module itself where there is none (a checkout)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        import importlib

        return importlib.import_module(module).__version__


class _HoldsSecret(Exception):
    """Raised inside fingerprint's walk at a node whose SQL holds a secret."""


def fingerprint(expr: ir.Expr) -> str | None:
    """A digest of the expression graph, the same in every process for the same expression; None when its SQL
    would hold a secret (an engine scalar's HMAC key pads: never kept, the cache being a plain folder).

    Each node's digest covers its type and arguments in order: child nodes by their digests, the rest (names,
    dtypes, schemas, literal values) by repr; a run value's value is left out (it is not part of the SQL:
    run_values). Written as a walk of its own, memoised per node: Ibis's Node.map took twice as long (0.29 s of
    a 14-day shop's two nights, 238 statements). The secret is looked for in the same walk: a second walk of
    every statement (Backend.holds_secret) was a third of the time a small run spent keeping its SQL."""
    from ibis.common.graph import Node

    from retailflow.backends.compiling import EngineScalar
    from retailflow.backends.run_values import RunValue

    digests: dict[int, str] = {}

    def digest(value: object) -> str:
        if isinstance(value, Node):
            found = digests.get(id(value))
            if found is None:
                if isinstance(value, EngineScalar) and value.secret:
                    raise _HoldsSecret
                parts = [type(value).__module__, type(value).__qualname__]
                for name, argument in zip(value.__argnames__, value.__args__):
                    if not (name == "value" and isinstance(value, RunValue)):
                        parts += [name, digest(argument)]
                found = digests[id(value)] = hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()
            return found
        if isinstance(value, tuple):
            return "(" + ",".join(digest(item) for item in value) + ")"
        if isinstance(value, Mapping):
            return "{" + ",".join(f"{key!r}:{digest(item)}" for key, item in value.items()) + "}"
        return repr(value)

    try:
        return digest(expr.op())
    except _HoldsSecret:
        return None


def cache_dir() -> Path:
    configured = env("RETAILFLOW_CACHE_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"  # the desktop standard's variable, not ours
    return Path(base) / "retailflow"


def compiled(expr: ir.Expr, compile_key: str, compile_fn: Callable[[ir.Expr], str]) -> str:
    """The SQL of expr: from the process's memory, the disk cache, or compile_fn (then kept in both; never where
    the SQL holds a secret)."""
    printed = fingerprint(expr)
    if printed is None:
        return compile_fn(expr)
    key = hashlib.blake2b(f"{code_version()} {compile_key} {printed}".encode(), digest_size=20).hexdigest()
    if key in _memory:
        return _memory[key]
    folder = cache_dir() / "sql"
    path = folder / f"{key}.sql"
    try:
        sql = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        sql = compile_fn(expr)
        _store(folder, path, sql)
    _memory[key] = sql
    return sql


def _named_path(key: str, name: str) -> Path:
    digest = hashlib.blake2b(f"{code_version()} {key} named {name}".encode(), digest_size=20).hexdigest()
    return cache_dir() / "named" / f"{digest}.json"


def named(key: str, name: str) -> dict | None:
    """The entry kept as `name` under `key` (what the SQL depends on besides the code) for this code, None when
    there is none."""
    try:
        return json.loads(_named_path(key, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def keep_named(key: str, name: str, entry: dict) -> None:
    """Keep `entry` (JSON: compiled SQL and what reading it needs) as `name` under `key` for this code."""
    path = _named_path(key, name)
    _store(path.parent, path, json.dumps(entry))


def _store(folder: Path, path: Path, text: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, suffix=".tmp", delete=False) as handle:
            handle.write(text)
        os.replace(handle.name, path)
        entries = list(folder.glob(f"*{path.suffix}"))
        if len(entries) > MAX_ENTRIES:
            entries.sort(key=lambda entry: entry.stat().st_mtime)
            for stale in entries[:len(entries) // 2]:
                stale.unlink(missing_ok=True)
    except OSError:
        return
