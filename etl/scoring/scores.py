"""Assessment (rules.md "Assessment"): scoring schemes -> unit_scores, unit_item_scores, evaluation.

A scheme is a versioned YAML file in ``config/schemes/`` (format documented at
the top of ``measures-2026.yaml``).  Every scheme found there is computed for
every unit and every period that has data; the one named by
``cfg["active_scheme"]`` gets ``active = 1``, which is what the public views
``v_unit_scores`` / ``v_unit_item_scores`` show.

Item kinds
  * clean-rate item: ``objects`` (an object kind, see OBJECT_KINDS) and
    ``rules``; score = points × clean / objects (full points when there are
    no objects) − Σ per-finding ``deductions``, floored at 0.
  * metric item: ``metric`` (a standard metric id of ``metrics.METRICS``);
    score = points × min(value, 1) (full points when its denominator is 0)
    − deductions, floored at 0.  objects/clean store the metric's
    denominator/numerator rounded to integers.
Total = Σ unrounded item scores, capped by a veto, rounded to 2 decimals; the
grade compares that rounded total with the bands (a veto forces its grade).
Rank within units of the same level and period: rounded total descending,
then the tie-breaker items' rounded scores descending, then unit_code.

Periods and objects (decisions where rules.md leaves room):
  * An object with a period time (event arrived_at, action started_at, case
    registered_at, clip started_at, access ``at``) belongs to the month of that
    time; objects after the evaluation date are left out.  An access record
    without ``at`` belongs to the evaluation date's month.
  * Such an object is unclean when any finding of the item's rules is on it
    (matched by key), whatever that finding's month: a DOC-MISSING finding
    of an action in April makes its case, registered in March, unclean in
    March (and in Q1 and the year).
  * Devices (kind ``devices``) are objects in every period, except those
    scrapped or lost (status + status_since) before the period starts; a
    device is unclean in a period when a finding of the item's rules on it
    has its ``month`` in that period (EQUIP-IDLE: its month; EQUIP-REPAIR and
    EQUIP-LEDGER: the evaluation date's month, as the rules step assigns).
  * Deductions and vetoes count the findings of the unit's scope whose
    ``month`` is in the period.
  * Scope (``scope: whole``): a unit's objects, findings, deductions and
    vetoes are those of itself and every unit below it (``scope: own``: the
    unit alone; metric items always use the metrics table, which is over the
    whole scope).
  * Findings are matched to objects by the object's key only (an EQUIP-LEDGER
    finding about a device of another unit makes that device unclean).

``lost_points`` / ``lost_points_detail`` explain every lost point (see there,
including how the floor at 0 and the veto cap are shown); ``lost_points_by_level``
/ ``lost_points_by_level_detail`` give the same points once per finding with
one column per level, explaining the stored scores, for the workbook's 扣分明细.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Connection

from etl.errors import ConfigError
from etl.rules.keys import RULES
from etl.scoring import metrics as M
from etl.warehouse.db import bulk_insert, read_df
from etl.warehouse.scope import ancestors_map, scope_pairs

# object kind -> (Chinese name, key column of findings that identifies the object)
OBJECT_KINDS: dict[str, tuple[str, str]] = {
    "onsite_events": ("现场执法事件", "incident_no"),
    "av_actions": ("需音像记录的执法措施", "action_id"),
    "cases_with_actions": ("有执法措施的案件", "case_no"),
    "cases": ("案件", "case_no"),
    "devices": ("设备", "device_sn"),
    "clips": ("音视频文件", "clip_id"),
    "access_records": ("调阅记录", "log_id"),
}
TIMED_KINDS = [k for k in OBJECT_KINDS if k != "devices"]
# Rules whose findings are written from the clip itself (etl.rules.media._clip_frame): clip_id, the clip's
# device_sn and its started_at as occurred_at.
CLIP_FINDING_RULES = frozenset({"INTEGRITY-HASH", "INTEGRITY-MISSING", "INTEGRITY-DELETED", "UPLOAD-LATE"})

SCORE_COLUMNS = ["scheme_id", "scheme_version", "active", "period", "unit_code", "unit_level", "total", "grade",
                 "rank", "veto"]
ITEM_COLUMNS = ["scheme_id", "scheme_version", "active", "period", "unit_code", "item_id", "item_name", "points",
                "objects", "clean", "deductions", "score"]
DETAIL_COLUMNS = ["unit_code", "item_id", "object_kind", "object_key", "object_unit", "rule_id", "finding_id",
                  "points_lost"]


# --- schemes -------------------------------------------------------------------------------------

def _num(value, what: str) -> float:  # noqa: ANN001
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"{what}应为非负数：{value!r}")
    return float(value)


def _rules(values, what: str) -> list[str]:  # noqa: ANN001
    if not isinstance(values, list):
        raise ConfigError(f"{what}应为规则编号列表")
    unknown = [str(v) for v in values if str(v) not in RULES]
    if unknown:
        raise ConfigError(f"{what}含未知规则编号：{'、'.join(unknown)}")
    return [str(v) for v in values]


def validate_scheme(raw: dict, default_id: str) -> dict:
    """Check a scheme mapping and return it normalised; ConfigError (Chinese) on any problem."""
    if not isinstance(raw, dict):
        raise ConfigError(f"考评方案 {default_id} 应为键值结构")
    sid = str(raw.get("id") or default_id)
    items_raw = raw.get("items")
    if not isinstance(items_raw, list) or not items_raw:
        raise ConfigError(f"考评方案 {sid} 缺少考评项目（items）")
    items, seen = [], set()
    for it in items_raw:
        if not isinstance(it, dict) or not it.get("id"):
            raise ConfigError(f"考评方案 {sid} 的考评项目缺少编号（id）")
        iid = str(it["id"])
        if iid in seen:
            raise ConfigError(f"考评方案 {sid} 的考评项目编号重复：{iid}")
        seen.add(iid)
        item = {"id": iid, "name": str(it.get("name") or iid),
                "points": _num(it.get("points"), f"考评项目 {iid} 的分值"),
                "objects": None, "rules": [], "metric": None, "deductions": {}}
        if ("objects" in it) == ("metric" in it):
            raise ConfigError(f"考评项目 {iid} 应指定且只指定 objects（考评对象）或 metric（标准指标）之一")
        if "objects" in it:
            if it["objects"] not in OBJECT_KINDS:
                raise ConfigError(f"考评项目 {iid} 的考评对象未知：{it['objects']}")
            item["objects"] = str(it["objects"])
            item["rules"] = _rules(it.get("rules") or [], f"考评项目 {iid} 的规则")
        else:
            if it["metric"] not in M.METRICS:
                raise ConfigError(f"考评项目 {iid} 的标准指标未知：{it['metric']}")
            item["metric"] = str(it["metric"])
        ded = it.get("deductions") or {}
        if not isinstance(ded, dict):
            raise ConfigError(f"考评项目 {iid} 的逐条扣分（deductions）应为“规则编号: 分值”")
        _rules(list(ded), f"考评项目 {iid} 的逐条扣分")
        item["deductions"] = {str(r): _num(v, f"考评项目 {iid} 的 {r} 扣分") for r, v in ded.items()}
        items.append(item)
    grades = raw.get("grades") or [{"name": "优秀", "min": 90}, {"name": "达标", "min": 60},
                                   {"name": "不达标", "min": 0}]
    try:
        bands = sorted(((float(g["min"]), str(g["name"])) for g in grades), reverse=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"考评方案 {sid} 的等级（grades）应为 name 与 min 的列表") from exc
    veto = raw.get("veto") or {}
    veto = {"rules": _rules(veto.get("rules") or [], f"考评方案 {sid} 的一票否决规则"),
            "cap": _num(veto.get("cap", 59), f"考评方案 {sid} 的一票否决封顶分"),
            "grade": str(veto.get("grade") or bands[-1][1])}
    ties = list((raw.get("ranking") or {}).get("tie_breakers") or [])
    bad = [t for t in ties if t not in seen]
    if bad:
        raise ConfigError(f"考评方案 {sid} 的排名比较项目不存在：{'、'.join(map(str, bad))}")
    scope = str(raw.get("scope") or "whole")
    if scope not in ("whole", "own"):
        raise ConfigError(f"考评方案 {sid} 的 scope 应为 whole 或 own：{scope}")
    return {"id": sid, "version": str(raw.get("version") or "1"), "name": str(raw.get("name") or sid),
            "items": items, "grades": bands, "veto": veto, "tie_breakers": [str(t) for t in ties], "scope": scope}


def load_scheme(path: Path | str) -> dict:
    """Read and validate one scheme file."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"找不到考评方案文件：{path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"考评方案文件格式错误：{path}（{str(exc).splitlines()[0]}）") from exc
    return validate_scheme(raw, path.stem)


def load_schemes(cfg: dict) -> list[dict]:
    """Every scheme of ``<cfg dir>/schemes``, each with ``active`` set; the active one must exist."""
    sdir = Path(cfg["dir"]) / "schemes"
    schemes = [load_scheme(p) for p in sorted(sdir.glob("*.yaml"))]
    ids = [s["id"] for s in schemes]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"考评方案编号重复：{sdir}")
    active = cfg.get("active_scheme") or "measures-2026"
    if active not in ids:
        raise ConfigError(f"当前考评方案 {active} 不存在于 {sdir}")
    for s in schemes:
        s["active"] = int(s["id"] == active)
    return schemes


# --- inputs ----------------------------------------------------------------------------------------

@dataclass
class Inputs:
    """Everything the pure scoring needs, independent of the database.

    units            unit_code, parent_code, level
    months           data months 'YYYY-MM'
    object_counts    kind, unit_code, month, n             (timed kinds, per owning unit and month)
    object_findings  kind, object_key, unit_code, month, finding_id, rule_id
                     (findings matched to timed objects; unit/month are the object's)
    devices          device_sn, unit_code, status, status_since
    findings         finding_id, rule_id, unit_code, month, device_sn
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
        "av_actions": ("case_actions o", "JOIN cases c ON c.case_no = o.case_no", "o.action_id", "c.unit_code",
                       "o.started_at", "AND o.action_type IN :av_types"),
        "cases_with_actions": ("cases o", "", "o.case_no", "o.unit_code", "o.registered_at",
                               "AND EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = o.case_no)"),
        "cases": ("cases o", "", "o.case_no", "o.unit_code", "o.registered_at", ""),
        "clips": ("clips o", "JOIN devices d ON d.device_sn = o.device_sn", "o.clip_id", "d.unit_code",
                  "o.started_at", ""),
        "access_records": ("access_log o", "JOIN clips c ON c.clip_id = o.clip_id "
                           "JOIN devices d ON d.device_sn = c.device_sn", "o.log_id", "d.unit_code",
                           "COALESCE(o.at, :as_of)", ""),
    }[kind]


def _match_sql(kind: str, base: str, joins: str, key: str) -> str:
    """FROM clause matching findings of :rules to ``kind`` objects, driven by the findings (index lookups).

    Case findings are matched through their case_no, else their action's or document's case."""
    if OBJECT_KINDS[kind][1] == "case_no":
        return f"""findings f LEFT JOIN case_actions fa ON fa.action_id = f.action_id
                   LEFT JOIN case_documents fd ON fd.doc_id = f.doc_id
                   JOIN {base} ON {key} = COALESCE(f.case_no, fa.case_no, fd.case_no) {joins}"""
    return f"findings f JOIN {base} ON {key} = f.{OBJECT_KINDS[kind][1]} {joins}"


def _text(sql: str, *expanding: str) -> sa.TextClause:
    return sa.text(sql).bindparams(*[sa.bindparam(n, expanding=True) for n in expanding])


_HANDED_ACCESS = "etl.scoring.scores.access_counts"


def remember_access(conn: Connection, as_of: datetime, log: pd.DataFrame) -> None:
    """Hand ``load_inputs`` the access records per owning unit and month from the frame the access rules read
    (``etl.rules.media._access``: records up to the evaluation date or without time, ``at`` in epoch seconds,
    with the unit owning the clip's device, null where the clip or device is unknown), so that it does not
    join every record to the clip table again.  A record without time counts in the evaluation month."""
    known = log[log["unit_code"].notna()]
    at = known["at"].to_numpy(dtype=np.float64)
    month = pd.to_datetime(np.where(np.isnan(at), M.as_of_seconds(as_of), at), unit="s").strftime("%Y-%m")
    counts = (pd.DataFrame({"unit_code": known["unit_code"].to_numpy(dtype=object), "month": month.to_numpy(object)})
              .groupby(["unit_code", "month"], as_index=False).size().rename(columns={"size": "n"}))
    M.hand_over(conn, _HANDED_ACCESS, as_of, counts)


def av_action_types(cfg: dict) -> list[str]:
    return sorted(code for code, spec in cfg["actions"].items() if spec.get("av"))


def load_inputs(conn: Connection, as_of: datetime, cfg: dict, schemes: list[dict]) -> Inputs:
    """Read the warehouse (counts aggregated in SQL; only findings and small tables come in whole)."""
    p = {"as_of": M.ts_param(conn, as_of), "av_types": av_action_types(cfg) or ["-"]}
    items = [it for s in schemes for it in s["items"]]
    counts, matched = [], []
    devices = read_df(conn, "SELECT device_sn, unit_code, status, status_since FROM devices",
                      parse_dates=["status_since"])
    for kind in TIMED_KINDS:
        used = [it for it in items if it["objects"] == kind]
        if not used:
            continue
        base, joins, key, unit, t, extra = _kind_sql(kind)
        month = M.month_sql(conn, t)
        exp = ("av_types",) if ":av_types" in extra else ()
        handed = M.handed(conn, _HANDED_ACCESS, as_of)
        if kind == "clips":  # the shared per-device-day pass of the metrics step, not another scan
            cd = M.clip_months(conn, as_of).merge(devices[["device_sn", "unit_code"]], on="device_sn")
            c = cd.groupby(["unit_code", "month"], as_index=False)["clips"].sum().rename(columns={"clips": "n"})
        elif kind == "access_records" and handed is not None:
            c = handed.copy()  # counted by the rules step of this transaction (remember_access)
        else:
            c = read_df(conn, _text(f"""SELECT {unit} AS unit_code, {month} AS month, COUNT(*) AS n FROM {base} {joins}
                                    WHERE {t} <= :as_of {extra} GROUP BY {unit}, {month}""", *exp),
                        {k: v for k, v in p.items() if k == "as_of" or k in exp})
        counts.append(c.assign(kind=kind))
        rules = sorted({r for it in used for r in it["rules"]})
        own = [r for r in rules if r in CLIP_FINDING_RULES] if kind == "clips" else []
        if own:  # these findings carry their clip's device and start: no look-up into the clip table
            fm = M.month_sql(conn, "f.occurred_at")
            f = read_df(conn, _text(f"""
                SELECT f.clip_id AS object_key, d.unit_code AS unit_code, {fm} AS month, f.finding_id, f.rule_id
                FROM findings f JOIN devices d ON d.device_sn = f.device_sn
                WHERE f.rule_id IN :rules AND f.clip_id IS NOT NULL AND f.occurred_at <= :as_of""", "rules"),
                        {"rules": own, "as_of": p["as_of"]})
            matched.append(f.assign(kind=kind))
            rules = [r for r in rules if r not in own]
        if rules:
            f = read_df(conn, _text(f"""
                SELECT {key} AS object_key, {unit} AS unit_code, {month} AS month, f.finding_id, f.rule_id
                FROM {_match_sql(kind, base, joins, key)}
                WHERE f.rule_id IN :rules AND {t} <= :as_of {extra}""", "rules", *exp),
                        {"rules": rules, **{k: v for k, v in p.items() if k == "as_of" or k in exp}})
            matched.append(f.assign(kind=kind))
    other = sorted({r for it in items if it["objects"] == "devices" for r in it["rules"]}
                   | {r for it in items for r in it["deductions"]} | {r for s in schemes for r in s["veto"]["rules"]})
    findings = read_df(conn, _text("""SELECT finding_id, rule_id, unit_code, month, device_sn FROM findings
                                      WHERE rule_id IN :rules""", "rules"), {"rules": other or ["-"]})
    return Inputs(
        units=read_df(conn, "SELECT unit_code, parent_code, level FROM org_units"),
        months=M.data_months(conn, as_of),
        object_counts=_concat(counts, ["kind", "unit_code", "month", "n"]),
        object_findings=_concat(matched, ["kind", "object_key", "unit_code", "month", "finding_id", "rule_id"]),
        devices=devices,
        findings=findings,
        metrics=read_df(conn, "SELECT period, unit_code, metric_id, numerator, denominator, value FROM metrics"),
    )


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f[columns] for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({c: [] for c in columns})


# --- pure computation ---------------------------------------------------------------------------

def _pairs(units: pd.DataFrame, scope: str) -> pd.DataFrame:
    if scope == "own":
        codes = units["unit_code"].astype(str)
        return pd.DataFrame({"scope_unit": codes, "unit_code": codes})
    return scope_pairs(units)


def device_objects(devices: pd.DataFrame, periods: list[str]) -> pd.DataFrame:
    """(device_sn, unit_code, period): devices owned in each period (not scrapped/lost before it starts)."""
    starts = pd.DataFrame({"period": periods, "start": [M.period_bounds(p)[0] for p in periods]})
    d = devices[["device_sn", "unit_code", "status", "status_since"]].merge(starts, how="cross")
    since = pd.to_datetime(d["status_since"], errors="coerce")
    gone = d["status"].isin(["scrapped", "lost"]) & (since < d["start"])
    return d.loc[~gone, ["device_sn", "unit_code", "period"]].reset_index(drop=True)


def unclean_objects(scheme: dict, inp: Inputs, mp: pd.DataFrame, periods: list[str]) -> pd.DataFrame:
    """One row per (item, unclean object, finding, period): item_id, kind, object_key, unit_code, period,
    finding_id, rule_id.  unit_code is the object's owning unit."""
    cols = ["item_id", "kind", "object_key", "unit_code", "period", "finding_id", "rule_id"]
    out = []
    devs = None
    for it in scheme["items"]:
        if not it["objects"] or not it["rules"]:
            continue
        if it["objects"] == "devices":
            if devs is None:
                devs = device_objects(inp.devices, periods)
            f = inp.findings.loc[inp.findings["rule_id"].isin(it["rules"]) & inp.findings["device_sn"].notna(),
                                 ["device_sn", "month", "finding_id", "rule_id"]].merge(mp, on="month")
            f = f.merge(devs, on=["device_sn", "period"]).rename(columns={"device_sn": "object_key"})
        else:
            f = inp.object_findings.loc[(inp.object_findings["kind"] == it["objects"])
                                        & inp.object_findings["rule_id"].isin(it["rules"])].merge(mp, on="month")
        out.append(f.assign(item_id=it["id"], kind=it["objects"])[cols])
    return _concat(out, cols)


def item_tallies(scheme: dict, inp: Inputs) -> pd.DataFrame:
    """Per OWN unit, period and clean-rate item: objects, unclean objects, deduction points.

    Columns: unit_code, period, item_id, objects, unclean, deductions (all additive over units).
    """
    periods = M.periods_of(inp.months)
    mp = M.month_periods(inp.months)
    cols = ["unit_code", "period", "item_id", "objects", "unclean", "deductions"]
    out = []
    devs = device_objects(inp.devices, periods) if any(it["objects"] == "devices" for it in scheme["items"]) else None
    for it in scheme["items"]:
        if it["objects"] == "devices":
            objs = devs.groupby(["unit_code", "period"]).size().rename("objects").reset_index()
        elif it["objects"]:
            c = inp.object_counts.loc[inp.object_counts["kind"] == it["objects"]].merge(mp, on="month")
            objs = c.groupby(["unit_code", "period"])["n"].sum().rename("objects").reset_index()
        else:
            objs = pd.DataFrame({"unit_code": [], "period": [], "objects": []})
        out.append(objs.assign(item_id=it["id"], unclean=0.0, deductions=0.0))
        if it["deductions"]:
            f = inp.findings.loc[inp.findings["rule_id"].isin(list(it["deductions"]))]
            f = f.assign(deductions=f["rule_id"].map(it["deductions"]).astype(float)).merge(mp, on="month")
            d = f.groupby(["unit_code", "period"])["deductions"].sum().reset_index()
            out.append(d.assign(item_id=it["id"], objects=0.0, unclean=0.0))
    unc = unclean_objects(scheme, inp, mp, periods)
    if len(unc):
        u = unc.drop_duplicates(["item_id", "object_key", "period"])
        u = u.groupby(["unit_code", "period", "item_id"]).size().rename("unclean").reset_index()
        out.append(u.assign(objects=0.0, deductions=0.0))
    t = _concat(out, cols)
    t[["objects", "unclean", "deductions"]] = t[["objects", "unclean", "deductions"]].astype(float)
    return t.groupby(["unit_code", "period", "item_id"], as_index=False)[["objects", "unclean", "deductions"]].sum()


def veto_periods(scheme: dict, inp: Inputs) -> pd.DataFrame:
    """(unit_code, period, finding_id, rule_id) of the veto findings of each own unit."""
    mp = M.month_periods(inp.months)
    f = inp.findings.loc[inp.findings["rule_id"].isin(scheme["veto"]["rules"])]
    return f[["unit_code", "month", "finding_id", "rule_id"]].merge(mp, on="month").drop(columns="month")


def _round2(s: pd.Series) -> pd.Series:
    return s.map(lambda v: round(float(v), 2) if pd.notna(v) else v).astype(float)


def score_items(scheme: dict, inp: Inputs) -> pd.DataFrame:
    """Item scores of every unit (over its scope) and period, unrounded.

    Columns: period, unit_code, item_id, item_name, points, objects, clean, deductions, raw, score.
    ``raw`` is the score before the floor at 0.
    """
    periods = M.periods_of(inp.months)
    units = inp.units.assign(unit_code=inp.units["unit_code"].astype(str))
    pairs = _pairs(units, scheme["scope"])
    items = pd.DataFrame([{"item_id": it["id"], "item_name": it["name"], "points": it["points"],
                           "metric": it["metric"]} for it in scheme["items"]])
    grid = (pd.MultiIndex.from_product([periods, units["unit_code"].tolist(), items["item_id"].tolist()],
                                       names=["period", "unit_code", "item_id"]).to_frame(index=False)
            .merge(items, on="item_id"))
    t = item_tallies(scheme, inp).merge(pairs, on="unit_code")
    t = t.groupby(["scope_unit", "period", "item_id"], as_index=False)[["objects", "unclean", "deductions"]].sum()
    g = grid.merge(t.rename(columns={"scope_unit": "unit_code"}), on=["period", "unit_code", "item_id"], how="left")
    g[["objects", "unclean", "deductions"]] = g[["objects", "unclean", "deductions"]].fillna(0.0)
    g["clean"] = g["objects"] - g["unclean"]
    rate = np.where(g["objects"] > 0, g["clean"] / g["objects"].where(g["objects"] > 0, 1.0), 1.0)

    is_metric = g["metric"].notna()
    if is_metric.any():
        mt = inp.metrics.rename(columns={"metric_id": "metric"})[
            ["period", "unit_code", "metric", "numerator", "denominator", "value"]]
        g = g.merge(mt, on=["period", "unit_code", "metric"], how="left")
        den = pd.to_numeric(g["denominator"], errors="coerce").fillna(0.0)
        val = pd.to_numeric(g["value"], errors="coerce")
        mrate = np.where(den > 0, val.fillna(0.0).clip(upper=1.0), 1.0)
        rate = np.where(is_metric, mrate, rate)
        num = pd.to_numeric(g["numerator"], errors="coerce").fillna(0.0)
        g["objects"] = np.where(is_metric, den.round(), g["objects"])
        g["clean"] = np.where(is_metric, num.round(), g["clean"])
    g["raw"] = g["points"] * rate - g["deductions"]
    g["score"] = g["raw"].clip(lower=0.0)
    out = g[["period", "unit_code", "item_id", "item_name", "points", "objects", "clean", "deductions", "raw",
             "score"]]
    return out.sort_values(["period", "unit_code", "item_id"], ignore_index=True)


def score_units(scheme: dict, inp: Inputs, item_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Totals, veto, grade and rank of every unit (over its scope) and period.

    Columns: period, unit_code, unit_level, uncapped, total, grade, rank, veto.
    """
    its = score_items(scheme, inp) if item_scores is None else item_scores
    units = inp.units.assign(unit_code=inp.units["unit_code"].astype(str))
    tot = its.groupby(["period", "unit_code"], as_index=False)["score"].sum().rename(columns={"score": "uncapped"})
    v = veto_periods(scheme, inp).merge(_pairs(units, scheme["scope"]), on="unit_code")
    vetoed = set(zip(v["period"], v["scope_unit"], strict=True))
    tot["veto"] = [int((p, u) in vetoed) for p, u in zip(tot["period"], tot["unit_code"], strict=True)]
    capped = np.where(tot["veto"] == 1, np.minimum(tot["uncapped"], scheme["veto"]["cap"]), tot["uncapped"])
    tot["total"] = _round2(pd.Series(capped, index=tot.index))
    tot["grade"] = [_grade(total, veto, scheme) for total, veto in zip(tot["total"], tot["veto"], strict=True)]
    tot = tot.merge(units[["unit_code", "level"]].rename(columns={"level": "unit_level"}), on="unit_code", how="left")
    keys, asc = ["total"], [False]
    for i, item_id in enumerate(scheme["tie_breakers"]):
        tb = its.loc[its["item_id"] == item_id, ["period", "unit_code", "score"]]
        tot = tot.merge(tb.assign(score=_round2(tb["score"])).rename(columns={"score": f"_tb{i}"}),
                        on=["period", "unit_code"], how="left")
        keys.append(f"_tb{i}")
        asc.append(False)
    tot["_level"] = tot["unit_level"].fillna("")
    tot = tot.sort_values(["period", "_level", *keys, "unit_code"], ascending=[True, True, *asc, True],
                          ignore_index=True)
    tot["rank"] = tot.groupby(["period", "_level"]).cumcount() + 1
    cols = ["period", "unit_code", "unit_level", "uncapped", "total", "grade", "rank", "veto"]
    return tot[cols].sort_values(["period", "unit_code"], ignore_index=True)


def _grade(total: float, veto: int, scheme: dict) -> str:
    if veto:
        return scheme["veto"]["grade"]
    for minimum, name in scheme["grades"]:
        if total >= minimum:
            return name
    return scheme["grades"][-1][1]


def score_scheme(scheme: dict, inp: Inputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(unit_scores rows, unit_item_scores rows) of one scheme, in the tables' column order."""
    its = score_items(scheme, inp)
    tot = score_units(scheme, inp, its)
    tag = {"scheme_id": scheme["id"], "scheme_version": scheme["version"], "active": int(scheme.get("active", 0))}
    items = its.assign(**tag)
    items["objects"] = items["objects"].round().astype(int)
    items["clean"] = items["clean"].round().astype(int)
    items["score"] = _round2(items["score"])
    items["deductions"] = _round2(items["deductions"])
    return tot.assign(**tag)[SCORE_COLUMNS], items[ITEM_COLUMNS]


# --- lost points, for the assessment workbook ----------------------------------------------------

def lost_points(scheme: dict, inp: Inputs, period: str, scope_units: list[str]) -> pd.DataFrame:
    """Where each unit's points went in ``period``: one row per finding behind a lost point.

    For every unit of ``scope_units`` (scored over its own scope) and every item:
      * each unclean object costs points ÷ objects, shared equally by its findings of the item's rules;
      * each deduction finding costs its configured points;
      * metric items: one row (object_kind ``metric``, object_key = metric id) with points − score;
      * floor at 0: when deductions would take the item below 0, one extra row (object_kind ``floor``,
        no finding) with the negative points given back, so that the rows of a unit and item add up to
        points − score exactly (the floor never applies to the per-object shares alone);
      * veto: one row per veto finding (item_id ``veto``), sharing uncapped total − capped total
        (0 when the cap did not bite; the row still explains the forced grade).
    Columns: DETAIL_COLUMNS; object_unit is the unit owning the object or finding.
    """
    if period not in M.periods_of(inp.months):
        return pd.DataFrame({c: [] for c in DETAIL_COLUMNS})
    # only the months of the period matter: score those alone
    mp_all = M.month_periods(inp.months)
    inp = replace(inp, months=sorted(set(mp_all.loc[mp_all["period"] == period, "month"])))
    units = inp.units.assign(unit_code=inp.units["unit_code"].astype(str))
    pairs = _pairs(units, scheme["scope"])
    pairs = pairs.loc[pairs["scope_unit"].isin([str(u) for u in scope_units])]
    all_items = score_items(scheme, inp)
    its = all_items
    its = its.loc[(its["period"] == period) & its["unit_code"].isin(pairs["scope_unit"])]
    mp = M.month_periods(inp.months)
    mp = mp.loc[mp["period"] == period]
    pts = {it["id"]: it for it in scheme["items"]}
    rows = []

    unc = unclean_objects(scheme, inp, mp, [period])
    if len(unc):
        u = unc.drop_duplicates(["item_id", "object_key", "finding_id"]).merge(pairs, on="unit_code")
        u["n"] = u.groupby(["scope_unit", "item_id", "object_key"])["finding_id"].transform("size")
        u = u.merge(its[["unit_code", "item_id", "points", "objects"]].rename(columns={"unit_code": "scope_unit"}),
                    on=["scope_unit", "item_id"])
        u["points_lost"] = u["points"] / u["objects"] / u["n"]
        rows.append(u.rename(columns={"unit_code": "object_unit", "scope_unit": "unit_code", "kind": "object_kind"}))

    for it in scheme["items"]:
        if not it["deductions"]:
            continue
        f = inp.findings.loc[inp.findings["rule_id"].isin(list(it["deductions"]))].merge(mp, on="month")
        f = f.merge(pairs, on="unit_code")
        rows.append(pd.DataFrame({
            "unit_code": f["scope_unit"], "item_id": it["id"], "object_kind": "deduction",
            "object_key": f["device_sn"], "object_unit": f["unit_code"], "rule_id": f["rule_id"],
            "finding_id": f["finding_id"], "points_lost": f["rule_id"].map(it["deductions"]).astype(float)}))

    metric_items = its.loc[its["item_id"].map(lambda i: pts[i]["metric"] is not None)]
    rows.append(pd.DataFrame({
        "unit_code": metric_items["unit_code"], "item_id": metric_items["item_id"], "object_kind": "metric",
        "object_key": metric_items["item_id"].map(lambda i: pts[i]["metric"]),
        "object_unit": metric_items["unit_code"], "rule_id": None, "finding_id": None,
        "points_lost": metric_items["points"] - metric_items["raw"] - metric_items["deductions"]}))

    floor = its.loc[its["raw"] < 0]
    rows.append(pd.DataFrame({
        "unit_code": floor["unit_code"], "item_id": floor["item_id"], "object_kind": "floor", "object_key": None,
        "object_unit": floor["unit_code"], "rule_id": None, "finding_id": None, "points_lost": floor["raw"]}))

    tot = score_units(scheme, inp, all_items)
    tot = tot.loc[(tot["period"] == period) & (tot["veto"] == 1) & tot["unit_code"].isin(pairs["scope_unit"])]
    if len(tot):
        v = veto_periods(scheme, inp)
        v = v.loc[v["period"] == period].merge(pairs, on="unit_code").merge(
            tot[["unit_code", "uncapped"]].rename(columns={"unit_code": "scope_unit"}), on="scope_unit")
        cap = scheme["veto"]["cap"]
        n = v.groupby("scope_unit")["finding_id"].transform("size")
        rows.append(pd.DataFrame({
            "unit_code": v["scope_unit"], "item_id": "veto", "object_kind": "veto", "object_key": None,
            "object_unit": v["unit_code"], "rule_id": v["rule_id"], "finding_id": v["finding_id"],
            "points_lost": (v["uncapped"] - cap).clip(lower=0.0) / n}))
    out = _concat([r.reindex(columns=DETAIL_COLUMNS) for r in rows], DETAIL_COLUMNS)
    out = out.loc[out["points_lost"].abs() > 1e-12]
    return out.sort_values(["unit_code", "item_id", "object_key", "finding_id"], na_position="last",
                           ignore_index=True)


def lost_points_detail(conn: Connection, period: str, scope_units: list[str], scheme_id: str | dict | None = None,
                       *, config_dir: Path | str | None = None) -> pd.DataFrame:
    """``lost_points`` read from the warehouse: ``scheme_id`` names a scheme of config/schemes (default: the
    active one), or is an already loaded scheme dict (``load_scheme(path)``).  Uses the evaluation date of the
    last run (table ``evaluation``)."""
    from etl.rules import config

    cfg = config.load(config_dir)
    ev = read_df(conn, "SELECT as_of FROM evaluation", parse_dates=["as_of"])
    if ev.empty:
        raise ConfigError("数据仓库尚未完成规则评估，无法生成扣分明细")
    if isinstance(scheme_id, dict):
        scheme = scheme_id
    else:
        schemes = {s["id"]: s for s in load_schemes(cfg)}
        sid = scheme_id or cfg["active_scheme"]
        if sid not in schemes:
            raise ConfigError(f"考评方案不存在：{sid}")
        scheme = schemes[sid]
    inp = load_inputs(conn, ev["as_of"].iloc[0].to_pydatetime(), cfg, [scheme])
    return lost_points(scheme, inp, period, scope_units)


# --- lost points by level, for the assessment workbook ----------------------------------------------

BY_LEVEL_COLUMNS = ["item_id", "object_kind", "object_key", "object_unit", "rule_id", "finding_id"]
TALLY_COLUMNS = ["unit_code", "item_id", "points", "objects", "raw", "deductions"]


def level_name(value: object) -> str:
    """A unit's level (org_units.level) as the lost points' level columns name it."""
    return value if isinstance(value, str) and value else "其他"


def lost_points_levels(units: pd.DataFrame, scope_units: Iterable[str]) -> list[str]:
    """The levels (org_units.level) of ``scope_units``, lowest in the hierarchy first: station, county, city."""
    depth = {code: len(chain) for code, chain in ancestors_map(units).items()}
    level = dict(zip(units["unit_code"].astype(str), units["level"].map(level_name), strict=True))
    deepest: dict[str, int] = {}
    for u in scope_units:
        if u in level:
            deepest[level[u]] = max(deepest.get(level[u], 0), depth[u])
    return sorted(deepest, key=lambda lv: (-deepest[lv], lv))


def lost_points_tallies(scheme: dict, item_scores: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """TALLY_COLUMNS of stored ``unit_item_scores`` rows of one period (what the workbook's summary shows).

    objects, clean and deductions are stored exactly (counts, sums of configured points), so the unfloored
    score ``raw`` is recomputed the way ``score_items`` computes it: points × clean / objects (a metric item:
    × min(value, 1) of ``metrics``, the period's rows of the metrics table), full points without objects or
    denominator, minus deductions.
    """
    metric_of = {it["id"]: it["metric"] for it in scheme["items"] if it["metric"]}
    t = item_scores[["unit_code", "item_id", "points", "objects", "clean", "deductions"]].copy()
    for c in ("points", "objects", "clean", "deductions"):
        t[c] = pd.to_numeric(t[c], errors="coerce").fillna(0.0).astype(float)
    rate = np.where(t["objects"] > 0, t["clean"] / t["objects"].where(t["objects"] > 0, 1.0), 1.0)
    t["metric"] = t["item_id"].map(metric_of)
    if t["metric"].notna().any():
        m = metrics.rename(columns={"metric_id": "metric"})[["unit_code", "metric", "denominator", "value"]]
        t = t.merge(m.drop_duplicates(["unit_code", "metric"]), on=["unit_code", "metric"], how="left")
        den = pd.to_numeric(t["denominator"], errors="coerce").fillna(0.0)
        val = pd.to_numeric(t["value"], errors="coerce")
        rate = np.where(t["metric"].notna(), np.where(den > 0, val.fillna(0.0).clip(upper=1.0), 1.0), rate)
    t["raw"] = t["points"] * rate - t["deductions"]
    return t[TALLY_COLUMNS].reset_index(drop=True)


def _at(values: dict[tuple, float], units: pd.Series, items: pd.Series) -> np.ndarray:
    """``values[(unit, item)]`` for each pair (NaN where absent)."""
    return np.array([values.get(k, np.nan) for k in zip(units.tolist(), items.tolist(), strict=True)], dtype=float)


def lost_points_by_level(scheme: dict, tallies: pd.DataFrame, inp: Inputs, period: str,
                         scope_units: Iterable[str]) -> tuple[pd.DataFrame, list[str]]:
    """Where the points went in ``period``, once per finding, with what it costs every scored unit above it.

    The same rules as ``lost_points`` (which lists a finding once per scored unit), laid out for the
    assessment workbook: one row per finding behind a lost point (a rate item's unclean object costs
    points ÷ objects of each unit, shared equally by its findings; a deduction finding its configured
    points; a veto finding its share of the unit's uncapped − capped total, 0 when the cap did not bite,
    kept so that the veto stays traceable), plus one ``metric`` and one ``floor`` row per unit and item that
    needs one (those belong to that unit alone).

    ``tallies``: TALLY_COLUMNS for every unit of ``scope_units`` and every item (``lost_points_tallies`` or
    ``score_items``).  ``inp``: the findings of the period (object_findings, findings, devices, units,
    months); object counts are not needed.

    Returns (rows, levels).  ``levels``: the levels of ``scope_units``, lowest first.  ``rows`` (in no
    particular order): BY_LEVEL_COLUMNS and, for each level L, ``unit:L`` (the scored unit of level L whose
    score the row is part of; None when there is none in ``scope_units``, or the scheme scores units on
    their own) and ``lost:L`` (the points the row costs that unit).  ``object_unit`` owns the object or
    finding (floor and metric rows: the unit itself).  Summing ``lost:L`` over the rows whose ``unit:L``
    is U gives U's lost points, item by item.  With two scored units of one level above the same unit (not
    in the city > county > station directory) the nearer one is shown and the workbook's check reports
    the other.
    """
    scope_units = {str(u) for u in scope_units}
    units = inp.units.assign(unit_code=inp.units["unit_code"].astype(str))
    level = dict(zip(units["unit_code"], units["level"].map(level_name), strict=True))
    levels = lost_points_levels(units, scope_units)
    pairs = _pairs(units, scheme["scope"])
    pairs = pairs.loc[pairs["scope_unit"].isin(scope_units)].reset_index(drop=True)
    pairs["level"] = pairs["scope_unit"].map(level)
    above = {lv: pairs.loc[pairs["level"] == lv].drop_duplicates("unit_code").set_index("unit_code")["scope_unit"]
             for lv in levels}  # unit -> the scored unit of that level whose scope holds it (nearest first)
    owned = set(pairs["unit_code"])
    t = tallies.assign(unit_code=tallies["unit_code"].astype(str))
    t = t.loc[t["unit_code"].isin(scope_units)].set_index(["unit_code", "item_id"])
    per_object = (t["points"] / t["objects"].where(t["objects"] > 0)).dropna().to_dict()
    mp = M.month_periods(inp.months)
    mp = mp.loc[mp["period"] == period]
    # (rows, their cost at the scored unit u of a level, rows that are the unit's own: metric and floor)
    parts: list[tuple[pd.DataFrame, Callable[[pd.DataFrame, pd.Series], np.ndarray], bool]] = []

    unc = unclean_objects(scheme, inp, mp, [period]).drop_duplicates(["item_id", "object_key", "finding_id"])
    unc = unc.loc[unc["unit_code"].astype(str).isin(owned)]
    if len(unc):
        n = unc.groupby(["item_id", "object_key"])["finding_id"].transform("size").to_numpy(dtype=float)
        rows = pd.DataFrame({"item_id": unc["item_id"], "object_kind": unc["kind"], "object_key": unc["object_key"],
                             "object_unit": unc["unit_code"].astype(str), "rule_id": unc["rule_id"],
                             "finding_id": unc["finding_id"]})
        parts.append((rows, lambda r, u, n=n: _at(per_object, u, r["item_id"]) / n, False))

    for it in scheme["items"]:
        if not it["deductions"]:
            continue
        f = inp.findings.loc[inp.findings["rule_id"].isin(list(it["deductions"]))].merge(mp, on="month")
        f = f.loc[f["unit_code"].astype(str).isin(owned)]
        rows = pd.DataFrame({"item_id": it["id"], "object_kind": "deduction", "object_key": f["device_sn"],
                             "object_unit": f["unit_code"].astype(str), "rule_id": f["rule_id"],
                             "finding_id": f["finding_id"]})
        pts = f["rule_id"].map(it["deductions"]).to_numpy(dtype=float)
        parts.append((rows, lambda r, u, pts=pts: np.where(u.notna(), pts, np.nan), False))

    v = veto_periods(scheme, inp)
    v = v.loc[(v["period"] == period) & v["unit_code"].astype(str).isin(owned)]
    if len(v):
        n_veto = v.assign(unit_code=v["unit_code"].astype(str)).merge(pairs, on="unit_code").groupby("scope_unit").size()
        uncapped = t["raw"].clip(lower=0.0).groupby(level="unit_code").sum()
        share = ((uncapped - scheme["veto"]["cap"]).clip(lower=0.0) / n_veto).dropna()
        rows = pd.DataFrame({"item_id": "veto", "object_kind": "veto", "object_key": None,
                             "object_unit": v["unit_code"].astype(str), "rule_id": v["rule_id"],
                             "finding_id": v["finding_id"]})
        parts.append((rows, lambda r, u: u.map(share).to_numpy(dtype=float), False))

    metric = {i["id"]: i["metric"] for i in scheme["items"] if i["metric"]}
    own = t.reset_index()
    m = own.loc[own["item_id"].isin(list(metric))]
    m = m.assign(lost=m["points"] - m["raw"] - m["deductions"])
    floor = own.loc[own["raw"] < 0].assign(lost=lambda d: d["raw"])
    for kind, d, key in (("metric", m, m["item_id"].map(metric)), ("floor", floor, None)):
        d = d.assign(object_key=key).loc[d["lost"].abs() > 1e-12]
        rows = pd.DataFrame({"item_id": d["item_id"], "object_kind": kind, "object_key": d["object_key"],
                             "object_unit": d["unit_code"], "rule_id": None, "finding_id": None})
        lost = d["lost"].to_numpy(dtype=float)
        parts.append((rows, lambda r, u, lost=lost: np.where(u.notna(), lost, np.nan), True))

    cols = BY_LEVEL_COLUMNS + [f"{p}:{lv}" for lv in levels for p in ("unit", "lost")]
    out = [pd.DataFrame({c: [] for c in cols})]
    for rows, cost, own in parts:
        rows = rows.reset_index(drop=True)
        for lv in levels:
            if own:  # the unit's own row: shown at its level only
                u = rows["object_unit"].where(rows["object_unit"].map(level) == lv)
            else:
                u = rows["object_unit"].map(above[lv])
            rows[f"unit:{lv}"] = u.astype(object).where(u.notna(), None)
            rows[f"lost:{lv}"] = cost(rows, u)
        out.append(rows[cols])
    return pd.concat([o for o in out if len(o)] or out[:1], ignore_index=True), levels


def _lost_points_inputs(conn: Connection, as_of: datetime, cfg: dict, scheme: dict, period: str) -> Inputs:
    """What ``lost_points_by_level`` reads: findings of ``scheme``'s rules on objects of ``period`` (the matching
    query of ``load_inputs``, restricted to the period's months), device, deduction and veto findings of the
    period, devices and units.  No object counts: the stored item scores hold them."""
    start, end = M.period_bounds(period)
    limit = pd.Timestamp(as_of).strftime("%Y-%m")
    months = [m for m in pd.period_range(start, end - pd.Timedelta(days=1), freq="M").strftime("%Y-%m")
              if m <= limit]
    p = {"as_of": M.ts_param(conn, as_of), "av_types": av_action_types(cfg) or ["-"], "months": months or ["-"]}
    matched = []
    for kind in TIMED_KINDS:
        rules = sorted({r for it in scheme["items"] if it["objects"] == kind for r in it["rules"]})
        if not rules:
            continue
        base, joins, key, unit, t, extra = _kind_sql(kind)
        month = M.month_sql(conn, t)
        exp = ("av_types",) if ":av_types" in extra else ()
        f = read_df(conn, _text(f"""
            SELECT {key} AS object_key, {unit} AS unit_code, {month} AS month, f.finding_id, f.rule_id
            FROM {_match_sql(kind, base, joins, key)}
            WHERE f.rule_id IN :rules AND {t} <= :as_of AND {month} IN :months {extra}""", "rules", "months", *exp),
                    {"rules": rules, "as_of": p["as_of"], "months": p["months"], **{k: p[k] for k in exp}})
        matched.append(f.assign(kind=kind))
    other = sorted({r for it in scheme["items"] if it["objects"] == "devices" for r in it["rules"]}
                   | {r for it in scheme["items"] for r in it["deductions"]} | set(scheme["veto"]["rules"]))
    findings = read_df(conn, _text("""SELECT finding_id, rule_id, unit_code, month, device_sn FROM findings
                                      WHERE rule_id IN :rules AND month IN :months""", "rules", "months"),
                       {"rules": other or ["-"], "months": p["months"]})
    return Inputs(
        units=read_df(conn, "SELECT unit_code, parent_code, level FROM org_units"),
        months=months,
        object_counts=pd.DataFrame({c: [] for c in ["kind", "unit_code", "month", "n"]}),
        object_findings=_concat(matched, ["kind", "object_key", "unit_code", "month", "finding_id", "rule_id"]),
        devices=read_df(conn, "SELECT device_sn, unit_code, status, status_since FROM devices",
                        parse_dates=["status_since"]),
        findings=findings,
        metrics=pd.DataFrame({c: [] for c in ["period", "unit_code", "metric_id", "numerator", "denominator", "value"]}),
    )


def lost_points_by_level_detail(conn: Connection, period: str, scope_units: Iterable[str], scheme: dict,
                                item_scores: pd.DataFrame, metrics: pd.DataFrame, *,
                                config_dir: Path | str | None = None) -> tuple[pd.DataFrame, list[str]]:
    """``lost_points_by_level`` read from the warehouse, explaining the stored scores ``item_scores`` (the
    period's unit_item_scores rows of ``scheme`` for ``scope_units``) with the period's ``metrics`` rows.
    Uses the evaluation date of the last run (table ``evaluation``)."""
    from etl.rules import config

    cfg = config.load(config_dir)
    ev = read_df(conn, "SELECT as_of FROM evaluation", parse_dates=["as_of"])
    if ev.empty:
        raise ConfigError("数据仓库尚未完成规则评估，无法生成扣分明细")
    inp = _lost_points_inputs(conn, ev["as_of"].iloc[0].to_pydatetime(), cfg, scheme, period)
    return lost_points_by_level(scheme, lost_points_tallies(scheme, item_scores, metrics), inp, period, scope_units)

# --- warehouse I/O ------------------------------------------------------------------------------------

def _data_as_of(conn: Connection, as_of: datetime) -> pd.Timestamp | None:
    """Latest time in the loaded data (clips up to the evaluation date; changes of cases and incidents)."""
    parts = [f"SELECT MAX({c}) AS t FROM {t}" for t, c in (
        ("cases", "updated_at"), ("case_actions", "updated_at"), ("case_documents", "updated_at"),
        ("incidents", "updated_at"))]
    times = read_df(conn, " UNION ALL ".join(parts), parse_dates=["t"])["t"]
    clips = pd.to_datetime(M.clip_months(conn, as_of)["last_start"], errors="coerce")
    t = pd.concat([times, clips]).dropna()
    return None if t.empty else t.max()


def compute(conn: Connection, as_of: datetime, cfg: dict, *, run_id: int | None = None,
            integrity_checked: bool = False) -> dict:
    """Rebuild unit_scores, unit_item_scores and evaluation inside the caller's transaction."""
    schemes = load_schemes(cfg)
    inp = load_inputs(conn, as_of, cfg, schemes)
    scores, items = [], []
    if inp.months and len(inp.units):
        for scheme in schemes:
            s, i = score_scheme(scheme, inp)
            scores.append(s)
            items.append(i)
    conn.execute(sa.text("DELETE FROM unit_scores"))
    conn.execute(sa.text("DELETE FROM unit_item_scores"))
    conn.execute(sa.text("DELETE FROM evaluation"))
    n_scores = bulk_insert(conn, "unit_scores", _concat(scores, SCORE_COLUMNS), SCORE_COLUMNS)
    n_items = bulk_insert(conn, "unit_item_scores", _concat(items, ITEM_COLUMNS), ITEM_COLUMNS)
    active = next(s for s in schemes if s["active"])
    bulk_insert(conn, "evaluation", [(run_id, pd.Timestamp(as_of), _data_as_of(conn, as_of), active["id"], active["version"],
                                      int(bool(integrity_checked)), pd.Timestamp.now().floor("s"))],
                ["run_id", "as_of", "data_as_of", "scheme_id", "scheme_version", "integrity_checked", "computed_at"])
    return {"unit_scores": n_scores, "unit_item_scores": n_items, "schemes": [s["id"] for s in schemes]}
