"""Charts as pure functions: DataFrame in, plotly Figure out (no Streamlit here).

Text from source systems goes through ``esc`` (plotly renders a subset of HTML
in labels and hover text).  'YYYY-MM' labels use category axes so they stay as
written instead of becoming English month names.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

FONT = "Noto Sans CJK SC, Noto Sans SC, Microsoft YaHei, sans-serif"
COLORS = {
    "full": "#2e7d32",
    "excused": "#0277bd",
    "partial": "#f9a825",
    "none": "#c62828",
    "window": "#cfd8dc",
    "clip": "#43a047",
    "gap": "#e53935",
    "report": "#6a1b9a",
}


def esc(value: object) -> str:
    """Inert text for plotly labels: HTML special characters escaped."""
    return html.escape("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value))


def _layout(fig: go.Figure, title: str, height: int = 360) -> go.Figure:
    fig.update_layout(
        title={"text": esc(title), "x": 0},
        height=height,
        font={"family": FONT},
        margin={"l": 10, "r": 10, "t": 50, "b": 10},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


def empty(title: str, message: str = "无数据") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=esc(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=200)


def trend(
    df: pd.DataFrame, title: str = "月度趋势", bar_name: str = "现场执法事件", line_name: str = "全程记录率"
) -> go.Figure:
    """Events per month (bars) and the whole-process rate (line, right axis). Columns: month, events, rate."""
    if df.empty:
        return empty(title)
    months = [esc(m) for m in df["month"]]
    fig = go.Figure()
    fig.add_bar(x=months, y=df["events"], name=esc(bar_name), marker_color="#90a4ae")
    fig.add_scatter(
        x=months,
        y=df["rate"] * 100,
        name=esc(line_name),
        yaxis="y2",
        mode="lines+markers",
        line={"color": COLORS["full"]},
        hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
    )
    fig.update_layout(
        xaxis={"type": "category"},
        yaxis={"title": esc(bar_name)},
        yaxis2={"title": esc(line_name) + " (%)", "overlaying": "y", "side": "right", "range": [0, 105]},
    )
    return _layout(fig, title)


def heatmap(df: pd.DataFrame, title: str = "全程记录率") -> go.Figure:
    """Unit × month heatmap of the rate. Columns: unit_name, month, rate (0..1, NaN when no events)."""
    if df.empty:
        return empty(title)
    grid = df.pivot_table(index="unit_name", columns="month", values="rate", aggfunc="first", dropna=False)
    grid = grid.reindex(columns=sorted(grid.columns))
    z = (grid * 100).round(1)
    fig = go.Figure(
        go.Heatmap(
            z=z.values,
            x=[esc(c) for c in grid.columns],
            y=[esc(i) for i in grid.index],
            zmin=0,
            zmax=100,
            colorscale="RdYlGn",
            colorbar={"title": "%"},
            hovertemplate="%{y} %{x}: %{z}%<extra></extra>",
            texttemplate="%{z}",
            hoverongaps=False,
        )
    )
    fig.update_layout(xaxis={"type": "category"}, yaxis={"type": "category", "autorange": "reversed"})
    return _layout(fig, title, height=max(260, 40 + 28 * len(grid.index)))


def bars(
    df: pd.DataFrame,
    label: str,
    value: str,
    title: str,
    horizontal: bool = False,
    hover: str | None = None,
    color: str = "#1565c0",
) -> go.Figure:
    """A simple bar chart of ``value`` by ``label`` (labels escaped, category axis)."""
    if df.empty:
        return empty(title)
    labels = [esc(v) for v in df[label]]
    hovertext = [esc(v) for v in df[hover]] if hover else labels
    if horizontal:
        fig = go.Figure(
            go.Bar(
                y=labels,
                x=df[value],
                orientation="h",
                hovertext=hovertext,
                marker_color=color,
                hovertemplate="%{hovertext}: %{x}<extra></extra>",
            )
        )
        fig.update_layout(yaxis={"type": "category", "autorange": "reversed"})
        height = max(260, 40 + 26 * len(labels))
    else:
        fig = go.Figure(
            go.Bar(
                x=labels,
                y=df[value],
                hovertext=hovertext,
                marker_color=color,
                hovertemplate="%{hovertext}: %{y}<extra></extra>",
            )
        )
        fig.update_layout(xaxis={"type": "category"})
        height = 360
    return _layout(fig, title, height=min(height, 900))


def item_breakdown(df: pd.DataFrame, title: str = "分项得分") -> go.Figure:
    """Points available vs points scored per item. Columns: item_name, points, score."""
    if df.empty:
        return empty(title)
    names = [esc(v) for v in df["item_name"]]
    fig = go.Figure()
    fig.add_bar(y=names, x=df["points"], orientation="h", name="分值", marker_color="#cfd8dc")
    fig.add_bar(y=names, x=df["score"], orientation="h", name="得分", marker_color="#1565c0")
    fig.update_layout(barmode="overlay", yaxis={"type": "category", "autorange": "reversed"})
    return _layout(fig, title, height=max(260, 60 + 36 * len(names)))


def event_timeline(
    event: pd.Series,
    clips: pd.DataFrame,
    gaps: pd.DataFrame,
    reports: pd.DataFrame,
    officers: pd.DataFrame,
    title: str = "时间轴",
) -> go.Figure:
    """The event window, each attending officer's clips, the gaps and the interruption report on one time axis.

    ``event`` has arrived_at/ended_at (Timestamps); clips: police_no, clip_id, started_at, ended_at;
    gaps: gap_start, gap_end, gap_s; reports: police_no, reported_at, reason; officers: police_no, name.
    """
    arrived, ended = pd.Timestamp(event["arrived_at"]), pd.Timestamp(event["ended_at"])
    names = dict(zip(officers.get("police_no", []), officers.get("name", []), strict=False))
    rows = ["窗口"] + [esc(f"{p} {names.get(p) or ''}".strip()) for p in officers.get("police_no", [])] + ["空档"]
    fig = go.Figure()

    def seg(row: str, start, end, color: str, name: str, text: str) -> None:  # noqa: ANN001
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        fig.add_bar(
            y=[row],
            x=[(end - start).total_seconds() * 1000],
            base=[start.isoformat()],
            orientation="h",
            marker_color=color,
            name=name,
            showlegend=False,
            hovertext=[esc(text)],
            hovertemplate="%{hovertext}<extra></extra>",
        )

    seg("窗口", arrived, ended, COLORS["window"], "窗口", f"{arrived:%H:%M:%S} – {ended:%H:%M:%S}")
    for c in clips.itertuples(index=False):
        row = esc(f"{c.police_no} {names.get(c.police_no) or ''}".strip())
        s, e = max(pd.Timestamp(c.started_at), arrived), min(pd.Timestamp(c.ended_at), ended)
        if e > s:
            seg(row, s, e, COLORS["clip"], "视频", f"{c.clip_id}: {s:%H:%M:%S} – {e:%H:%M:%S}")
    for g in gaps.itertuples(index=False):
        seg(
            "空档",
            g.gap_start,
            g.gap_end,
            COLORS["gap"],
            "空档",
            f"空档 {pd.Timestamp(g.gap_start):%H:%M:%S} – {pd.Timestamp(g.gap_end):%H:%M:%S}（{g.gap_s:.0f} 秒）",
        )
    for r in reports.itertuples(index=False):
        at = pd.Timestamp(r.reported_at)
        fig.add_vline(x=at.timestamp() * 1000, line={"color": COLORS["report"], "dash": "dot"})
        fig.add_annotation(
            x=at.isoformat(),
            y=1.02,
            yref="paper",
            showarrow=False,
            text=esc(f"中断报告 {r.police_no}"),
            font={"color": COLORS["report"]},
        )
    fig.update_layout(
        barmode="overlay",
        xaxis={"type": "date", "tickformat": "%H:%M:%S"},
        yaxis={"type": "category", "categoryorder": "array", "categoryarray": rows, "autorange": "reversed"},
    )
    return _layout(fig, title, height=max(220, 80 + 40 * len(rows)))


def case_timeline(
    actions: pd.DataFrame,
    documents: pd.DataFrame,
    deliveries: pd.DataFrame,
    clips: pd.DataFrame,
    title: str = "案件时间轴",
) -> go.Figure:
    """Actions (bars), documents and deliveries (markers) and supporting clips (bars) of one case."""
    fig = go.Figure()
    if actions.empty and documents.empty and clips.empty:
        return empty(title)
    for a in actions.itertuples(index=False):
        s, e = pd.Timestamp(a.started_at), pd.Timestamp(a.ended_at)
        fig.add_bar(
            y=["执法环节"],
            x=[max((e - s).total_seconds(), 60) * 1000],
            base=[s.isoformat()],
            orientation="h",
            marker_color="#1565c0",
            showlegend=False,
            hovertext=[esc(f"{a.action_type} {a.action_id}")],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    for c in clips.itertuples(index=False):
        s, e = pd.Timestamp(c.started_at), pd.Timestamp(c.ended_at)
        fig.add_bar(
            y=["音视频"],
            x=[max((e - s).total_seconds(), 60) * 1000],
            base=[s.isoformat()],
            orientation="h",
            marker_color=COLORS["clip"],
            showlegend=False,
            hovertext=[esc(c.clip_id)],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    if not documents.empty:
        fig.add_scatter(
            y=["法律文书"] * len(documents),
            x=documents["created_at"],
            mode="markers",
            marker={"size": 10, "color": "#6a1b9a"},
            showlegend=False,
            hovertext=[esc(f"{t} {i}") for t, i in zip(documents["doc_type"], documents["doc_id"], strict=True)],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    if not deliveries.empty:
        fig.add_scatter(
            y=["送达"] * len(deliveries),
            x=deliveries["delivered_at"],
            mode="markers",
            marker={"size": 10, "symbol": "diamond", "color": "#ef6c00"},
            showlegend=False,
            hovertext=[esc(f"{m} {i}") for m, i in zip(deliveries["method"], deliveries["doc_id"], strict=True)],
            hovertemplate="%{hovertext}<extra></extra>",
        )
    fig.update_layout(
        barmode="overlay",
        xaxis={"type": "date", "tickformat": "%m-%d %H:%M"},
        yaxis={
            "type": "category",
            "categoryorder": "array",
            "categoryarray": ["执法环节", "法律文书", "送达", "音视频"],
            "autorange": "reversed",
        },
    )
    return _layout(fig, title, height=300)
