"""The retailflow command line: thin commands that call a stage and render its result."""

from __future__ import annotations

import contextlib
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from retailflow.commands import FROM_OPTION, TO_OPTION, date_range, open_backend
from retailflow.commands.analytics import inventory_command, promotions_command
from retailflow.commands.checks import checks_command
from retailflow.commands.customers import loyalty_app, notify_command, segments_command
from retailflow.commands.generate import generate_command
from retailflow.commands.map import map_command
from retailflow.commands.privacy import forget_command, grant_app
from retailflow.commands.report import report_command
from retailflow.commands.watch import watch_command
from retailflow.config import Settings
from retailflow.errors import UserError
from retailflow.output import FORMAT_OPTION, Format, console, errors, render

if TYPE_CHECKING:
    from retailflow.backends import Backend
    from retailflow.pipeline import PipelineResult
    from retailflow.quality.engine import RouteOutcome
    from retailflow.running import StageListener
    from retailflow.sources.mapping import SourceMap

# Start-up stays fast (`retailflow --help` is a fraction of a second): a command imports the
# engine, Ibis and the analytics it needs when it runs, not when the command line is parsed.

app = typer.Typer(help="retailflow: retail CSV exports to validated, analysed data.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
quarantine_app = typer.Typer(help="What was rejected, by rule, with examples; `replay` re-validates it.",
                             invoke_without_command=True)
app.add_typer(quarantine_app, name="quarantine")



@app.callback()
def main(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(None, "--db", help="Database URL (env RETAILFLOW_DB): duckdb:///file, postgresql://..., mysql://..., pyspark://local[2]; default duckdb:///./retailflow.duckdb."),
    rules: Optional[Path] = typer.Option(None, "--rules", help="YAML file adding or overriding data-quality rules (env RETAILFLOW_RULES)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or timing lines (env RETAILFLOW_QUIET=1)."),
    sources: Optional[Path] = typer.Option(None, "--sources", help="YAML source mapping: how to read exports not in the contract (env RETAILFLOW_SOURCES; default ./retailflow.yaml if present)."),
) -> None:
    """retailflow: retail CSV exports to validated, analysed data."""
    ctx.obj = Settings.resolve(db, rules, quiet, sources)


def _listener(settings: Settings) -> contextlib.AbstractContextManager[StageListener]:
    """A live progress display for people, or silence with --quiet (a context manager either way)."""
    from retailflow.progress import RichStageListener
    from retailflow.running import StageListener

    return contextlib.nullcontext(StageListener()) if settings.quiet else RichStageListener(console)


def _show_ingest(results) -> None:
    rows = [{"file": r.path.name, "entity": r.entity, "status": r.status, "batch": r.batch_id, "rows": r.rows,
             "seconds": round(r.seconds, 3), "note": r.note} for r in results]
    render(rows, Format.table, title="Ingested files")


def _show_ingest_by_entity(results) -> None:
    by_entity: dict[str, dict] = {}
    for r in results:
        row = by_entity.setdefault(r.entity, {"entity": r.entity, "files": 0, "loaded": 0, "skipped": 0, "rows": 0})
        row["files"] += 1
        row[r.status] += 1
        row["rows"] += r.rows
    render(list(by_entity.values()), Format.table, title="Ingested files by entity")


def _show_route(outcome: RouteOutcome, output_format: Format) -> None:
    rows = [asdict(entity) for entity in outcome.entities if entity.checked]
    render(rows, output_format, title=f"{outcome.phase}: {outcome.checked} rows checked, "
                                      f"{outcome.quarantined} quarantined in {outcome.seconds:.2f}s",
           columns=["entity", "checked", "staged", "quarantined", "warned"])


def _route(ctx: typer.Context, phase: str, output_format: Format) -> None:
    """Validate pending batches (phase "validate") or quarantined rows ("replay") and show the outcome."""
    from retailflow.quality.engine import route_all
    from retailflow.quality.rules import load_rules

    rules = load_rules(ctx.obj.rules_path)
    _show_route(route_all(open_backend(ctx, writes=True), rules, phase), output_format)


RESTATE_OPTION = typer.Option(
    False, "--restate", help="The files are corrected days: when validated, each replaces what is staged for its "
    "entity and business dates (the old rows stay in raw, counted as superseded).")


@app.command("ingest")
def ingest_command(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="CSV or Parquet files, or folders of them."),
    entity: Optional[str] = typer.Option(None, "--entity", help="Entity of every file, when names do not tell."),
    restate: bool = RESTATE_OPTION,
    validate: bool = typer.Option(False, "--validate", help="Validate in the same pass and the same transaction: "
                                  "each file is read once, and staged and quarantined together with its raw rows."),
) -> None:
    """Load files into the raw layer as they are (no validation unless --validate); identical files are skipped."""
    from retailflow.ingest import discover, ingest
    from retailflow.quality.rules import load_rules
    from retailflow.running import load_and_validate, stage_timer

    files = discover(paths, entity, ctx.obj.sources())
    backend = open_backend(ctx, writes=True)
    rules = load_rules(ctx.obj.rules_path) if validate else []
    with _listener(ctx.obj) as listener:
        if validate:
            results, validated = load_and_validate(backend, files, rules, restate=restate, listener=listener)
        else:
            timed = stage_timer(listener, {})
            results = timed("ingest", lambda: ingest(backend, files, on_loaded=listener.file_loaded, restate=restate),
                            [path for path, _ in files])
    _show_ingest(results)
    if validate:
        _show_route(validated, Format.table)


@app.command("validate")
def validate_command(ctx: typer.Context, output_format: Format = FORMAT_OPTION) -> None:
    """Apply the data-quality rules to pending batches: clean rows to staging, the rest to quarantine."""
    _route(ctx, "validate", output_format)


@quarantine_app.callback()
def quarantine_command(ctx: typer.Context, output_format: Format = FORMAT_OPTION) -> None:
    """Summarise quarantine: rows per entity and rule, with an example key and reason."""
    if ctx.invoked_subcommand:
        return
    from retailflow import audit

    render(audit.quarantine_summary(open_backend(ctx)), output_format, title="Quarantine by rule",
           columns=["entity", "rule_id", "rows", "example_key", "example_reasons"])


@quarantine_app.command("replay")
def replay_command(ctx: typer.Context, output_format: Format = FORMAT_OPTION) -> None:
    """Re-validate quarantined rows (after masters were fixed) and stage those that now pass."""
    _route(ctx, "replay", output_format)


@quarantine_app.command("show")
def show_command(ctx: typer.Context, entity: str = typer.Argument(..., help="Entity, e.g. store_sales_header."),
                 limit: int = typer.Option(20, help="Rows to show."), output_format: Format = FORMAT_OPTION) -> None:
    """List quarantined rows of one entity with every reason."""
    from retailflow.model import ENTITIES

    if entity not in ENTITIES:
        raise UserError(f"unknown entity {entity!r}; use one of {', '.join(ENTITIES)}")
    from retailflow import audit

    render(audit.quarantined_rows(open_backend(ctx), entity, limit), output_format, title=f"quarantine.{entity}")


@app.command("reconcile")
def reconcile_command(ctx: typer.Context, output_format: Format = FORMAT_OPTION) -> None:
    """Prove every raw row is staged or quarantined, per batch; exit 1 when a batch does not balance."""
    from retailflow import audit

    balances = audit.reconcile(open_backend(ctx))
    rows = [{**asdict(b), "balanced": b.balanced} for b in balances]
    render(rows, output_format, title="Reconcile: raw = staged + superseded + quarantined")
    unbalanced = [b for b in balances if not b.balanced]
    if unbalanced:
        pending = [b for b in unbalanced if b.status != "validated"]
        hint = " (run `retailflow validate`)" if pending else ""
        errors.print(f"[red]{len(unbalanced)} batch(es) do not balance{hint}[/red]")
        raise typer.Exit(1)
    if output_format is Format.table:
        console.print(f"[green]all {len(balances)} batches balance[/green]")


@app.command("rules")
def rules_command(ctx: typer.Context, output_format: Format = FORMAT_OPTION) -> None:
    """List every data-quality rule in force: model-derived, shipped defaults and your overrides."""
    from retailflow.quality.rules import load_rules

    rows = [rule.model_dump() for rule in load_rules(ctx.obj.rules_path)]
    render(rows, output_format, title="Data-quality rules",
           columns=["id", "entity", "kind", "column", "severity", "description"])


@app.command("settings")
def settings_command(ctx: typer.Context, output_format: Format = FORMAT_OPTION) -> None:
    """List every environment variable retailflow reads, its value here (secrets hidden) and the settings in
    effect for this command line (options first, then the environment, then defaults)."""
    from retailflow.backends import mask_url
    from retailflow.config import VARIABLES, env

    effective = {"RETAILFLOW_DB": mask_url(ctx.obj.db_url), "RETAILFLOW_RULES": ctx.obj.rules_path,
                 "RETAILFLOW_SOURCES": ctx.obj.sources_path, "RETAILFLOW_QUIET": "yes" if ctx.obj.quiet else "no"}
    rows = []
    for variable in VARIABLES.values():
        value = env(variable.name)
        shown = "(set, hidden)" if value is not None and variable.secret else (
            mask_url(value) if variable.name == "RETAILFLOW_DB" and value else value)
        rows.append({"variable": variable.name, "value": shown, "in effect": effective.get(variable.name, shown),
                     "description": variable.description})
    render(rows, output_format, title="Settings", columns=["variable", "value", "in effect", "description"])


@app.command("stages")
def stages_command(output_format: Format = FORMAT_OPTION) -> None:
    """List the stages of the loop in order: what each recomputes, after which stages, and the tables it writes."""
    from retailflow.stages import STAGES

    render([{"stage": stage.name, "grain": stage.grain, "after": ", ".join(stage.after),
             "in run": "yes" if stage.run is None or stage.nightly else "no", "writes": ", ".join(stage.writes),
             "description": stage.description} for stage in STAGES], output_format, title="Stages")


def _run(backend: Backend, paths: list[Path], settings: Settings, restate: bool = False, days=None,
         sources: SourceMap | None = None) -> PipelineResult:
    from retailflow.pipeline import BLOCKED_HINT, run_pipeline
    from retailflow.quality.rules import load_rules

    rules = load_rules(settings.rules_path)
    with _listener(settings) as listener:
        result = run_pipeline(backend, paths, rules, listener, restate=restate, days=days,
                              sources=settings.sources() if sources is None else sources,
                              rules_path=settings.rules_path)
    _show_ingest_by_entity(result.ingested)
    _show_route(result.validated, Format.table)
    if not settings.quiet:
        console.print(f"total {sum(result.seconds.values()):.2f} s")
    if result.blocked:
        # Loaded and validated (committed); the analytics wait for the findings to clear: exit 1, one line each.
        for line in result.blocked:
            errors.print(f"blocking: {line}", highlight=False, soft_wrap=True, markup=False)
        errors.print(BLOCKED_HINT, highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(1)
    return result


@app.command("run")
def run_command(
    ctx: typer.Context,
    paths: Optional[list[Path]] = typer.Argument(None, help="CSV or Parquet files, or folders of them."),
    restate: bool = RESTATE_OPTION,
    first: str = FROM_OPTION,
    last: str = TO_OPTION,
) -> None:
    """Ingest files, validate them and bring every analytics stage up to date for the days they cover.

    With --from/--to (files optional), those business dates are recomputed too: a backfill.
    """
    days = date_range(first, last)
    if not paths and days is None:
        raise UserError("give the files or folders to run, or --from/--to to recompute a range of days")
    sources = ctx.obj.sources()  # a bad mapping stops here, before the database is opened (or made)
    _run(open_backend(ctx, writes=True), paths or [], ctx.obj, restate, days, sources)


@app.command("rebuild")
def rebuild_command(ctx: typer.Context) -> None:
    """Recompute every analytics table from staging (every day, the churn model refitted), for when in doubt."""
    from retailflow.pipeline import run_analytics

    backend = open_backend(ctx, writes=True)
    with _listener(ctx.obj) as listener:
        seconds = run_analytics(backend, rebuild=True, listener=listener, rules=ctx.obj.rules_path)
    if not ctx.obj.quiet:
        console.print(f"rebuilt every analytics table in {sum(seconds.values()):.2f} s")


app.command("generate")(generate_command)
app.command("map")(map_command)
app.command("checks")(checks_command)
app.command("promotions")(promotions_command)
app.command("inventory")(inventory_command)
app.add_typer(loyalty_app, name="loyalty")
app.command("segments")(segments_command)
app.command("notify")(notify_command)
app.command("report")(report_command)
app.command("forget")(forget_command)
app.command("watch")(watch_command)
app.add_typer(grant_app, name="grant")


@app.command("demo")
def demo_command(
    ctx: typer.Context,
    out: Path = typer.Option(Path("work/demo"), "--out", help="Folder for the demo data, database and report."),
    workdir: Optional[Path] = typer.Option(None, "--workdir", hidden=True, help="Old name of --out."),
    seed: int = typer.Option(7, help="Seed of the generated demo data."),
) -> None:
    """Generate a small dataset, run the whole loop on a fresh DuckDB file and print where the outputs are."""
    import shutil

    from retailflow import audit
    from retailflow.backends import connect
    from retailflow.commands.generate import generate_with_progress
    from retailflow.generate import GeneratorOptions
    from retailflow.report.dashboard import build_report

    workdir = workdir or out

    workdir.mkdir(parents=True, exist_ok=True)
    database = workdir / "retailflow.duckdb"
    for stale in (database, database.with_suffix(".duckdb.wal")):
        stale.unlink(missing_ok=True)
    data = workdir / "data"
    shutil.rmtree(data, ignore_errors=True)
    manifest = generate_with_progress(data, GeneratorOptions(seed=seed), quiet=ctx.obj.quiet)
    console.print(f"generated {manifest['line_items']:,} line items with {manifest['anomalies']} planted problems")
    backend = connect(f"duckdb:///{database}")
    _run(backend, [data], ctx.obj)
    render(audit.quarantine_summary(backend), Format.table, title="Data quality: quarantine by rule",
           columns=["entity", "rule_id", "rows", "example_reasons"])
    balanced = all(balance.balanced for balance in audit.reconcile(backend))
    console.print(f"reconcile: {'[green]every batch balances[/green]' if balanced else '[red]UNBALANCED[/red]'}")
    report = build_report(backend, workdir / "report.html", title="retailflow demo")
    console.print(f"report: {report.path} ({report.charts} charts)")
    console.print(f"data: {data} (ground truth in {data / '_truth'})\n"
                  f"database: {database} (retailflow --db duckdb:///{database} quarantine)")


def entry() -> None:
    """Console-script entry point: user errors become one line on stderr and exit code 2."""
    try:
        app()
    except UserError as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
