"""Assessment periods: '2026' (year), '2026-Q3' (quarter), '2026-07' (month).

The one implementation of the period idea (pure, no warehouse): validation,
kind, bounds, months, the periods a set of months falls in, and the Chinese
label.  The ETL (metrics, scores), the workbook, the command line and the
dashboard all use it; the label words come from ``etl.vocabulary``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from etl.errors import EtlError
from etl.vocabulary import period_label

PERIOD_RE = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")
MONTH_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
KINDS = ("year", "quarter", "month")


class PeriodError(EtlError, ValueError):
    """Not a period string (a user error: one line, no traceback)."""


@dataclass(frozen=True)
class Period:
    """A parsed period: its code, kind, the months it covers and its [start, end) bounds."""

    code: str  # '2026', '2026-Q3', '2026-07'
    kind: str  # 'year', 'quarter', 'month'
    months: tuple[str, ...]  # 'YYYY-MM' it covers
    start: datetime  # inclusive
    end: datetime  # exclusive

    @property
    def label(self) -> str:
        """The Chinese label: 2026年度 / 2026年第3季度 / 2026年7月."""
        return period_label(self.code, self.kind)


def parse(code: str) -> Period:
    """'2026', '2026-Q3' or '2026-07' (surrounding blanks ignored); PeriodError for anything else."""
    text = (code or "").strip() if isinstance(code, str) else ""
    m = PERIOD_RE.match(text)
    if not m:
        raise PeriodError(f"考评期间格式应为 2026、2026-Q3 或 2026-07：{code}")
    year = int(m.group(1))
    if m.group(2):
        kind, first, count = "month", int(m.group(2)), 1
    elif m.group(3):
        kind, first, count = "quarter", 3 * int(m.group(3)) - 2, 3
    else:
        kind, first, count = "year", 1, 12
    months_ = tuple(f"{year:04d}-{mm:02d}" for mm in range(first, first + count))
    last = first + count
    end = datetime(year + 1, 1, 1) if last > 12 else datetime(year, last, 1)
    return Period(text, kind, months_, datetime(year, first, 1), end)


def kind(period: str) -> str:
    """'year', 'quarter' or 'month'; PeriodError (a ValueError) for anything else."""
    return parse(period).kind


def months(period: str) -> list[str]:
    """The 'YYYY-MM' months a period covers."""
    return list(parse(period).months)


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a period as datetimes."""
    p = parse(period)
    return p.start, p.end


def label(period: str, lang: str = "zh") -> str:
    """Human label: 2026年度 / 2026年第3季度 / 2026年7月 (the code itself in English)."""
    p = parse(period)
    return p.code if lang == "en" else p.label


def containing(month: str) -> tuple[str, str, str]:
    """The periods a month 'YYYY-MM' lies in: itself, its quarter, its year."""
    return month, f"{month[:4]}-Q{(int(month[5:7]) - 1) // 3 + 1}", month[:4]


def month_periods(months_: Iterable[str]) -> pd.DataFrame:
    """Map each month 'YYYY-MM' to the periods containing it (columns month, period)."""
    rows = [(m, p) for m in sorted(set(months_)) for p in containing(m)]
    return pd.DataFrame(rows, columns=["month", "period"])


def periods_of(months_: Iterable[str]) -> list[str]:
    """All periods (years, quarters, months) that contain one of ``months_``, sorted."""
    return sorted({p for m in set(months_) for p in containing(m)})


def periods_by_kind(months_: Iterable[str]) -> dict[str, list[str]]:
    """Years, quarters and months covering the given months (blanks and non-months ignored), newest first."""
    ms = {m for m in months_ if isinstance(m, str) and MONTH_RE.match(m)}
    found = [containing(m) for m in ms]
    return {k: sorted({c[i] for c in found}, reverse=True) for i, k in ((2, "year"), (1, "quarter"), (0, "month"))}


def previous(period: str) -> str:
    """The period just before, of the same kind: 2026-07 -> 2026-06, 2026-Q1 -> 2025-Q4, 2026 -> 2025."""
    p = parse(period)
    year = p.start.year
    if p.kind == "year":
        return f"{year - 1:04d}"
    if p.kind == "quarter":
        q = (p.start.month - 1) // 3 + 1
        return f"{year:04d}-Q{q - 1}" if q > 1 else f"{year - 1:04d}-Q4"
    month = p.start.month
    return f"{year:04d}-{month - 1:02d}" if month > 1 else f"{year - 1:04d}-12"


def year_ago(period: str) -> str:
    """The same period of the year before: 2026-07 -> 2025-07, 2026-Q3 -> 2025-Q3, 2026 -> 2025."""
    p = parse(period)
    return f"{p.start.year - 1:04d}{p.code.strip()[4:]}"


def days_in_period(period: str, as_of: datetime) -> int:
    """Calendar days of the period, cut at the evaluation date's day (which counts in full)."""
    start, end = bounds(period)
    last = min(pd.Timestamp(end) - pd.Timedelta(days=1), pd.Timestamp(as_of).normalize())
    return max(int((last - pd.Timestamp(start)).days) + 1, 0)


def reference_time(period: str, as_of: datetime) -> pd.Timestamp:
    """End of the period (last second), or the evaluation date when earlier."""
    _, end = bounds(period)
    return min(pd.Timestamp(end) - pd.Timedelta(seconds=1), pd.Timestamp(as_of))
