"""The regulation as checks: coverage, findings, metrics and scores (shared/spec/rules.md).

``evaluate_all`` is the one entry the pipeline calls, inside the run's
transaction, after loading and the integrity check.
"""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy.engine import Connection


def evaluate_all(conn: Connection, *, as_of: datetime, integrity_checked: bool, run_id: int | None = None,
                 config_dir=None) -> dict:  # noqa: ANN001
    """Rebuild event_coverage, event_gaps, findings, metrics, unit_scores, unit_item_scores, evaluation."""
    from etl.rules import config, coverage, findings
    from etl.scoring import metrics
    from etl.scoring import scores as scoring
    from etl.sources.contract import TABLES
    from etl.warehouse import snapshots
    from etl.warehouse.db import refresh_statistics

    cfg = config.load(config_dir)
    timings: dict[str, float] = {}
    refresh_statistics(conn, [*TABLES, "media_files"])

    t = time.perf_counter()
    coverage.compute(conn, as_of, cfg)
    timings["coverage"] = time.perf_counter() - t

    t = time.perf_counter()
    counts = findings.compute(conn, as_of, cfg, integrity_checked=integrity_checked)
    refresh_statistics(conn, ["event_coverage", "event_gaps", "findings"])
    timings["rules"] = time.perf_counter() - t

    t = time.perf_counter()
    metrics.compute(conn, as_of, cfg)
    timings["metrics"] = time.perf_counter() - t

    t = time.perf_counter()
    scoring.compute(conn, as_of, cfg, run_id=run_id, integrity_checked=integrity_checked)
    timings["scores"] = time.perf_counter() - t

    t = time.perf_counter()
    snapshots.finish(conn)  # the mirrors as read here, kept for the next run
    timings["snapshots"] = time.perf_counter() - t
    return {"findings": counts, "timings": timings}
