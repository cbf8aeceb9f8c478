"""Standard metrics of rules.md ("Standard metrics") per unit scope and period -> table ``metrics``.

Every unit gets, over its whole scope (itself and every unit below it) and
for every month, quarter and year that has data, the rates that body-camera
platforms show: numerator, denominator and value (null when the denominator
is 0, shown as "—" by the dashboard).

Definitions (decisions the rules leave open are marked *):

* Objects fall into a period by their period time (rules.md "Evaluation date
  and periods"): an on-site event by ``arrived_at``, a case by
  ``registered_at``, a clip by ``started_at``.  Objects whose period time is
  after the evaluation date are left out (they do not exist yet as of it).
* ``issue_rate`` 配发率 = bodycam devices owned by the scope that are not
  scrapped or lost at the period's reference time ÷ active officers of the
  scope.  *Reference time = the end of the period, or the evaluation date when
  that is earlier.  A device counts as scrapped/lost at that time when its
  status is ``scrapped``/``lost`` and ``status_since`` is at or before it (the
  source keeps only the current status).  Officers: ``active = 1`` (the
  source has no history), police and auxiliary alike.  The value may exceed 1.
* ``usage_rate`` 使用率 = device-days with at least one clip ÷ (devices in
  ``in_use`` × days in the period).  *Devices in ``in_use`` = devices of the
  scope whose status is ``in_use`` at the evaluation date (current status);
  the numerator counts only those devices, so the rate stays ≤ 1.  A clip
  counts on the calendar day of its ``started_at``.  *Days in the period =
  calendar days from the first day of the period to its last day or to the
  day of the evaluation date, whichever is earlier (that day counts in full).
* ``timely_import_rate`` 及时导入率 = clips without an UPLOAD-LATE finding ÷
  clips, clips owned through their device's owning unit.
* ``incident_link_rate`` 警情关联率 = on-site events (``event_coverage``) with
  at least one clip tagged with their incident_no ÷ on-site events.
* ``case_link_rate`` 案件关联率 = cases with at least one action having a clip
  tagged with the case_no ÷ cases with at least one action.  *"Having" = the
  clip overlaps the action's [started_at, ended_at] (positive-length
  intersection, as everywhere in rules.md).
* ``whole_process_rate`` 全程记录率 = on-site events ``full`` or ``excused`` ÷
  on-site events.
* ``mean_coverage`` 平均覆盖率 = Σ covered_fraction ÷ on-site events.

Periods "that have data": every month holding an on-site event, a case, an
action, a document, a clip, an access record or a finding, up to the month of
the evaluation date, plus the quarters and years containing them.

Speed (city scale: 2.5M clips): everything is aggregated per unit and month in
SQL, then summed into periods and scopes in pandas.  Clips are read in one
grouped pass per device and month (``clip_months``, shared with scoring inside
the same transaction); the tag look-ups use the partial indexes
``ix_clips_incident_no_tagged`` / ``ix_clips_case_no_tagged_cover`` of etl/schema.py.
``case_links`` is the same case-link rule in pandas, for readers and tests.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.warehouse.db import bulk_insert, read_df
from etl.warehouse.scope import scope_pairs

# Stable metric ids -> the names users know (one mapping, shown everywhere).
METRICS: dict[str, str] = {
    "issue_rate": "配发率",
    "usage_rate": "使用率",
    "timely_import_rate": "及时导入率",
    "incident_link_rate": "警情关联率",
    "case_link_rate": "案件关联率",
    "whole_process_rate": "全程记录率",
    "mean_coverage": "平均覆盖率",
}
METRIC_COLUMNS = ["period", "unit_code", "metric_id", "numerator", "denominator", "value"]


# --- periods ------------------------------------------------------------------------------------

def period_kind(period: str) -> str:
    """'year', 'quarter' or 'month' for '2026', '2026-Q3', '2026-07'."""
    if len(period) == 4:
        return "year"
    return "quarter" if "Q" in period else "month"


def period_bounds(period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a period as Timestamps."""
    year = int(period[:4])
    kind = period_kind(period)
    if kind == "year":
        start = pd.Timestamp(year=year, month=1, day=1)
        return start, start + pd.DateOffset(years=1)
    if kind == "quarter":
        q = int(period[-1])
        start = pd.Timestamp(year=year, month=3 * q - 2, day=1)
        return start, start + pd.DateOffset(months=3)
    start = pd.Timestamp(year=year, month=int(period[5:7]), day=1)
    return start, start + pd.DateOffset(months=1)


def month_periods(months: Iterable[str]) -> pd.DataFrame:
    """Map each month 'YYYY-MM' to the periods containing it: itself, its quarter, its year."""
    rows = []
    for m in sorted(set(months)):
        q = f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}"
        rows += [(m, m), (m, q), (m, m[:4])]
    return pd.DataFrame(rows, columns=["month", "period"])


def periods_of(months: Iterable[str]) -> list[str]:
    """All periods (years, quarters, months) that contain one of ``months``, sorted."""
    return sorted(month_periods(months)["period"].unique().tolist())


def days_in_period(period: str, as_of: datetime) -> int:
    """Calendar days of the period, cut at the evaluation date's day (which counts in full)."""
    start, end = period_bounds(period)
    last = min(end - pd.Timedelta(days=1), pd.Timestamp(as_of).normalize())
    return max(int((last - start).days) + 1, 0)


def reference_time(period: str, as_of: datetime) -> pd.Timestamp:
    """End of the period (last second), or the evaluation date when earlier."""
    _, end = period_bounds(period)
    return min(end - pd.Timedelta(seconds=1), pd.Timestamp(as_of))


# --- SQL helpers shared with scoring ---------------------------------------------------------------

def month_sql(conn: Connection, col: str) -> str:
    """SQL expression 'YYYY-MM' of a datetime column on this dialect."""
    return _fmt_sql(conn, col, 7)


def day_sql(conn: Connection, col: str) -> str:
    """SQL expression 'YYYY-MM-DD' of a datetime column on this dialect."""
    return _fmt_sql(conn, col, 10)


def _fmt_sql(conn: Connection, col: str, n: int) -> str:
    name = conn.dialect.name
    if name == "sqlite":
        return f"substr({col}, 1, {n})"
    if name == "postgresql":
        return f"to_char({col}, '{'YYYY-MM-DD'[:n]}')"
    return f"substr(CAST({col} AS CHAR), 1, {n})"


def ts_param(conn: Connection, value: datetime) -> str | datetime:
    """A datetime as a bound parameter: text on SQLite (how it stores times), datetime elsewhere."""
    value = pd.Timestamp(value).to_pydatetime().replace(microsecond=0)
    return value.strftime("%Y-%m-%d %H:%M:%S") if conn.dialect.name == "sqlite" else value


def _txn_cached(conn: Connection, key: str, as_of: datetime, build):  # noqa: ANN001, ANN202
    """``build()`` once per transaction and evaluation date: metrics and scoring share the big reads.

    The value lives in ``conn.info`` tied to the current transaction object (a weak reference), so a later
    transaction on the same pooled connection never sees stale data.
    """
    found = handed(conn, key, as_of)
    if found is not None:
        return found
    value = build()
    hand_over(conn, key, as_of, value)
    return value


def hand_over(conn: Connection, key: str, as_of: datetime, value: object) -> None:
    """Keep ``value`` for a later step of the current transaction and evaluation date (``handed``)."""
    txn = conn.get_transaction()
    if txn is not None:
        conn.info[key] = (weakref.ref(txn), as_of, value)


def handed(conn: Connection, key: str, as_of: datetime) -> object | None:
    """What ``hand_over`` kept under ``key`` in this transaction for this evaluation date, else None."""
    item = conn.info.get(key)
    txn = conn.get_transaction()
    if item is None or txn is None or item[0]() is not txn or item[1] != as_of:
        return None
    return item[2]


def as_of_seconds(as_of: datetime) -> float:
    """The evaluation date in epoch seconds, whole seconds as ``ts_param`` binds it in SQL."""
    return (pd.Timestamp(as_of).floor("s") - pd.Timestamp(0)).total_seconds()


_FOUND_MONTHS = "etl.scoring.metrics.found_months"


def remember_data_months(conn: Connection, as_of: datetime, times: Iterable[np.ndarray],
                         finding_months: Iterable) -> None:
    """Hand ``data_months`` the months of its sources but the clips, from frames the rules step holds already
    (epoch seconds of event arrivals, case registrations, action starts, document creations and access times;
    the findings' months), so that it does not scan those tables again in this transaction."""
    as_of_s = as_of_seconds(as_of)
    months = {m for m in pd.unique(pd.Series(finding_months, dtype=object)) if isinstance(m, str)}
    for sec in times:
        sec = np.asarray(sec, dtype=np.float64)
        sec = sec[sec <= as_of_s]  # NaN (no time) compares False: left out, as SQL's <= leaves it
        # whole seconds to months in numpy (floor, as the text 'YYYY-MM-DD HH:MM:SS' the database cuts to
        # its first 7 characters), then text for the few distinct months only
        month = np.unique(np.floor(sec).astype("int64").astype("datetime64[s]").astype("datetime64[M]"))
        months |= {str(m) for m in month.astype(str)}
    hand_over(conn, _FOUND_MONTHS, as_of, months)


def data_months(conn: Connection, as_of: datetime) -> list[str]:
    """Months 'YYYY-MM' holding any object or finding, up to the evaluation date's month."""
    def build() -> list[str]:
        found = handed(conn, _FOUND_MONTHS, as_of)
        if found is not None:
            months = set(found)  # from the rules step of this transaction (remember_data_months)
        else:
            sources = [
                ("event_coverage", "arrived_at"), ("cases", "registered_at"), ("case_actions", "started_at"),
                ("case_documents", "created_at"), ("access_log", "at"),
            ]
            parts = [f"SELECT DISTINCT {month_sql(conn, c)} AS m FROM {t} WHERE {c} <= :as_of" for t, c in sources]
            parts.append("SELECT DISTINCT month AS m FROM findings")
            df = read_df(conn, " UNION ".join(parts), {"as_of": ts_param(conn, as_of)})
            months = set(df["m"].dropna().astype(str))
        months |= set(clip_months(conn, as_of)["month"])
        limit = pd.Timestamp(as_of).strftime("%Y-%m")
        return sorted(m for m in months if len(m) == 7 and m <= limit)

    return _txn_cached(conn, "etl.scoring.metrics.months", as_of, build)


def clip_months(conn: Connection, as_of: datetime) -> pd.DataFrame:
    """Clips per device and month up to the evaluation date: device_sn, month, clips, days (distinct days
    with a clip), last_start.  From ``clip_days`` (kept by the load), shared by every metric, EQUIP-IDLE and
    the scores within one transaction."""
    def query() -> pd.DataFrame:
        from etl.warehouse import clip_days

        if clip_days.needs_full_rebuild(conn):  # a warehouse written around the loader
            clip_days.rebuild(conn)
        stamp = pd.Timestamp(as_of).replace(microsecond=0)
        day = stamp.strftime("%Y-%m-%d")
        whole_day = stamp.strftime("%H:%M:%S") == "23:59:59"  # the evaluation day counts in full
        df = read_df(conn, f"""
            SELECT device_sn, substr(day, 1, 7) AS month, SUM(clips) AS clips, COUNT(*) AS days,
                   MAX(last_start) AS last_start
            FROM clip_days WHERE day {'<=' if whole_day else '<'} :day GROUP BY device_sn, substr(day, 1, 7)""",
                     {"day": day})
        if whole_day:
            return df
        # the evaluation day up to its time, from the clips themselves
        part = read_df(conn, """SELECT device_sn, COUNT(*) AS clips, MAX(started_at) AS last_start FROM clips
                                WHERE started_at >= :d0 AND started_at <= :as_of GROUP BY device_sn""",
                       {"d0": ts_param(conn, stamp.normalize()), "as_of": ts_param(conn, as_of)})
        if part.empty:
            return df
        part = part.assign(month=day[:7], days=1)
        both = pd.concat([df, part[df.columns]], ignore_index=True)
        both["last_start"] = both["last_start"].astype(str)
        return both.groupby(["device_sn", "month"], as_index=False).agg(
            clips=("clips", "sum"), days=("days", "sum"), last_start=("last_start", "max"))

    def build() -> pd.DataFrame:
        df = query()
        for col in ("clips", "days"):
            df[col] = pd.to_numeric(df[col]).astype("int64")
        df["month"] = df["month"].astype(str)
        return df

    return _txn_cached(conn, "etl.scoring.metrics.clip_months", as_of, build)


def isin(values: pd.Series, candidates: Iterable) -> pd.Series:  # noqa: ANN001
    """``values.isin(candidates)`` for string keys, on plain objects (much faster than Arrow strings here)."""
    cand = pd.Series(list(candidates) if not isinstance(candidates, pd.Series) else candidates, dtype=object)
    return pd.Series(values.to_numpy(dtype=object), index=values.index, dtype=object).isin(cand.dropna())


# --- pure computation -------------------------------------------------------------------------------

def _scope_sum(per_unit: pd.DataFrame, pairs: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Sum per-unit values over every scope: result keyed by scope unit (as unit_code) and ``keys``."""
    m = per_unit.merge(pairs, on="unit_code", how="inner")
    out = m.groupby(["scope_unit", *keys], as_index=False)[values].sum()
    return out.rename(columns={"scope_unit": "unit_code"})


def _by_period(per_month: pd.DataFrame, mp: pd.DataFrame, values: list[str]) -> pd.DataFrame:
    """(unit_code, month, values) -> (unit_code, period, values) summed into every containing period."""
    m = per_month.merge(mp, on="month", how="inner")
    return m.groupby(["unit_code", "period"], as_index=False)[values].sum()


def _metric_rows(df: pd.DataFrame, metric_id: str, num: str, den: str) -> pd.DataFrame:
    out = pd.DataFrame({
        "period": df["period"], "unit_code": df["unit_code"], "metric_id": metric_id,
        "numerator": df[num].astype(float), "denominator": df[den].astype(float),
    })
    out["value"] = np.where(out["denominator"] > 0, out["numerator"] / out["denominator"].where(
        out["denominator"] > 0, 1.0), np.nan)
    return out


def compute_metrics(
    units: pd.DataFrame, months: list[str], as_of: datetime, *,
    events: pd.DataFrame, cases: pd.DataFrame, clips: pd.DataFrame, device_days: pd.DataFrame,
    devices: pd.DataFrame, officers: pd.DataFrame,
) -> pd.DataFrame:
    """All standard metrics for every unit (over its scope) and period.

    Inputs (one row per object unless said otherwise; ``month`` = 'YYYY-MM' of the period time):
      units        unit_code, parent_code
      events       unit_code, month, tagged (bool), status, covered_fraction   (on-site events)
                   or, already summed per unit and month: unit_code, month, n, tagged, whole, frac
      cases        unit_code, month, linked (bool)                             (cases with an action)
                   or summed: unit_code, month, n, linked
      clips        unit_code, month, clips, late           (counts per unit and month)
      device_days  unit_code, month, device_days           (days with a clip of in_use devices)
      devices      device_sn, unit_code, kind, status, status_since
      officers     unit_code, active
    Output: METRIC_COLUMNS, one row per unit, period and metric.
    """
    periods = periods_of(months)
    mp = month_periods(months)
    pairs = scope_pairs(units)
    grid = pd.MultiIndex.from_product([periods, units["unit_code"].astype(str).tolist()],
                                      names=["period", "unit_code"]).to_frame(index=False)

    def full(per_unit_period: pd.DataFrame, values: list[str]) -> pd.DataFrame:
        scoped = _scope_sum(per_unit_period, pairs, ["period"], values)
        out = grid.merge(scoped, on=["period", "unit_code"], how="left")
        out[values] = out[values].fillna(0.0)
        return out

    parts = []

    # events: incident link, whole process, mean coverage
    if "n" not in events.columns:  # one row per event
        events = events.assign(
            n=1.0, tagged=events["tagged"].astype(float),
            whole=events["status"].isin(["full", "excused"]).astype(float),
            frac=pd.to_numeric(events["covered_fraction"], errors="coerce").fillna(0.0).astype(float))
    ev = events[["unit_code", "month", "n", "tagged", "whole", "frac"]]
    ev = full(_by_period(ev, mp, ["n", "tagged", "whole", "frac"]), ["n", "tagged", "whole", "frac"])
    parts += [_metric_rows(ev, "incident_link_rate", "tagged", "n"),
              _metric_rows(ev, "whole_process_rate", "whole", "n"),
              _metric_rows(ev, "mean_coverage", "frac", "n")]

    if "n" not in cases.columns:  # one row per case
        cases = cases.assign(n=1.0, linked=cases["linked"].astype(float))
    cs = cases[["unit_code", "month", "n", "linked"]]
    cs = full(_by_period(cs, mp, ["n", "linked"]), ["n", "linked"])
    parts.append(_metric_rows(cs, "case_link_rate", "linked", "n"))

    cl = clips.assign(clips=clips["clips"].astype(float), timely=(clips["clips"] - clips["late"]).astype(float))
    cl = full(_by_period(cl[["unit_code", "month", "clips", "timely"]], mp, ["clips", "timely"]), ["clips", "timely"])
    parts.append(_metric_rows(cl, "timely_import_rate", "timely", "clips"))

    # usage: numerator from device-days, denominator = in_use devices x days in the period
    dd = device_days.assign(device_days=device_days["device_days"].astype(float))
    dd = _by_period(dd[["unit_code", "month", "device_days"]], mp, ["device_days"])
    in_use = devices.loc[devices["status"] == "in_use"].groupby("unit_code").size().rename("in_use").reset_index()
    days = pd.DataFrame({"period": periods, "days": [days_in_period(p, as_of) for p in periods]})
    cap = in_use.merge(days, how="cross")
    cap["capacity"] = (cap["in_use"] * cap["days"]).astype(float)
    use = cap[["unit_code", "period", "capacity"]].merge(dd, on=["unit_code", "period"], how="outer")
    use = full(use.fillna(0.0), ["device_days", "capacity"])
    parts.append(_metric_rows(use, "usage_rate", "device_days", "capacity"))

    # issue: serviceable bodycams at the reference time / active officers
    bodycams = devices.loc[devices["kind"] == "bodycam", ["unit_code", "status", "status_since"]].copy()
    bodycams["status_since"] = pd.to_datetime(bodycams["status_since"], errors="coerce")
    refs = pd.DataFrame({"period": periods, "ref": [reference_time(p, as_of) for p in periods]})
    issued = bodycams.merge(refs, how="cross")
    gone = issued["status"].isin(["scrapped", "lost"]) & (issued["status_since"] <= issued["ref"])
    issued = issued.loc[~gone].groupby(["unit_code", "period"]).size().rename("devices").reset_index()
    staff = officers.loc[pd.to_numeric(officers["active"], errors="coerce") == 1].groupby("unit_code").size()
    staff = staff.rename("officers").reset_index().merge(refs[["period"]], how="cross")
    iss = issued.merge(staff, on=["unit_code", "period"], how="outer").fillna(0.0)
    iss = full(iss, ["devices", "officers"])
    parts.append(_metric_rows(iss, "issue_rate", "devices", "officers"))

    out = pd.concat(parts, ignore_index=True)[METRIC_COLUMNS]
    return out.sort_values(["period", "unit_code", "metric_id"], ignore_index=True)


def case_links(cases: pd.DataFrame, actions: pd.DataFrame, tagged_clips: pd.DataFrame) -> pd.Series:
    """For each case of ``cases`` (case_no): has an action overlapped by a clip tagged with its case_no.

    actions: case_no, started_at, ended_at; tagged_clips: case_no, started_at, ended_at (datetimes).
    """
    m = actions.merge(tagged_clips, on="case_no", suffixes=("_a", "_c"))
    hit = (m["started_at_c"] < m["ended_at_a"]) & (m["ended_at_c"] > m["started_at_a"])
    linked = set(m.loc[hit, "case_no"])
    return isin(cases["case_no"], linked)


# --- warehouse I/O -----------------------------------------------------------------------------------

def load_inputs(conn: Connection, as_of: datetime) -> dict[str, pd.DataFrame]:
    """Read what compute_metrics needs, already summed per unit and month in SQL."""
    p = {"as_of": ts_param(conn, as_of)}
    units = read_df(conn, "SELECT unit_code, parent_code, level FROM org_units")
    em, cm = month_sql(conn, "e.arrived_at"), month_sql(conn, "c.registered_at")
    tagged_incidents = "SELECT incident_no FROM clips WHERE incident_no IS NOT NULL AND started_at <= :as_of"
    linked_cases = """SELECT a.case_no FROM case_actions a JOIN clips t ON t.case_no = a.case_no
                      WHERE t.case_no IS NOT NULL AND t.started_at <= :as_of
                        AND t.started_at < a.ended_at AND t.ended_at > a.started_at"""
    if conn.dialect.name == "sqlite":
        # SQLite: IN (subquery) builds one ephemeral index; the tagged clips come from partial indexes
        tag_join = link_join = ""
        tagged = f"e.incident_no IN ({tagged_incidents})"
        linked = f"c.case_no IN ({linked_cases})"
    else:
        # elsewhere: hash joins with the distinct key sets.  (A hashed IN-list is abandoned for a rescan per
        # row once it outgrows work_mem, and a first run has no planner statistics inside its transaction.)
        tag_join = f"LEFT JOIN (SELECT DISTINCT incident_no AS k FROM ({tagged_incidents}) x) t ON t.k = e.incident_no"
        link_join = f"LEFT JOIN (SELECT DISTINCT case_no AS k FROM ({linked_cases}) x) l ON l.k = c.case_no"
        tagged, linked = "t.k IS NOT NULL", "l.k IS NOT NULL"
    events = read_df(conn, f"""
        SELECT e.unit_code, {em} AS month, COUNT(*) AS n, SUM(CASE WHEN {tagged} THEN 1 ELSE 0 END) AS tagged,
               SUM(CASE WHEN e.status IN ('full', 'excused') THEN 1 ELSE 0 END) AS whole,
               SUM(COALESCE(e.covered_fraction, 0)) AS frac
        FROM event_coverage e {tag_join} WHERE e.arrived_at <= :as_of GROUP BY e.unit_code, {em}""", p)
    cases = read_df(conn, f"""
        SELECT c.unit_code, {cm} AS month, COUNT(*) AS n, SUM(CASE WHEN {linked} THEN 1 ELSE 0 END) AS linked
        FROM cases c {link_join}
        WHERE c.registered_at <= :as_of AND EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = c.case_no)
        GROUP BY c.unit_code, {cm}""", p)
    devices = read_df(conn, "SELECT device_sn, unit_code, kind, status, status_since FROM devices")
    cd = clip_months(conn, as_of).merge(devices[["device_sn", "unit_code", "status"]], on="device_sn")
    clips = cd.groupby(["unit_code", "month"], as_index=False)["clips"].sum()
    # from the findings alone: an UPLOAD-LATE finding carries its clip's device_sn and started_at (occurred_at,
    # etl.rules.media._clip_frame), so no look-up into the clip table per finding
    late = read_df(conn, f"""
        SELECT d.unit_code, {month_sql(conn, 'f.occurred_at')} AS month, COUNT(DISTINCT f.clip_id) AS late
        FROM findings f JOIN devices d ON d.device_sn = f.device_sn
        WHERE f.rule_id = 'UPLOAD-LATE' AND f.occurred_at <= :as_of
        GROUP BY d.unit_code, {month_sql(conn, 'f.occurred_at')}""", p)
    clips = clips.merge(late, on=["unit_code", "month"], how="left")
    device_days = (cd.loc[cd["status"] == "in_use"].groupby(["unit_code", "month"])["days"].sum()
                   .rename("device_days").reset_index())
    officers = read_df(conn, "SELECT unit_code, active FROM officers")
    for df in (events, cases, clips, device_days):
        for col in df.columns[2:]:
            df[col] = pd.to_numeric(df[col]).fillna(0).astype(float)
    return {"units": units, "events": events, "cases": cases, "clips": clips, "device_days": device_days,
            "devices": devices, "officers": officers}


def compute(conn: Connection, as_of: datetime, cfg: dict) -> int:  # noqa: ARG001 - cfg kept for the common signature
    """Rebuild table ``metrics`` inside the caller's transaction; returns the number of rows."""
    inputs = load_inputs(conn, as_of)
    months = data_months(conn, as_of)
    units = inputs.pop("units")
    frame = compute_metrics(units, months, as_of, **inputs) if months and len(units) else pd.DataFrame(
        columns=METRIC_COLUMNS)
    conn.execute(sa.text("DELETE FROM metrics"))
    return bulk_insert(conn, "metrics", frame, METRIC_COLUMNS)
