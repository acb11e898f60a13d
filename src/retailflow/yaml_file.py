"""A YAML file read with the line of every key, so a configuration error names the line it is on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from retailflow.errors import UserError


@dataclass
class YamlFile:
    """A parsed YAML document with its node tree, for line numbers."""

    name: str
    data: Any
    root: yaml.Node | None
    #: What the file is, for messages: "rules file", "mapping file".
    what: str

    def line(self, keys: tuple[str, ...]) -> int:
        """The 1-based line of the key path `keys` (mapping keys or list indexes), or of its deepest found part."""
        node, line = self.root, 1
        for key in keys:
            if isinstance(node, yaml.MappingNode):
                found = next(((k, v) for k, v in node.value if str(k.value) == str(key)), None)
                if found is None:
                    return line
                line, node = found[0].start_mark.line + 1, found[1]
            elif isinstance(node, yaml.SequenceNode) and str(key).isdigit() and int(key) < len(node.value):
                node = node.value[int(key)]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def error(self, keys: tuple[str, ...], message: str) -> UserError:
        return UserError(f"{self.name}:{self.line(keys)}: {message}; fix the {self.what}")


def read_yaml(path: Path, *, what: str) -> YamlFile:
    """Parse `path`; a file that cannot be read or is not YAML is one UserError naming its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise UserError(f"{path}: cannot read the {what} ({error.strerror})") from None
    except UnicodeDecodeError as error:
        line = path.read_bytes()[:error.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 text; save the {what} as UTF-8") from None
    return parse_yaml(text, str(path), what=what)


def parse_yaml(text: str, name: str, *, what: str) -> YamlFile:
    """Parse YAML `text` read from `name`."""
    try:
        return YamlFile(name, yaml.safe_load(text), yaml.compose(text, Loader=yaml.SafeLoader), what)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark else text[:getattr(error, "position", 0)].count("\n") + 1
        problem = " ".join(str(getattr(error, "problem", None) or getattr(error, "reason", None) or error).split())
        context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and context_mark and context_mark.line + 1 != line:
            problem += f", {context} started on line {context_mark.line + 1}"
        raise UserError(f"{name}:{line}: not valid YAML ({problem}); fix the {what}") from None
