"""Reading what the assessment workbook shows, as DataFrames (one query per table, scope applied).

Every function takes an open connection and returns plain frames; nothing
here formats or writes Excel.  Unit scope is applied in pandas after a
period-restricted query because a city has only a few hundred units.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.errors import EtlError
from etl.periods import Period
from etl.periods import parse as parse_period  # noqa: F401 - data.parse_period: the builder, bench/workbook.py
from etl.scoring.lost_points import level_name
from etl.scoring.metrics import month_sql
from etl.times import ts_param, ts_text
from etl.vocabulary import LEVEL_ORDER
from etl.warehouse.db import read_df
from etl.warehouse.scope import ancestors_map, check_unit, roots, scope_of, scope_pairs

# Periods (etl.periods), timestamps (etl.times), level words (etl.vocabulary) and unit scope
# (etl.warehouse.scope) each have one implementation; this module only reads the warehouse.


# --- units and scope ------------------------------------------------------------------------------


def read_units(conn: Connection) -> pd.DataFrame:
    units = read_df(conn, "SELECT unit_code, name, parent_code, level FROM org_units")
    if units.empty:
        raise EtlError("数据仓库中没有单位目录（org_units 为空），请先运行 python -m etl run 加载数据")
    units["level_order"] = units["level"].map(LEVEL_ORDER).fillna(9).astype(int)
    return units.sort_values(["level_order", "unit_code"], ignore_index=True)


def resolve_scope(units: pd.DataFrame, unit_code: str | None, allowed_scope: set[str] | None) -> tuple[set[str], str]:
    """The unit codes in scope and a Chinese label; enforces a unit administrator's scope (ScopeError, a
    PermissionError, from ``etl.warehouse.scope.check_unit``)."""
    check_unit(allowed_scope, unit_code, f"无权导出该范围的考评表：{unit_code or '全市'}")  # ScopeError
    if unit_code is None:
        top = set(roots(units))
        names = "、".join(units.loc[units["unit_code"].isin(top), "name"].astype(str)) or "全市"
        return set(units["unit_code"].astype(str)), f"全市（{names}）"
    if unit_code not in set(units["unit_code"]):
        raise EtlError(f"未知单位代码：{unit_code}")
    name = units.loc[units["unit_code"] == unit_code, "name"].iloc[0]
    return scope_of(units, unit_code), f"{name}（{unit_code}）及下级单位"


def unit_levels(units: pd.DataFrame) -> dict[str, str]:
    """unit_code -> level, named as the lost points' level columns are (etl.scoring.lost_points.level_name)."""
    return dict(zip(units["unit_code"].astype(str), units["level"].map(level_name), strict=True))


def county_of(units: pd.DataFrame) -> dict[str, str | None]:
    """unit_code -> the county-level unit that is it or holds it (None above or outside any county)."""
    level = dict(zip(units["unit_code"].astype(str), units["level"], strict=True))
    return {
        code: next((u for u in chain if level.get(u) == "county"), None) for code, chain in ancestors_map(units).items()
    }


def pairs_in_scope(units: pd.DataFrame, scope: set[str]) -> pd.DataFrame:
    """(scope_unit, unit_code) pairs for every scored unit of the scope (see etl.warehouse.scope.scope_pairs)."""
    pairs = scope_pairs(units)
    return pairs[pairs["scope_unit"].isin(scope)].reset_index(drop=True)


# --- scheme and scores ---------------------------------------------------------------------------


def read_scores(
    conn: Connection, period: Period, scope: set[str], scheme_id: str | None, scheme_version: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    """(unit scores, item scores, scheme id, scheme version) of the period, for the units in scope.

    ``scheme_id`` None = the active scheme.  Raises EtlError with the reason
    when the warehouse has no scores at all, none for that scheme or none for
    that period.
    """
    any_rows = read_df(conn, "SELECT COUNT(*) AS n FROM unit_scores")["n"].iloc[0]
    if not any_rows:
        raise EtlError("数据仓库中没有考评得分，请先运行 python -m etl run 加载数据并计算得分")
    if scheme_id is None:
        where, params = "active = 1", {}
    else:
        where, params = "scheme_id = :sid", {"sid": scheme_id}
        if scheme_version is not None:
            versions = read_df(
                conn, "SELECT DISTINCT scheme_version FROM unit_scores WHERE scheme_id = :sid", {"sid": scheme_id}
            )["scheme_version"].tolist()
            if scheme_version in versions:
                where += " AND scheme_version = :sver"
                params["sver"] = scheme_version
    scores = read_df(conn, f"SELECT * FROM unit_scores WHERE {where}", params)
    if scores.empty:
        who = "当前启用的考评方案" if scheme_id is None else f"考评方案 {scheme_id}"
        raise EtlError(
            f"数据仓库中没有{who}的得分；请将方案文件放入 config/schemes/ 后重新运行 python -m etl run"
            "（该目录中的每个方案都会计算得分）"
        )
    versions = sorted(scores["scheme_version"].dropna().astype(str).unique())
    version = versions[-1] if versions else ""
    sid = str(scores["scheme_id"].iloc[0]) if scheme_id is None else scheme_id
    scores = scores[(scores["scheme_version"].astype(str) == version) & (scores["scheme_id"] == sid)]
    scores = scores[scores["period"] == period.code]
    if scores.empty:
        raise EtlError(f"{period.code}（{period.label}）没有考评得分：该期间没有数据，或尚未计算")
    scores = scores[scores["unit_code"].isin(scope)].reset_index(drop=True)
    items = read_df(
        conn,
        "SELECT * FROM unit_item_scores WHERE scheme_id = :sid AND scheme_version = :sver AND period = :p",
        {"sid": sid, "sver": version, "p": period.code},
    )
    items = items[items["unit_code"].isin(scope)].reset_index(drop=True)
    return scores, items, sid, version


def read_evaluation(conn: Connection) -> dict:
    """Evaluation date and data-as-of of the latest run (evaluation table, else etl_runs); ``integrity``: the
    cover's line on the media integrity check of that run (None when not known)."""
    ev = read_df(conn, "SELECT run_id, as_of, data_as_of, computed_at, integrity_checked FROM evaluation")
    out = {"as_of": None, "data_as_of": None, "integrity": None}
    if not ev.empty:
        ev = ev.assign(_k=ev["computed_at"].map(lambda v: ts_text(v) or ""), _r=ev["run_id"].fillna(-1)).sort_values(
            ["_k", "_r"]
        )
        last = ev.iloc[-1]
        out["as_of"], out["data_as_of"] = ts_text(last["as_of"]), ts_text(last["data_as_of"])
        out["integrity"] = _integrity_line(conn, last["run_id"], last["integrity_checked"])
    if out["data_as_of"] is None or out["as_of"] is None:
        runs = read_df(conn, "SELECT run_id, ended_at, as_of FROM etl_runs WHERE status = 'ok' ORDER BY run_id")
        if not runs.empty:
            out["as_of"] = out["as_of"] or ts_text(runs["as_of"].iloc[-1])
            out["data_as_of"] = out["data_as_of"] or ts_text(runs["ended_at"].iloc[-1])
    return out


def _integrity_line(conn: Connection, run_id: object, checked: object) -> str | None:
    """已检查 / 未检查（why, from the run's source health）: never read as "all fine" or "all lost"."""
    if checked is None or checked != checked:  # noqa: PLR0124 - NaN: unknown
        return None
    if int(checked):
        return "已检查（原始文件 SHA-256 与采集时记录比对）"
    why = None
    if run_id == run_id and sa.inspect(conn).has_table("source_health"):  # noqa: PLR0124
        rows = read_df(
            conn,
            "SELECT detail FROM source_health WHERE run_id = :r AND check_name = 'integrity'",
            {"r": int(run_id)},
        )
        why = str(rows["detail"].iloc[0]) if not rows.empty else None
    return (
        "未检查" + (f"（{why}）" if why else "") + "：篡改、缺失原始文件的问题未参与本次考评，不表示原始文件完好或丢失"
    )


# --- coverage, metrics, devices -----------------------------------------------------------


def read_coverage(conn: Connection, period: Period, units: pd.DataFrame, scope: set[str]) -> pd.DataFrame:
    """Per scored unit (over its scope) and month: on-site events by status and the whole-process rate."""
    m = month_sql(conn, "arrived_at")
    df = read_df(
        conn,
        f"""
        SELECT unit_code, {m} AS month, status, COUNT(*) AS n FROM event_coverage
        WHERE arrived_at >= :start AND arrived_at < :end
        GROUP BY unit_code, {m}, status""",
        {"start": ts_param(conn, period.start), "end": ts_param(conn, period.end)},
    )
    cols = ["scope_unit", "month", "events", "full", "excused", "partial", "none", "rate"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    wide = df.pivot_table(index=["unit_code", "month"], columns="status", values="n", aggfunc="sum", fill_value=0)
    wide = wide.reindex(columns=["full", "excused", "partial", "none"], fill_value=0).reset_index()
    agg = (
        wide.merge(pairs_in_scope(units, scope), on="unit_code")
        .groupby(["scope_unit", "month"], as_index=False)[["full", "excused", "partial", "none"]]
        .sum()
    )
    agg["events"] = agg[["full", "excused", "partial", "none"]].sum(axis=1)
    agg["rate"] = (agg["full"] + agg["excused"]) / agg["events"].where(agg["events"] > 0)
    return agg[cols]


def read_metrics(conn: Connection, period: Period, scope: set[str]) -> pd.DataFrame:
    df = read_df(
        conn,
        "SELECT unit_code, metric_id, numerator, denominator, value FROM metrics WHERE period = :p",
        {"p": period.code},
    )
    return df[df["unit_code"].isin(scope)].reset_index(drop=True)


def device_clips_by_month(conn: Connection, year: int) -> pd.DataFrame:
    """Clips started per device and month ('YYYY-MM') of ``year``: device_sn, month, clips.  From the load's
    per-day counts (``clip_days``, days of ``started_at``): the same numbers as counting the clips."""
    df = read_df(
        conn,
        """
        SELECT device_sn, substr(day, 1, 7) AS month, SUM(clips) AS clips FROM clip_days
        WHERE day >= :start AND day < :end GROUP BY device_sn, substr(day, 1, 7)""",
        {"start": f"{year:04d}-01-01", "end": f"{year + 1:04d}-01-01"},
    )
    if df.empty:
        return pd.DataFrame({"device_sn": [], "month": [], "clips": []})
    return df.assign(clips=df["clips"].astype(int))


def read_devices(conn: Connection, period: Period, scope: set[str], clips: pd.DataFrame | None = None) -> pd.DataFrame:
    """Devices owned by units in scope, with the open assignment's holder and clips started in the period
    (``clips``: device_sn, clips when the caller counted them, e.g. from :func:`device_clips_by_month`)."""
    dev = read_df(conn, "SELECT device_sn, kind, model, unit_code, status, status_since FROM devices")
    dev = dev[dev["unit_code"].isin(scope)].reset_index(drop=True)
    asg = read_df(
        conn,
        """
        SELECT a.device_sn, a.police_no, a.from_at, o.name AS holder_name
        FROM device_assignments a LEFT JOIN officers o ON o.police_no = a.police_no
        WHERE a.to_at IS NULL""",
    )
    if not asg.empty:
        asg["from_at"] = asg["from_at"].map(ts_text)
        asg = asg.sort_values(["device_sn", "from_at", "police_no"]).drop_duplicates("device_sn", keep="last")
    else:
        asg = pd.DataFrame(columns=["device_sn", "police_no", "from_at", "holder_name"])
    if clips is None:
        clips = read_df(
            conn,
            """
            SELECT device_sn, COUNT(*) AS clips FROM clips
            WHERE started_at >= :start AND started_at < :end GROUP BY device_sn""",
            {"start": ts_param(conn, period.start), "end": ts_param(conn, period.end)},
        )
    dev = dev.merge(asg, on="device_sn", how="left").merge(clips, on="device_sn", how="left")
    dev["clips"] = dev["clips"].fillna(0).astype(int)
    dev["status_since"] = dev["status_since"].map(ts_text)
    return dev.sort_values(["unit_code", "device_sn"], ignore_index=True)


# --- spot-checks and rectification (抽查情况, 整改情况) -----------------------------------------------------

SPOTCHECK_COLUMNS = [
    "campaign_id",
    "object_kind",
    "object_key",
    "unit_code",
    "month",
    "occurred_at",
    "verdict",
    "failed_points",
    "reviewed_by",
    "reviewed_at",
    "draw_order",
]
NOTICE_COLUMNS = [
    "notice_id",
    "unit_code",
    "issued_by",
    "issued_at",
    "deadline",
    "period",
    "state",
    "closed_at",
    "findings",
    "overdue",
    "on_time",
]


def _has(conn: Connection, table: str) -> bool:
    from sqlalchemy import inspect

    return inspect(conn).has_table(table)


def _day_text(value: object) -> str | None:
    """'YYYY-MM-DD' of a date, datetime or text (None for null)."""
    text = ts_text(value)
    return None if text is None else text[:10]


def read_spotchecks(conn: Connection, period: Period, scope: set[str]) -> pd.DataFrame:
    """The spot-check items of the period in scope: one row per sampled object whose month (the object's
    time: arrived_at of an event, registered_at of a case) is one of the period's months, whatever the
    campaign's own period; the object's unit (as drawn) in ``scope``.

    Columns :data:`SPOTCHECK_COLUMNS` (times as text; verdict None until reviewed, else pass | fail), sorted by
    unit, campaign, draw order.  Empty (with the columns) where the warehouse has no spot-check tables."""
    if not _has(conn, "sup_spotcheck_items"):
        return pd.DataFrame(columns=SPOTCHECK_COLUMNS)
    df = read_df(conn, f"SELECT {', '.join(SPOTCHECK_COLUMNS)} FROM sup_spotcheck_items")
    df = df[df["month"].isin(list(period.months)) & df["unit_code"].isin(scope)]
    for c in ("occurred_at", "reviewed_at"):
        df[c] = df[c].map(ts_text).astype(object)
    df["campaign_id"] = df["campaign_id"].astype(int)
    df["draw_order"] = df["draw_order"].astype(int)
    return df.sort_values(["unit_code", "campaign_id", "draw_order", "object_key"], ignore_index=True)[
        SPOTCHECK_COLUMNS
    ]


def notice_in_period(deadline: object, period: Period) -> bool:
    """Whether a notice counts in ``period``: its deadline falls in one of ``period``'s months (the notices "due
    in the period" of 整改按期完成率, shared/spec/supervision.md; the same reading as
    ``etl.supervision.rectify.ontime_rate``)."""
    day = _day_text(deadline)
    return bool(day) and day[:7] in set(period.months)


def read_notices(conn: Connection, period: Period, scope: set[str], today: date | None = None) -> pd.DataFrame:
    """The rectification notices due in the period in scope (:func:`notice_in_period`; the notice's unit in
    ``scope``), with their finding count and, against ``today`` (default ``etl.times.today()``):

    * ``overdue`` 1 when the notice is not closed and today is after its deadline, or was closed on a later
      day than its deadline, else 0;
    * ``on_time`` 1 when closed on or before its deadline, 0 when closed late or overdue and still open, None
      while it is open and not yet past its deadline (not counted in the on-time rate).

    Columns :data:`NOTICE_COLUMNS` (times and dates as text), sorted by unit and notice id.  Empty where the
    warehouse has no rectification tables."""
    if not _has(conn, "sup_notices"):
        return pd.DataFrame(columns=NOTICE_COLUMNS)
    if today is None:
        from etl.times import today as clock

        today = clock()
    df = read_df(
        conn,
        "SELECT notice_id, unit_code, issued_by, issued_at, deadline, period, state, closed_at FROM sup_notices",
    )
    counts = read_df(conn, "SELECT notice_id, COUNT(*) AS findings FROM sup_notice_findings GROUP BY notice_id")
    df = df[df["unit_code"].isin(scope)]
    keep = [notice_in_period(d, period) for d in df["deadline"]]
    df = df.loc[np.asarray(keep, dtype=bool)].copy()
    df["notice_id"] = df["notice_id"].astype(int)
    df["issued_at"] = df["issued_at"].map(ts_text).astype(object)
    df["closed_at"] = df["closed_at"].map(ts_text).astype(object)
    df["deadline"] = df["deadline"].map(_day_text).astype(object)
    n = dict(zip(counts["notice_id"].astype(int), counts["findings"].astype(int), strict=True))
    df["findings"] = [n.get(i, 0) for i in df["notice_id"]]
    day = today.isoformat()
    overdue, on_time = [], []
    for state, deadline, closed in zip(df["state"], df["deadline"], df["closed_at"], strict=True):
        closed_day = closed[:10] if state == "closed" and closed else None
        if state == "closed":
            late = closed_day is not None and deadline is not None and closed_day > deadline
            overdue.append(int(late))
            on_time.append(0 if late else 1)
        else:
            due = deadline is not None and day > deadline
            overdue.append(int(due))
            on_time.append(0 if due else None)
    df["overdue"] = overdue
    df["on_time"] = pd.Series(on_time, index=df.index, dtype=object)
    return df.sort_values(["unit_code", "notice_id"], ignore_index=True)[NOTICE_COLUMNS]


# --- data quality (sheet 数据质量) -------------------------------------------------------------


DATA_QUALITY_COLUMNS = [
    "kind",
    "unit_code",
    "source",
    "table_name",
    "object_key",
    "detail",
    "first_seen_run",
    "last_seen_run",
]


def read_data_quality(conn: Connection, scope: set[str]) -> pd.DataFrame:
    """The data-quality queue (``v_data_quality``) of the units in ``scope``, as the warehouse holds it now.

    Frozen at publication with the other frames (``frozen.city_frames``): a published workbook shows the queue
    as it was when it was published; one published before the queue was frozen shows today's, with a note line.
    A warehouse without the view (built before the queue) gives no rows."""
    cols = DATA_QUALITY_COLUMNS
    if "v_data_quality" not in sa.inspect(conn).get_view_names():
        return pd.DataFrame(columns=cols)
    df = read_df(conn, f"SELECT {', '.join(cols)} FROM v_data_quality")
    return df[df["unit_code"].isin(scope)].reset_index(drop=True)


# --- trend (sheet 趋势, issue 18) ---------------------------------------------------------------


TREND_COLUMNS = ["unit_code", "period", "total", "grade", "rate"]


def trend_periods(period: Period) -> list[str]:
    """The periods the 趋势 sheet compares: the period's months and the period itself, each with the period
    just before it and the same period of the year before (``etl.periods.previous`` / ``year_ago``)."""
    from etl.periods import previous, year_ago

    shown = list(dict.fromkeys([*period.months, period.code]))
    return sorted({q for p in shown for q in (p, previous(p), year_ago(p))})


def read_trend(
    conn: Connection, period: Period, scope: set[str], scheme_id: str, scheme_version: str | None
) -> pd.DataFrame:
    """Per unit in ``scope`` and period of ``trend_periods``: the total and grade under the scheme (and version)
    and the whole-process rate (``metrics``; None when there were no on-site events): TREND_COLUMNS.  Read at
    city scope for a publication (frozen with the other frames)."""
    wanted = trend_periods(period)
    stmt = sa.text(
        "SELECT unit_code, period, total, grade FROM unit_scores WHERE scheme_id = :sid"
        + (" AND scheme_version = :sver" if scheme_version else "")
        + " AND period IN :periods"
    ).bindparams(sa.bindparam("periods", expanding=True))
    params = {"sid": scheme_id, "periods": wanted, **({"sver": scheme_version} if scheme_version else {})}
    scores = read_df(conn, stmt, params)
    rates = read_df(
        conn,
        sa.text(
            "SELECT unit_code, period, CASE WHEN denominator > 0 THEN value END AS rate FROM metrics "
            "WHERE metric_id = 'whole_process_rate' AND period IN :periods"
        ).bindparams(sa.bindparam("periods", expanding=True)),
        {"periods": wanted},
    )
    df = scores.merge(rates, on=["unit_code", "period"], how="outer")
    df = df[df["unit_code"].isin(scope)]
    return df.sort_values(["unit_code", "period"], ignore_index=True).reindex(columns=TREND_COLUMNS)
