"""Rule definitions: loaded from YAML, validated at start-up, plus the rules the data model implies.

A rule says which rows of an entity fail; its kind (see `quality.kinds`) turns it into a
boolean Ibis expression. Severity `reject` quarantines the row, `warn` stages it and records
the finding in audit.warnings.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from retailflow.errors import UserError
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


def model_rules() -> list[Rule]:
    """Rules implied by the data model: required values, types, keys and references."""
    rules: list[Rule] = []
    for entity in ENTITIES.values():
        for column in entity.columns:
            if not column.nullable:
                rules.append(Rule(id=f"{entity.name}.{column.name}.not_null", entity=entity.name, kind="not_null",
                                  column=column.name, description=f"{column.name} is required."))
            if column.type != "text":
                rules.append(Rule(id=f"{entity.name}.{column.name}.type", entity=entity.name, kind="valid_type",
                                  column=column.name, description=f"{column.name} is a valid {column.type}."))
        rules.append(Rule(id=f"{entity.name}.primary_key.unique", entity=entity.name, kind="unique",
                          params={"columns": list(entity.primary_key)},
                          description=f"{', '.join(entity.primary_key)} identifies one row."))
        for foreign_key in entity.foreign_keys:
            rules.append(Rule(id=f"{entity.name}.{foreign_key.column}.exists", entity=entity.name, kind="exists_in",
                              column=foreign_key.column, params={"references": foreign_key.references},
                              description=f"{foreign_key.column} exists in {foreign_key.references}."))
    return rules


def _read_yaml(path: Path | None) -> tuple[str, Any]:
    if path is None:
        text = resources.files("retailflow.quality").joinpath("default_rules.yaml").read_text(encoding="utf-8")
        return "default_rules.yaml", yaml.safe_load(text)
    try:
        return str(path), yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"{path}: cannot read the rules file ({error.strerror})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: not valid YAML ({getattr(error, 'problem', error)}); fix the rules file") from None


def _parse(source: str, document: Any) -> list[dict[str, Any]]:
    entries = document.get("rules") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise UserError(f"{source}: expected a top-level 'rules:' list")
    return entries


def load_rules(path: Path | None = None) -> list[Rule]:
    """Model rules, the shipped default rules, then a user's file: new ids add, known ids override."""
    from retailflow.quality.kinds import KINDS

    rules = {rule.id: rule for rule in model_rules()}
    sources = [_read_yaml(None)] + ([_read_yaml(path)] if path else [])
    for source, document in sources:
        for index, entry in enumerate(_parse(source, document), start=1):
            if not isinstance(entry, dict):
                raise UserError(f"{source}: rule #{index} is not a mapping")
            known = rules.get(str(entry.get("id")))
            if known and set(entry) <= {"id", "severity", "description"}:
                data = {**known.model_dump(), **entry}
            else:
                data = entry
            try:
                rule = Rule(**data)
            except ValidationError as error:
                problem = error.errors()[0]
                field = ".".join(str(part) for part in problem["loc"]) or "rule"
                raise UserError(
                    f"{source}: rule #{index} ({entry.get('id', 'no id')}): {field}: {problem['msg']}"
                ) from None
            kind = KINDS.get(rule.kind)
            if kind is None:
                raise UserError(f"{source}: rule {rule.id}: unknown kind {rule.kind!r}; one of {', '.join(sorted(KINDS))}")
            problem = kind.check(rule)
            if problem:
                raise UserError(f"{source}: rule {rule.id}: {problem}")
            rules[rule.id] = rule
    return list(rules.values())
