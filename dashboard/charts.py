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


# --- trends (issue 18): this year against last year, a unit's months at a glance -----------------------------

THIS_YEAR, LAST_YEAR = "#1565c0", "#90a4ae"
GRADE_COLORS = {"优秀": "#2e7d32", "达标": "#1565c0", "不达标": "#c62828"}
VETO_PATTERN = {
    "fillmode": "overlay",
    "fgcolor": "#ffffff",
    "fgopacity": 0.55,
    "size": 8,
}  # white stripes over the grade


def _num(values: pd.Series) -> list:
    return [None if pd.isna(v) else float(v) for v in pd.to_numeric(values, errors="coerce")]


def _padded(values: pd.Series, floor: float = 0.0, least: float = 10.0) -> list[float] | None:
    """A value range around ``values`` at least ``least`` wide (noise of a few tenths stays flat), not below
    ``floor``; None when there is no value."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return None
    lo, hi = float(v.min()), float(v.max())
    mid, half = (lo + hi) / 2, max((hi - lo) / 2 * 1.15, least / 2)
    return [max(mid - half, floor), mid + half]


def yoy(
    df: pd.DataFrame,
    title: str,
    this_name: str = "本年",
    last_name: str = "上年同月",
    scale: str = "rate",
    axis_title: str = "",
) -> go.Figure:
    """This year's months (solid line) over the same months of the year before (dashed), by month of the year.

    Columns (``dashboard.logic.monthly_trend``): label ('7月'), period, value, year_ago_period, year_ago; values
    in the unit shown.  ``scale``: 'rate' (in %: a range of at least 10 points around the values), 'points' (a
    total: 0 to 100) or 'count' (from 0)."""
    if df.empty:
        return empty(title)
    x = [esc(v) for v in df["label"]]
    fmt = {"rate": "%{y:.1f}%", "points": "%{y:.2f}"}.get(scale, "%{y:,.0f}")
    fig = go.Figure()
    for col, when, name, color, dash in (
        ("year_ago", "year_ago_period", last_name, LAST_YEAR, "dash"),
        ("value", "period", this_name, THIS_YEAR, "solid"),
    ):
        fig.add_scatter(
            x=x,
            y=_num(df[col]),
            name=esc(name),
            mode="lines+markers",
            line={"color": color, "dash": dash, "width": 3 if dash == "solid" else 2},
            marker={"size": 7 if dash == "solid" else 5},
            customdata=[esc(p) for p in df[when]],
            hovertemplate=f"%{{customdata}}: {fmt}<extra>{esc(name)}</extra>",
            connectgaps=False,
        )
    yaxis: dict = {"title": esc(axis_title)}
    if scale == "rate":
        yaxis |= {"ticksuffix": "%", "range": _padded(pd.concat([df["value"], df["year_ago"]]))}
    elif scale == "points":
        yaxis |= {"range": [0, 105]}
    else:
        yaxis |= {"rangemode": "tozero"}
    fig.update_layout(xaxis={"type": "category"}, yaxis=yaxis, hovermode="x unified")
    return _layout(fig, title)


def unit_totals(df: pd.DataFrame, title: str, veto_word: str = "一票否决") -> go.Figure:
    """A unit's total per month as bars coloured by grade (one legend entry per grade), hatched where a veto
    capped the total, the grade written on the bars when there are few enough to read it.
    Columns: month, total, grade, rank, veto (0/1)."""
    if df.empty:
        return empty(title)
    months = [esc(m) for m in df["month"]]
    fig = go.Figure()
    for grade in [*GRADE_COLORS, *sorted(set(df["grade"].dropna().astype(str)) - set(GRADE_COLORS))]:
        mine = (df["grade"].astype(str) == grade).to_numpy()
        if not mine.any():
            continue
        d = df[mine]
        veto = [v == 1 for v in d["veto"]]
        fig.add_bar(
            x=[m for m, keep in zip(months, mine, strict=True) if keep],
            y=_num(d["total"]),
            name=esc(grade),
            marker={
                "color": GRADE_COLORS.get(grade, "#78909c"),
                "pattern": {"shape": ["/" if v else "" for v in veto], **VETO_PATTERN},
            },
            text=[esc(grade) for _ in veto] if len(df) <= 12 else None,
            textposition="inside",
            insidetextanchor="end",
            textangle=0,
            hovertext=[
                esc(f"{grade} {'' if pd.isna(r) else f'#{int(r)}'} {veto_word if v else ''}".strip())
                for r, v in zip(d["rank"], veto, strict=True)
            ],
            hovertemplate="%{x}: %{y:.2f} %{hovertext}<extra></extra>",
        )
    if (df["veto"] == 1).any():
        fig.add_bar(
            x=[months[0]],
            y=[None],
            name=esc(veto_word),
            marker={"color": "#78909c", "pattern": {"shape": "/", **VETO_PATTERN}},
        )
    fig.update_layout(
        xaxis={"type": "category", "categoryorder": "array", "categoryarray": months},
        yaxis={"range": [0, 105]},
        barmode="overlay",
    )
    fig = _layout(fig, title, height=340)
    fig.update_layout(legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"})
    return fig


def small_multiples(df: pd.DataFrame, title: str, columns: int = 4, empty_text: str = "无数据") -> go.Figure:
    """One small line chart per metric over the months (shared month axis, each with its own value range of
    at least 10 percentage points; ``empty_text`` where a metric has no value).
    Columns: month, name (the metric's name), value (%, NaN: no denominator)."""
    if df.empty:
        return empty(title)
    from plotly.subplots import make_subplots

    names = list(dict.fromkeys(df["name"].astype(str)))
    months = sorted(df["month"].astype(str).unique())
    rows = -(-len(names) // columns)
    fig = make_subplots(
        rows=rows,
        cols=columns,
        subplot_titles=[esc(n) for n in names],
        horizontal_spacing=0.06,
        vertical_spacing=0.16,
    )
    for k, name in enumerate(names):
        sub = df[df["name"].astype(str) == name]
        values = pd.to_numeric(pd.Series(sub["value"].to_numpy(), index=sub["month"].astype(str).to_numpy()))
        values = values.reindex(months)
        at = {"row": k // columns + 1, "col": k % columns + 1}
        fig.add_scatter(
            x=[esc(m) for m in months],
            y=_num(values),
            mode="lines+markers",
            line={"color": THIS_YEAR, "width": 2},
            marker={"size": 4},
            showlegend=False,
            hovertemplate=f"{esc(name)} %{{x}}: %{{y:.1f}}%<extra></extra>",
            **at,
        )
        if values.notna().any():  # at least 10 points of range: noise of a few tenths stays flat
            fig.update_yaxes(range=_padded(values), **at)
        else:
            fig.update_yaxes(visible=False, **at)
            ref = "" if k == 0 else str(k + 1)
            fig.add_annotation(
                text=esc(empty_text), x=0.5, y=0.5, xref=f"x{ref} domain", yref=f"y{ref} domain", showarrow=False
            )
    fig.update_xaxes(type="category", showticklabels=False)
    fig.update_xaxes(showticklabels=True, tickangle=-45, tickfont={"size": 9}, row=rows)
    fig.update_yaxes(ticksuffix="%", tickfont={"size": 9})
    fig.update_annotations(font={"size": 13})
    fig = _layout(fig, title, height=190 * rows + 110)
    fig.update_layout(margin={"t": 80})  # the subplots' titles below the chart's own
    return fig


# --- the officer's record (issue 18, 民警执法记录档案) -----------------------------------------------------------


def officer_trend(df: pd.DataFrame, title: str = "本人记录月度趋势", labels: dict[str, str] | None = None) -> go.Figure:
    """One officer per month: events attended (bars), own coverage and the share of events fully recorded (lines,
    right axis, %).  Columns: month, events_attended, events_fully_recorded, own_coverage (0..1, NaN: unknown).
    ``labels``: the series' names (Chinese defaults)."""
    if df.empty:
        return empty(title)
    names = {"events": "出警事件", "own": "本人记录覆盖率", "full": "全程记录占比", **(labels or {})}
    months = [esc(m) for m in df["month"]]
    attended = pd.to_numeric(df["events_attended"], errors="coerce")
    full = pd.to_numeric(df["events_fully_recorded"], errors="coerce") / attended.where(attended > 0)
    own = pd.to_numeric(df["own_coverage"], errors="coerce")
    fig = go.Figure()
    fig.add_bar(x=months, y=attended, name=esc(names["events"]), marker_color="#cfd8dc")
    for series, key, color, dash in ((own, "own", COLORS["full"], "solid"), (full, "full", "#1565c0", "dot")):
        fig.add_scatter(
            x=months,
            y=series * 100,
            name=esc(names[key]),
            yaxis="y2",
            mode="lines+markers",
            line={"color": color, "dash": dash},
            hovertemplate="%{x}: %{y:.1f}%<extra></extra>",
        )
    fig.update_layout(
        xaxis={"type": "category"},
        yaxis={"title": esc(names["events"]), "rangemode": "tozero"},
        yaxis2={
            "title": "%",
            "overlaying": "y",
            "side": "right",
            "range": [0, 105],
            "tickvals": [0, 20, 40, 60, 80, 100],
            "showgrid": False,
        },
    )
    return _layout(fig, title)


def stacked_bars(
    df: pd.DataFrame,
    x: str,
    stack: str,
    value: str,
    title: str,
    names: dict | None = None,
    colors: dict | None = None,
) -> go.Figure:
    """Bars of ``value`` by ``x`` (category axis), one stacked series per ``stack`` value (its name from
    ``names``, escaped; its colour from ``colors``), e.g. an officer's access actions per month and action."""
    if df.empty:
        return empty(title)
    keys = sorted(df[x].astype(str).unique())
    fig = go.Figure()
    for key, grp in df.groupby(stack, sort=True):
        per = grp.groupby(grp[x].astype(str))[value].sum()
        fig.add_bar(
            x=[esc(k) for k in keys],
            y=[per.get(k, 0) for k in keys],
            name=esc((names or {}).get(key, key)),
            marker_color=(colors or {}).get(key),
        )
    top = float(df.groupby(df[x].astype(str))[value].sum().max())
    fig.update_layout(barmode="stack", xaxis={"type": "category"}, yaxis={"dtick": max(1, -(-int(top) // 5))})
    return _layout(fig, title, height=320)  # counts: whole-number ticks
