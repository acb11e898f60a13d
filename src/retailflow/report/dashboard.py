"""Build the report: run every registered section and render one self-contained HTML file."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import ibis
import plotly.offline
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from retailflow.backends import Backend
from retailflow.errors import UserError
from retailflow.report import sections  # noqa: F401  (registers the sections, in report order)
from retailflow.report.charts import Chart
from retailflow.report.inputs import missing_inputs, ran
from retailflow.report.registry import SECTIONS, Section, SectionSpec, stored_table
from retailflow.report.stored import stored
from retailflow.report.values import MISSING, mask_emails, shown

# No "share to Plotly Cloud" button (the report holds customer data), and a short mode bar.
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": [
    "sendChartToCloud", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d"]}


@dataclass
class ReportInfo:
    """Where the report went and what it holds: sections not run yet, failed, and the inputs sections lack."""

    path: Path
    bytes: int
    charts: int
    sections_missing: list[str] = field(default_factory=list)
    sections_failed: dict[str, str] = field(default_factory=dict)
    png_note: str = ""
    inputs_missing: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Rendered:
    """One section as the template sees it."""

    spec: SectionSpec
    status: str  # shown, not run, missing input, empty or failed
    content: Section = field(default_factory=Section)
    message: str = ""
    charts: list[dict] = field(default_factory=list)  # title, note and figure JSON of each chart
    missing: list[str] = field(default_factory=list)  # a line per input the stage needs and has not got


def build_report(backend: Backend, out: Path, *, title: str | None = None, png_dir: Path | None = None) -> ReportInfo:
    """Write the dashboard of the database behind `backend` to `out` (one HTML file, Plotly inlined)."""
    rendered = [_build_section(backend, spec) for spec in SECTIONS]
    charts = [chart for section in rendered for chart in section.content.charts]
    dataset, files = _dataset(backend)
    html = _environment().get_template("report.html.j2").render(
        title=title or f"retailflow report: {dataset}", dataset=dataset, files=files,
        generated=dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"), database=backend.display_url,
        sections=rendered,
        plotly_js=Markup(plotly.offline.get_plotlyjs()), plotly_config=_script_json(json.dumps(PLOTLY_CONFIG)))
    if out.is_dir():
        out = out / "report.html"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and renamed over: a crash mid-write leaves the previous report whole.
        partial = out.with_name(out.name + ".partial")
        partial.write_text(html, encoding="utf-8")
        os.replace(partial, out)
    except OSError as error:
        raise UserError(f"cannot write the report to {out}: {error.strerror}; choose another --out") from None
    return ReportInfo(out, out.stat().st_size, len(charts),
                      [section.spec.key for section in rendered if section.status == "not run"],
                      {section.spec.key: section.message for section in rendered if section.status == "failed"},
                      _write_pngs(charts, png_dir),
                      {section.spec.key: section.missing for section in rendered
                       if section.missing and section.status != "not run"})


def _has_rows(backend: Backend, qualified_name: str) -> bool:
    schema, name = qualified_name.split(".")
    probe = stored_table(qualified_name).select(present=ibis.literal(1)).limit(1)
    return backend.has_table(schema, name) and bool(backend.fetch_dicts(probe))


def _build_section(backend: Backend, spec: SectionSpec) -> _Rendered:
    """The section from what is there, naming the inputs its stage lacks; "not run" only when the stage never ran.

    A stage that keeps a mark in audit.stage_marks ran when the mark is there. One that keeps none (segments, the
    run itself) is known to have run when its tables have rows, or exist while an input it needs is missing.
    """
    missing = missing_inputs(backend, spec.key)
    lines = [item.message for item in missing]
    if not all(_has_rows(backend, name) for name in spec.needs):
        blocked = any(item.blocks for item in missing)
        marked = ran(backend, spec.key)
        if marked is False or (marked is None and not (
                blocked and all(backend.has_table(*name.split(".")) for name in spec.needs))):
            return _Rendered(spec, "not run")
        return _Rendered(spec, "missing input" if blocked else "empty", missing=lines)
    try:
        content = spec.build(backend)
    except Exception as error:  # one broken section must not cost the reader the rest of the report
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        return _Rendered(spec, "failed", message=f"{type(error).__name__}: {first_line}", missing=lines)
    if content is None:
        return _Rendered(spec, "empty", missing=lines)
    return _Rendered(spec, "shown", content, missing=lines, charts=[
        {"title": chart.title, "note": chart.note, "figure": _figure_json(chart)} for chart in content.charts])


def _dataset(backend: Backend) -> tuple[str, int]:
    """The dataset's name (the folder its files came from, else the database's name) and its file count."""
    try:
        path = urlsplit(backend.url).path
    except ValueError:  # pyspark://local[2]: urlsplit reads "[2]" as an IPv6 address
        path = ""
    database = Path(path).stem or "retailflow"
    if not _has_rows(backend, "audit.batches"):
        return database, 0
    batches = stored("audit.batches")
    row = backend.fetch_dicts(batches.aggregate(first=batches.source_file.min(), last=batches.source_file.max(),
                                                files=batches.count()))[0]
    # The common folder of the lexically first and last paths is the common folder of them all.
    try:
        folder = os.path.commonpath([os.path.dirname(row["first"]), os.path.dirname(row["last"])])
    except ValueError:
        folder = ""
    return os.path.basename(folder) or database, int(row["files"])


def _script_json(text: str) -> Markup:
    """JSON safe inside <script type="application/json">: "<" escaped, so no "</script>" can end it early."""
    return Markup(text.replace("<", "\\u003c"))


def _figure_json(chart: Chart) -> Markup:
    return _script_json(mask_emails(chart.figure.to_json()))


def _finalize(value: object) -> object:
    """Every {{ value }} in the template: markup as is, text masked, no None/NaN ever printed."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return mask_emails(value)
    return MISSING if value is None else shown(value)


def _environment() -> Environment:
    return Environment(loader=PackageLoader("retailflow.report", "templates"), autoescape=True,
                       finalize=_finalize, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _write_pngs(charts: list[Chart], png_dir: Path | None) -> str:
    if png_dir is None:
        return ""
    try:
        import kaleido  # noqa: F401  (optional: Plotly's static image export)
    except ImportError:
        return "PNG export skipped: kaleido is not installed (optional: pip install kaleido)"
    png_dir.mkdir(parents=True, exist_ok=True)
    for index, chart in enumerate(charts, start=1):
        name = re.sub(r"[^a-z0-9]+", "-", chart.title.lower()).strip("-")
        try:
            chart.titled().write_image(str(png_dir / f"{index:02d}-{name}.png"), width=1100)
        except Exception as error:  # kaleido drives a headless browser, which may be missing or fail here
            return f"PNG export stopped after {index - 1} charts: {type(error).__name__}: {error}"
    return f"{len(charts)} PNG files in {png_dir}"
