"""All findings of rules.md, as of the evaluation date -> the ``findings`` table.

Each rule family (``av``, ``cases``, ``equipment``, ``media``) returns frames
with the findings columns it knows; this module adds the article, the month,
a stable sequential ``finding_id`` and writes the table in the caller's
transaction.  Times inside the rules are epoch seconds (see ``base``).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules import av, base, cases, coverage, equipment, media
from etl.rules.context import Ctx
from etl.rules.keys import RULES
from etl.scoring import metrics
from etl.scoring import scores as scoring
from etl.warehouse import clip_runs
from etl.warehouse.db import bulk_insert

COLUMNS = ["finding_id", "rule_id", "article", "unit_code", "case_no", "action_id", "doc_id", "incident_no", "clip_id",
           "device_sn", "log_id", "police_no", "doc_type", "window_id", "occurred_at", "month", "cause", "gap_start",
           "gap_end", "gap_s", "detail"]
_TIME_COLS = ["occurred_at", "gap_start", "gap_end"]
_RULE_ORDER = {r: i for i, r in enumerate(RULES)}


def evaluate(conn: Connection, as_of: datetime, cfg: dict, *, integrity_checked: bool) -> pd.DataFrame:
    """Every finding as a frame with the findings columns (times as datetime64); no writes."""
    return _evaluate(conn, as_of, cfg, integrity_checked=integrity_checked)[0]


def _evaluate(conn: Connection, as_of: datetime, cfg: dict, *, integrity_checked: bool) -> tuple[pd.DataFrame, Ctx]:
    ctx = Ctx(conn, as_of, cfg, integrity_checked=integrity_checked)
    ctx.runs = base.take_cached(conn, clip_runs.RUNS_CACHE, as_of, cfg)
    if ctx.runs is None:
        ctx.runs = clip_runs.read(conn)
    ctx.coverage = base.take_cached(conn, coverage.COVERAGE_CACHE, as_of, cfg)
    if ctx.coverage is None:
        ctx.coverage = coverage.evaluate(conn, as_of, cfg, runs=ctx.runs)
    frames = [*av.rules(ctx), *cases.rules(ctx), *equipment.rules(ctx), *media.rules(ctx)]
    return assemble(frames), ctx


def assemble(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate rule frames, fill article and month, order and number them."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
        for c in _TIME_COLS:
            out[c] = pd.Series(dtype="datetime64[ns]")
        return out
    df = pd.concat([f.reset_index(drop=True).astype(object) for f in frames], ignore_index=True)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    art = df["rule_id"].map({r: v["article"] for r, v in RULES.items()})
    df["article"] = df["article"].where(df["article"].notna(), art)
    for c in _TIME_COLS:
        df[c] = pd.to_datetime(pd.to_numeric(df[c], errors="coerce"), unit="s")
    df["gap_s"] = pd.to_numeric(df["gap_s"], errors="coerce")
    df["month"] = df["occurred_at"].dt.strftime("%Y-%m")
    df["_order"] = df["rule_id"].map(_RULE_ORDER).fillna(len(_RULE_ORDER))
    keys = ["_order", "unit_code", "case_no", "action_id", "doc_id", "incident_no", "clip_id", "device_sn", "log_id",
            "police_no", "doc_type", "window_id", "occurred_at", "gap_start"]
    sort = df[keys].copy()
    for k in keys:
        if sort[k].dtype == object:
            sort[k] = sort[k].fillna("").astype(str)
    df = df.loc[sort.sort_values(keys, kind="stable").index].reset_index(drop=True)
    df["finding_id"] = np.arange(1, len(df) + 1)
    return df[COLUMNS]


def compute(conn: Connection, as_of: datetime, cfg: dict, *, integrity_checked: bool) -> dict[str, int]:
    """Rebuild ``findings``; returns the number of findings per rule id (every rule listed)."""
    df, ctx = _evaluate(conn, as_of, cfg, integrity_checked=integrity_checked)
    conn.exec_driver_sql("DELETE FROM findings")
    bulk_insert(conn, "findings", df)
    if "_access" in ctx.cache:  # the months of the metrics' data from frames read here (metrics.data_months)
        metrics.remember_data_months(conn, as_of, [
            ctx.coverage.events["arrived_at"], ctx.t("cases")["registered_at"], ctx.t("case_actions")["started_at"],
            ctx.t("case_documents")["created_at"], ctx.cache["_access"]["at"]], df["month"])
        scoring.remember_access(conn, as_of, ctx.cache["_access"])  # the access records counted per unit, month
    counts = df["rule_id"].value_counts()
    return {r: int(counts.get(r, 0)) for r in RULES}
