"""The evaluation of an ``etl run``: the regulation's checks, one step after another (shared/spec/rules.md).

``evaluate`` is the one entry the pipeline calls, inside the run's transaction,
after loading and the integrity check.  It reads top to bottom; every step
takes what it needs as arguments and returns what it produces, nothing is
handed over behind the steps' backs:

1. coverage: each officer's merged clip runs (``etl.warehouse.clip_runs``) ->
   ``event_coverage``, ``event_gaps``;
2. findings: the runs and the coverage, and the clips per device and month
   (``etl.warehouse.clip_days.per_month``, read once here and shared by
   EQUIP-IDLE, the metrics and the scores) -> ``findings``, plus the months
   of the data and the access records it read;
2a. officers: the coverage (each attending officer's own covered seconds), the findings and the verdicts ->
   ``finding_officers`` (who each finding names), ``officer_records`` (per officer and period;
   ``etl.scoring.officers``);
2b. data quality: the coverage (events and their officers) and the snapshots -> ``data_quality`` (view
   ``v_data_quality``: what the rules could not judge or judged on partial data; ``etl.rules.data_quality``);
3. metrics: the verdicts (``etl.warehouse.verdicts``: what people decided,
   read once here and passed to the metrics and the scores), the data months
   (what the findings step found, with the clips' months; computed once
   here) and the clips per month -> ``metrics``;
4. scores: the verdicts, the access records, the clips per month and the data months ->
   ``unit_scores``, ``unit_item_scores``, ``evaluation``;
5. kept: what the metrics and the scores read before the verdicts, for rescoring after a verdict
   without a run (``etl.scoring.kept``, read by ``etl.supervision.rescore``);
6. snapshots: the large mirrors as the rules read them, kept for the next
   run (``etl.warehouse.snapshots``).

Each step called alone (tests, benchmarks) without those arguments reads the
warehouse itself.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from etl.rules import config, coverage, data_quality, findings
from etl.scoring import kept, metrics, officers, scores
from etl.scoring.schemes import load_schemes
from etl.sources.contract import TABLES
from etl.warehouse import clip_days, clip_runs, distribution
from etl.warehouse.db import refresh_statistics
from etl.warehouse.snapshots import Snapshots
from etl.warehouse.verdicts import read_verdicts


def evaluate(
    conn: Connection,
    *,
    as_of: datetime,
    integrity_checked: bool,
    run_id: int | None = None,
    config_dir: Path | str | None = None,
    snapshots: Snapshots | None = None,
) -> dict:
    """Rebuild event_coverage, event_gaps, findings, data_quality, metrics, unit_scores, unit_item_scores, evaluation.

    ``snapshots``: the run's (created by the pipeline before the load); written at the end.  Returns
    {"findings": findings per rule id, "data_quality": queue rows per kind, "timings": seconds per step}.
    """
    cfg = config.load(config_dir)
    verdicts = read_verdicts(conn, cfg)  # the one input of what people decided (never written by a run)
    timings: dict[str, float] = {}
    distribution.backfill(conn)  # rows written without their county (by hand, an older version): the joins need it
    refresh_statistics(conn, [*TABLES, "media_files"])

    t = time.perf_counter()
    runs = clip_runs.read(conn)
    cov = coverage.compute(conn, as_of, cfg, runs=runs, snapshots=snapshots)
    timings["coverage"] = time.perf_counter() - t

    t = time.perf_counter()
    clip_months = clip_days.per_month(conn, as_of)
    found = findings.compute(
        conn,
        as_of,
        cfg,
        integrity_checked=integrity_checked,
        runs=runs,
        coverage=cov,
        clip_months=clip_months,
        snapshots=snapshots,
    )
    counts, found_months, access = found.counts, found.months, found.access
    refresh_statistics(conn, ["event_coverage", "event_gaps", "findings", "excused_findings"])
    timings["rules"] = time.perf_counter() - t

    t = time.perf_counter()  # 2a. per officer (issue 18): finding_officers, officer_records
    officers.compute(
        conn, coverage=cov, findings=found.frame, excused=found.excused, verdicts=verdicts, snapshots=snapshots
    )
    timings["officers"] = time.perf_counter() - t

    t = time.perf_counter()
    quality = data_quality.compute(conn, as_of, cfg, run_id=run_id, coverage=cov, snapshots=snapshots)
    del runs, cov, found  # the findings frame and the rules' tables are not needed further
    timings["data_quality"] = time.perf_counter() - t

    t = time.perf_counter()
    months = metrics.data_months(conn, as_of, found=found_months, clip_months=clip_months)
    metric_inputs = metrics.load_inputs(conn, as_of, clip_months=clip_months)  # before the verdicts: kept
    metrics.compute(conn, as_of, cfg, months=months, clip_months=clip_months, verdicts=verdicts, inputs=metric_inputs)
    timings["metrics"] = time.perf_counter() - t

    t = time.perf_counter()
    scored = scores.compute(
        conn,
        as_of,
        cfg,
        run_id=run_id,
        integrity_checked=integrity_checked,
        access=access,
        clip_months=clip_months,
        months=months,
        verdicts=verdicts,
    )
    timings["scores"] = time.perf_counter() - t

    t = time.perf_counter()
    kept.write(  # what rescoring after a verdict needs (etl.supervision.rescore), derived like the marts
        conn,
        run_id=run_id,
        as_of=as_of,
        cfg=cfg,
        schemes=load_schemes(cfg),
        base=scored["base"],
        metric_inputs=metric_inputs,
        objects=metrics.verdict_objects(conn, as_of),
        tallies=scored["tallies"],
        verdicts=verdicts,
    )
    del scored, metric_inputs
    timings["kept"] = time.perf_counter() - t

    t = time.perf_counter()
    if snapshots is not None:
        snapshots.finish(conn)  # the mirrors as read here, kept for the next run
    timings["snapshots"] = time.perf_counter() - t
    return {"findings": counts, "data_quality": quality, "timings": timings}
