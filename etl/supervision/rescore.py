"""Recompute what counts after a verdict, without an ETL run (shared/spec/supervision.md "Effective at once").

A verdict (exempt, reopen, an upheld appeal, an excuse accepted or rejected) changes which findings count,
not the findings: ``rescore`` brings ``metrics``, ``unit_scores``, ``unit_item_scores`` and ``evaluation`` to
the current verdicts, inside the caller's transaction.  No rule is evaluated.

Two paths give the same rows (``tests/test_rescore.py`` checks it after random verdicts, on SQLite and
PostgreSQL):

* fast (the default, when the last run kept its inputs: ``etl.scoring.kept``): the verdicts that changed
  since the marts were last computed (exempted keys, excuses whose effect changed) name the own units they
  touch; only their item tallies are recomputed, and only the scores of the scope chain of those units (each
  unit, its county, the city) for every period and scheme, and the two metrics verdicts change
  (``metrics.VERDICT_METRICS``); each scheme's ranks are then recomputed from the stored totals and the
  changed rows written.  City scale: well under a second, against ~9.5 s for the full path.
* full (``full=True``, or when nothing valid is kept): the same metrics and scores steps ``etl.evaluation``
  runs, fed from the warehouse (the findings, excused findings and coverage the last run wrote; the mirrors
  for the object counts): the reference.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.rules import config
from etl.scoring import kept, metrics, scores
from etl.scoring.inputs import BaseInputs, apply_verdicts, read_metrics
from etl.scoring.items import item_tallies
from etl.scoring.schemes import load_schemes
from etl.scoring.totals import ITEM_COLUMNS, SCORE_COLUMNS, rank_units, score_scheme
from etl.times import ts_param
from etl.warehouse import clip_days
from etl.warehouse.db import bulk_insert, read_df
from etl.warehouse.scope import ancestors_map
from etl.warehouse.verdicts import Verdicts, read_in, read_verdicts

TALLY_KEYS = ["unit_code", "period", "item_id"]


def rescore(
    conn: Connection,
    *,
    config_dir: Path | str | None = None,
    verdicts: Verdicts | None = None,
    full: bool = False,
) -> dict:
    """Bring metrics and scores to ``verdicts`` (read here with the rule configuration of ``config_dir`` when
    None) as of the last evaluation (table ``evaluation``: its evaluation date, run and integrity flag).

    ``full``: recompute everything from the warehouse (the reference) instead of what changed.  Returns
    {"metrics": rows, "unit_scores": rows, "unit_item_scores": rows (written), "units": scored units (fast
    path), "path": "fast" | "full", "seconds": float}; nothing is written and {"metrics": 0, ...} is
    returned when the warehouse holds no evaluation yet."""
    t0 = time.perf_counter()
    ev = read_df(conn, "SELECT run_id, as_of, integrity_checked FROM evaluation", parse_dates=["as_of"])
    if ev.empty or pd.isna(ev["as_of"].iloc[0]):
        return {"metrics": 0, "unit_scores": 0, "unit_item_scores": 0, "seconds": time.perf_counter() - t0}
    row = ev.iloc[0]
    as_of = row["as_of"].to_pydatetime()
    run_id = None if pd.isna(row["run_id"]) else int(row["run_id"])
    integrity_checked = bool(row["integrity_checked"]) if not pd.isna(row["integrity_checked"]) else False
    cfg = config.load(config_dir)
    if verdicts is None:
        verdicts = read_verdicts(conn, cfg)
    if not full:
        schemes = load_schemes(cfg)
        state = kept.read(conn, run_id=run_id, as_of=as_of, cfg=cfg, schemes=schemes)
        if state is not None and state.applied.excuse_mode == verdicts.excuse_mode:
            out = _fast(conn, state, schemes, verdicts)
            return {**out, "path": "fast", "seconds": time.perf_counter() - t0}
    clip_months = clip_days.per_month(conn, as_of)
    months = metrics.data_months(conn, as_of, clip_months=clip_months)
    n_metrics = metrics.compute(conn, as_of, cfg, months=months, clip_months=clip_months, verdicts=verdicts)
    out = scores.compute(
        conn,
        as_of,
        cfg,
        run_id=run_id,
        integrity_checked=integrity_checked,
        clip_months=clip_months,
        months=months,
        verdicts=verdicts,
    )
    kept.note_applied(conn, verdicts)
    return {
        "metrics": n_metrics,
        "unit_scores": out["unit_scores"],
        "unit_item_scores": out["unit_item_scores"],
        "path": "full",
        "seconds": time.perf_counter() - t0,
    }


# --- the fast path ------------------------------------------------------------------------------------


def changes(applied: Verdicts, verdicts: Verdicts) -> tuple[set[str], set[str]]:
    """(finding keys whose exemption changed, incident_nos whose excuse changed effect) from ``applied`` to
    ``verdicts`` (same excuse mode)."""
    keys = set(applied.exempted ^ verdicts.exempted)
    incs = sorted(set(applied.excuses) | set(verdicts.excuses))
    before, after = applied.excuse_effective(incs), verdicts.excuse_effective(incs)
    return keys, {i for i, a, b in zip(incs, before, after, strict=True) if a != b}


def spot_units(applied: Verdicts, verdicts: Verdicts) -> set[str]:
    """The own units whose SPOT-CHECK findings or reviewed spot-check items differ between ``applied`` and
    ``verdicts`` (a review recorded, changed or orphaned since)."""
    units: set[str] = set()
    for before, after, unit in ((applied.spot, verdicts.spot, 3), (applied.spot_items, verdicts.spot_items, 1)):
        units |= {str(t[unit]) for t in set(before) ^ set(after) if t[unit] is not None}
    return units


def affected_units(state: kept.Kept, keys: set[str], incidents: set[str]) -> set[str]:
    """The own units whose tallies ``keys`` and ``incidents`` (``changes``) may change: the owners of the
    objects and devices of those findings, the units of their findings, of their events and late clips."""
    b = state.base
    units: set[str] = set()
    devices: set[str] = set()
    for frame in (b.object_findings, b.findings):
        hit = metrics.isin(frame["finding_key"], keys).to_numpy() | (
            frame["_excused"].to_numpy(dtype=bool) & metrics.isin(frame["_inc"], incidents).to_numpy()
        )
        units |= set(frame.loc[hit, "unit_code"].dropna().astype(str))
        if "device_sn" in frame.columns:
            devices |= set(frame.loc[hit, "device_sn"].dropna().astype(str))
    owners = b.devices.loc[metrics.isin(b.devices["device_sn"], devices).to_numpy(), "unit_code"]
    units |= set(owners.dropna().astype(str))
    ev, av, late = state.objects["events"], state.objects["av_keys"], state.objects["late"]
    touched = set(av.loc[metrics.isin(av["finding_key"], keys).to_numpy(), "incident_no"].dropna().astype(str))
    units |= set(ev.loc[metrics.isin(ev["incident_no"], touched | incidents).to_numpy(), "unit_code"].dropna())
    units |= set(late.loc[metrics.isin(late["finding_key"], keys).to_numpy(), "unit_code"].dropna())
    return {str(u) for u in units}


def _of_units(frame: pd.DataFrame, units: set[str], extra: pd.Series | None = None) -> pd.DataFrame:
    hit = metrics.isin(frame["unit_code"], units).to_numpy()
    if extra is not None:
        hit = hit | extra.to_numpy()
    return frame.loc[hit]


def _delete_units(conn: Connection, table: str, units: list[str], where: str, params: dict) -> None:
    stmt = sa.text(f"DELETE FROM {table} WHERE {where} AND unit_code IN :units").bindparams(
        sa.bindparam("units", expanding=True)
    )
    conn.execute(stmt, {**params, "units": units})


def _fast(conn: Connection, state: kept.Kept, schemes: list[dict], verdicts: Verdicts) -> dict:
    """The fast path of ``rescore`` (see the module docstring)."""
    keys, incidents = changes(state.applied, verdicts)
    own = affected_units(state, keys, incidents) if keys or incidents else set()
    own |= spot_units(state.applied, verdicts)
    own |= {str(t[3]) for t in verdicts.spot if t[0] in keys and t[3] is not None}  # a SPOT-CHECK (un)exempted
    out = {"metrics": 0, "unit_scores": 0, "unit_item_scores": 0, "units": 0}
    if not own:
        kept.update(conn, state, tallies={}, verdicts=verdicts)
        return out
    b = state.base
    chains = ancestors_map(b.units)
    scoped = sorted({a for u in own for a in chains.get(u, [u])})
    out["units"] = len(scoped)

    # metrics: the two that verdicts change, for the scope chain
    o = state.objects
    whole, late = metrics.adjustments(o["events"], o["av_keys"], o["late"], verdicts)
    events, clips = metrics.verdict_tallies(state.metric_events, state.metric_clips, whole, late)
    mrows = metrics.verdict_metrics(
        b.units, b.months, events=events, clips=clips, only=scoped, spot_items=verdicts.spot_item_frame()
    )
    params = {"ids": list(metrics.VERDICT_METRICS)}
    stmt = sa.text("DELETE FROM metrics WHERE metric_id IN :ids AND unit_code IN :units").bindparams(
        sa.bindparam("ids", expanding=True), sa.bindparam("units", expanding=True)
    )
    for i in range(0, len(scoped), 500):
        conn.execute(stmt, {**params, "units": scoped[i : i + 500]})
    out["metrics"] = bulk_insert(conn, "metrics", mrows, metrics.METRIC_COLUMNS)

    # scores: the item tallies of the touched own units, the scores of the scope chain, every scheme's ranks
    own_devices = set(b.devices.loc[metrics.isin(b.devices["unit_code"], own).to_numpy(), "device_sn"])
    part = BaseInputs(
        units=b.units,
        months=b.months,
        object_counts=_of_units(b.object_counts, own),
        object_findings=_of_units(b.object_findings, own),
        devices=_of_units(b.devices, own),
        findings=_of_units(b.findings, own, metrics.isin(b.findings["device_sn"], own_devices)),
    )
    mt = read_metrics(conn, scoped)
    inp_own = apply_verdicts(part, verdicts, mt)
    inp = apply_verdicts(
        BaseInputs(b.units, b.months, b.object_counts.iloc[0:0], b.object_findings.iloc[0:0], b.devices, b.findings),
        verdicts,
        mt,
    )
    tallies = {}
    for scheme in schemes:
        sid = scheme["id"]
        mine = item_tallies(scheme, inp_own)
        mine = mine.loc[metrics.isin(mine["unit_code"], own).to_numpy()]
        old = state.tallies[sid]
        rest = old.loc[~metrics.isin(old["unit_code"], own).to_numpy()]
        t = pd.concat([rest, mine], ignore_index=True).sort_values(TALLY_KEYS, ignore_index=True)
        tallies[sid] = t
        s_rows, i_rows = score_scheme(scheme, inp, tallies=t, only=scoped)
        s_rows = _rerank(conn, scheme, s_rows, i_rows, scoped)
        for table in ("unit_scores", "unit_item_scores"):
            for i in range(0, len(scoped), 500):
                _delete_units(conn, table, scoped[i : i + 500], "scheme_id = :s", {"s": sid})
        out["unit_scores"] += bulk_insert(conn, "unit_scores", s_rows, SCORE_COLUMNS)
        out["unit_item_scores"] += bulk_insert(conn, "unit_item_scores", i_rows, ITEM_COLUMNS)
    conn.execute(
        sa.text("UPDATE evaluation SET computed_at = :t"), {"t": ts_param(conn, datetime.now().replace(microsecond=0))}
    )
    kept.update(conn, state, tallies=tallies, verdicts=verdicts)
    return out


def _rerank(
    conn: Connection, scheme: dict, s_rows: pd.DataFrame, i_rows: pd.DataFrame, scoped: list[str]
) -> pd.DataFrame:
    """``s_rows`` (the scope chain's new unit_scores rows) with their ranks among every unit's; the stored
    rows of the other units whose rank changes are updated here."""
    sid = scheme["id"]
    stored = read_df(
        conn, "SELECT period, unit_code, unit_level, total, rank FROM unit_scores WHERE scheme_id = :s", {"s": sid}
    )
    others = stored.loc[~metrics.isin(stored["unit_code"], scoped).to_numpy()]
    cols = ["period", "unit_code", "unit_level", "total"]
    tot = pd.concat([others[cols], s_rows[cols]], ignore_index=True)
    its = i_rows[["period", "unit_code", "item_id", "score"]]
    if scheme["tie_breakers"]:
        tb = read_in(
            conn,
            "SELECT period, unit_code, item_id, score FROM unit_item_scores WHERE scheme_id = :s AND item_id IN :tb",
            "tb",
            scheme["tie_breakers"],
            {"s": sid},
        )
        tb = tb.loc[~metrics.isin(tb["unit_code"], scoped).to_numpy()]
        its = pd.concat([tb, its], ignore_index=True)
    ranked = rank_units(scheme, tot, its)[["period", "unit_code", "rank"]]
    moved = others.merge(ranked, on=["period", "unit_code"], suffixes=("_old", ""))
    moved = moved.loc[moved["rank"].astype(int) != moved["rank_old"].astype(int)]
    if len(moved):
        conn.execute(
            sa.text("UPDATE unit_scores SET rank = :r WHERE scheme_id = :s AND period = :p AND unit_code = :u"),
            [
                {"r": int(r), "s": sid, "p": p, "u": u}
                for p, u, r in zip(moved["period"], moved["unit_code"], moved["rank"], strict=True)
            ],
        )
    new = s_rows.drop(columns="rank").merge(ranked, on=["period", "unit_code"], how="left")
    return new[SCORE_COLUMNS]
