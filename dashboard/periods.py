"""Period strings '2026', '2026-Q3', '2026-07': bounds, months and labels (pure)."""

from __future__ import annotations

import re
from datetime import datetime

_YEAR = re.compile(r"^\d{4}$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def kind(period: str) -> str:
    """'year', 'quarter' or 'month'; ValueError for anything else."""
    if _YEAR.match(period):
        return "year"
    if _QUARTER.match(period):
        return "quarter"
    if _MONTH.match(period):
        return "month"
    raise ValueError(f"无效的期间：{period}")


def months(period: str) -> list[str]:
    """The 'YYYY-MM' months a period covers."""
    k = kind(period)
    if k == "month":
        return [period]
    year = int(period[:4])
    if k == "year":
        return [f"{year}-{m:02d}" for m in range(1, 13)]
    q = int(period[-1])
    return [f"{year}-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period as datetimes."""
    ms = months(period)
    y, m = int(ms[0][:4]), int(ms[0][5:])
    start = datetime(y, m, 1)
    y, m = int(ms[-1][:4]), int(ms[-1][5:])
    end = datetime(y + 1, 1, 1) if m == 12 else datetime(y, m + 1, 1)
    return start, end


def periods_of_months(month_list: list[str]) -> dict[str, list[str]]:
    """Years, quarters and months covering the given months, newest first, grouped by kind."""
    ms = sorted({m for m in month_list if m and _MONTH.match(m)}, reverse=True)
    years = sorted({m[:4] for m in ms}, reverse=True)
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:]) - 1) // 3 + 1}" for m in ms}, reverse=True)
    return {"year": years, "quarter": quarters, "month": ms}


def label(period: str, lang: str = "zh") -> str:
    """Human label: 2026年 / 2026年第3季度 / 2026年7月."""
    k = kind(period)
    if lang == "en":
        return period
    if k == "year":
        return f"{period}年"
    if k == "quarter":
        return f"{period[:4]}年第{period[-1]}季度"
    return f"{period[:4]}年{int(period[5:])}月"
