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
* Verdicts (``etl.warehouse.verdicts``, shared/spec/supervision.md): an event
  whose AV findings are all exempted counts as fully recorded; an excused
  event whose excuse is not effective does not (unless its AV findings are
  all exempted); a clip whose UPLOAD-LATE finding is exempted counts as timely.
* ``mean_coverage`` 平均覆盖率 = Σ covered_fraction ÷ on-site events.
* ``spotcheck_pass_rate`` 抽查合格率 = spot-checked objects reviewed without a failed point ÷ spot-checked
  objects reviewed (shared/spec/supervision.md "Spot-checks"), each in the month of its object (the event's
  arrival, the case's registration) and under its unit as drawn; from the verdicts (``Verdicts.spot_items``).

Periods "that have data": every month holding an on-site event, a case, an
action, a document, a clip, an access record or a finding, up to the month of
the evaluation date, plus the quarters and years containing them.

Speed (city scale: 2.5M clips): everything is aggregated per unit and month in
SQL, then summed into periods and scopes in pandas.  Clips are read in one
grouped pass per device and month (``clip_months``, read once by the evaluation
and passed to EQUIP-IDLE, the metrics and the scores); the tag look-ups use the partial indexes
``ix_clips_incident_no_tagged_cover`` / ``ix_clips_case_no_tagged_cover`` of etl/schema.py.
``case_links`` is the same case-link rule in pandas, for readers and tests.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl import periods as periods_
from etl.times import ts_param
from etl.warehouse import clip_days
from etl.warehouse.db import bulk_insert, read_df
from etl.warehouse.scope import scope_pairs
from etl.warehouse.verdicts import EXCUSED_RULES, Verdicts, read_in, read_verdicts

# Stable metric ids -> the names users know (one mapping, shown everywhere).
METRICS: dict[str, str] = {
    "issue_rate": "配发率",
    "usage_rate": "使用率",
    "timely_import_rate": "及时导入率",
    "incident_link_rate": "警情关联率",
    "case_link_rate": "案件关联率",
    "whole_process_rate": "全程记录率",
    "mean_coverage": "平均覆盖率",
    "spotcheck_pass_rate": "抽查合格率",
}
METRIC_COLUMNS = ["period", "unit_code", "metric_id", "numerator", "denominator", "value"]


# --- periods (one implementation: etl.periods) ---------------------------------------------------


def period_kind(period: str) -> str:
    """'year', 'quarter' or 'month' for '2026', '2026-Q3', '2026-07'."""
    return periods_.kind(period)


def period_bounds(period: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start, end) of a period as Timestamps."""
    start, end = periods_.bounds(period)
    return pd.Timestamp(start), pd.Timestamp(end)


month_periods = periods_.month_periods
periods_of = periods_.periods_of
days_in_period = periods_.days_in_period
reference_time = periods_.reference_time


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


def as_of_seconds(as_of: datetime) -> float:
    """The evaluation date in epoch seconds, whole seconds as ``ts_param`` binds it in SQL."""
    return (pd.Timestamp(as_of).floor("s") - pd.Timestamp(0)).total_seconds()


def data_months(
    conn: Connection, as_of: datetime, *, found: Iterable[str] | None = None, clip_months: pd.DataFrame | None = None
) -> list[str]:
    """Months 'YYYY-MM' holding any object or finding, up to the evaluation date's month.

    ``found``: the months of every source but the clips, as the findings step found them in the frames it read
    (``etl.rules.findings.FindingsResult.months``), else scanned here in SQL; ``clip_months``: the frame of
    ``clip_months`` when the caller holds it, else read here.
    """
    if found is not None:
        months = set(found)
    else:
        sources = [
            ("event_coverage", "arrived_at"),
            ("cases", "registered_at"),
            ("case_actions", "started_at"),
            ("case_documents", "created_at"),
            ("access_log", "at"),
        ]
        parts = [f"SELECT DISTINCT {month_sql(conn, c)} AS m FROM {t} WHERE {c} <= :as_of" for t, c in sources]
        parts.append("SELECT DISTINCT month AS m FROM findings")
        df = read_df(conn, " UNION ".join(parts), {"as_of": ts_param(conn, as_of)})
        months = set(df["m"].dropna().astype(str))
    months |= set((clip_months if clip_months is not None else clip_days.per_month(conn, as_of))["month"])
    limit = pd.Timestamp(as_of).strftime("%Y-%m")
    return sorted(m for m in months if len(m) == 7 and m <= limit)


def clip_months(conn: Connection, as_of: datetime) -> pd.DataFrame:
    """Clips per device and month up to the evaluation date: device_sn, month, clips, days (distinct days
    with a clip), last_start (``etl.warehouse.clip_days.per_month``).  Read once per evaluation by
    ``etl.evaluation`` and passed to EQUIP-IDLE, ``compute`` and the scores."""
    return clip_days.per_month(conn, as_of)


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
    out = pd.DataFrame(
        {
            "period": df["period"],
            "unit_code": df["unit_code"],
            "metric_id": metric_id,
            "numerator": df[num].astype(float),
            "denominator": df[den].astype(float),
        }
    )
    out["value"] = np.where(
        out["denominator"] > 0, out["numerator"] / out["denominator"].where(out["denominator"] > 0, 1.0), np.nan
    )
    return out


def compute_metrics(
    units: pd.DataFrame,
    months: list[str],
    as_of: datetime,
    *,
    events: pd.DataFrame,
    cases: pd.DataFrame,
    clips: pd.DataFrame,
    device_days: pd.DataFrame,
    devices: pd.DataFrame,
    officers: pd.DataFrame,
    spot_items: pd.DataFrame | None = None,
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
      spot_items   unit_code, month, verdict                (reviewed spot-check items; none: no row counts)
    Output: METRIC_COLUMNS, one row per unit, period and metric.
    """
    periods = periods_of(months)
    mp = month_periods(months)
    pairs = scope_pairs(units)
    grid = pd.MultiIndex.from_product(
        [periods, units["unit_code"].astype(str).tolist()], names=["period", "unit_code"]
    ).to_frame(index=False)

    def full(per_unit_period: pd.DataFrame, values: list[str]) -> pd.DataFrame:
        scoped = _scope_sum(per_unit_period, pairs, ["period"], values)
        out = grid.merge(scoped, on=["period", "unit_code"], how="left")
        out[values] = out[values].fillna(0.0)
        return out

    parts = []

    # events: incident link, whole process, mean coverage
    if "n" not in events.columns:  # one row per event
        events = events.assign(
            n=1.0,
            tagged=events["tagged"].astype(float),
            whole=events["status"].isin(["full", "excused"]).astype(float),
            frac=pd.to_numeric(events["covered_fraction"], errors="coerce").fillna(0.0).astype(float),
        )
    ev = events[["unit_code", "month", "n", "tagged", "whole", "frac"]]
    ev = full(_by_period(ev, mp, ["n", "tagged", "whole", "frac"]), ["n", "tagged", "whole", "frac"])
    parts += [
        _metric_rows(ev, "incident_link_rate", "tagged", "n"),
        _metric_rows(ev, "whole_process_rate", "whole", "n"),
        _metric_rows(ev, "mean_coverage", "frac", "n"),
    ]

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

    parts.append(_metric_rows(full(spot_tally(spot_items, mp), ["n", "passed"]), SPOT_METRIC, "passed", "n"))

    out = pd.concat(parts, ignore_index=True)[METRIC_COLUMNS]
    return out.sort_values(["period", "unit_code", "metric_id"], ignore_index=True)


SPOT_METRIC = "spotcheck_pass_rate"


def spot_tally(items: pd.DataFrame | None, mp: pd.DataFrame) -> pd.DataFrame:
    """Reviewed spot-check items (``Verdicts.spot_item_frame``: unit_code, month, verdict) -> per own unit and
    period: n reviewed, passed (pure)."""
    if items is None or not len(items):
        return pd.DataFrame({"unit_code": [], "period": [], "n": [], "passed": []})
    it = items.dropna(subset=["unit_code", "month"])
    it = pd.DataFrame(
        {
            "unit_code": it["unit_code"].astype(str),
            "month": it["month"].astype(str),
            "n": 1.0,
            "passed": (it["verdict"] == "pass").astype(float),
        }
    )
    return _by_period(it, mp, ["n", "passed"])


def verdict_metrics(
    units: pd.DataFrame,
    months: list[str],
    *,
    events: pd.DataFrame,
    clips: pd.DataFrame,
    only: Iterable[str],
    spot_items: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The rows of ``compute_metrics`` that verdicts change (``VERDICT_METRICS``) for the units ``only`` (each
    over its whole scope), from the same event and clip tallies per unit and month, computed the same way."""
    keep = {str(u) for u in only}
    periods = periods_of(months)
    mp = month_periods(months)
    pairs = scope_pairs(units)
    pairs = pairs.loc[isin(pairs["scope_unit"], keep).to_numpy()]
    codes = [u for u in units["unit_code"].astype(str).tolist() if u in keep]
    grid = pd.MultiIndex.from_product([periods, codes], names=["period", "unit_code"]).to_frame(index=False)

    def full(per_unit_period: pd.DataFrame, values: list[str]) -> pd.DataFrame:
        scoped = _scope_sum(per_unit_period, pairs, ["period"], values)
        out = grid.merge(scoped, on=["period", "unit_code"], how="left")
        out[values] = out[values].fillna(0.0)
        return out

    ev = full(_by_period(events[["unit_code", "month", "n", "whole"]], mp, ["n", "whole"]), ["n", "whole"])
    cl = clips.assign(clips=clips["clips"].astype(float), timely=(clips["clips"] - clips["late"]).astype(float))
    cl = full(_by_period(cl[["unit_code", "month", "clips", "timely"]], mp, ["clips", "timely"]), ["clips", "timely"])
    out = pd.concat(
        [
            _metric_rows(ev, "whole_process_rate", "whole", "n"),
            _metric_rows(cl, "timely_import_rate", "timely", "clips"),
            _metric_rows(full(spot_tally(spot_items, mp), ["n", "passed"]), SPOT_METRIC, "passed", "n"),
        ],
        ignore_index=True,
    )[METRIC_COLUMNS]
    return out.sort_values(["period", "unit_code", "metric_id"], ignore_index=True)


def verdict_tallies(
    events: pd.DataFrame, clips: pd.DataFrame, whole: pd.DataFrame, late: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The event and clip tallies of ``load_inputs`` (without verdicts) with the changes ``adjustments``
    returned (pure)."""
    return _add(events, whole, "whole"), _add(clips, late, "late")


def case_links(cases: pd.DataFrame, actions: pd.DataFrame, tagged_clips: pd.DataFrame) -> pd.Series:
    """For each case of ``cases`` (case_no): has an action overlapped by a clip tagged with its case_no.

    actions: case_no, started_at, ended_at; tagged_clips: case_no, started_at, ended_at (datetimes).
    """
    m = actions.merge(tagged_clips, on="case_no", suffixes=("_a", "_c"))
    hit = (m["started_at_c"] < m["ended_at_a"]) & (m["ended_at_c"] > m["started_at_a"])
    linked = set(m.loc[hit, "case_no"])
    return isin(cases["case_no"], linked)


# --- warehouse I/O -----------------------------------------------------------------------------------


VERDICT_METRICS = ("timely_import_rate", "whole_process_rate", SPOT_METRIC)  # the metrics verdicts change
AV_RULES = sorted(EXCUSED_RULES)


def adjustments(
    events: pd.DataFrame, av_keys: pd.DataFrame, late: pd.DataFrame, verdicts: Verdicts
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What ``verdicts`` change in the event and clip tallies (pure): (unit_code, month, whole: the change of
    fully recorded events), (unit_code, month, late: the change of late clips).

    events   incident_no, unit_code, month, status: on-site events up to the evaluation date, at least those
             with an AV finding exempted and the excused ones
    av_keys  incident_no, finding_key: the AV findings (``findings`` and ``excused_findings``) of those events
    late     unit_code, month, clip_id, finding_key: UPLOAD-LATE findings up to the evaluation date (their
             clip's device's unit and month), at least the exempted ones
    An event whose AV findings are all exempted counts as fully recorded; an excused event whose excuse is not
    effective does not; a clip whose UPLOAD-LATE finding is exempted counts as timely."""
    whole = pd.DataFrame({"unit_code": [], "month": [], "whole": []})
    exempt = verdicts.is_exempted(av_keys["finding_key"])
    touched = set(av_keys.loc[exempt, "incident_no"].dropna().astype(str))
    status = events["status"].to_numpy(dtype=object)
    excused = status == "excused"
    if verdicts.excuse_mode != "required":
        rejected = [i for i, v in verdicts.excuses.items() if v == "rejected"]
        excused &= isin(events["incident_no"], rejected).to_numpy()
    ev = events.loc[isin(events["incident_no"], touched).to_numpy() | excused].drop_duplicates("incident_no")
    if len(ev):
        keys = av_keys.loc[isin(av_keys["incident_no"], ev["incident_no"]).to_numpy()]
        keys = keys.assign(exempt=verdicts.is_exempted(keys["finding_key"]))
        all_exempt = keys.groupby("incident_no")["exempt"].all()
        cleared = ev["incident_no"].map(all_exempt).fillna(False).astype(bool).to_numpy()
        status = ev["status"].to_numpy(dtype=object)
        before = np.isin(status, ["full", "excused"])
        effective = verdicts.excuse_effective(ev["incident_no"].tolist())
        after = (status == "full") | ((status == "excused") & effective) | cleared
        ev = ev.assign(whole=after.astype(float) - before.astype(float))
        whole = ev.loc[ev["whole"] != 0].groupby(["unit_code", "month"], as_index=False)["whole"].sum()
    late = late.loc[verdicts.is_exempted(late["finding_key"])]
    late = late.drop_duplicates("clip_id").groupby(["unit_code", "month"], as_index=False).size()
    late = late.rename(columns={"size": "late"}).assign(late=lambda d: -d["late"].astype(float))
    return whole, late


def verdict_adjustments(conn: Connection, as_of: datetime, verdicts: Verdicts) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the verdicts change in the event and clip tallies, per unit and month of the period time:
    ``adjustments`` of the few objects a verdict touches, read here."""
    p = {"as_of": ts_param(conn, as_of)}
    em = month_sql(conn, "e.arrived_at")
    prefixes = tuple(f"{r}:" for r in AV_RULES)
    exempt_av = [k for k in verdicts.exempted if k.startswith(prefixes)]
    # events a verdict may change: those with an exempted AV finding, and the excused ones whose excuse may fail
    touched = set()
    for table in ("findings", "excused_findings"):
        found = read_in(conn, f"SELECT incident_no FROM {table} WHERE finding_key IN :keys", "keys", exempt_av)
        touched |= set(found["incident_no"].dropna().astype(str))
    cols = f"e.incident_no, e.unit_code, {em} AS month, e.status"
    ev = read_in(
        conn,
        f"SELECT {cols} FROM event_coverage e WHERE e.incident_no IN :inc AND e.arrived_at <= :as_of",
        "inc",
        touched,
        p,
    )
    if verdicts.excuse_mode == "required":
        ex = read_df(
            conn, f"SELECT {cols} FROM event_coverage e WHERE e.status = 'excused' AND e.arrived_at <= :as_of", p
        )
    else:
        rejected = [i for i, v in verdicts.excuses.items() if v == "rejected"]
        ex = read_in(
            conn,
            f"SELECT {cols} FROM event_coverage e WHERE e.status = 'excused' AND e.incident_no IN :inc"
            " AND e.arrived_at <= :as_of",
            "inc",
            rejected,
            p,
        )
    ev = pd.concat([ev, ex], ignore_index=True).drop_duplicates("incident_no")
    keys = pd.concat(
        [
            read_in(
                conn,
                f"SELECT incident_no, finding_key FROM {table} WHERE rule_id IN ('AV-NONE', 'AV-GAP', 'AV-OFFICER')"
                " AND incident_no IN :inc",
                "inc",
                ev["incident_no"].astype(str).tolist(),
            )
            for table in ("findings", "excused_findings")
        ],
        ignore_index=True,
    )
    late = read_in(
        conn,
        f"""SELECT d.unit_code, {month_sql(conn, "f.occurred_at")} AS month, f.clip_id, f.finding_key
            FROM findings f JOIN devices d ON d.device_sn = f.device_sn
            WHERE f.rule_id = 'UPLOAD-LATE' AND f.occurred_at <= :as_of AND f.finding_key IN :keys""",
        "keys",
        [k for k in verdicts.exempted if k.startswith("UPLOAD-LATE:")],
        p,
    )
    return adjustments(ev, keys, late, verdicts)


def verdict_objects(conn: Connection, as_of: datetime) -> dict[str, pd.DataFrame]:
    """Everything ``adjustments`` may need for any verdicts (kept by a run for ``etl.supervision.rescore``):
    {"events": every event up to the evaluation date with an AV finding or excused, "av_keys": their AV
    findings, "late": every UPLOAD-LATE finding up to the evaluation date}."""
    p = {"as_of": ts_param(conn, as_of)}
    av = "rule_id IN ('AV-NONE', 'AV-GAP', 'AV-OFFICER')"
    av_keys = read_df(
        conn,
        f"SELECT incident_no, finding_key FROM findings WHERE {av}"
        f" UNION ALL SELECT incident_no, finding_key FROM excused_findings WHERE {av}",
    )
    # a join with the distinct AV incidents, not `OR incident_no IN (subquery)`: under OR PostgreSQL keeps the
    # subquery as a subplan, rescanned for every event once its hash outgrows work_mem (>12 min at 10x city).
    # An AV finding has its event's unit, so both sides are in one county (the distribution key).
    events = read_df(
        conn,
        f"""SELECT e.incident_no, e.unit_code, {month_sql(conn, "e.arrived_at")} AS month, e.status
            FROM event_coverage e
            LEFT JOIN (SELECT incident_no AS k, county_code FROM findings WHERE {av}
                       UNION SELECT incident_no, county_code FROM excused_findings WHERE {av}) f
              ON f.k = e.incident_no AND f.county_code = e.county_code
            WHERE e.arrived_at <= :as_of AND (e.status = 'excused' OR f.k IS NOT NULL)""",
        p,
    )
    late = read_df(
        conn,
        f"""SELECT d.unit_code, {month_sql(conn, "f.occurred_at")} AS month, f.clip_id, f.finding_key
            FROM findings f JOIN devices d ON d.device_sn = f.device_sn
            WHERE f.rule_id = 'UPLOAD-LATE' AND f.occurred_at <= :as_of""",
        p,
    )
    return {"events": events, "av_keys": av_keys, "late": late}


def load_inputs(
    conn: Connection,
    as_of: datetime,
    *,
    clip_months: pd.DataFrame | None = None,
    verdicts: Verdicts | None = None,
) -> dict[str, pd.DataFrame]:
    """Read what compute_metrics needs, already summed per unit and month in SQL.  ``clip_months``: the frame
    of ``clip_months`` when the caller holds it, else read here; ``verdicts``: what people decided
    (``etl.warehouse.verdicts``; none when None), applied by ``verdict_adjustments``."""
    p = {"as_of": ts_param(conn, as_of)}
    units = read_df(conn, "SELECT unit_code, parent_code, level FROM org_units")
    em, cm = month_sql(conn, "e.arrived_at"), month_sql(conn, "c.registered_at")
    tagged_incidents = "SELECT incident_no FROM clips WHERE incident_no IS NOT NULL AND started_at <= :as_of"
    # a clip tagged with a case of another county still links it: a join across counties (CROSS_COUNTY_JOINS)
    linked_cases = """SELECT a.case_no, a.county_code FROM case_actions a JOIN clips t ON t.case_no = a.case_no
                      WHERE t.case_no IS NOT NULL AND t.started_at <= :as_of
                        AND t.started_at < a.ended_at AND t.ended_at > a.started_at"""
    if conn.dialect.name == "sqlite":
        # SQLite: IN (subquery) builds one ephemeral index; the tagged clips come from partial indexes
        tag_join = link_join = ""
        tagged = f"e.incident_no IN ({tagged_incidents})"
        linked = f"c.case_no IN (SELECT case_no FROM ({linked_cases}) x)"
    else:
        # elsewhere: hash joins with the distinct key sets.  (A hashed IN-list is abandoned for a rescan per
        # row once it outgrows work_mem, and a first run has no planner statistics inside its transaction.)
        tag_join = f"LEFT JOIN (SELECT DISTINCT incident_no AS k FROM ({tagged_incidents}) x) t ON t.k = e.incident_no"
        link_join = (
            f"LEFT JOIN (SELECT DISTINCT case_no AS k, county_code FROM ({linked_cases}) x) l "
            "ON l.k = c.case_no AND l.county_code = c.county_code"
        )
        tagged, linked = "t.k IS NOT NULL", "l.k IS NOT NULL"
    events = read_df(
        conn,
        f"""
        SELECT e.unit_code, {em} AS month, COUNT(*) AS n, SUM(CASE WHEN {tagged} THEN 1 ELSE 0 END) AS tagged,
               SUM(CASE WHEN e.status IN ('full', 'excused') THEN 1 ELSE 0 END) AS whole,
               SUM(COALESCE(e.covered_fraction, 0)) AS frac
        FROM event_coverage e {tag_join} WHERE e.arrived_at <= :as_of GROUP BY e.unit_code, {em}""",
        p,
    )
    cases = read_df(
        conn,
        f"""
        SELECT c.unit_code, {cm} AS month, COUNT(*) AS n, SUM(CASE WHEN {linked} THEN 1 ELSE 0 END) AS linked
        FROM cases c {link_join}
        WHERE c.registered_at <= :as_of
          AND EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = c.case_no AND a.county_code = c.county_code)
        GROUP BY c.unit_code, {cm}""",
        p,
    )
    devices = read_df(conn, "SELECT device_sn, unit_code, kind, status, status_since FROM devices")
    if clip_months is None:
        clip_months = clip_days.per_month(conn, as_of)
    cd = clip_months.merge(devices[["device_sn", "unit_code", "status"]], on="device_sn")
    clips = cd.groupby(["unit_code", "month"], as_index=False)["clips"].sum()
    # from the findings alone: an UPLOAD-LATE finding carries its clip's device_sn and started_at (occurred_at,
    # etl.rules.media._clip_frame), so no look-up into the clip table per finding
    late = read_df(
        conn,
        f"""
        SELECT d.unit_code, {month_sql(conn, "f.occurred_at")} AS month, COUNT(DISTINCT f.clip_id) AS late
        FROM findings f JOIN devices d ON d.device_sn = f.device_sn
        WHERE f.rule_id = 'UPLOAD-LATE' AND f.occurred_at <= :as_of
        GROUP BY d.unit_code, {month_sql(conn, "f.occurred_at")}""",
        p,
    )
    clips = clips.merge(late, on=["unit_code", "month"], how="left")
    device_days = (
        cd.loc[cd["status"] == "in_use"]
        .groupby(["unit_code", "month"])["days"]
        .sum()
        .rename("device_days")
        .reset_index()
    )
    officers = read_df(conn, "SELECT unit_code, active FROM officers")
    for df in (events, cases, clips, device_days):
        for col in df.columns[2:]:
            df[col] = pd.to_numeric(df[col]).fillna(0).astype(float)
    inputs = {
        "units": units,
        "events": events,
        "cases": cases,
        "clips": clips,
        "device_days": device_days,
        "devices": devices,
        "officers": officers,
    }
    return inputs if verdicts is None else with_verdicts(conn, as_of, inputs, verdicts)


def with_verdicts(conn: Connection, as_of: datetime, inputs: dict, verdicts: Verdicts) -> dict[str, pd.DataFrame]:
    """``inputs`` (``load_inputs`` without verdicts) with ``verdicts`` applied to the event and clip tallies
    (``verdict_adjustments``); ``inputs`` itself is not changed."""
    out = dict(inputs)
    if verdicts.exempted or verdicts.excused_may_count:
        whole, late_change = verdict_adjustments(conn, as_of, verdicts)
        out["events"], out["clips"] = verdict_tallies(out["events"], out["clips"], whole, late_change)
    return out


def _add(tally: pd.DataFrame, change: pd.DataFrame, column: str) -> pd.DataFrame:
    """``tally`` (unit_code, month, ...) with ``change`` (unit_code, month, ``column``) added to ``column``."""
    if change.empty:
        return tally
    c = change.groupby(["unit_code", "month"])[column].sum()
    idx = pd.MultiIndex.from_arrays([tally["unit_code"], tally["month"]])
    add = c.reindex(idx).fillna(0.0).to_numpy(dtype=float)
    return tally.assign(**{column: tally[column].to_numpy(dtype=float) + add})


def compute(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    months: list[str] | None = None,
    clip_months: pd.DataFrame | None = None,
    verdicts: Verdicts | None = None,
    inputs: dict[str, pd.DataFrame] | None = None,
) -> int:
    """Rebuild table ``metrics`` inside the caller's transaction; returns the number of rows.

    ``months`` (``data_months``) and ``clip_months`` (``clip_months``) when the caller holds them, else read
    here; ``verdicts`` (``etl.warehouse.verdicts``) read here with ``cfg``'s ``excuse_review`` when None;
    ``inputs``: ``load_inputs`` without verdicts when the caller holds it (the verdicts are applied here)."""
    if clip_months is None:
        clip_months = clip_days.per_month(conn, as_of)
    if verdicts is None:
        verdicts = read_verdicts(conn, cfg)
    if inputs is None:
        inputs = load_inputs(conn, as_of, clip_months=clip_months, verdicts=verdicts)
    else:
        inputs = with_verdicts(conn, as_of, inputs, verdicts)
    if months is None:
        months = data_months(conn, as_of, clip_months=clip_months)
    units = inputs.pop("units")
    frame = (
        compute_metrics(units, months, as_of, **inputs, spot_items=verdicts.spot_item_frame())
        if months and len(units)
        else pd.DataFrame(columns=METRIC_COLUMNS)
    )
    conn.execute(sa.text("DELETE FROM metrics"))
    return bulk_insert(conn, "metrics", frame, METRIC_COLUMNS)
