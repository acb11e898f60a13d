"""Build the report: run every section, render one self-contained HTML file with Jinja2."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import plotly.offline
from jinja2 import Environment, PackageLoader, select_autoescape

from retailflow.backends import Backend
from retailflow.report.sections import SECTIONS


@dataclass
class ReportInfo:
    """Where the report went and what it holds."""

    path: Path
    bytes: int
    charts: int
    sections_missing: list[str]
    png_note: str = ""


def _present(backend: Backend, schema: str, name: str) -> bool:
    return backend.has_table(schema, name) and bool(
        backend.scalar(f"SELECT count(*) FROM {backend.qualified(schema, name)}"))


def build_report(backend: Backend, out: Path, *, title: str | None = None, png_dir: Path | None = None) -> ReportInfo:
    """Write the dashboard for the database behind `backend` to `out`."""
    rendered, missing, figures = [], [], []
    for spec in SECTIONS:
        if not _present(backend, *spec.needs):
            missing.append(spec.key)
            rendered.append({"key": spec.key, "title": spec.title, "missing": spec.command})
            continue
        section = spec.build(backend)
        charts = []
        for figure in section.figures:
            figures.append(figure)
            charts.append(figure.to_html(full_html=False, include_plotlyjs=False,
                                         config={"displaylogo": False, "responsive": True}))
        rendered.append({"key": spec.key, "title": spec.title, "missing": None, "kpis": section.kpis,
                         "charts": charts, "tables": section.tables, "notes": section.notes})
    environment = Environment(loader=PackageLoader("retailflow.report", "templates"),
                              autoescape=select_autoescape(["html", "j2"]))
    html = environment.get_template("report.html.j2").render(
        title=title or "retailflow report", generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        database=backend.display_url, sections=rendered, plotly_js=plotly.offline.get_plotlyjs())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return ReportInfo(out, out.stat().st_size, len(figures), missing, _write_pngs(figures, png_dir))


def _write_pngs(figures, png_dir: Path | None) -> str:
    if png_dir is None:
        return ""
    try:
        import kaleido  # noqa: F401  (optional: static image export)
    except ImportError:
        return "PNG export skipped: kaleido is not installed (pip install kaleido)"
    png_dir.mkdir(parents=True, exist_ok=True)
    for index, figure in enumerate(figures, start=1):
        figure.write_image(str(png_dir / f"chart_{index:02d}.png"))
    return f"{len(figures)} PNG files in {png_dir}"
