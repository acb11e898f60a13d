"""One data-quality rule: an id, the entity and column it checks, its kind and parameters, and its severity.

Kept apart from loading (quality.rules) so that the kinds (quality.kinds), which turn a rule into an Ibis
expression, and the loader, which checks a rule against its kind, do not import each other.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from retailflow.model import ENTITIES

RULE_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,120}$")


class Rule(BaseModel):
    """One data-quality rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    entity: str
    kind: str
    column: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["reject", "warn"] = "reject"
    description: str = ""
    #: Largest share of a day's rows (percent) that may fail before schedulers stop the day's downstream
    #: stages (a blocking Dagster asset check); quarantine happens either way.
    max_failed_pct: float | None = Field(None, ge=0, le=100)

    @field_validator("id")
    @classmethod
    def _id_is_plain(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError("use letters, digits, '.', '_' or '-' (at most 120)")
        return value

    @field_validator("entity")
    @classmethod
    def _entity_known(cls, value: str) -> str:
        if value not in ENTITIES:
            raise ValueError(f"unknown entity {value!r}; one of {', '.join(ENTITIES)}")
        return value
