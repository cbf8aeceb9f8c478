"""Reading what the assessment workbook shows, as DataFrames (one query per table, scope applied).

Every function takes an open connection and returns plain frames; nothing
here formats or writes Excel.  Unit scope is applied in pandas after a
period-restricted query because a city has only a few hundred units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy.engine import Connection

from etl.errors import EtlError
from etl.scoring.metrics import month_sql
from etl.scoring.scores import level_name
from etl.warehouse.db import TS_FORMAT, read_df
from etl.warehouse.scope import ancestors_map, scope_of, scope_pairs

LEVEL_ORDER = {"city": 0, "county": 1, "station": 2}
LEVEL_NAMES = {"city": "市局", "county": "县（区）局", "station": "基层所队"}
PERIOD_RE = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4]))?$")


# --- periods ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    code: str  # '2026', '2026-Q3', '2026-07'
    months: tuple[str, ...]  # 'YYYY-MM' it covers
    start: datetime  # inclusive
    end: datetime  # exclusive

    @property
    def label(self) -> str:
        y = self.code[:4]
        if len(self.code) == 4:
            return f"{y}年度"
        if "Q" in self.code:
            return f"{y}年第{self.code[-1]}季度"
        return f"{y}年{int(self.code[5:7])}月"


def parse_period(code: str) -> Period:
    """'2026' (year), '2026-Q3' (quarter) or '2026-07' (month); anything else is a user error."""
    m = PERIOD_RE.match((code or "").strip())
    if not m:
        raise EtlError(f"考评期间格式应为 2026、2026-Q3 或 2026-07：{code}")
    year = int(m.group(1))
    if m.group(2):
        first, count = int(m.group(2)), 1
    elif m.group(3):
        first, count = 3 * int(m.group(3)) - 2, 3
    else:
        first, count = 1, 12
    months = tuple(f"{year:04d}-{mm:02d}" for mm in range(first, first + count))
    last = first + count
    end = datetime(year + 1, 1, 1) if last > 12 else datetime(year, last, 1)
    return Period(code.strip(), months, datetime(year, first, 1), end)


def ts_param(conn: Connection, value: datetime) -> object:
    """A datetime bound parameter: text on SQLite (stored as text), datetime elsewhere."""
    return value.strftime(TS_FORMAT) if conn.dialect.name == "sqlite" else value


def fmt_ts(value: object) -> str | None:
    """'YYYY-MM-DD HH:MM:SS' of a datetime value or text; None for null."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value[:19]
    ts = pd.Timestamp(value)
    return None if pd.isna(ts) else ts.strftime(TS_FORMAT)


# --- units and scope ------------------------------------------------------------------------------


def read_units(conn: Connection) -> pd.DataFrame:
    units = read_df(conn, "SELECT unit_code, name, parent_code, level FROM org_units")
    if units.empty:
        raise EtlError("数据仓库中没有单位目录（org_units 为空），请先运行 python -m etl run 加载数据")
    units["level_order"] = units["level"].map(LEVEL_ORDER).fillna(9).astype(int)
    return units.sort_values(["level_order", "unit_code"], ignore_index=True)


def resolve_scope(units: pd.DataFrame, unit_code: str | None, allowed_scope: set[str] | None) -> tuple[set[str], str]:
    """The unit codes in scope and a Chinese label; enforces a unit administrator's scope."""
    if allowed_scope is not None and (unit_code is None or unit_code not in allowed_scope):
        raise PermissionError(f"无权导出该范围的考评表：{unit_code or '全市'}")
    if unit_code is None:
        roots = units[units["parent_code"].isna() | ~units["parent_code"].isin(units["unit_code"])]
        names = "、".join(roots["name"].astype(str)) or "全市"
        return set(units["unit_code"].astype(str)), f"全市（{names}）"
    if unit_code not in set(units["unit_code"]):
        raise EtlError(f"未知单位代码：{unit_code}")
    name = units.loc[units["unit_code"] == unit_code, "name"].iloc[0]
    return scope_of(units, unit_code), f"{name}（{unit_code}）及下级单位"


def unit_levels(units: pd.DataFrame) -> dict[str, str]:
    """unit_code -> level, named as the lost points' level columns are (etl.scoring.scores.level_name)."""
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
    """Evaluation date and data-as-of of the latest run (evaluation table, else etl_runs)."""
    ev = read_df(conn, "SELECT run_id, as_of, data_as_of, computed_at FROM evaluation")
    out = {"as_of": None, "data_as_of": None}
    if not ev.empty:
        ev = ev.assign(_k=ev["computed_at"].map(lambda v: fmt_ts(v) or ""), _r=ev["run_id"].fillna(-1)).sort_values(
            ["_k", "_r"]
        )
        last = ev.iloc[-1]
        out["as_of"], out["data_as_of"] = fmt_ts(last["as_of"]), fmt_ts(last["data_as_of"])
    if out["data_as_of"] is None or out["as_of"] is None:
        runs = read_df(conn, "SELECT run_id, ended_at, as_of FROM etl_runs WHERE status = 'ok' ORDER BY run_id")
        if not runs.empty:
            out["as_of"] = out["as_of"] or fmt_ts(runs["as_of"].iloc[-1])
            out["data_as_of"] = out["data_as_of"] or fmt_ts(runs["ended_at"].iloc[-1])
    return out


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


def read_devices(conn: Connection, period: Period, scope: set[str]) -> pd.DataFrame:
    """Devices owned by units in scope, with the open assignment's holder and clips started in the period."""
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
        asg["from_at"] = asg["from_at"].map(fmt_ts)
        asg = asg.sort_values(["device_sn", "from_at", "police_no"]).drop_duplicates("device_sn", keep="last")
    else:
        asg = pd.DataFrame(columns=["device_sn", "police_no", "from_at", "holder_name"])
    clips = read_df(
        conn,
        """
        SELECT device_sn, COUNT(*) AS clips FROM clips
        WHERE started_at >= :start AND started_at < :end GROUP BY device_sn""",
        {"start": ts_param(conn, period.start), "end": ts_param(conn, period.end)},
    )
    dev = dev.merge(asg, on="device_sn", how="left").merge(clips, on="device_sn", how="left")
    dev["clips"] = dev["clips"].fillna(0).astype(int)
    dev["status_since"] = dev["status_since"].map(fmt_ts)
    return dev.sort_values(["unit_code", "device_sn"], ignore_index=True)
