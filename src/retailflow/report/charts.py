"""Plotly figures for the report, from small aggregated rows (never per-transaction data)."""

from __future__ import annotations

import plotly.graph_objects as go

PALETTE = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"]


def _layout(figure: go.Figure, title: str, height: int = 360) -> go.Figure:
    figure.update_layout(title=title, height=height, margin=dict(l=50, r=20, t=50, b=50), template="plotly_white",
                         colorway=PALETTE, legend=dict(orientation="h", y=-0.2))
    return figure


def line(rows: list[dict], x: str, y: str, title: str, series: str | None = None) -> go.Figure:
    figure = go.Figure()
    groups = sorted({row[series] for row in rows}) if series else [None]
    for group in groups:
        chosen = [row for row in rows if series is None or row[series] == group]
        figure.add_trace(go.Scatter(x=[row[x] for row in chosen], y=[float(row[y] or 0) for row in chosen],
                                    mode="lines+markers", name=str(group) if group is not None else y))
    return _layout(figure, title)


def bar(rows: list[dict], x: str, ys: list[str], title: str, *, stacked: bool = False, horizontal: bool = False,
        highlight: set | None = None) -> go.Figure:
    figure = go.Figure()
    for y in ys:
        values = [float(row[y] or 0) for row in rows]
        labels = [str(row[x]) for row in rows]
        colors = None
        if highlight is not None and len(ys) == 1:
            colors = ["#dc2626" if row[x] in highlight else "#2563eb" for row in rows]
        if horizontal:
            figure.add_trace(go.Bar(y=labels, x=values, name=y, orientation="h", marker_color=colors))
        else:
            figure.add_trace(go.Bar(x=labels, y=values, name=y, marker_color=colors))
    figure.update_layout(barmode="stack" if stacked else "group")
    return _layout(figure, title, height=max(360, 24 * len(rows)) if horizontal else 360)


def heatmap(rows: list[dict], x: str, y: str, z: str, title: str) -> go.Figure:
    xs = sorted({row[x] for row in rows}, key=str)
    ys = sorted({row[y] for row in rows}, key=str)
    values = {(row[x], row[y]): float(row[z] or 0) for row in rows}
    grid = [[values.get((column, line_), 0.0) for column in xs] for line_ in ys]
    figure = go.Figure(go.Heatmap(x=[str(v) for v in xs], y=[str(v) for v in ys], z=grid, colorscale="Blues",
                                  hoverongaps=False))
    return _layout(figure, title, height=max(320, 40 * len(ys) + 120))
