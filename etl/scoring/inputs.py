"""What the scoring reads (rules.md "Assessment"): ``Inputs`` and the warehouse queries behind them.

Objects are counted per owning unit and month in SQL (one statement per object
kind, ``_kind_sql``); only findings and small tables come into memory whole.
Two frames the earlier steps of the same run already hold can be handed in
instead of being read again (``load_inputs(access=..., clip_months=..., months=...)``):
the access records per unit and month (``access_counts`` of the access rules' record frame), the
per-device-month clip pass and the data months.

Periods and objects (decisions where rules.md leaves room):
  * An object with a period time (event arrived_at, action started_at, case
    registered_at, clip started_at, access ``at``) belongs to the month of that
    time; objects after the evaluation date are left out.  An access record
    without ``at`` belongs to the evaluation date's month.
  * Findings are matched to objects by the object's key only (an EQUIP-LEDGER
    finding about a device of another unit makes that device unclean); case
    findings through their case_no, else their action's or document's case.
  * What people decided applies through one explicit input, ``verdicts``
    (``etl.warehouse.verdicts``): exempted findings are left out everywhere;
    the AV findings of an excused event whose excuse is not effective are
    read from ``excused_findings`` with the same queries and count.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.scoring import metrics as M
from etl.scoring.schemes import OBJECT_KINDS
from etl.times import ts_param
from etl.warehouse.db import read_df
from etl.warehouse.verdicts import EXCUSED_RULES, SPOT_RULE, Verdicts, read_in, read_verdicts

TIMED_KINDS = [k for k in OBJECT_KINDS if k != "devices"]
# Rules whose findings are written from the clip itself (etl.rules.media._clip_frame): clip_id, the clip's
# device_sn and its started_at as occurred_at.
CLIP_FINDING_RULES = frozenset(
    {"INTEGRITY-HASH", "INTEGRITY-MISSING", "INTEGRITY-DELETED", "DELETE-UNLOGGED", "UPLOAD-LATE"}
)
COUNT_COLUMNS = ["kind", "unit_code", "month", "n"]
MATCH_COLUMNS = ["kind", "object_key", "unit_code", "month", "finding_key", "rule_id"]
METRIC_COLUMNS = ["period", "unit_code", "metric_id", "numerator", "denominator", "value"]


@dataclass
class Inputs:
    """Everything the pure scoring needs, independent of the database.

    units            unit_code, parent_code, level
    months           data months 'YYYY-MM'
    object_counts    kind, unit_code, month, n             (timed kinds, per owning unit and month)
    object_findings  kind, object_key, unit_code, month, finding_key, rule_id
                     (findings matched to timed objects; unit/month are the object's)
    devices          device_sn, unit_code, status, status_since
    findings         finding_key, rule_id, unit_code, month, device_sn
                     (findings of device rules, deductions and vetoes)
    metrics          period, unit_code, metric_id, numerator, denominator, value (scope level)
    """

    units: pd.DataFrame
    months: list[str]
    object_counts: pd.DataFrame
    object_findings: pd.DataFrame
    devices: pd.DataFrame
    findings: pd.DataFrame
    metrics: pd.DataFrame


def _kind_sql(kind: str) -> tuple[str, str, str, str, str, str]:
    """(base table, joins, object key, owning unit, period time, extra condition) of a timed kind."""
    return {
        "onsite_events": ("event_coverage o", "", "o.incident_no", "o.unit_code", "o.arrived_at", ""),
        "av_actions": (
            "case_actions o",
            "JOIN cases c ON c.case_no = o.case_no AND c.county_code = o.county_code",
            "o.action_id",
            "c.unit_code",
            "o.started_at",
            "AND o.action_type IN :av_types",
        ),
        "cases_with_actions": (
            "cases o",
            "",
            "o.case_no",
            "o.unit_code",
            "o.registered_at",
            "AND EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = o.case_no AND a.county_code = o.county_code)",
        ),
        "cases": ("cases o", "", "o.case_no", "o.unit_code", "o.registered_at", ""),
        "clips": (
            "clips o",
            "JOIN devices d ON d.device_sn = o.device_sn",
            "o.clip_id",
            "d.unit_code",
            "o.started_at",
            "",
        ),
        "access_records": (
            "access_log o",
            "JOIN clips c ON c.clip_id = o.clip_id AND c.county_code = o.county_code "
            "JOIN devices d ON d.device_sn = c.device_sn",
            "o.log_id",
            "d.unit_code",
            "COALESCE(o.at, :as_of)",
            "",
        ),
    }[kind]


def _match_sql(kind: str, base: str, joins: str, key: str) -> str:
    """FROM clause matching findings of :rules to ``kind`` objects, driven by the findings (index lookups).

    Case findings are matched through their case_no, else their action's or document's case."""
    if OBJECT_KINDS[kind][1] == "case_no":
        return f"""findings f
                   LEFT JOIN case_actions fa ON fa.action_id = f.action_id AND fa.county_code = f.county_code
                   LEFT JOIN case_documents fd ON fd.doc_id = f.doc_id AND fd.county_code = f.county_code
                   JOIN {base} ON {key} = COALESCE(f.case_no, fa.case_no, fd.case_no)
                        AND o.county_code = f.county_code {joins}"""
    return f"findings f JOIN {base} ON {key} = f.{OBJECT_KINDS[kind][1]} AND o.county_code = f.county_code {joins}"


def _text(sql: str, *expanding: str) -> sa.TextClause:
    return sa.text(sql).bindparams(*[sa.bindparam(n, expanding=True) for n in expanding])


def _read_counted(
    conn: Connection, sql: str, params: dict, expanding: tuple[str, ...], rules: list[str], part: int, excused: bool
) -> list[pd.DataFrame]:
    """The findings ``sql`` reads (its source written ``findings f``, selecting ``f.finding_key``), none left
    out, tagged ``_part`` = ``part``, ``_excused`` = False; with ``excused`` and an AV rule among ``rules``,
    then the same query over ``excused_findings`` (``_excused`` = True, ``_inc`` = the event's incident_no).
    ``apply_verdicts`` keeps those that count."""
    f = read_df(conn, _text(sql, *expanding), params).assign(_part=part, _excused=False, _inc=None)
    out = [f]
    if excused and EXCUSED_RULES.intersection(rules):
        sx = sql.replace("findings f", "excused_findings f", 1).replace("SELECT ", "SELECT f.incident_no AS _inc, ", 1)
        x = read_df(conn, _text(sx, *expanding), params)
        out.append(x.assign(_part=part, _excused=True)[list(f.columns)])
    return out


def _counting(frame: pd.DataFrame, columns: list[str], verdicts: Verdicts) -> pd.DataFrame:
    """The rows of a base frame (``_read_counted``'s parts, in order) that count under ``verdicts``, in
    ``columns``: every part's findings without the exempted ones, then its excused findings whose excuse is
    not effective (and not exempted), part after part."""
    if frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    exempt = verdicts.is_exempted(frame["finding_key"])
    excused = frame["_excused"].to_numpy(dtype=bool)
    keep = ~exempt & ~excused
    if excused.any():
        effective = verdicts.excuse_effective(frame["_inc"].tolist())
        keep |= excused & ~exempt & ~effective
    return frame.loc[keep, columns].reset_index(drop=True)


def _counted(
    conn: Connection, sql: str, params: dict, expanding: tuple[str, ...], rules: list[str], verdicts: Verdicts
) -> pd.DataFrame:
    """The findings ``sql`` reads that count under ``verdicts`` (``_read_counted`` then ``_counting``)."""
    parts = _read_counted(conn, sql, params, expanding, rules, 0, verdicts.excused_may_count)
    columns = [c for c in parts[0].columns if c not in BASE_COLUMNS]
    return _counting(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0], columns, verdicts)


def access_counts(access: pd.DataFrame, as_of: datetime) -> pd.DataFrame:
    """unit_code, month, n: the access records per owning unit and month, from the frame the access rules read
    (``etl.rules.media._access``: records up to the evaluation date or without time, ``at`` in epoch seconds,
    with the unit owning the clip's device, null where the clip or device is unknown), so that ``load_inputs``
    does not join every record to the clip table again.  A record without time counts in the evaluation month."""
    known = access[access["unit_code"].notna()]
    at = known["at"].to_numpy(dtype=np.float64)
    month = pd.to_datetime(np.where(np.isnan(at), M.as_of_seconds(as_of), at), unit="s").strftime("%Y-%m")
    return (
        pd.DataFrame({"unit_code": known["unit_code"].to_numpy(dtype=object), "month": month.to_numpy(object)})
        .groupby(["unit_code", "month"], as_index=False)
        .size()
        .rename(columns={"size": "n"})
    )


def add_counts(parts: list[pd.DataFrame]) -> pd.DataFrame:
    """The sum of ``access_counts`` frames of disjoint sets of records (the county groups of an evaluation)."""
    return pd.concat(parts, ignore_index=True).groupby(["unit_code", "month"], as_index=False)["n"].sum()


def av_action_types(cfg: dict) -> list[str]:
    return sorted(code for code, spec in cfg["actions"].items() if spec.get("av"))


@dataclass
class BaseInputs:
    """What the scoring reads before the verdicts apply (``read_base``): ``Inputs`` but for the findings, which
    hold every finding matched (none left out) and the excused findings, so that ``apply_verdicts`` gives the
    ``Inputs`` of any verdicts without the warehouse (``etl.scoring.kept``: kept by each run for
    ``etl.supervision.rescore``).

    object_findings  MATCH_COLUMNS + _part, _excused, _inc (the excused rows' incident_no)
    findings         finding_key, rule_id, unit_code, month, device_sn + _part, _excused, _inc
    """

    units: pd.DataFrame
    months: list[str]
    object_counts: pd.DataFrame
    object_findings: pd.DataFrame
    devices: pd.DataFrame
    findings: pd.DataFrame


FINDING_COLUMNS = ["finding_key", "rule_id", "unit_code", "month", "device_sn"]
BASE_COLUMNS = ["_part", "_excused", "_inc"]


def read_base(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    schemes: list[dict],
    *,
    access: pd.DataFrame | None = None,
    clip_months: pd.DataFrame | None = None,
    months: list[str] | None = None,
    excused: bool = True,
) -> BaseInputs:
    """Read the warehouse (counts aggregated in SQL; only findings and small tables come in whole), before any
    verdict.  ``access``, ``clip_months``, ``months``: as ``load_inputs``; ``excused``: read the excused
    findings too (needed only where an excuse may not be effective, ``Verdicts.excused_may_count``)."""
    p = {"as_of": ts_param(conn, as_of), "av_types": av_action_types(cfg) or ["-"]}
    items = [it for s in schemes for it in s["items"]]
    if clip_months is None and (months is None or any(it["objects"] == "clips" for it in items)):
        clip_months = M.clip_months(conn, as_of)  # read once, for the clip counts and the data months
    counts, matched = [], []
    devices = read_df(
        conn, "SELECT device_sn, unit_code, status, status_since FROM devices", parse_dates=["status_since"]
    )
    for kind in TIMED_KINDS:
        used = [it for it in items if it["objects"] == kind]
        if not used:
            continue
        base, joins, key, unit, t, extra = _kind_sql(kind)
        month = M.month_sql(conn, t)
        exp = ("av_types",) if ":av_types" in extra else ()
        if kind == "clips":  # the shared per-device-month pass of the metrics step, not another scan
            cd = clip_months.merge(devices[["device_sn", "unit_code"]], on="device_sn")
            c = cd.groupby(["unit_code", "month"], as_index=False)["clips"].sum().rename(columns={"clips": "n"})
        elif kind == "access_records" and access is not None:
            c = access  # counted from the frame the access rules read
        else:
            c = read_df(
                conn,
                _text(
                    f"""SELECT {unit} AS unit_code, {month} AS month, COUNT(*) AS n FROM {base} {joins}
                                    WHERE {t} <= :as_of {extra} GROUP BY {unit}, {month}""",
                    *exp,
                ),
                {k: v for k, v in p.items() if k == "as_of" or k in exp},
            )
        counts.append(c.assign(kind=kind))
        rules = sorted({r for it in used for r in it["rules"]} - {SPOT_RULE})  # SPOT-CHECK: from the verdicts
        own = [r for r in rules if r in CLIP_FINDING_RULES] if kind == "clips" else []
        if own:  # these findings carry their clip's device and start: no look-up into the clip table
            fm = M.month_sql(conn, "f.occurred_at")
            parts = _read_counted(
                conn,
                f"""
                SELECT f.clip_id AS object_key, d.unit_code AS unit_code, {fm} AS month, f.finding_key, f.rule_id
                FROM findings f JOIN devices d ON d.device_sn = f.device_sn
                WHERE f.rule_id IN :rules AND f.clip_id IS NOT NULL AND f.occurred_at <= :as_of""",
                {"rules": own, "as_of": p["as_of"]},
                ("rules",),
                own,
                len(matched),
                excused,
            )
            matched += [f.assign(kind=kind) for f in parts]
            rules = [r for r in rules if r not in own]
        if rules:
            parts = _read_counted(
                conn,
                f"""
                SELECT {key} AS object_key, {unit} AS unit_code, {month} AS month, f.finding_key, f.rule_id
                FROM {_match_sql(kind, base, joins, key)}
                WHERE f.rule_id IN :rules AND {t} <= :as_of {extra}""",
                {"rules": rules, **{k: v for k, v in p.items() if k == "as_of" or k in exp}},
                ("rules", *exp),
                rules,
                len(matched),
                excused,
            )
            matched += [f.assign(kind=kind) for f in parts]
    other = sorted(
        {r for it in items if it["objects"] == "devices" for r in it["rules"]}
        | {r for it in items for r in it["deductions"]}
        | {r for s in schemes for r in s["veto"]["rules"]}
    )
    other = [r for r in other if r != SPOT_RULE]
    findings = _read_counted(
        conn,
        """SELECT f.finding_key, f.rule_id, f.unit_code, f.month, f.device_sn FROM findings f
           WHERE f.rule_id IN :rules""",
        {"rules": other or ["-"]},
        ("rules",),
        other,
        0,
        excused,
    )
    return BaseInputs(
        units=read_df(conn, "SELECT unit_code, parent_code, level FROM org_units"),
        months=M.data_months(conn, as_of, clip_months=clip_months) if months is None else list(months),
        object_counts=concat(counts, COUNT_COLUMNS),
        object_findings=concat(matched, MATCH_COLUMNS + BASE_COLUMNS),
        devices=devices,
        findings=concat(findings, FINDING_COLUMNS + BASE_COLUMNS),
    )


def apply_verdicts(base: BaseInputs, verdicts: Verdicts, metrics: pd.DataFrame) -> Inputs:
    """The ``Inputs`` of ``base`` under ``verdicts``, with the standard ``metrics`` rows (pure): exempted
    findings left out, the excused findings whose excuse is not effective added, in the order the queries
    read them."""
    matched, findings = _spot_rows(verdicts, base.months)
    object_findings, plain = base.object_findings, base.findings
    if len(matched):  # the SPOT-CHECK findings, after the rules' own
        object_findings = concat([object_findings, matched], MATCH_COLUMNS + BASE_COLUMNS)
        plain = concat([plain, findings], FINDING_COLUMNS + BASE_COLUMNS)
    return Inputs(
        units=base.units,
        months=list(base.months),
        object_counts=base.object_counts,
        object_findings=_counting(object_findings, MATCH_COLUMNS, verdicts),
        devices=base.devices,
        findings=_counting(plain, FINDING_COLUMNS, verdicts),
        metrics=metrics,
    )


# the object kinds a spot-checked object is one of: an event is an on-site event; a case is a case, and one of
# the cases with actions when it has one
_SPOT_KINDS = {"events": ["onsite_events"], "cases": ["cases"]}


def _spot_rows(verdicts: Verdicts, months: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The SPOT-CHECK findings of ``verdicts`` as base rows (pure): matched to their objects (MATCH_COLUMNS; the
    object's unit and month) and as plain findings (FINDING_COLUMNS, for a scheme that deducts them), tagged as
    a part after the rules' own; those of months outside the data are left out, as the rules' are."""
    spot = verdicts.spot_frame()
    spot = spot.loc[spot["month"].isin(list(months))]
    rows = []
    for kind, kinds in _SPOT_KINDS.items():
        of = spot.loc[spot["object_kind"] == kind]
        for k in kinds:
            rows.append(of.assign(kind=k))
        if kind == "cases":
            rows.append(of.loc[of["has_actions"].astype(int) == 1].assign(kind="cases_with_actions"))
    tag = {"rule_id": SPOT_RULE, "_part": -1, "_excused": False, "_inc": None}
    matched = concat([r.assign(**tag) for r in rows], MATCH_COLUMNS + BASE_COLUMNS)
    findings = concat([spot.assign(device_sn=None, **tag)], FINDING_COLUMNS + BASE_COLUMNS)
    return matched, findings


def read_metrics(conn: Connection, units: list[str] | None = None) -> pd.DataFrame:
    """The table ``metrics`` (the rows of ``units`` only when given)."""
    sql = "SELECT period, unit_code, metric_id, numerator, denominator, value FROM metrics"
    if units is None:
        return read_df(conn, sql)
    return read_in(conn, sql + " WHERE unit_code IN :units", "units", units)


def load_inputs(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    schemes: list[dict],
    *,
    access: pd.DataFrame | None = None,
    clip_months: pd.DataFrame | None = None,
    months: list[str] | None = None,
    verdicts: Verdicts | None = None,
) -> Inputs:
    """Read the warehouse (counts aggregated in SQL; only findings and small tables come in whole).

    ``access``: ``access_counts`` of the access rules' record frame of this evaluation, else the records are
    counted in SQL.  ``clip_months``: ``metrics.clip_months(conn, as_of)`` when the caller holds it, else
    it is read here if a scheme scores clips.  ``months``: ``metrics.data_months`` of this evaluation when the
    caller holds it (the metrics step computed it), else computed here.  ``verdicts``: what counts
    (``etl.warehouse.verdicts``), else read here."""
    if verdicts is None:
        verdicts = read_verdicts(conn, cfg)
    base = read_base(
        conn,
        as_of,
        cfg,
        schemes,
        access=access,
        clip_months=clip_months,
        months=months,
        excused=verdicts.excused_may_count,
    )
    return apply_verdicts(base, verdicts, read_metrics(conn))


def concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The rows of ``frames`` (empty ones left out) in ``columns``; an empty frame of them when none."""
    frames = [f[columns] for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in columns})


def load_period_inputs(
    conn: Connection, as_of: datetime, cfg: dict, scheme: dict, period: str, *, verdicts: Verdicts | None = None
) -> Inputs:
    """What ``lost_points.lost_points_by_level`` reads: findings of ``scheme``'s rules on objects of ``period`` (the matching
    query of ``load_inputs``, restricted to the period's months), device, deduction and veto findings of the
    period, devices and units, the findings that count under ``verdicts`` (else read here).  No object counts:
    the stored item scores hold them."""
    if verdicts is None:
        verdicts = read_verdicts(conn, cfg)
    start, end = M.period_bounds(period)
    limit = pd.Timestamp(as_of).strftime("%Y-%m")
    months = [m for m in pd.period_range(start, end - pd.Timedelta(days=1), freq="M").strftime("%Y-%m") if m <= limit]
    p = {"as_of": ts_param(conn, as_of), "av_types": av_action_types(cfg) or ["-"], "months": months or ["-"]}
    matched = []
    for kind in TIMED_KINDS:
        rules = sorted({r for it in scheme["items"] if it["objects"] == kind for r in it["rules"]})
        if not rules:
            continue
        base, joins, key, unit, t, extra = _kind_sql(kind)
        month = M.month_sql(conn, t)
        exp = ("av_types",) if ":av_types" in extra else ()
        f = _counted(
            conn,
            f"""
            SELECT {key} AS object_key, {unit} AS unit_code, {month} AS month, f.finding_key, f.rule_id
            FROM {_match_sql(kind, base, joins, key)}
            WHERE f.rule_id IN :rules AND {t} <= :as_of AND {month} IN :months {extra}""",
            {"rules": rules, "as_of": p["as_of"], "months": p["months"], **{k: p[k] for k in exp}},
            ("rules", "months", *exp),
            rules,
            verdicts,
        )
        matched.append(f.assign(kind=kind))
    other = sorted(
        {r for it in scheme["items"] if it["objects"] == "devices" for r in it["rules"]}
        | {r for it in scheme["items"] for r in it["deductions"]}
        | set(scheme["veto"]["rules"])
    )
    findings = _counted(
        conn,
        """SELECT f.finding_key, f.rule_id, f.unit_code, f.month, f.device_sn FROM findings f
           WHERE f.rule_id IN :rules AND f.month IN :months""",
        {"rules": other or ["-"], "months": p["months"]},
        ("rules", "months"),
        other,
        verdicts,
    )
    return Inputs(
        units=read_df(conn, "SELECT unit_code, parent_code, level FROM org_units"),
        months=months,
        object_counts=pd.DataFrame({c: [] for c in COUNT_COLUMNS}),
        object_findings=concat(matched, MATCH_COLUMNS),
        devices=read_df(
            conn, "SELECT device_sn, unit_code, status, status_since FROM devices", parse_dates=["status_since"]
        ),
        findings=findings,
        metrics=pd.DataFrame({c: [] for c in METRIC_COLUMNS}),
    )
