"""Pseudonyms: a person's id replaced by a keyed HMAC of it, the same in every table, run and engine.

A plain hash of an id such as C0001 is found by hashing every likely id; an HMAC under a secret key
(RETAILFLOW_PII_KEY, kept outside the database) is not. The erasures on record are also the suppression
list: ingest pseudonymises the rows of erased people in every later file before anything reads them.
"""

from __future__ import annotations

import hashlib
import hmac

import ibis.expr.types as ir

from retailflow import catalog
from retailflow.backends import Backend
from retailflow.config import env
from retailflow.errors import UserError
from retailflow.model import Entity, person_references

KEY_VARIABLE = "RETAILFLOW_PII_KEY"
PREFIX = "anon-"
#: Hex digits kept of the HMAC: 96 bits, so ten million people collide with odds below 1e-14.
DIGITS = 24
MIN_KEY_LENGTH = 16
ERASURES = catalog.table("audit.erasures")


def pii_key() -> bytes:
    """The pseudonym key from the environment; a clear error when it is missing or too short to be secret."""
    value = env(KEY_VARIABLE) or ""
    if not value:
        raise UserError(f"{KEY_VARIABLE} is not set: set it to a long random secret (e.g. the output of "
                        "`openssl rand -hex 32`), kept outside the database and the same for every run")
    if len(value) < MIN_KEY_LENGTH:
        raise UserError(f"{KEY_VARIABLE} has {len(value)} characters: use a random secret of at least "
                        f"{MIN_KEY_LENGTH} (e.g. `openssl rand -hex 32`)")
    return value.encode()


def pseudonym(key: bytes, person_id: str) -> str:
    """The pseudonym of one id (what pseudonym_sql computes inside the engine)."""
    return PREFIX + hmac.new(key, person_id.encode(), hashlib.sha256).hexdigest()[:DIGITS]


def pseudonym_sql(backend: Backend, key: bytes, text_sql: str) -> str:
    """SQL for the pseudonym of the id in `text_sql`, computed by the engine row by row."""
    return f"concat('{PREFIX}', substr({backend.hmac_sha256(text_sql, key)}, 1, {DIGITS}))"


def key_check(key: bytes) -> str:
    """A fingerprint of the key, kept with each erasure, that does not reveal the key."""
    return hmac.new(key, b"retailflow key check", hashlib.sha256).hexdigest()[:16]


def erasures_on_record(backend: Backend) -> int:
    return int(backend.scalar("SELECT count(*) FROM audit.erasures") or 0)


def checked_key(backend: Backend) -> bytes:
    """The key from the environment, refused when this database's earlier erasures were made with another."""
    key = pii_key()
    _, rows = backend.fetch("SELECT DISTINCT key_check FROM audit.erasures")
    if rows and {row[0] for row in rows} != {key_check(key)}:
        raise UserError(f"{KEY_VARIABLE} is not the key this database's earlier erasures were made with: set that "
                        "key again (under another key, erased customers would no longer be recognised)")
    return key


def pseudonym_of(backend: Backend, key: bytes, person: ir.StringValue) -> ir.StringValue:
    """The pseudonym of the id in a cell as sent (trimmed first), computed by the engine row by row."""
    return backend.engine_scalar(person, pseudonym_sql(backend, key, "trim({value})"), secret=True)


def suppress_erased(backend: Backend, entity: Entity, batch_id: int) -> int:
    """Pseudonymise the rows of erased people in a batch just loaded into raw and drop their personal cells.

    Returns the rows changed. Costs one count when nobody was ever erased.
    """
    column = person_references().get(entity.name)
    if column is None or not erasures_on_record(backend):
        return 0
    key = checked_key(backend)
    erased = ERASURES.select("pseudonym").distinct()
    personal = [personal.name for personal in entity.columns if personal.personal]
    return backend.update_from(
        backend.raw_table("raw", entity.name), erased,
        lambda row, known: [known.pseudonym == pseudonym_of(backend, key, row[column])],
        lambda _, known: {column: known.pseudonym, **dict.fromkeys(personal)}, where={"_batch_id": batch_id})
