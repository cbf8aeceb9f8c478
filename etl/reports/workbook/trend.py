"""The workbook's 趋势 sheet (issue 18): per scored unit of the scope, the period's months (and the period
itself, for a quarter or a year) with the total and the whole-process rate, each against the period just before
(环比: month -> month, quarter -> quarter, year -> year) and the same period of the year before (同比).

The changes are numbers (a total's in points, a rate's in percentage points) shown with an arrow by their cell
format (↑ / ↓ / →: the number stays a number for sorting and filtering; nothing is a formula).  The rows are a
pure function of the frame ``data.read_trend`` reads (live, or frozen at publication: the same code); a
publication made before the frame existed has none, and the sheet says so.
"""

from __future__ import annotations

import pandas as pd

from etl.periods import Period
from etl.reports.workbook.xlsx import Col
from etl.scoring import trends

TREND_COLS = [
    Col("单位代码", min_width=14),
    Col("单位（含下级）", min_width=16, max_width=30, wrap=True),
    Col("期间", min_width=9),
    Col("总分", "pts", min_width=8),
    Col("等级", min_width=7),
    Col("总分\n较上期", "chg", min_width=9),
    Col("总分\n去年同期", "pts", min_width=9),
    Col("总分\n同比", "chg", min_width=9),
    Col("全程记录率", "pct", min_width=11),
    Col("全程记录率\n较上期(百分点)", "chg_pp", min_width=13),
    Col("全程记录率\n去年同期", "pct", min_width=11),
    Col("全程记录率\n同比(百分点)", "chg_pp", min_width=13),
]
NOT_FROZEN = "该发布版本发布时未冻结趋势数据（早于该功能），无法按发布时的状态重现；请导出当前数据（草稿）查看"
EMPTY = "本期无趋势数据"


def _num(v: object, digits: int, scale: float = 1.0) -> object:
    """A number rounded for its cell (a change that rounds to zero reads →), "—" when unknown."""
    if v is None or (isinstance(v, float) and v != v):  # noqa: PLR0124 - NaN
        return "—"
    out = round(float(v) * scale, digits)
    return 0.0 if out == 0 else out


def trend_rows(
    trend: pd.DataFrame | None, period: Period, names: dict[str, str], unit_rank: dict[str, int]
) -> list[tuple]:
    """One row per scored unit (the summary's order) and month of the period that has figures, then the period
    itself when it is a quarter or a year.  ``trend``: ``data.read_trend``'s frame (None: not frozen)."""
    if trend is None:
        return [(NOT_FROZEN,) + (None,) * (len(TREND_COLS) - 1)]
    shown = list(dict.fromkeys([*period.months, period.code]))
    present = set(trend["unit_code"])
    units = [u for u in unit_rank if u in present]
    totals = trends.compare(trend.rename(columns={"total": "value"}), shown, trends.POINTS_TOLERANCE)
    rates = trends.compare(trend.rename(columns={"rate": "value"}), shown, trends.RATE_TOLERANCE)
    grade = {(u, p): g for u, p, g in zip(trend["unit_code"], trend["period"], trend["grade"], strict=True)}
    t = totals.set_index(["unit_code", "period"])
    r = rates.set_index(["unit_code", "period"])
    rows = []
    for unit in sorted(units, key=lambda u: unit_rank[u]):
        for p in shown:
            if (unit, p) not in t.index:
                continue
            a, b = t.loc[(unit, p)], r.loc[(unit, p)]
            g = grade.get((unit, p))
            rows.append(
                (
                    unit,
                    names.get(unit),
                    p,
                    _num(a["value"], 2),
                    g if isinstance(g, str) and g else "—",
                    _num(a["change"], 2),
                    _num(a["year_ago"], 2),
                    _num(a["year_change"], 2),
                    _num(b["value"], 4),
                    _num(b["change"], 1, 100.0),
                    _num(b["year_ago"], 4),
                    _num(b["year_change"], 1, 100.0),
                )
            )
    return rows
