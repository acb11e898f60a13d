"""Rule definitions: loaded from YAML, validated at start-up, plus the rules the data model implies.

A rule says which rows of an entity fail; its kind (see `quality.kinds`) turns it into a
boolean Ibis expression. Severity `reject` quarantines the row, `warn` stages it and records
the finding in audit.warnings.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from retailflow.errors import UserError
from retailflow.model import ENTITIES
from retailflow.quality.kinds import KINDS
from retailflow.quality.rule import Rule
from retailflow.yaml_file import YamlFile, parse_yaml, read_yaml

__all__ = ["CHECK_SECTIONS", "Rule", "checks_sections", "load_rules", "model_rules"]

#: Top-level sections a rules file may hold besides `rules:`: what the completeness and volume checks expect
#: and how they judge (read and validated by retailflow.checks.settings). A file may hold them alone.
CHECK_SECTIONS = ("expectations", "checks")

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


def _staging_needs(rule: Rule) -> str | None:
    """Why `rule` cannot be a warning (a row failing it could not be staged), or None."""
    if rule.severity != "warn":
        return None
    entity = ENTITIES[rule.entity]
    column = entity.column(rule.column) if rule.column in entity.column_names else None
    keep = "; keep severity reject (the row goes to quarantine with its reason)"
    if rule.kind in ("not_null", "valid_type") and column is not None and not column.nullable:
        return f"cannot be a warning: staging.{entity.name}.{column.name} is required (NOT NULL){keep}"
    if rule.kind == "unique" and list(rule.params.get("columns", [])) == list(entity.primary_key):
        return f"cannot be a warning: {', '.join(entity.primary_key)} is staging.{entity.name}'s primary key{keep}"
    if rule.kind == "exists_in" and any(key.column == rule.column and key.references == rule.params.get("references")
                                        for key in entity.foreign_keys):
        return (f"cannot be a warning: staging.{entity.name}.{rule.column} is a foreign key to "
                f"{rule.params['references']}{keep}")
    return None


@dataclass
class RuleFile:
    """A parsed rules file: where it came from, its rule entries and the line each entry and key is on."""

    name: str
    entries: list[Any]
    lines: list[dict[str, int]]

    def line(self, index: int, key: str | None = None) -> int:
        """Line of entry `index` (0-based), or of its `key` when the entry has it."""
        lines = self.lines[index] if index < len(self.lines) else {}
        return lines.get(key or "", lines.get("", 1))

    def error(self, index: int, message: str, key: str | None = None) -> UserError:
        entry = self.entries[index]
        rule_id = entry.get("id", "no id") if isinstance(entry, dict) else "no id"
        return UserError(f"{self.name}:{self.line(index, key)}: rule #{index + 1} ({rule_id}): {message}; "
                         "fix the rules file")


def _read_yaml(path: Path | None) -> RuleFile:
    if path is None:
        shipped = resources.files("retailflow.quality").joinpath("default_rules.yaml")
        document = parse_yaml(shipped.read_text(encoding="utf-8"), str(shipped), what="rules file")
    else:
        document = read_yaml(path, what="rules file")
    data = document.data if isinstance(document.data, dict) else {}
    entries = data.get("rules")
    if entries is None and any(section in data for section in CHECK_SECTIONS):
        entries = []
    if not isinstance(entries, list):
        raise UserError(f"{document.name}:1: expected a top-level 'rules:' list of rules (or an 'expectations:' or "
                        "'checks:' section); see `retailflow rules`")
    return RuleFile(document.name, entries, _entry_lines(document.root))


def checks_sections(path: Path | None) -> YamlFile | None:
    """The rules file at `path`, parsed with the lines of its keys, when it has an `expectations:` or `checks:`
    section; None without a file or without either section."""
    if path is None:
        return None
    document = read_yaml(path, what="rules file")
    data = document.data if isinstance(document.data, dict) else {}
    return document if any(section in data for section in CHECK_SECTIONS) else None


def _entry_lines(root: yaml.Node | None) -> list[dict[str, int]]:
    """Per rule entry: its first line ('') and the line of each of its keys (1-based)."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "rules" and isinstance(value, yaml.SequenceNode):
            return [{"": item.start_mark.line + 1,
                     **({str(k.value): k.start_mark.line + 1 for k, _ in item.value}
                        if isinstance(item, yaml.MappingNode) else {})} for item in value.value]
    return []


def load_rules(path: Path | None = None) -> list[Rule]:
    """Model rules, the shipped default rules, then a user's file: new ids add, known ids override.

    Any problem stops with one line naming the file and the line of the rule (or its key).
    """
    rules = {rule.id: rule for rule in model_rules()}
    for source in [_read_yaml(None)] + ([_read_yaml(path)] if path else []):
        seen: dict[str, int] = {}
        for index, entry in enumerate(source.entries):
            if not isinstance(entry, dict):
                raise source.error(index, "not a mapping of id, entity, kind, column, params, severity, description")
            known = rules.get(str(entry.get("id")))
            if known and set(entry) <= {"id", "severity", "description"}:
                data = {**known.model_dump(), **entry}
            else:
                data = entry
            try:
                rule = Rule.model_validate(data)
            except ValidationError as error:
                problem = error.errors()[0]
                field = ".".join(str(part) for part in problem["loc"]) or "rule"
                key = str(problem["loc"][0]) if problem["loc"] else None
                raise source.error(index, f"{field}: {problem['msg']}", key) from None
            if rule.id in seen:
                raise source.error(index, f"id {rule.id!r} is also used by the rule on line {seen[rule.id]}", "id")
            seen[rule.id] = source.line(index)
            kind = KINDS.get(rule.kind)
            if kind is None:
                raise source.error(index, f"unknown kind {rule.kind!r}; one of {', '.join(sorted(KINDS))}", "kind")
            problem = kind.check(rule)
            if problem:
                raise source.error(index, problem, "params" if "params" in problem else "column")
            problem = _staging_needs(rule)
            if problem:
                raise source.error(index, problem, "severity")
            rules[rule.id] = rule
    return list(rules.values())
