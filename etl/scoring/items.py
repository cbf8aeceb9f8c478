"""Item scores (rules.md "Assessment"): the pure computation from ``Inputs`` to every unit's item scores.

Item kinds
  * clean-rate item: ``objects`` (an object kind, see schemes.OBJECT_KINDS) and
    ``rules``; score = points × clean / objects (full points when there are
    no objects) − Σ per-finding ``deductions``, floored at 0.
  * metric item: ``metric`` (a standard metric id of ``metrics.METRICS``);
    score = points × min(value, 1) (full points when its denominator is 0)
    − deductions, floored at 0.  objects/clean store the metric's
    denominator/numerator rounded to integers.

Periods and objects (decisions where rules.md leaves room):
  * An object is unclean when any finding of the item's rules is on it
    (matched by key, see ``inputs``), whatever that finding's month: a
    DOC-MISSING finding of an action in April makes its case, registered in
    March, unclean in March (and in Q1 and the year).
  * Devices (kind ``devices``) are objects in every period, except those
    scrapped or lost (status + status_since) before the period starts; a
    device is unclean in a period when a finding of the item's rules on it
    has its ``month`` in that period (EQUIP-IDLE: its month; EQUIP-REPAIR and
    EQUIP-LEDGER: the evaluation date's month, as the rules step assigns).
  * Deductions count the findings of the unit's scope whose ``month`` is in
    the period.
  * Scope (``scope: whole``): a unit's objects, findings and deductions are
    those of itself and every unit below it (``scope: own``: the unit alone;
    metric items always use the metrics table, which is over the whole scope).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pandas as pd

from etl.scoring import metrics as M
from etl.scoring.inputs import Inputs, concat
from etl.warehouse.scope import scope_pairs


def unit_pairs(units: pd.DataFrame, scope: str) -> pd.DataFrame:
    """(scope_unit, unit_code): the units whose objects and findings a scored unit's score is over
    (``scope: whole``: itself and every unit below it; ``own``: itself)."""
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
    finding_key, rule_id.  unit_code is the object's owning unit."""
    return concat(list(_unclean_items(scheme, inp, mp, periods)), UNCLEAN_COLUMNS)


UNCLEAN_COLUMNS = ["item_id", "kind", "object_key", "unit_code", "period", "finding_key", "rule_id"]


def _unclean_items(
    scheme: dict, inp: Inputs, mp: pd.DataFrame, periods: list[str], *, distinct: bool = False
) -> Iterator[pd.DataFrame]:
    """``unclean_objects``'s rows item by item.  ``distinct``: only the first finding of each object and month
    (item_id, object_key, unit_code, period): what counting the unclean objects needs, a fraction of the rows
    (each finding row is repeated for its month, quarter and year)."""
    devs = None
    for it in scheme["items"]:
        if not it["objects"] or not it["rules"]:
            continue
        if it["objects"] == "devices":
            if devs is None:
                devs = device_objects(inp.devices, periods)
            f = inp.findings.loc[
                inp.findings["rule_id"].isin(it["rules"]) & inp.findings["device_sn"].notna(),
                ["device_sn", "month", "finding_key", "rule_id"],
            ]
            if distinct:
                f = f.drop_duplicates(["device_sn", "month"])
            f = f.merge(mp, on="month")
            f = f.merge(devs, on=["device_sn", "period"]).rename(columns={"device_sn": "object_key"})
        else:
            f = inp.object_findings.loc[
                (inp.object_findings["kind"] == it["objects"]) & inp.object_findings["rule_id"].isin(it["rules"])
            ]
            if distinct:
                f = f.drop_duplicates(["object_key", "month"])[["object_key", "unit_code", "month"]]
            f = f.merge(mp, on="month")
        f = f.assign(item_id=it["id"], kind=it["objects"])
        yield f[["item_id", "object_key", "unit_code", "period"]] if distinct else f[UNCLEAN_COLUMNS]


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
    for unc in _unclean_items(scheme, inp, mp, periods, distinct=True):  # an item at a time: bounded memory
        if len(unc):
            u = unc.drop_duplicates(["item_id", "object_key", "period"])
            u = u.groupby(["unit_code", "period", "item_id"]).size().rename("unclean").reset_index()
            out.append(u.assign(objects=0.0, deductions=0.0))
    t = concat(out, cols)
    t[["objects", "unclean", "deductions"]] = t[["objects", "unclean", "deductions"]].astype(float)
    return t.groupby(["unit_code", "period", "item_id"], as_index=False)[["objects", "unclean", "deductions"]].sum()


def score_items(
    scheme: dict, inp: Inputs, *, tallies: pd.DataFrame | None = None, only: Iterable[str] | None = None
) -> pd.DataFrame:
    """Item scores of every unit (over its scope) and period, unrounded.

    Columns: period, unit_code, item_id, item_name, points, objects, clean, deductions, raw, score.
    ``raw`` is the score before the floor at 0.  ``tallies``: ``item_tallies(scheme, inp)`` when the caller
    holds it; ``only``: the scored units (default every unit), each still over its whole scope.
    """
    periods = M.periods_of(inp.months)
    units = inp.units.assign(unit_code=inp.units["unit_code"].astype(str))
    pairs = unit_pairs(units, scheme["scope"])
    codes = units["unit_code"].tolist()
    if only is not None:
        keep = {str(u) for u in only}
        pairs = pairs.loc[pairs["scope_unit"].isin(keep)]
        codes = [u for u in codes if u in keep]
    items = pd.DataFrame(
        [
            {"item_id": it["id"], "item_name": it["name"], "points": it["points"], "metric": it["metric"]}
            for it in scheme["items"]
        ]
    )
    grid = (
        pd.MultiIndex.from_product(
            [periods, codes, items["item_id"].tolist()], names=["period", "unit_code", "item_id"]
        )
        .to_frame(index=False)
        .merge(items, on="item_id")
    )
    t = (item_tallies(scheme, inp) if tallies is None else tallies).merge(pairs, on="unit_code")
    t = t.groupby(["scope_unit", "period", "item_id"], as_index=False)[["objects", "unclean", "deductions"]].sum()
    g = grid.merge(t.rename(columns={"scope_unit": "unit_code"}), on=["period", "unit_code", "item_id"], how="left")
    g[["objects", "unclean", "deductions"]] = g[["objects", "unclean", "deductions"]].fillna(0.0)
    g["clean"] = g["objects"] - g["unclean"]
    rate = np.where(g["objects"] > 0, g["clean"] / g["objects"].where(g["objects"] > 0, 1.0), 1.0)

    is_metric = g["metric"].notna()
    if is_metric.any():
        mt = inp.metrics.rename(columns={"metric_id": "metric"})[
            ["period", "unit_code", "metric", "numerator", "denominator", "value"]
        ]
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
    out = g[["period", "unit_code", "item_id", "item_name", "points", "objects", "clean", "deductions", "raw", "score"]]
    return out.sort_values(["period", "unit_code", "item_id"], ignore_index=True)
