"""On-site audio/video coverage of every on-site event (rules.md "Events").

Set-based: each officer's clips, merged into disjoint runs, come from
``clip_runs`` (kept by the load), every (event, attending
officer) window finds its runs with ``searchsorted``, the pieces are united
per event, clipped to the window and summed.  No per-event Python loop.

Decisions where rules.md leaves room (listed in the report and the docs):
- an on-site event is an incident with ``on_site = 1``, ``arrived_at`` and
  ``ended_at`` set and ``arrived_at`` not after the evaluation date;
- clip ownership: see ``base.resolve_owners`` (assignment boundary
  ``from_at <= started_at < to_at``);
- a zero-length window has window_s = covered_s = 0, covered_fraction null,
  no gap, status ``none`` (covered_s = 0) unless excused;
- the excusing report must come from an officer listed in incident_officers
  for that incident; there is no lower bound on ``reported_at``;
- cause hint: ``no_device`` when no attending officer held a device at
  ``arrived_at``; ``device_repair`` when every device they held then was in
  status repair or lost since (``status_since``) no later than ``arrived_at``;
  otherwise ``not_recorded``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules import base
from etl.warehouse import clip_runs
from etl.warehouse.db import bulk_insert
from etl.warehouse.distribution import with_county
from etl.warehouse.partitions import WHOLE, Partition

if TYPE_CHECKING:
    from etl.warehouse.snapshots import Snapshots


@dataclass
class Coverage:
    events: pd.DataFrame  # one row per on-site event: event_coverage columns (+ times as epoch seconds)
    gaps: pd.DataFrame  # incident_no, gap_no, gap_start, gap_end, gap_s (epoch seconds)
    # incident_no, police_no, has_clip (attending officer has a clip overlapping W), own_s (seconds of W their own
    # clips cover: the officer's record, etl.scoring.officers)
    pairs: pd.DataFrame


_EVENT_COLS = ["incident_no", "unit_code", "arrived_at", "ended_at", "on_site"]  # the incident columns used here


def on_site_events(incidents: pd.DataFrame, as_of_s: float) -> pd.DataFrame:
    ev = incidents[base.flag(incidents["on_site"]) & incidents["arrived_at"].notna() & incidents["ended_at"].notna()]
    ev = ev[ev["arrived_at"] <= as_of_s]
    return ev.sort_values("incident_no").reset_index(drop=True)


def evaluate(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    runs: clip_runs.Runs | None = None,
    snapshots: Snapshots | None = None,
    partition: Partition = WHOLE,
) -> Coverage:
    """Coverage of every on-site event (of the ``partition``'s counties); no writes.  ``runs``: the runs of
    every officer (of the partition's, ``clip_runs.read``) when the caller holds them (else read here);
    ``snapshots``: the run's, through which the large mirrors are read."""
    as_of_s = base.to_epoch(as_of)
    tol = float(cfg["params"]["gap_tolerance_s"])
    # the filter of on_site_events but the date, also in SQL so that other incidents never leave the database
    # (without the date, the rows kept between runs serve every evaluation date: etl.warehouse.snapshots)
    where = "on_site = 1 AND arrived_at IS NOT NULL AND ended_at IS NOT NULL"

    def read(table: str, columns: list[str] | None = None, where: str = "", kept: bool | None = None) -> pd.DataFrame:
        return base.read_table(conn, table, columns, partition.restrict(conn, table, where), kept, snapshots=snapshots)

    ev = on_site_events(read("incidents", _EVENT_COLS, where=where, kept=True), as_of_s)
    att = read("incident_officers")  # filtered to on-site events (and deduplicated) below
    if runs is None:
        runs = clip_runs.read(conn, partition)
    return compute_frames(
        ev, att, runs, read("interruption_reports"), read("device_assignments"), read("devices"), cfg, tol
    )


def compute_frames(
    ev: pd.DataFrame,
    att: pd.DataFrame,
    runs: clip_runs.Runs,
    reports: pd.DataFrame,
    assignments: pd.DataFrame,
    devices: pd.DataFrame,
    cfg: dict,
    tol: float,
) -> Coverage:
    """Pure part of ``evaluate``: frames and the officers' clip runs in, coverage frames out."""
    n = len(ev)
    ev_index = pd.Index(ev["incident_no"].to_numpy(), dtype=object)  # object: no string-dtype conversion
    att = att.assign(ev=ev_index.get_indexer(att["incident_no"].to_numpy()).astype(np.int64))
    att = att[(att["ev"].to_numpy() >= 0) & att["police_no"].notna().to_numpy()]
    officer, _ = pd.factorize(att["police_no"].to_numpy(dtype=object))
    _, first = np.unique(att["ev"].to_numpy() * (int(officer.max(initial=0)) + 1) + officer, return_index=True)
    att = att.iloc[np.sort(first)]  # an officer listed twice for one event counts once
    a_off = runs.officers.get_indexer(att["police_no"].to_numpy()).astype(np.int64)  # -1: no clip at all

    times = [ev["arrived_at"].to_numpy(), runs.start]
    base_t = min((float(np.min(t)) for t in times if len(t)), default=0.0) - 1
    win_s = (ev["arrived_at"].to_numpy() - base_t).astype(np.int64)
    win_e = (ev["ended_at"].to_numpy() - base_t).astype(np.int64)
    rs = (runs.start - base_t).astype(np.int64)
    re = (runs.end - base_t).astype(np.int64)
    a_ev = att["ev"].to_numpy()
    known = np.flatnonzero(a_off >= 0)
    p_idx, cs, ce = base.runs_in_windows(runs.group, rs, re, a_off[known], win_s[a_ev[known]], win_e[a_ev[known]])
    p_idx = known[p_idx]
    has_clip = np.zeros(len(att), dtype=bool)
    has_clip[p_idx] = True
    # the window's seconds the officer's own runs cover (disjoint runs, clipped to the window: a plain sum)
    own_s = np.bincount(p_idx, weights=(ce - cs).astype(np.float64), minlength=len(att))[: len(att)]
    covered, g_ev, g_s, g_e = base.union_gaps(n, a_ev[p_idx], cs, ce, win_s, win_e, tol)

    window = (win_e - win_s).astype(np.float64)
    gap_count = np.bincount(g_ev, minlength=n)[:n] if n else np.zeros(0, dtype=np.int64)
    raw = np.where(covered == 0, "none", np.where(gap_count == 0, "full", "partial")).astype(object)
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(window > 0, covered / np.where(window > 0, window, 1), np.nan)

    out = pd.DataFrame(
        {
            "incident_no": pd.Series(ev["incident_no"].to_numpy(), dtype=object),
            "unit_code": pd.Series(ev["unit_code"].to_numpy(), dtype=object),
            "arrived_at": ev["arrived_at"].to_numpy(),
            "ended_at": ev["ended_at"].to_numpy(),
            "window_s": window,
            "covered_s": covered.astype(np.float64),
            "covered_fraction": fraction,
            "gap_count": gap_count.astype(np.int64),
            "raw_status": pd.Series(raw, dtype=object),
            "officers": np.bincount(a_ev, minlength=n)[:n] if n else np.zeros(0, dtype=np.int64),
        }
    )
    out["report_id"] = _excusing_reports(out, att, reports, cfg)
    excused = out["report_id"].notna() & out["raw_status"].isin(["none", "partial"])
    out["status"] = pd.Series(
        np.where(excused, "excused", out["raw_status"]).astype(object), index=out.index, dtype=object
    )
    out.loc[~excused, "report_id"] = None
    out["cause"] = _causes(out, att, assignments, devices)

    gaps = pd.DataFrame(
        {
            "incident_no": pd.Series(out["incident_no"].to_numpy()[g_ev], dtype=object),
            "gap_start": g_s.astype(np.float64) + base_t,
            "gap_end": g_e.astype(np.float64) + base_t,
            "gap_s": (g_e - g_s).astype(np.float64),
        }
    )
    gaps.insert(1, "gap_no", gaps.groupby("incident_no").cumcount().to_numpy() + 1 if len(gaps) else [])
    pairs = pd.DataFrame(
        {
            "incident_no": pd.Series(att["incident_no"].to_numpy(), dtype=object),
            "police_no": pd.Series(att["police_no"].to_numpy(), dtype=object),
            "has_clip": has_clip,
            "own_s": own_s,
        }
    )
    return Coverage(out, gaps, pairs)


def _excusing_reports(out: pd.DataFrame, att: pd.DataFrame, reports: pd.DataFrame, cfg: dict) -> pd.Series:
    """The earliest timely interruption report of an attending officer, per event (or None).

    ``att`` carries ``ev``, the event's row position in ``out``.
    """
    deadline = float(cfg["params"]["report_deadline_h"]) * 3600
    r = reports.dropna(subset=["reported_at"])
    r = r.assign(
        ev=pd.Index(out["incident_no"].to_numpy(), dtype=object)
        .get_indexer(r["incident_no"].to_numpy())
        .astype(np.int64)
    )
    r = r[r["ev"].to_numpy() >= 0]
    mine = att[np.isin(att["ev"].to_numpy(), r["ev"].to_numpy())][["ev", "police_no"]]
    r = r.merge(mine.astype({"police_no": object}), on=["ev", "police_no"])
    r = r[r["reported_at"].to_numpy() <= out["ended_at"].to_numpy()[r["ev"].to_numpy()] + deadline]
    first = r.sort_values(["ev", "reported_at", "report_id"]).drop_duplicates("ev")
    result = np.full(len(out), None, dtype=object)
    result[first["ev"].to_numpy()] = first["report_id"].to_numpy(dtype=object)
    return pd.Series(result, index=out.index, dtype=object)


def _causes(out: pd.DataFrame, att: pd.DataFrame, assignments: pd.DataFrame, devices: pd.DataFrame) -> pd.Series:
    """Cause hint for events with status none or partial (rules.md): no_device / device_repair / not_recorded.

    ``att`` carries ``ev``, the event's row position in ``out``.
    """
    cause = np.full(len(out), None, dtype=object)
    bad = out["raw_status"].isin(["none", "partial"]).to_numpy()
    if not bad.any():
        return pd.Series(cause, index=out.index, dtype=object)
    x = att[bad[att["ev"].to_numpy()]][["ev", "police_no"]].astype({"police_no": object})
    x = x.assign(arrived_at=out["arrived_at"].to_numpy()[x["ev"].to_numpy()])
    held = x.merge(
        assignments[["device_sn", "police_no", "from_at", "to_at"]].astype({"police_no": object}), on="police_no"
    )
    held = held[(held["from_at"] <= held["arrived_at"]) & (held["to_at"].isna() | (held["arrived_at"] < held["to_at"]))]
    held = held.merge(devices[["device_sn", "status", "status_since"]], on="device_sn", how="left")
    held["broken"] = held["status"].isin(["repair", "lost"]) & (held["status_since"] <= held["arrived_at"])
    per = held.groupby("ev")["broken"].all()
    cause[bad] = "no_device"
    evs = per.index.to_numpy()
    cause[evs] = np.where(per.to_numpy(dtype=bool), "device_repair", "not_recorded")
    return pd.Series(cause, index=out.index, dtype=object)


_COV_COLS = [
    "incident_no",
    "unit_code",
    "arrived_at",
    "ended_at",
    "window_s",
    "covered_s",
    "covered_fraction",
    "gap_count",
    "status",
    "raw_status",
    "cause",
    "officers",
    "report_id",
]


def month_tally(ev: pd.DataFrame) -> pd.DataFrame:
    """Events and fully recorded or excused events per unit and month of arrival (``coverage_months``), from the
    coverage rows as written (``arrived_at`` as text); an event without a time is in no month."""
    t = pd.DataFrame(
        {
            "unit_code": ev["unit_code"].astype(object).to_numpy(),
            "month": ev["arrived_at"].astype(object).str[:7].to_numpy(),
            "ok": ev["status"].isin(("full", "excused")).astype(np.int64).to_numpy(),
        }
    )
    t = t[t["month"].notna()]
    g = t.groupby(["unit_code", "month"], dropna=False, sort=True)["ok"].agg(["size", "sum"]).reset_index()
    return pd.DataFrame(
        {
            "unit_code": g["unit_code"].astype(object).where(g["unit_code"].notna(), None).to_numpy(),
            "month": g["month"].astype(object).to_numpy(),
            "events": [int(v) for v in g["size"]],
            "ok": [int(v) for v in g["sum"]],
        }
    )


def compute(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    runs: clip_runs.Runs | None = None,
    snapshots: Snapshots | None = None,
    partition: Partition = WHOLE,
) -> Coverage:
    """Rebuild event_coverage and event_gaps inside the caller's transaction; returns the coverage (for the
    findings step, ``etl.rules.findings.compute(coverage=...)``).  ``runs``, ``snapshots``: see ``evaluate``.

    In a partition (``etl.evaluation``'s walk over the county groups) the rows of its events are added: the
    walk empties the tables first (``clear``)."""
    cov = evaluate(conn, as_of, cfg, runs=runs, snapshots=snapshots, partition=partition)
    ev = cov.events[_COV_COLS].copy()
    for col in ("arrived_at", "ended_at"):
        ev[col] = base.fmt_ts(ev[col]).replace("", None).to_numpy(dtype=object)
    frac = ev["covered_fraction"].to_numpy()
    ev["covered_fraction"] = pd.Series(np.where(np.isnan(frac), None, frac), index=ev.index, dtype=object)
    gaps = cov.gaps[["incident_no", "gap_no", "gap_start", "gap_end", "gap_s"]].copy()
    for col in ("gap_start", "gap_end"):
        gaps[col] = base.fmt_ts(gaps[col]).replace("", None).to_numpy(dtype=object)
    # Rewritten in full: measured at city scale, reading the stored rows to write only the differences costs
    # more than writing 250k rows.  Plain values (NaN turned into None above): no per-value conversion.
    if partition.whole:
        clear(conn)
    bulk_insert(conn, "event_coverage", with_county(conn, "event_coverage", ev), plain=True)
    bulk_insert(conn, "event_gaps", with_county(conn, "event_gaps", gaps), plain=True)
    bulk_insert(conn, "coverage_months", month_tally(ev), plain=True)  # a unit's events are in one partition
    return cov


def clear(conn: Connection) -> None:
    """Empty the tables ``compute`` writes."""
    for table in ("event_gaps", "event_coverage", "coverage_months"):
        conn.exec_driver_sql(f"DELETE FROM {table}")
