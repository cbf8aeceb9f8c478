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

Steps 1-2b run on the whole warehouse (``_whole``) or, above the settings' ``etl.partition_rows`` fact rows,
one group of county bureaus at a time (``_by_partition``, ``etl.warehouse.partitions``): same tables, memory
bounded by the largest group.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from etl import settings
from etl.rules import base, config, coverage, data_quality, findings
from etl.scoring import inputs, kept, metrics, officers, scores
from etl.scoring.schemes import load_schemes
from etl.sources.contract import TABLES
from etl.warehouse import clip_days, clip_runs, distribution
from etl.warehouse.db import refresh_statistics
from etl.warehouse.partitions import Partition, plan
from etl.warehouse.snapshots import Snapshots
from etl.warehouse.verdicts import Verdicts, read_verdicts


def evaluate(
    conn: Connection,
    *,
    as_of: datetime,
    integrity_checked: bool,
    run_id: int | None = None,
    config_dir: Path | str | None = None,
    snapshots: Snapshots | None = None,
    partitions: list[Partition] | None = None,
) -> dict:
    """Rebuild event_coverage, event_gaps, findings, data_quality, metrics, unit_scores, unit_item_scores, evaluation.

    ``snapshots``: the run's (created by the pipeline before the load); written at the end.  ``partitions``: the
    county groups to evaluate one at a time (``etl.warehouse.partitions.plan``: by default from the settings'
    ``etl.partition_rows``; one group is the whole warehouse).  Returns {"findings": findings per rule id,
    "data_quality": queue rows per kind, "timings": seconds per step, "partitions": the groups evaluated}.
    """
    cfg = config.load(config_dir)
    verdicts = read_verdicts(conn, cfg)  # the one input of what people decided (never written by a run)
    timings: dict[str, float] = {}
    distribution.backfill(conn)  # rows written without their county (by hand, an older version): the joins need it
    refresh_statistics(conn, [*TABLES, "media_files"])

    clip_months = clip_days.per_month(conn, as_of)
    if partitions is None:
        partitions = plan(conn, int(settings.load()["etl"]["partition_rows"]))
    steps = {"integrity_checked": integrity_checked, "run_id": run_id, "clip_months": clip_months}
    steps |= {"verdicts": verdicts, "timings": timings}
    if len(partitions) > 1:  # 1-2b by county group: memory follows the largest group
        counts, found_months, access, quality = _by_partition(conn, as_of, cfg, partitions, **steps)
    else:
        counts, found_months, access, quality = _whole(conn, as_of, cfg, snapshots=snapshots, **steps)

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
    return {"findings": counts, "data_quality": quality, "timings": timings, "partitions": len(partitions)}


def _whole(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    integrity_checked: bool,
    run_id: int | None,
    clip_months: pd.DataFrame,
    verdicts: Verdicts,
    snapshots: Snapshots | None,
    timings: dict[str, float],
) -> tuple[dict[str, int], set[str] | None, pd.DataFrame | None, dict[str, int]]:
    """Steps 1-2b on the whole warehouse; returns the findings per rule, the months of the data, the access
    records (``findings.FindingsResult``) and the data-quality queue per kind."""
    t = time.perf_counter()
    runs = clip_runs.read(conn)
    cov = coverage.compute(conn, as_of, cfg, runs=runs, snapshots=snapshots)
    timings["coverage"] = time.perf_counter() - t

    t = time.perf_counter()
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
    refresh_statistics(conn, ["event_coverage", "event_gaps", "findings", "excused_findings"])
    timings["rules"] = time.perf_counter() - t

    t = time.perf_counter()  # 2a. per officer (issue 18): finding_officers, officer_records
    officers.compute(
        conn, coverage=cov, findings=found.frame, excused=found.excused, verdicts=verdicts, snapshots=snapshots
    )
    timings["officers"] = time.perf_counter() - t

    t = time.perf_counter()
    quality = data_quality.compute(conn, as_of, cfg, run_id=run_id, coverage=cov, snapshots=snapshots)
    timings["data_quality"] = time.perf_counter() - t
    access = None if found.access is None else inputs.access_counts(found.access, as_of)  # what the scores count
    return found.counts, found.months, access, quality


def _by_partition(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    partitions: list[Partition],
    *,
    integrity_checked: bool,
    run_id: int | None,
    clip_months: pd.DataFrame,
    verdicts: Verdicts,
    timings: dict[str, float],
) -> tuple[dict[str, int], set[str] | None, pd.DataFrame | None, dict[str, int]]:
    """Steps 1-2b one county group at a time (docs/SCALE.md, "Processing by partition"): each group's coverage,
    AV, case and media findings, finding officers are written and dropped before the next; only small tallies
    cross groups (EQUIP-IDLE's candidates, the officers' sums, the queue's events, the months, the access records
    per unit and month for the scores).  Then what no group holds: the equipment, window and spot-check findings, the officers'
    records, the data-quality queue.  The snapshots of the last run are not used (a snapshot is of a whole read).
    Same result as ``_whole`` (tests/test_partitions.py)."""
    for step in ("coverage", "rules", "officers", "data_quality"):
        timings[step] = 0.0
    t = time.perf_counter()
    coverage.clear(conn)
    findings.clear(conn)
    officers.clear(conn)
    timings["coverage"] += time.perf_counter() - t
    counts: dict[str, int] = {}
    months: set[str] = set()
    access, idle, record_parts, queue_parts = [], [], [], []
    for part in partitions:
        t = time.perf_counter()
        runs = clip_runs.read(conn, part)
        cov = coverage.compute(conn, as_of, cfg, runs=runs, partition=part)
        timings["coverage"] += time.perf_counter() - t

        t = time.perf_counter()
        found, candidates = findings.compute_partition(
            conn,
            as_of,
            cfg,
            integrity_checked=integrity_checked,
            runs=runs,
            coverage=cov,
            clip_months=clip_months,
            partition=part,
        )
        del runs
        for rule, n in found.counts.items():
            counts[rule] = counts.get(rule, 0) + n
        months |= found.months or set()
        if found.access is not None:  # what the scores count of it: records per unit and month, summed below
            access.append(inputs.access_counts(found.access, as_of))
        idle.append(candidates)
        timings["rules"] += time.perf_counter() - t

        t = time.perf_counter()
        _links, record_part = officers.compute_partition(
            conn, coverage=cov, findings=found.frame, excused=found.excused, verdicts=verdicts, partition=part
        )
        record_parts.append(record_part)
        queue_parts.append(data_quality.from_coverage(cov, cfg, as_of))
        del cov, found
        timings["officers"] += time.perf_counter() - t

    t = time.perf_counter()
    rest = findings.compute_rest(conn, as_of, cfg, idle=idle, clip_months=clip_months)
    for rule, n in rest.counts.items():
        counts[rule] = counts.get(rule, 0) + n
    months |= rest.months or set()
    refresh_statistics(conn, ["event_coverage", "event_gaps", "findings", "excused_findings"])
    timings["rules"] += time.perf_counter() - t

    t = time.perf_counter()
    officers.link_rest(conn, rest.frame)
    officers.write_records(conn, officers.finish(record_parts, base.read_table(conn, "officers")))
    timings["officers"] += time.perf_counter() - t

    t = time.perf_counter()
    queue = tuple(pd.concat([q[i] for q in queue_parts], ignore_index=True) for i in (0, 1))
    quality = data_quality.compute(conn, as_of, cfg, run_id=run_id, gathered=queue)
    timings["data_quality"] += time.perf_counter() - t
    return counts, months, inputs.add_counts(access) if access else None, quality
