"""Lost points (rules.md "Assessment"): where every lost point of a unit went, traced to findings.

One implementation, ``lost_points_by_level`` (pure) / ``lost_points_by_level_detail``
(from the warehouse, explaining the stored scores), behind the assessment
workbook's 扣分明细: one row per finding behind a lost point with what it costs
every scored unit above it, by level:
  * each unclean object of a rate item costs points ÷ objects of the scored
    unit, shared equally by its findings of the item's rules;
  * each deduction finding costs its configured points;
  * metric items: one row per unit (object_kind ``metric``, object_key = the
    metric id) with what the metric's value cost: points × (1 − min(value, 1)),
    0 when its denominator is 0 (``metric_shortfall``);
  * floor at 0: when deductions would take the item below 0, one extra row
    (object_kind ``floor``, no finding) with the negative points given back, so
    that the rows of a unit and item add up to points − score exactly;
  * veto: one row per veto finding (item_id ``veto``), sharing uncapped total −
    capped total (0 when the cap did not bite; the row still explains the
    forced grade).
The dashboard's drill-down shows, for one unit and item, the findings of
``schemes.item_rules`` and, for a metric item, ``metric_shortfall``: never every
finding of the unit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.errors import ConfigError
from etl.scoring import metrics as M
from etl.scoring.inputs import Inputs, load_period_inputs
from etl.scoring.items import unclean_objects, unit_pairs
from etl.scoring.totals import veto_periods
from etl.warehouse.db import read_df
from etl.warehouse.scope import ancestors_map
from etl.warehouse.verdicts import Verdicts

BY_LEVEL_COLUMNS = ["item_id", "object_kind", "object_key", "object_unit", "rule_id", "finding_key"]
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


def _at(values: pd.Series, units: pd.Series, items: pd.Series) -> np.ndarray:
    """``values`` (indexed by unit_code, item_id) for each pair (NaN where absent)."""
    if not len(units):
        return np.zeros(0, dtype=float)
    where = pd.MultiIndex.from_arrays([units.to_numpy(dtype=object), items.to_numpy(dtype=object)])
    return values.reindex(where).to_numpy(dtype=float)


def _of_months(inp: Inputs, months: list[str]) -> Inputs:
    """``inp`` with only the object findings and findings of ``months`` (what a period's rows can come from:
    every step below keeps the rows whose month is in the period)."""
    keep = set(months)
    return replace(
        inp,
        object_findings=inp.object_findings.loc[inp.object_findings["month"].isin(keep)],
        findings=inp.findings.loc[inp.findings["month"].isin(keep)],
    )


def lost_points_by_level(
    scheme: dict, tallies: pd.DataFrame, inp: Inputs, period: str, scope_units: Iterable[str]
) -> tuple[pd.DataFrame, list[str]]:
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
    pairs = unit_pairs(units, scheme["scope"])
    pairs = pairs.loc[pairs["scope_unit"].isin(scope_units)].reset_index(drop=True)
    pairs["level"] = pairs["scope_unit"].map(level)
    above = {
        lv: pairs.loc[pairs["level"] == lv].drop_duplicates("unit_code").set_index("unit_code")["scope_unit"]
        for lv in levels
    }  # unit -> the scored unit of that level whose scope holds it (nearest first)
    owned = set(pairs["unit_code"])
    t = tallies.assign(unit_code=tallies["unit_code"].astype(str))
    t = t.loc[t["unit_code"].isin(scope_units)].set_index(["unit_code", "item_id"])
    per_object = (t["points"] / t["objects"].where(t["objects"] > 0)).dropna()
    mp = M.month_periods(inp.months)
    mp = mp.loc[mp["period"] == period]
    inp = _of_months(inp, mp["month"].tolist())
    # (rows, their cost at the scored unit u of a level, rows that are the unit's own: metric and floor)
    parts: list[tuple[pd.DataFrame, Callable[[pd.DataFrame, pd.Series], np.ndarray], bool]] = []

    unc = unclean_objects(scheme, inp, mp, [period]).drop_duplicates(["item_id", "object_key", "finding_key"])
    unc = unc.loc[unc["unit_code"].astype(str).isin(owned)]
    if len(unc):
        n = unc.groupby(["item_id", "object_key"])["finding_key"].transform("size").to_numpy(dtype=float)
        rows = pd.DataFrame(
            {
                "item_id": unc["item_id"],
                "object_kind": unc["kind"],
                "object_key": unc["object_key"],
                "object_unit": unc["unit_code"].astype(str),
                "rule_id": unc["rule_id"],
                "finding_key": unc["finding_key"],
            }
        )
        parts.append((rows, lambda r, u, n=n: _at(per_object, u, r["item_id"]) / n, False))

    for it in scheme["items"]:
        if not it["deductions"]:
            continue
        f = inp.findings.loc[inp.findings["rule_id"].isin(list(it["deductions"]))].merge(mp, on="month")
        f = f.loc[f["unit_code"].astype(str).isin(owned)]
        rows = pd.DataFrame(
            {
                "item_id": it["id"],
                "object_kind": "deduction",
                "object_key": f["device_sn"],
                "object_unit": f["unit_code"].astype(str),
                "rule_id": f["rule_id"],
                "finding_key": f["finding_key"],
            }
        )
        pts = f["rule_id"].map(it["deductions"]).to_numpy(dtype=float)
        parts.append((rows, lambda r, u, pts=pts: np.where(u.notna(), pts, np.nan), False))

    v = veto_periods(scheme, inp)
    v = v.loc[(v["period"] == period) & v["unit_code"].astype(str).isin(owned)]
    if len(v):
        n_veto = (
            v.assign(unit_code=v["unit_code"].astype(str)).merge(pairs, on="unit_code").groupby("scope_unit").size()
        )
        uncapped = t["raw"].clip(lower=0.0).groupby(level="unit_code").sum()
        share = ((uncapped - scheme["veto"]["cap"]).clip(lower=0.0) / n_veto).dropna()
        rows = pd.DataFrame(
            {
                "item_id": "veto",
                "object_kind": "veto",
                "object_key": None,
                "object_unit": v["unit_code"].astype(str),
                "rule_id": v["rule_id"],
                "finding_key": v["finding_key"],
            }
        )
        parts.append((rows, lambda r, u: u.map(share).to_numpy(dtype=float), False))

    metric = {i["id"]: i["metric"] for i in scheme["items"] if i["metric"]}
    own = t.reset_index()
    m = own.loc[own["item_id"].isin(list(metric))]
    m = m.assign(lost=m["points"] - m["raw"] - m["deductions"])
    floor = own.loc[own["raw"] < 0].assign(lost=lambda d: d["raw"])
    for kind, d, key in (("metric", m, m["item_id"].map(metric)), ("floor", floor, None)):
        d = d.assign(object_key=key).loc[d["lost"].abs() > 1e-12]
        rows = pd.DataFrame(
            {
                "item_id": d["item_id"],
                "object_kind": kind,
                "object_key": d["object_key"],
                "object_unit": d["unit_code"],
                "rule_id": None,
                "finding_key": None,
            }
        )
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


def lost_points_by_level_detail(
    conn: Connection,
    period: str,
    scope_units: Iterable[str],
    scheme: dict,
    item_scores: pd.DataFrame,
    metrics: pd.DataFrame,
    *,
    config_dir: Path | str | None = None,
    verdicts: Verdicts | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """``lost_points_by_level`` read from the warehouse, explaining the stored scores ``item_scores`` (the
    period's unit_item_scores rows of ``scheme`` for ``scope_units``) with the period's ``metrics`` rows.
    Uses the evaluation date of the last run (table ``evaluation``) and the findings that count under
    ``verdicts`` (read here when None)."""
    from etl.rules import config

    cfg = config.load(config_dir)
    ev = read_df(conn, "SELECT as_of FROM evaluation", parse_dates=["as_of"])
    if ev.empty:
        raise ConfigError("数据仓库尚未完成规则评估，无法生成扣分明细")
    inp = load_period_inputs(conn, ev["as_of"].iloc[0].to_pydatetime(), cfg, scheme, period, verdicts=verdicts)
    return lost_points_by_level(scheme, lost_points_tallies(scheme, item_scores, metrics), inp, period, scope_units)


def metric_shortfall(points: float, denominator: float | None, value: float | None) -> float:
    """The points a metric item loses to its metric (before deductions): points × (1 − min(value, 1)); 0 when
    the denominator is 0 or missing (full points), all of them when the value is missing with a denominator."""
    if denominator is None or pd.isna(denominator) or float(denominator) <= 0:
        return 0.0
    v = 0.0 if value is None or pd.isna(value) else min(float(value), 1.0)
    return float(points) * (1.0 - v)
