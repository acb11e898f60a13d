"""Plotly figures for the report, built from small aggregated rows (never per-transaction data).

Charts carry their title outside the figure (the page shows it as a heading, a PNG export adds
it back), embed no Plotly template (a few kB per chart saved) and read every category through
`values.label`, so axis ticks, legends and hover text are masked and never say "None".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from retailflow.report.values import label, number

BLUE, GREEN, RED, AMBER, GREY, PURPLE = "#2563eb", "#16a34a", "#dc2626", "#d97706", "#94a3b8", "#7c3aed"
PALETTE = [BLUE, GREEN, AMBER, PURPLE, "#0891b2", RED, "#db2777", "#65a30d", "#9333ea", "#0f766e"]
MONEY, COUNT, PERCENT, DECIMAL = ",.2f", ",d", ",.1f", ",.2f"
GRID = "#e5e7eb"


@dataclass
class Chart:
    """One interactive chart of a section."""

    title: str
    figure: go.Figure
    note: str = ""

    def titled(self) -> go.Figure:
        """The figure with its title inside (for a static PNG, which has no page heading)."""
        return go.Figure(self.figure).update_layout(title=self.title, margin_t=60)


def _axis(title: str = "", categorical: bool = False) -> dict:
    axis = dict(title=title or None, gridcolor=GRID, zerolinecolor="#cbd5e1", automargin=True)
    if categorical:
        axis["type"] = "category"
    return axis


def _figure(traces: Sequence[go.BaseTraceType], *, height: int = 340, x: dict, y: dict,
            barmode: str | None = None, show_legend: bool | None = None) -> go.Figure:
    figure = go.Figure(list(traces))
    figure.update_layout(
        template=None, height=height, margin=dict(l=10, r=10, t=30, b=10), colorway=PALETTE,
        paper_bgcolor="white", plot_bgcolor="white", font=dict(family="system-ui, sans-serif", size=12),
        hoverlabel=dict(namelength=-1), xaxis=x, yaxis=y, barmode=barmode,
        # Legend top left of the whole figure, clear of the mode bar (top right).
        legend=dict(orientation="h", xref="container", yref="container", x=0.01, y=1.0, yanchor="top",
                    traceorder="normal", bgcolor="rgba(255,255,255,0)"),
        showlegend=show_legend if show_legend is not None else len(traces) > 1)
    return figure


def _hover(rows: list[dict], columns: Sequence[str]) -> tuple[list[list[str]] | None, str]:
    """customdata and the hovertemplate lines for extra columns shown on hover."""
    if not columns:
        return None, ""
    data = [[label(row.get(column)) for column in columns] for row in rows]
    lines = "".join(f"<br>{column.replace('_', ' ')}: %{{customdata[{index}]}}" for index, column in enumerate(columns))
    return data, lines


def bar(rows: list[dict], x: str, ys: dict[str, str], title: str, *, horizontal: bool = False,
        stacked: bool = False, value_format: str = MONEY, value_title: str = "", category_title: str = "",
        colors: dict[str, str] | None = None, highlight: set[str] | None = None, hover: Sequence[str] = (),
        dates: bool = False, note: str = "") -> Chart:
    """Bars of one or more value columns (`ys`: column -> legend name) per category `x`.

    `highlight` paints the bars of those categories red; `dates` makes `x` a time axis.
    """
    categories = [label(row.get(x)) for row in rows]
    customdata, extra = _hover(rows, hover)
    traces = []
    for index, (column, name) in enumerate(ys.items()):
        values = [number(row.get(column)) for row in rows]
        color = (colors or {}).get(column, PALETTE[index % len(PALETTE)])
        marker = dict(color=[RED if category in (highlight or set()) else color for category in categories]
                      if highlight is not None else color)
        value_key, category_key = ("x", "y") if horizontal else ("y", "x")
        template = f"%{{{category_key}}}<br>{name}: %{{{value_key}:{value_format}}}{extra}<extra></extra>"
        trace = go.Bar(name=name, marker=marker, customdata=customdata, hovertemplate=template,
                       orientation="h" if horizontal else "v",
                       **({"x": values, "y": categories} if horizontal else {"x": categories, "y": values}))
        traces.append(trace)
    value_axis = _axis(value_title)
    category_axis = _axis(category_title, categorical=not dates)
    if horizontal:
        category_axis["autorange"] = "reversed"
        height = max(300, 22 * len(rows) * (1 if stacked else len(ys)) + 90)
        return Chart(title, _figure(traces, height=height, x=value_axis, y=category_axis,
                                    barmode="stack" if stacked else "group"), note)
    return Chart(title, _figure(traces, x=category_axis, y=value_axis, barmode="stack" if stacked else "group"), note)


def lines(rows: list[dict], x: str, y: str, title: str, *, series: str | None = None, value_format: str = MONEY,
          value_title: str = "", x_title: str = "", categorical_x: bool = False, hover: Sequence[str] = (),
          note: str = "") -> Chart:
    """One line per value of `series` (or a single line) of `y` over `x`."""
    groups = sorted({label(row.get(series)) for row in rows}) if series else [value_title or y]
    traces = []
    for group in groups:
        chosen = [row for row in rows if series is None or label(row.get(series)) == group]
        customdata, extra = _hover(chosen, hover)
        traces.append(go.Scatter(
            x=[label(row.get(x)) for row in chosen], y=[number(row.get(y)) for row in chosen], name=group,
            mode="lines+markers", marker=dict(size=5), customdata=customdata,
            hovertemplate=f"%{{x}}<br>{group}: %{{y:{value_format}}}{extra}<extra></extra>"))
    return Chart(title, _figure(traces, x=_axis(x_title, categorical=categorical_x), y=_axis(value_title)), note)


def heatmap(rows: list[dict], x: str, y: str, z: str, title: str, *, value_format: str = PERCENT,
            value_title: str = "", x_title: str = "", y_title: str = "", colorscale: str = "Blues",
            note: str = "") -> Chart:
    """A grid of `z` by `x` and `y` (categories in first-seen order; cells without a row stay empty)."""
    xs = list(dict.fromkeys(label(row.get(x)) for row in rows))
    ys = list(dict.fromkeys(label(row.get(y)) for row in rows))
    cells = {(label(row.get(x)), label(row.get(y))): number(row.get(z)) for row in rows}
    grid = [[cells.get((column, line)) for column in xs] for line in ys]
    annotate = len(xs) * len(ys) <= 150
    trace = go.Heatmap(x=xs, y=ys, z=grid, colorscale=colorscale, hoverongaps=False,
                       colorbar=dict(title=dict(text=value_title, side="right"), thickness=12),
                       texttemplate=f"%{{z:{value_format}}}" if annotate else None,
                       hovertemplate=f"{x_title or x}: %{{x}}<br>{y_title or y}: %{{y}}<br>"
                                     f"{value_title or z}: %{{z:{value_format}}}<extra></extra>")
    figure = _figure([trace], height=max(300, 26 * len(ys) + 110),
                     x=_axis(x_title, categorical=True), y=_axis(y_title, categorical=True), show_legend=False)
    figure.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    figure.update_xaxes(gridcolor="rgba(0,0,0,0)")
    return Chart(title, figure, note)


def treemap(rows: list[dict], name: str, size: str, title: str, *, hover: Sequence[str] = (),
            note: str = "") -> Chart:
    """Rectangles sized by `size`, one per `name`."""
    customdata, extra = _hover(rows, hover)
    trace = go.Treemap(labels=[label(row.get(name)) for row in rows], parents=[""] * len(rows),
                       values=[number(row.get(size)) or 0 for row in rows], customdata=customdata,
                       marker=dict(colors=PALETTE[:len(rows)] * (len(rows) // len(PALETTE) + 1)),
                       texttemplate="%{label}<br>%{value:,d}",
                       hovertemplate=f"%{{label}}<br>{size}: %{{value:,d}}{extra}<extra></extra>")
    figure = _figure([trace], x=_axis(), y=_axis(), show_legend=False)
    figure.update_layout(margin=dict(l=5, r=5, t=30, b=5))
    return Chart(title, figure, note)


def bars_by_choice(rows: list[dict], choice: str, x: str, y: str, flag: str, title: str, *,
                   names: tuple[str, str], value_format: str = DECIMAL, value_title: str = "",
                   note: str = "") -> Chart:
    """Bars of `y` over `x` for one value of `choice` at a time, picked from a drop-down.

    Rows where `flag` is true are drawn as names[0] (highlighted), the others as names[1], with a
    dashed line at the mean of the others: e.g. promoted days against baseline days.
    """
    choices = list(dict.fromkeys(label(row.get(choice)) for row in rows))
    traces, buttons = [], []
    for position, option in enumerate(choices):
        chosen = [row for row in rows if label(row.get(choice)) == option]
        others = [number(row.get(y)) for row in chosen if not row.get(flag) and number(row.get(y)) is not None]
        baseline = sum(others) / len(others) if others else None
        for flagged, name, color in ((True, names[0], RED), (False, names[1], GREY)):
            picked = [row for row in chosen if bool(row.get(flag)) == flagged]
            traces.append(go.Bar(x=[label(row.get(x)) for row in picked], y=[number(row.get(y)) for row in picked],
                                 name=name, marker_color=color, visible=position == 0,
                                 hovertemplate=f"%{{x}}<br>{name}: %{{y:{value_format}}}<extra></extra>"))
        traces.append(go.Scatter(x=[label(row.get(x)) for row in chosen], y=[baseline] * len(chosen),
                                 mode="lines", line=dict(color="#334155", dash="dash", width=1.5),
                                 name=f"mean of {names[1]}s", visible=position == 0,
                                 hovertemplate=f"mean of {names[1]}s: %{{y:{value_format}}}<extra></extra>"))
        visible = [False] * 3 * len(choices)
        visible[3 * position:3 * position + 3] = [True, True, True]
        buttons.append(dict(label=option, method="restyle", args=[{"visible": visible}]))
    figure = _figure(traces, x=_axis(), y=_axis(value_title), barmode="overlay", show_legend=True)
    # The menu goes top left (the mode bar is top right), the legend under the plot.
    menu = dict(buttons=buttons, direction="down", x=0, xanchor="left", y=1.02, yanchor="bottom", showactive=True,
                bgcolor="white", bordercolor=GRID, pad=dict(t=0, b=0))
    figure.update_layout(margin_t=50, legend=dict(xref="paper", yref="paper", x=0, y=-0.12, yanchor="top"),
                         updatemenus=[menu] if len(choices) > 1 else [])
    return Chart(title, figure, note)


def status_grid(rows: list[dict], x: str, y: str, state: str, text: str, title: str, *,
                states: Sequence[tuple[str, str]], x_title: str = "", y_title: str = "", note: str = "") -> Chart:
    """A grid of categorical states by `x` and `y`: `state` indexes `states` (label, colour), `text` is the hover
    line of a cell; cells without a row stay empty. A legend names every state."""
    xs = sorted({label(row.get(x)) for row in rows})
    ys = list(dict.fromkeys(label(row.get(y)) for row in rows))
    cells = {(label(row.get(x)), label(row.get(y))): row for row in rows}
    grid = [[cells[(column, line)][state] if (column, line) in cells else None for column in xs] for line in ys]
    hover = [[label(cells[(column, line)].get(text)) if (column, line) in cells else "" for column in xs]
             for line in ys]
    count = len(states)
    # A stepped colour scale: state i fills the band from i / count to (i + 1) / count.
    scale = [pair for index, (_, colour) in enumerate(states)
             for pair in ((index / count, colour), ((index + 1) / count, colour))]
    trace = go.Heatmap(x=xs, y=ys, z=grid, zmin=-0.5, zmax=count - 0.5, colorscale=scale, showscale=False,
                       hoverongaps=False, xgap=1, ygap=1, customdata=hover,
                       hovertemplate=f"{y_title or y} %{{y}}, %{{x}}<br>%{{customdata}}<extra></extra>")
    legend = [go.Scatter(x=[None], y=[None], mode="markers", name=name, marker=dict(size=10, color=colour,
                                                                                 symbol="square"))
              for name, colour in states]
    figure = _figure([trace, *legend], height=max(300, 20 * len(ys) + 130),
                     x=_axis(x_title, categorical=True), y=_axis(y_title, categorical=True), show_legend=True)
    figure.update_yaxes(autorange="reversed", gridcolor="rgba(0,0,0,0)")
    figure.update_xaxes(gridcolor="rgba(0,0,0,0)")
    return Chart(title, figure, note)
