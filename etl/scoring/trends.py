"""Trends (issue 18): a unit's figures across periods, pure (DataFrame in, DataFrame or dict out).

Two comparisons, in the words leadership uses:

* the change against the previous period of the same kind (环比: month -> the month before, quarter -> the
  quarter before, year -> the year before; ``etl.periods.previous``), and against the same period of the year
  before (同比; ``etl.periods.year_ago``), each as a number and an arrow ↑ / ↓ / →;
* the monthly series of a period's year beside the same months of the year before (the chart's two lines).

The figures come from the warehouse as it keeps them per unit and period across years: the standard metrics
(``metrics``, view ``v_unit_metrics``) and the totals (``unit_scores``).  The dashboard (overview, assessment,
unit profile) and the workbook's 趋势 sheet share these functions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl import periods

UP, DOWN, FLAT = "↑", "↓", "→"
# the previous period's name per kind of period (环比), and the year before's (同比)
PREVIOUS_LABELS = {"month": "较上月", "quarter": "较上季度", "year": "较上年"}
YEAR_AGO_LABELS = {"month": "较去年同月", "quarter": "较去年同季度", "year": "较上年"}
# changes smaller than these count as unchanged (→): a tenth of the shown precision
RATE_TOLERANCE = 0.00005  # rates (0..1) are shown with 0.1 percentage point
POINTS_TOLERANCE = 0.0005  # totals are shown with 2 decimals
COMPARE_COLUMNS = [
    "unit_code",
    "period",
    "value",
    "previous_period",
    "previous",
    "change",
    "arrow",
    "year_ago_period",
    "year_ago",
    "year_change",
    "year_arrow",
]
MONTHLY_COLUMNS = ["month_no", "label", "period", "value", "year_ago_period", "year_ago", "year_change"]


def arrow(delta: float | None, tolerance: float = 0.0) -> str:
    """↑ for a rise above ``tolerance``, ↓ for a fall below -``tolerance``, → otherwise; '' when unknown."""
    if delta is None or pd.isna(delta):
        return ""
    if delta > tolerance:
        return UP
    if delta < -tolerance:
        return DOWN
    return FLAT


def _arrows(delta: pd.Series, tolerance: float) -> pd.Series:
    d = pd.to_numeric(delta, errors="coerce").to_numpy(dtype=float)
    out = np.where(np.isnan(d), "", np.where(d > tolerance, UP, np.where(d < -tolerance, DOWN, FLAT)))
    return pd.Series(out, index=delta.index, dtype=object)


def compare(values: pd.DataFrame, wanted: list[str] | None = None, tolerance: float = 0.0) -> pd.DataFrame:
    """Each value beside the previous period's and the same period's of the year before.

    ``values``: unit_code (optional: one unit), period, value.  ``wanted``: the periods to compare (default:
    every period of ``values``).  Returns COMPARE_COLUMNS, one row per unit and wanted period that has a
    row in ``values`` (its value may be missing: no denominator); change = value - previous, year_change =
    value - year_ago, None where a side is missing; the arrows by ``tolerance``."""
    v = values.copy()
    if "unit_code" not in v.columns:
        v["unit_code"] = ""
    v = v[["unit_code", "period", "value"]].astype({"period": str})
    v["value"] = pd.to_numeric(v["value"], errors="coerce").astype(float)
    v = v.drop_duplicates(["unit_code", "period"], keep="last")
    rows = v if wanted is None else v[v["period"].isin(list(wanted))]
    rows = rows.assign(
        previous_period=rows["period"].map(periods.previous), year_ago_period=rows["period"].map(periods.year_ago)
    )
    look = v.rename(columns={"period": "_p", "value": "_v"})
    for side, key in (("previous", "previous_period"), ("year_ago", "year_ago_period")):
        rows = rows.merge(
            look.rename(columns={"_p": key, "_v": side}), on=["unit_code", key], how="left", validate="many_to_one"
        )
    rows["change"] = rows["value"] - rows["previous"]
    rows["year_change"] = rows["value"] - rows["year_ago"]
    rows["arrow"] = _arrows(rows["change"], tolerance)
    rows["year_arrow"] = _arrows(rows["year_change"], tolerance)
    out = rows[COMPARE_COLUMNS].reset_index(drop=True)
    return out.astype(object).where(out.notna(), None)


def change(values: pd.DataFrame, period: str, tolerance: float = 0.0) -> dict:
    """One unit's ``period`` against the previous period and the year before (``compare``'s columns as a dict,
    with the Chinese labels ``label`` and ``year_label``); every figure None when the period has no row."""
    kind = periods.kind(period)
    found = compare(values, [period], tolerance)
    row = (
        found.iloc[0].to_dict()
        if len(found)
        else {
            **{c: None for c in COMPARE_COLUMNS},
            "period": period,
            "previous_period": periods.previous(period),
            "year_ago_period": periods.year_ago(period),
            "arrow": "",
            "year_arrow": "",
        }
    )
    row.pop("unit_code", None)
    return {**row, "label": PREVIOUS_LABELS[kind], "year_label": YEAR_AGO_LABELS[kind]}


def monthly(values: pd.DataFrame, period: str) -> pd.DataFrame:
    """The months of ``period``'s year beside the same months of the year before (one unit).

    ``values``: period, value (months; other periods are ignored).  Returns MONTHLY_COLUMNS for every month
    number 1..12 that has a row in either year: month_no, label ('7月'), period ('2026-07'), value,
    year_ago_period ('2025-07'), year_ago, year_change (value - year_ago); missing values None."""
    year = periods.parse(period).start.year
    v = values[["period", "value"]].astype({"period": str})
    v = v[v["period"].str.fullmatch(r"\d{4}-\d{2}")]
    by = dict(zip(v["period"], pd.to_numeric(v["value"], errors="coerce").astype(float), strict=True))
    rows = []
    for m in range(1, 13):
        this, last = f"{year:04d}-{m:02d}", f"{year - 1:04d}-{m:02d}"
        if this not in by and last not in by:
            continue
        a, b = by.get(this), by.get(last)
        both = a is not None and b is not None and not pd.isna(a) and not pd.isna(b)
        rows.append((m, f"{m}月", this, a, last, b, a - b if both else None))
    out = pd.DataFrame(rows, columns=MONTHLY_COLUMNS)
    return out.astype(object).where(out.notna(), None)


def window(values: pd.DataFrame, last: str, months: int) -> pd.DataFrame:
    """The ``months`` months up to and including month ``last`` ('YYYY-MM'), oldest first, each with its row of
    ``values`` (period, ...; months without a row are left out)."""
    end = pd.Period(last, freq="M")
    wanted = [str(end - k) for k in range(months - 1, -1, -1)]
    v = values[values["period"].astype(str).isin(wanted)]
    return v.assign(_o=v["period"].map({p: i for i, p in enumerate(wanted)})).sort_values("_o").drop(columns="_o")
