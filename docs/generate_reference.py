"""Write the references that come from the code, so they cannot say something the code does not.

    python docs/generate_reference.py           # rewrite every generated page
    python docs/generate_reference.py --check   # exit 1, writing nothing, when a page is not what this writes

The pages (docs/reference/): cli.md from every command's `--help`; settings.md from config.VARIABLES and the
global options; input-model.md from model.ENTITIES; rule-kinds.md from the rule kinds and the rules shipped;
stages.md from the stage registry; stored-tables.md from the catalog of stored tables; capabilities.md from
each engine's capability flags. The README's list of settings is written here too. tests/test_docs.py runs
`--check`, so a command, option, setting, column, rule kind, stage, stored table or capability that changed fails
the suite until this script is run again.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

# Click's plain help, not Rich's boxes: Rich draws them to the terminal's width and style, which would make
# the file differ from machine to machine. Typer reads this once, when it is imported, so it is set first.
os.environ["TYPER_USE_RICH"] = "0"

import click  # noqa: E402
import typer  # noqa: E402

#: Where each reference reads from, named once here so that a module moving is one line to change.
CLI_MODULE = "retailflow.cli"              # app: the Typer application
CONFIG_MODULE = "retailflow.config"        # VARIABLES: every environment variable
MODEL_MODULE = "retailflow.model"          # ENTITIES, TYPES, TYPE_WORDS: the input model
KINDS_MODULE = "retailflow.quality.kinds"  # KINDS: the rule kinds
RULES_MODULE = "retailflow.quality.rules"  # load_rules(): the rules in force without a rules file
STAGES_MODULE = "retailflow.stages"        # STAGES: the stage registry
CATALOG_MODULE = "retailflow.catalog"      # STORED_TABLES: every table retailflow writes
BACKENDS_PACKAGE = "retailflow.backends"   # Backend, Capabilities and one Backend subclass per engine

DOCS = Path(__file__).resolve().parent
REFERENCE = DOCS / "reference"
README = DOCS.parent / "README.md"
#: The README's list of settings sits between these two lines; everything else in the README is written by hand.
SETTINGS_START = "<!-- settings: written by docs/generate_reference.py from config.VARIABLES; do not edit -->"
SETTINGS_END = "<!-- end of settings -->"
#: A fixed width, for the same reason as plain help: the file must not depend on the terminal.
WIDTH = 100
GENERATED = ("This page is written by `python docs/generate_reference.py` from {source}; do not edit it by hand "
             "(tests/test_docs.py fails when it differs from what the script writes).")


def escape_cell(text: str) -> str:
    """Text for a Markdown table cell: a bar would end the cell, a line break the row."""
    return " ".join(str(text).split()).replace("|", "\\|")


def table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    """A Markdown table."""
    lines = [f"| {' | '.join(header)} |", f"|{'---|' * len(header)}"]
    lines += [f"| {' | '.join(escape_cell(cell) for cell in row)} |" for row in rows]
    return "\n".join(lines)


def page(title: str, source: str, intro: str, *sections: str) -> str:
    """A generated page: its title, where it comes from, an introduction, then its sections."""
    return "\n\n".join([f"# {title}", GENERATED.format(source=source), intro.strip(), *sections]).rstrip() + "\n"


# --- The command line ------------------------------------------------------------------------------------------

def command_contexts() -> list[click.Context]:
    """A Click context for every visible command, depth first in the order `retailflow --help` lists them."""
    app = importlib.import_module(CLI_MODULE).app
    found: list[click.Context] = []

    def walk(context: click.Context) -> None:
        found.append(context)
        command = context.command
        for name in getattr(command, "commands", {}):
            sub = command.get_command(context, name)
            if not sub.hidden:
                walk(click.Context(sub, info_name=name, parent=context, terminal_width=WIDTH,
                                   max_content_width=WIDTH))

    walk(click.Context(typer.main.get_command(app), info_name="retailflow", terminal_width=WIDTH,
                       max_content_width=WIDTH))
    return found


def anchor(heading: str) -> str:
    """The anchor GitHub (and MyST) give a heading of inline code made of words and spaces."""
    return heading.lower().replace(" ", "-")


def cli_reference() -> str:
    contexts = command_contexts()
    contents = "\n".join(f"- [`{context.command_path}`](#{anchor(context.command_path)})" for context in contexts)
    sections = [f"## `{context.command_path}`\n\n```text\n{context.command.get_help(context)}\n```"
                for context in contexts]
    return page("Command-line reference", "the commands themselves", """
Every command's `--help`, as the command prints it. For a guided first use see the
[tutorial](../tutorial/first-15-minutes.md); for tasks, the [how-to guides](../index.md#how-to-guides-get-a-task-done);
for the settings every command reads, the [settings reference](settings.md).
""", contents, *sections)


# --- Settings --------------------------------------------------------------------------------------------------

def global_options() -> list[tuple[str, str]]:
    """(`--option`, help) of the options every command takes, as `retailflow --help` lists them."""
    app = importlib.import_module(CLI_MODULE).app
    command = typer.main.get_command(app)
    return [(", ".join(f"`{name}`" for name in param.opts), param.help or "") for param in command.params
            if isinstance(param, click.Option) and not param.hidden and "--help" not in param.opts]


def settings_reference() -> str:
    variables = importlib.import_module(CONFIG_MODULE).VARIABLES
    rows = [(f"`{variable.name}`", variable.description, "yes" if variable.secret else "")
            for variable in variables.values()]
    return page("Settings", "`config.VARIABLES` and the command line's global options", """
retailflow reads its settings from the command line first, then from the environment, then from its defaults.
Every environment variable is declared once, in `src/retailflow/config.py`, and read there; a secret one is never
printed. The `settings` command lists them with their values here and the settings in effect. The database URLs
each engine takes are in [Databases](databases.md).
""", "## Global options\n\nGiven before the command, as in `--db URL run PATH`; each has an environment "
         "variable below.\n\n" + table(("option", "what it sets"), global_options()),
         "## Environment variables\n\n" + table(("variable", "what it sets", "secret"), rows))


def readme_with_settings(readme: str) -> str:
    """The README with its list of settings rewritten from config.VARIABLES (the text around it kept)."""
    variables = importlib.import_module(CONFIG_MODULE).VARIABLES
    before, marker, rest = readme.partition(SETTINGS_START)
    _, end, after = rest.partition(SETTINGS_END)
    if not (marker and end):
        sys.exit(f"{README} has no settings list: put the lines {SETTINGS_START!r} and {SETTINGS_END!r} where it goes")
    names = ", ".join(f"`{name}`" for name in variables)
    return f"{before}{SETTINGS_START}\n{names}.\n{SETTINGS_END}{after}"


# --- The input model -------------------------------------------------------------------------------------------

def column_use(column) -> str:
    """Whether a file must have the column and give a value in it."""
    if column.optional:
        return "optional"
    return "may be empty" if column.nullable else "required"


def input_model_reference() -> str:
    model = importlib.import_module(MODEL_MODULE)
    used = {column.type for entity in model.ENTITIES.values() for column in entity.columns}
    types = table(("type", "SQL type", "meaning", "written in a file as"),
                  [(f"`{name}`", f"`{logical.sql}`", logical.description,
                    model.TYPE_WORDS.get(name, "any text") if name in used else "(computed by a stage only)")
                   for name, logical in model.TYPES.items()])
    sections = []
    for entity in model.ENTITIES.values():
        patterns = entity.file_patterns or (f"{entity.name}*",)
        facts = [f"**Key:** {', '.join(f'`{name}`' for name in entity.primary_key)}.",
                 f"**Files:** {', '.join(f'`{pattern}.csv`' for pattern in patterns)} (or `.parquet`).",
                 "**Kind:** a master: a full snapshot, a re-sent key replaces the staged row." if entity.master
                 else "**Kind:** facts: rows never repeat; a corrected day is restated."]
        if entity.business_date:
            facts.append(f"**Business date:** the day of `{entity.business_date}`.")
        elif not entity.master:
            facts.append("**Business date:** its transaction's.")
        for foreign_key in entity.foreign_keys:
            facts.append(f"**References:** `{foreign_key.column}` → `{foreign_key.references}`"
                         + (" (its rows belong to that row: a failure on either side rejects both)."
                            if foreign_key.atomic else "."))
        if getattr(entity, "implied", False):
            facts.append("**Implied:** until such a file arrives, its keys are staged from the sales that name them.")
        rows = [(f"`{column.name}`", f"`{column.type}`", column_use(column),
                 column.description + (" Personal data." if column.personal else ""))
                for column in entity.columns]
        sections.append(f"## `{entity.name}`\n\n{entity.description}\n\n" + "\n".join(f"- {fact}" for fact in facts)
                        + "\n\n" + table(("column", "type", "in a file", "meaning"), rows))
    return page("Input model", "`model.ENTITIES`", """
The entities retailflow reads, their columns, types and keys: the contract an export is read in (an export in
another shape is read through a [source mapping](sources.md)). Each entity is one raw, one staging and one
quarantine table. Columns are matched by header name, in any order and any case; how values are parsed and
what happens when a file is incomplete is in [Input files](input-files.md).

A column is **required** (the file must have it, and a row without a value is quarantined), **may be empty**
(the file must have the column; an empty cell is NULL) or **optional** (the column may also be absent).
""", "## Types\n\nEvery column type, of the input entities and of the [stored tables](stored-tables.md) alike.\n\n"
         + types, *sections)


# --- Rule kinds ------------------------------------------------------------------------------------------------

#: What each kind checks and the parameters it takes. The kinds' code holds no prose; this table is checked against
#: it, so a kind added or removed fails `--check` until it is described here.
KIND_SUMMARIES = {
    "not_null": ("The cell is empty.", ""),
    "valid_type": ("The cell does not parse as the column's type (see the input model's types).", ""),
    "positive": ("The number is 0 or less.", ""),
    "non_negative": ("The number is below 0.", ""),
    "non_zero": ("The number is 0.", ""),
    "same_sign": ("The column and `other` have opposite signs (a return has both negative).", "`other`"),
    "sign_by_type": ("The number has the wrong sign for the row's type: below 0 where `by` is one of "
                     "`non_negative`, above 0 where it is one of `non_positive`.", "`by`, `non_negative`, "
                     "`non_positive`"),
    "free_line": ("A line of amount 0 for a product whose list price is above 0 (sales lines only).", ""),
    "in_range": ("The number is below `min` or above `max`.", "`min` and/or `max`"),
    "in_set": ("The text is not one of `values`.", "`values`"),
    "matches_regex": ("The text does not match `pattern` (a regular expression, searched).", "`pattern`"),
    "single_value": ("The cell holds several values (a `,`, `;` or `|`).", ""),
    "compare": ("The column does not stand in relation `op` (`>=`, `>`, `<=`, `<`, `==`, `!=`) to `other`; "
                "either empty passes.", "`op`, `other`"),
    "exists_in": ("The value is not a key of entity `references` (staged, or validated in the same run).",
                  "`references`"),
    "unique": ("The key `columns` was seen before: earlier in the files, or already staged.", "`columns`"),
    "sums_to": ("The amount is not the sum of the `child_column` of its rows in `child` (joined on `key`), "
                "within `tolerance` (default 0.01).", "`child`, `key`, `child_column`, `tolerance`"),
    "one_of": ("Not exactly one of `columns` is given.", "`columns`"),
    "promotion_applicable": ("The line's promotion does not cover its day, category, product or store (sales "
                             "lines only).", ""),
}


def rule_kinds_reference() -> str:
    kinds = importlib.import_module(KINDS_MODULE).KINDS
    rules = importlib.import_module(RULES_MODULE).load_rules()
    unknown, undescribed = set(KIND_SUMMARIES) - set(kinds), set(kinds) - set(KIND_SUMMARIES)
    if unknown or undescribed:
        sys.exit(f"describe every rule kind in KIND_SUMMARIES of {__file__}: not kinds {sorted(unknown)}, "
                 f"not described {sorted(undescribed)}")
    used: dict[str, int] = {}
    for rule in rules:
        used[rule.kind] = used.get(rule.kind, 0) + 1
    kind_rows = [(f"`{name}`", KIND_SUMMARIES[name][0], KIND_SUMMARIES[name][1] or "none",
                  "yes" if kind.needs_column else "no", "yes" if kind.prepare else "no",
                  "yes" if kind.cascades else "no", used.get(name, 0))
                 for name, kind in kinds.items()]
    rule_rows = [(f"`{rule.id}`", f"`{rule.kind}`", f"`{rule.column}`" if rule.column else "", rule.severity,
                  rule.description) for rule in rules]
    return page("Rule kinds and the rules shipped", "the rule kinds and the rules loaded without a rules file", """
A data-quality rule names an entity, a kind, usually a column, the kind's parameters (`params`) and a severity:
`reject` quarantines the row, `warn` stages it and records the finding in `audit.warnings`. Each kind turns a
rule into an expression "this row fails" that the engine evaluates over the whole table, with every other rule of
that table, in one pass. [Add a rule](../how-to/add-a-rule.md) shows a rules file; [how rows are
routed](../explanation/data-quality.md) what happens to a row that fails.
""", "## Kinds\n\n*Column*: the rule names a `column`. *Other tables*: it looks rows up in another table "
         "(joined before the pass). *Whole transaction*: a failure also quarantines the rest of the row's "
         "transaction (a duplicate does not drag the original with it). *Shipped*: how many shipped rules use "
         "it.\n\n" + table(("kind", "a row fails when", "params", "column", "other tables", "whole transaction",
                            "shipped"), kind_rows),
         "## The rules shipped\n\nThe rules in force without a rules file, as the `rules` command lists them: one "
         "per required column (`not_null`), typed column (`type`), key (`unique`) and reference (`exists`), "
         "derived from the [input model](input-model.md), then the business rules of "
         "`src/retailflow/quality/default_rules.yaml`. A rules file adds rules, or changes one by repeating its "
         "id.\n\n" + table(("id", "kind", "column", "severity", "description"), rule_rows))


# --- Stages ----------------------------------------------------------------------------------------------------

def stages_reference() -> str:
    module = importlib.import_module(STAGES_MODULE)
    rows = [(f"`{stage.name}`", stage.description, f"`{stage.grain}`",
             ", ".join(f"`{name}`" for name in stage.reads) or "the files",
             ", ".join(f"`{name}`" for name in stage.writes) or "a file",
             ", ".join(f"`{name}`" for name in stage.after), "yes" if stage.nightly else "no")
            for stage in module.STAGES]
    others = getattr(module, "OTHER_WRITERS", {})
    extra = ("\n\n## Tables no single stage declares\n\n"
             + table(("table", "written by"), [(f"`{name}`", writer) for name, writer in others.items()])
             if others else "")
    return page("Stages", "the stage registry, `stages.STAGES`", """
The loop's stages in the order a run takes them, as the `stages` command lists them. `run` and `rebuild`, the
landing-folder watcher, Dagster's assets and Airflow's tasks are all built from this one list. The **grain** says
what a run recomputes: `file` each new file once, `batch` each pending batch once, `day` the business days changed
since the stage last ran, `customer` the customers of those days, `run` everything each time; [the incremental
model](../explanation/incremental.md) explains why.
""", table(("stage", "what it produces", "grain", "reads", "writes", "after", "in `run`"), rows) + extra)


# --- Stored tables ---------------------------------------------------------------------------------------------

def stored_tables_reference() -> str:
    catalog = importlib.import_module(CATALOG_MODULE)
    tables = catalog.STORED_TABLES
    scopes = table(("scope", "what a run does to the table"),
                   [(scope, meaning) for scope, meaning in getattr(catalog, "SCOPES", {}).items()])
    contents = table(("table", "grain", "scope"),
                     [(f"[`{stored.schema}.{stored.name}`](#{stored.schema}{stored.name})", stored.grain, stored.scope)
                      for stored in tables])
    sections = []
    for stored in tables:
        key = ", ".join(f"`{name}`" for name in stored.key) if stored.key else "none: rows may repeat (see the grain)"
        rows = [(f"`{column.name}`", f"`{column.type}`", column.description) for column in stored.columns]
        sections.append(f"## `{stored.schema}.{stored.name}`\n\n{stored.description}\n\n"
                        f"- **Grain:** {stored.grain}\n- **Key:** {key}\n- **Scope:** {stored.scope}\n\n"
                        + table(("column", "type", "meaning"), rows))
    return page("Stored tables", "the catalog of stored tables, `catalog.STORED_TABLES`", """
Every table retailflow writes beside the input entities' raw, staging and quarantine tables (those follow the
[input model](input-model.md)): the audit trail, the analytics outputs, the loyalty ledger and the outbox. Each is
declared once, in `src/retailflow/catalog.py`, and its DDL, its Ibis table, the report's schemas and the
analysts' views are derived from that declaration. The **grain** says what one row is; the **scope** what a run
does to the table, which [the incremental model](../explanation/incremental.md) explains. Every column type is
described with the [input model's](input-model.md#types).
""", scopes, contents, *sections)


# --- Engine capabilities ---------------------------------------------------------------------------------------

def capabilities_reference() -> str:
    import dataclasses
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    package = importlib.import_module(BACKENDS_PACKAGE)
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{BACKENDS_PACKAGE}.{module.name}")
    base = package.Backend
    engines = sorted(base.__subclasses__(), key=lambda engine: engine.__name__)
    flags = dataclasses.fields(base.capabilities)
    # The flags are documented by `#:` comments, which only a source reader sees; Sphinx's is at hand.
    notes = ModuleAnalyzer.for_module(type(base.capabilities).__module__).find_attr_docs()
    owner = type(base.capabilities).__name__

    def shown(value: object) -> str:
        return "yes" if value is True else "no" if value is False else f"`{value}`"

    rows = [(f"`{flag.name}`", " ".join(notes.get((owner, flag.name), [""])).strip(),
             *(shown(getattr(engine.capabilities, flag.name)) for engine in engines)) for flag in flags]
    header = ("flag", "meaning", *(engine.__name__.removesuffix("Backend") for engine in engines))
    return page("Engine capabilities", f"`{owner}` and each engine's `{base.__name__}` subclass in `backends/`", """
Where retailflow's code must choose between engines, it reads one of these flags (or calls a `Backend` method
the engine overrides); nothing outside `src/retailflow/backends/` asks which engine it is on. Each engine's
class sets its flags with the measurement or limit behind each; what they mean for you is in
[Databases](databases.md), and where the code keeps the differences in
[the architecture](../explanation/architecture.md#where-does-duckdb-differ-from-postgresql).
""", table(header, rows))


# --- Writing and checking --------------------------------------------------------------------------------------

PAGES: dict[Path, Callable[[], str]] = {
    REFERENCE / "cli.md": cli_reference,
    REFERENCE / "settings.md": settings_reference,
    REFERENCE / "input-model.md": input_model_reference,
    REFERENCE / "rule-kinds.md": rule_kinds_reference,
    REFERENCE / "stages.md": stages_reference,
    REFERENCE / "stored-tables.md": stored_tables_reference,
    REFERENCE / "capabilities.md": capabilities_reference,
}


def wanted() -> dict[Path, str]:
    """Every generated file's text, as the code gives it now."""
    texts = {path: write() for path, write in PAGES.items()}
    texts[README] = readme_with_settings(README.read_text())
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a reference is out of date, writing nothing")
    args = parser.parse_args()
    texts = wanted()
    if args.check:
        stale = [path for path, text in texts.items() if not path.exists() or path.read_text() != text]
        if stale:
            sys.exit(f"not what the code gives now: {', '.join(str(path) for path in stale)}; "
                     f"run python docs/generate_reference.py")
        return
    for path, text in texts.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


if __name__ == "__main__":
    main()
