"""Totals, veto, grade and rank (rules.md "Assessment") and the rows of unit_scores / unit_item_scores.

Total = Σ unrounded item scores, capped by a veto, rounded to 2 decimals; the
grade compares that rounded total with the bands (a veto forces its grade).
Rank within units of the same level and period: rounded total descending,
then the tie-breaker items' rounded scores descending, then unit_code.
Vetoes count the veto findings of the unit's scope whose ``month`` is in the
period.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from etl.scoring import metrics as M
from etl.scoring.inputs import Inputs
from etl.scoring.items import score_items, unit_pairs

SCORE_COLUMNS = [
    "scheme_id",
    "scheme_version",
    "active",
    "period",
    "unit_code",
    "unit_level",
    "total",
    "grade",
    "rank",
    "veto",
]
ITEM_COLUMNS = [
    "scheme_id",
    "scheme_version",
    "active",
    "period",
    "unit_code",
    "item_id",
    "item_name",
    "points",
    "objects",
    "clean",
    "deductions",
    "score",
]


def veto_periods(scheme: dict, inp: Inputs) -> pd.DataFrame:
    """(unit_code, period, finding_key, rule_id) of the veto findings of each own unit."""
    mp = M.month_periods(inp.months)
    f = inp.findings.loc[inp.findings["rule_id"].isin(scheme["veto"]["rules"])]
    return f[["unit_code", "month", "finding_key", "rule_id"]].merge(mp, on="month").drop(columns="month")


def _round2(s: pd.Series) -> pd.Series:
    return s.map(lambda v: round(float(v), 2) if pd.notna(v) else v).astype(float)


def score_units(scheme: dict, inp: Inputs, item_scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Totals, veto, grade and rank of every unit (over its scope) and period.

    Columns: period, unit_code, unit_level, uncapped, total, grade, rank, veto.
    """
    its = score_items(scheme, inp) if item_scores is None else item_scores
    units = inp.units.assign(unit_code=inp.units["unit_code"].astype(str))
    tot = its.groupby(["period", "unit_code"], as_index=False)["score"].sum().rename(columns={"score": "uncapped"})
    pairs = unit_pairs(units, scheme["scope"])
    pairs = pairs.loc[pairs["scope_unit"].isin(set(tot["unit_code"]))]  # the scored units' scopes only
    v = veto_periods(scheme, inp).merge(pairs, on="unit_code")
    vetoed = set(zip(v["period"].to_numpy(object), v["scope_unit"].to_numpy(object), strict=True))
    keys = zip(tot["period"].to_numpy(object), tot["unit_code"].to_numpy(object), strict=True)
    tot["veto"] = [int((p, u) in vetoed) for p, u in keys]
    capped = np.where(tot["veto"] == 1, np.minimum(tot["uncapped"], scheme["veto"]["cap"]), tot["uncapped"])
    tot["total"] = _round2(pd.Series(capped, index=tot.index))
    tot["grade"] = [_grade(total, veto, scheme) for total, veto in zip(tot["total"], tot["veto"], strict=True)]
    tot = tot.merge(units[["unit_code", "level"]].rename(columns={"level": "unit_level"}), on="unit_code", how="left")
    return rank_units(scheme, tot, its)


def rank_units(scheme: dict, tot: pd.DataFrame, its: pd.DataFrame) -> pd.DataFrame:
    """``tot`` (period, unit_code, unit_level, total, ...) with ``rank`` within the units of the same level and
    period: rounded total descending, then the tie-breaker items' scores of ``its`` (period, unit_code,
    item_id, score), rounded, descending, then unit_code.  Sorted by period and unit_code."""
    keys, asc = ["total"], [False]
    for i, item_id in enumerate(scheme["tie_breakers"]):
        tb = its.loc[its["item_id"] == item_id, ["period", "unit_code", "score"]]
        tot = tot.merge(
            tb.assign(score=_round2(tb["score"])).rename(columns={"score": f"_tb{i}"}),
            on=["period", "unit_code"],
            how="left",
        )
        keys.append(f"_tb{i}")
        asc.append(False)
    tot["_level"] = tot["unit_level"].fillna("")
    tot = tot.sort_values(
        ["period", "_level", *keys, "unit_code"], ascending=[True, True, *asc, True], ignore_index=True
    )
    tot["rank"] = tot.groupby(["period", "_level"]).cumcount() + 1
    cols = [c for c in ["period", "unit_code", "unit_level", "uncapped", "total", "grade", "rank", "veto"] if c in tot]
    return tot[cols].sort_values(["period", "unit_code"], ignore_index=True)


def _grade(total: float, veto: int, scheme: dict) -> str:
    if veto:
        return scheme["veto"]["grade"]
    for minimum, name in scheme["grades"]:
        if total >= minimum:
            return name
    return scheme["grades"][-1][1]


def score_scheme(
    scheme: dict, inp: Inputs, *, tallies: pd.DataFrame | None = None, only: Iterable[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(unit_scores rows, unit_item_scores rows) of one scheme, in the tables' column order.

    ``tallies``, ``only``: as ``items.score_items``; with ``only`` the ranks are among those units alone
    (``rank_units`` over every unit's totals gives the real ones)."""
    its = score_items(scheme, inp, tallies=tallies, only=only)
    tot = score_units(scheme, inp, its)
    tag = {"scheme_id": scheme["id"], "scheme_version": scheme["version"], "active": int(scheme.get("active", 0))}
    items = its.assign(**tag)
    items["objects"] = items["objects"].round().astype(int)
    items["clean"] = items["clean"].round().astype(int)
    items["score"] = _round2(items["score"])
    items["deductions"] = _round2(items["deductions"])
    return tot.assign(**tag)[SCORE_COLUMNS], items[ITEM_COLUMNS]
