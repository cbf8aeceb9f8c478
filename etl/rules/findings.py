"""All findings of rules.md, as of the evaluation date -> the ``findings`` table.

Each rule family (``av``, ``cases``, ``equipment``, ``media``) returns frames
with the findings columns it knows; this module adds the article, the month,
the stable ``finding_key`` (``etl.rules.keys.finding_keys``) and writes the table in the caller's
transaction.  Times inside the rules are epoch seconds (see ``base``).

The AV findings an excused event would have without its interruption report (``av.excused_rules``) go to
the derived table ``excused_findings`` (the findings columns + ``report_id``): they count only where the
excuse is not effective (``etl.warehouse.verdicts``: rejected; or, with ``excuse_review: required``, not
accepted).

The SPOT-CHECK findings (``etl.rules.spotcheck``: the failed spot-check reviews of the supervision record) are
added to ``findings`` by the same step, so a run keeps them (same keys) while their objects are in the sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules import av, base, cases, coverage, equipment, media, spotcheck
from etl.rules.context import Ctx
from etl.rules.coverage import Coverage
from etl.rules.keys import RULES, finding_keys
from etl.warehouse import clip_runs, schema
from etl.warehouse.db import bulk_insert
from etl.warehouse.distribution import with_county
from etl.warehouse.partitions import Partition

if TYPE_CHECKING:
    from etl.warehouse.snapshots import Snapshots

COLUMNS = [c.name for c in schema.findings.columns]  # a finding's columns, as the table holds them
EXCUSED_COLUMNS = [*COLUMNS, "report_id"]
_TIME_COLS = ["occurred_at", "gap_start", "gap_end"]
_RULE_ORDER = {r: i for i, r in enumerate(RULES)}


@dataclass
class FindingsResult:
    """What the findings step produces: the findings, and what the metrics and the scores take from the
    frames it read (so that they do not scan those tables again)."""

    frame: pd.DataFrame  # every finding, as written (findings columns, times as datetime64)
    counts: dict[str, int]  # findings per rule id (every rule listed)
    # months 'YYYY-MM' up to the evaluation date holding an on-site event, a case, an action, a document, an
    # access record or a finding (``etl.scoring.metrics.data_months(found=...)`` adds the clips' months);
    # None when the access rules did not run
    months: set[str] | None
    # access records as the access rules read them (``etl.rules.media``: up to the evaluation date or without
    # time, ``at`` in epoch seconds, ``unit_code`` of the clip's device), for the scores; None likewise
    access: pd.DataFrame | None
    # the AV findings of the excused events (EXCUSED_COLUMNS): table ``excused_findings``
    excused: pd.DataFrame | None = None


def evaluate(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    integrity_checked: bool,
    runs: clip_runs.Runs | None = None,
    coverage: Coverage | None = None,
    clip_months: pd.DataFrame | None = None,
    snapshots: Snapshots | None = None,
) -> pd.DataFrame:
    """Every finding as a frame with the findings columns (times as datetime64); no writes.  The optional
    arguments: see ``compute``."""
    return _evaluate(
        conn,
        as_of,
        cfg,
        integrity_checked=integrity_checked,
        runs=runs,
        cov=coverage,
        clip_months=clip_months,
        snapshots=snapshots,
    )[0]


def _evaluate(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    integrity_checked: bool,
    runs: clip_runs.Runs | None,
    cov: Coverage | None,
    clip_months: pd.DataFrame | None,
    snapshots: Snapshots | None,
) -> tuple[pd.DataFrame, Ctx]:
    ctx = Ctx(conn, as_of, cfg, integrity_checked=integrity_checked, snapshots=snapshots, clip_months=clip_months)
    ctx.runs = runs if runs is not None else clip_runs.read(conn)
    ctx.coverage = cov if cov is not None else coverage.evaluate(conn, as_of, cfg, runs=ctx.runs, snapshots=snapshots)
    frames = [*av.rules(ctx), *cases.rules(ctx), *equipment.rules(ctx), *media.rules(ctx)]
    return assemble(frames), ctx


def compute_partition(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    integrity_checked: bool,
    runs: clip_runs.Runs,
    coverage: Coverage,
    clip_months: pd.DataFrame,
    partition: Partition,
) -> tuple[FindingsResult, pd.DataFrame]:
    """The findings of one partition's events, cases and clips (the AV, case and media rules), added to
    ``findings`` and ``excused_findings`` (``clear`` empties them first); and EQUIP-IDLE's candidates of its
    events (``equipment.idle_candidates``).  ``runs``: those of the officers the partition names
    (``clip_runs.read(conn, partition)``); ``coverage``: the partition's."""
    ctx = Ctx(conn, as_of, cfg, integrity_checked=integrity_checked, clip_months=clip_months, partition=partition)
    ctx.runs, ctx.coverage = runs, coverage
    df = assemble([*av.rules(ctx), *cases.rules(ctx), *media.rules(ctx)])
    ex = excused(ctx)
    _write(conn, df, ex)
    return _result(ctx, df, ex), equipment.idle_candidates(ctx)


def compute_rest(
    conn: Connection, as_of: datetime, cfg: dict, *, idle: list[pd.DataFrame], clip_months: pd.DataFrame
) -> FindingsResult:
    """What the partitions leave: the equipment and service-window findings (reference tables; EQUIP-IDLE from
    ``idle``, the partitions' candidates) and the SPOT-CHECK findings, added to ``findings``."""
    ctx = Ctx(conn, as_of, cfg, clip_months=clip_months)
    df = with_spotchecks(conn, assemble(equipment.rules(ctx, equipment.combine_idle(idle))))
    _write(conn, df, None)
    return FindingsResult(df, _counts(df), set(df["month"].dropna()), None)


def clear(conn: Connection) -> None:
    """Empty the tables the findings step writes."""
    conn.exec_driver_sql("DELETE FROM findings")
    conn.exec_driver_sql("DELETE FROM excused_findings")


def _write(conn: Connection, df: pd.DataFrame, ex: pd.DataFrame | None) -> None:
    bulk_insert(conn, "findings", with_county(conn, "findings", df))
    if ex is not None:
        bulk_insert(conn, "excused_findings", with_county(conn, "excused_findings", ex))


def _counts(df: pd.DataFrame) -> dict[str, int]:
    counts = df["rule_id"].value_counts()
    per_rule = {r: int(counts.get(r, 0)) for r in RULES}
    if counts.get(spotcheck.RULE_ID, 0):
        per_rule[spotcheck.RULE_ID] = int(counts[spotcheck.RULE_ID])
    return per_rule


def _result(ctx: Ctx, df: pd.DataFrame, ex: pd.DataFrame) -> FindingsResult:
    """The result of an evaluated context whose findings ``df`` were written."""
    access = ctx.cache.get("_access")
    months = None
    if access is not None:  # the months of the metrics' data from frames read here (metrics.data_months)
        months = months_up_to(
            ctx.as_of,
            [
                ctx.coverage.events["arrived_at"],
                ctx.t("cases")["registered_at"],
                ctx.t("case_actions")["started_at"],
                ctx.t("case_documents")["created_at"],
                access["at"],
            ],
            df["month"],
        )
    return FindingsResult(df, _counts(df), months, access, ex)


def excused(ctx: Ctx) -> pd.DataFrame:
    """The AV findings of the excused events (EXCUSED_COLUMNS) from an evaluated context."""
    return assemble_excused(av.excused_rules(ctx), ctx.coverage.events)


def months_up_to(as_of: datetime, times: list[np.ndarray], months: pd.Series) -> set[str]:
    """The months 'YYYY-MM' of ``times`` (epoch seconds; those after the evaluation date, or NaN, left out)
    and the distinct texts of ``months``."""
    as_of_s = float(np.floor(base.to_epoch(as_of)))  # whole seconds, as SQL compares the bound evaluation date
    found = {m for m in pd.unique(pd.Series(months, dtype=object)) if isinstance(m, str)}
    for sec in times:
        sec = np.asarray(sec, dtype=np.float64)
        sec = sec[sec <= as_of_s]  # NaN (no time) compares False: left out, as SQL's <= leaves it
        # whole seconds to months in numpy (floor, as the text 'YYYY-MM-DD HH:MM:SS' the database cuts to
        # its first 7 characters), then text for the few distinct months only
        month = np.unique(np.floor(sec).astype("int64").astype("datetime64[s]").astype("datetime64[M]"))
        found |= {str(m) for m in month.astype(str)}
    return found


def assemble(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Concatenate rule frames, fill article and month, order them and give each its ``finding_key``."""
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
    keys = [
        "_order",
        "unit_code",
        "case_no",
        "action_id",
        "doc_id",
        "incident_no",
        "clip_id",
        "device_sn",
        "log_id",
        "police_no",
        "doc_type",
        "window_id",
        "occurred_at",
        "gap_start",
    ]
    sort = df[keys].copy()
    for k in keys:
        if sort[k].dtype == object:
            sort[k] = sort[k].fillna("").astype(str)
    df = df.loc[sort.sort_values(keys, kind="stable").index].reset_index(drop=True)
    df["finding_key"] = finding_keys(df).to_numpy(dtype=object)
    return df[COLUMNS]


def assemble_excused(frames: list[pd.DataFrame], events: pd.DataFrame) -> pd.DataFrame:
    """``assemble`` of the excused events' AV findings, with the excusing ``report_id`` of each event
    (``events``: the coverage's events, incident_no and report_id)."""
    df = assemble(frames)
    report = pd.Series(events["report_id"].to_numpy(dtype=object), index=events["incident_no"].to_numpy(dtype=object))
    df["report_id"] = df["incident_no"].map(report).astype(object).to_numpy() if len(df) else pd.Series(dtype=object)
    return df[EXCUSED_COLUMNS]


def compute(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    integrity_checked: bool,
    runs: clip_runs.Runs | None = None,
    coverage: Coverage | None = None,
    clip_months: pd.DataFrame | None = None,
    snapshots: Snapshots | None = None,
) -> FindingsResult:
    """Rebuild ``findings`` and ``excused_findings`` inside the caller's transaction.

    What earlier steps of the evaluation computed is passed in (each read here when None): ``runs``
    (``etl.warehouse.clip_runs.read``), ``coverage`` (``etl.rules.coverage.compute``'s), ``clip_months``
    (``etl.warehouse.clip_days.per_month``), ``snapshots`` (the run's, through which large mirrors are read).
    """
    df, ctx = _evaluate(
        conn,
        as_of,
        cfg,
        integrity_checked=integrity_checked,
        runs=runs,
        cov=coverage,
        clip_months=clip_months,
        snapshots=snapshots,
    )
    ex = excused(ctx)
    df = with_spotchecks(conn, df)
    clear(conn)
    _write(conn, df, ex)
    return _result(ctx, df, ex)


def with_spotchecks(conn: Connection, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` and the SPOT-CHECK findings of the failed spot-check reviews (``etl.rules.spotcheck``: read from
    the supervision record, which a run never writes), in the findings columns."""
    spot = spotcheck.frame(conn)
    if spot.empty:
        return df
    for c in COLUMNS:
        if c not in spot.columns:
            spot[c] = pd.Series(pd.NaT if c in _TIME_COLS else None, index=spot.index, dtype=df[c].dtype)
    spot = spot[COLUMNS].astype({c: df[c].dtype for c in COLUMNS if df[c].dtype.kind in "Mf"})
    return pd.concat([df, spot], ignore_index=True)
