"""Warehouse schema: mirrors of the source tables, ETL bookkeeping, marts and views.

The mirrors are generated from ``etl.sources.contract`` so the contract stays the one
place that names source columns.  Views named in ``shared/spec/interface.md``
(``v_event_coverage``, ``v_findings``, ``v_unit_scores``,
``v_unit_item_scores``, ``v_quarantine``) are the public interface; everything
else may change.
"""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from etl.sources.contract import TABLES
from etl.warehouse.distribution import DISTRIBUTED, backfill
from etl.warehouse.distribution import KEY as DISTRIBUTION_KEY

# Datetimes: text "YYYY-MM-DD HH:MM:SS" on SQLite, timestamp elsewhere.
DT = sa.DateTime().with_variant(
    sqlite.DATETIME(
        storage_format="%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d",
        regexp=r"(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)",
    ),
    "sqlite",
)

metadata = sa.MetaData()

_KIND_TYPES = {"str": sa.Text, "bool": sa.SmallInteger, "int": sa.BigInteger, "dt": lambda: DT, "date": sa.Date}

# --- mirrors of the source tables -------------------------------------------------
for _tab in TABLES.values():
    sa.Table(
        _tab.name,
        metadata,
        *[sa.Column(c.name, _KIND_TYPES[c.kind](), primary_key=c.name in _tab.key) for c in _tab.columns],
    )

# --- ETL bookkeeping -----------------------------------------------------------------
etl_runs = sa.Table(
    "etl_runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", DT),
    sa.Column("ended_at", DT),
    sa.Column("status", sa.Text),  # running | ok | failed
    sa.Column("sources_hash", sa.Text),
    sa.Column("sources_file", sa.Text),
    sa.Column("as_of", DT),
    sa.Column("stats", sa.Text),  # JSON: per table read / loaded / quarantined, per rule counts, timings
    sa.Column("message", sa.Text),
)
watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("updated_at", sa.Text),
    sa.Column("row_key", sa.Text),
)
table_hashes = sa.Table(
    "table_hashes",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("content_hash", sa.Text),
)
# etl.warehouse.fingerprints: the raw rows each full-compare table was last loaded from, in parts of at most
# fingerprints.PART_ROWS rows (one blob per table grew to hundreds of MB at province scale, and the driver's
# copies of it to a GB; PostgreSQL refuses a value over 1 GB)
raw_fingerprint_parts = sa.Table(
    "raw_fingerprint_parts",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("sources_hash", sa.Text),
    sa.Column("version", sa.Text),
    sa.Column("data", sa.LargeBinary),
)
rule_snapshots = sa.Table(  # etl.warehouse.snapshots: the large mirrors as the rules last read them
    "rule_snapshots",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Integer),
    sa.Column("version", sa.Text),
    sa.Column("data", sa.LargeBinary),
)
rescore_inputs = sa.Table(  # etl.scoring.kept: what the last run's scoring read, for etl.supervision.rescore
    "rescore_inputs",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("run_id", sa.Integer),
    sa.Column("version", sa.Text),
    sa.Column("data", sa.LargeBinary),
)
quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("run_id", sa.Integer),
    sa.Column("source", sa.Text),
    sa.Column("table_name", sa.Text),
    sa.Column("row_key", sa.Text),
    sa.Column("reason", sa.Text),
    sa.Column("payload", sa.Text),
)

# every check of a successful run: whether it ran and over what (etl.pipeline; view v_source_health)
source_health = sa.Table(
    "source_health",
    metadata,
    sa.Column("run_id", sa.Integer),
    sa.Column("check_name", sa.Text),  # load:<table> | integrity | media_paths | future_rows | shrink_guard | rules
    sa.Column("performed", sa.SmallInteger),  # 0: the check did not run (detail says why)
    sa.Column("objects", sa.BigInteger),  # what it ran over (rows, clips, tables), NULL when not known
    sa.Column("detail", sa.Text),
    sa.Index("ix_source_health_run_id", "run_id"),
)

# --- integrity -------------------------------------------------------------------------
media_files = sa.Table(
    "media_files",
    metadata,
    sa.Column("clip_id", sa.Text, primary_key=True),
    sa.Column("file_path", sa.Text),
    sa.Column("present", sa.SmallInteger),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("mtime_ns", sa.BigInteger),
    sa.Column("sha256_actual", sa.Text),
    sa.Column("checked_at", DT),
)

# --- derived at load: each officer's recorded time as merged runs (etl.warehouse.clip_runs) ----------
clip_runs = sa.Table(
    "clip_runs",
    metadata,
    sa.Column("police_no", sa.Text, primary_key=True),
    sa.Column("runs", sa.Integer),
    sa.Column("starts", sa.LargeBinary),
    sa.Column("ends", sa.LargeBinary),  # little-endian int64 epoch seconds
)

clip_days = sa.Table(  # etl.warehouse.clip_days: clips per device and day
    "clip_days",
    metadata,
    sa.Column("device_sn", sa.Text, primary_key=True),
    sa.Column("day", sa.Text, primary_key=True),
    sa.Column("clips", sa.Integer),
    sa.Column("last_start", DT),
)

# --- marts (rebuilt by each run, inside its transaction) --------------------------------
event_coverage = sa.Table(
    "event_coverage",
    metadata,
    sa.Column("incident_no", sa.Text, primary_key=True),
    sa.Column("unit_code", sa.Text),
    sa.Column("arrived_at", DT),
    sa.Column("ended_at", DT),
    sa.Column("window_s", sa.Float),
    sa.Column("covered_s", sa.Float),
    sa.Column("covered_fraction", sa.Float),
    sa.Column("gap_count", sa.Integer),
    sa.Column("status", sa.Text),  # full | partial | none | excused
    sa.Column("raw_status", sa.Text),  # full | partial | none before excuse
    sa.Column("cause", sa.Text),  # no_device | device_repair | not_recorded (none/partial only)
    sa.Column("officers", sa.Integer),
    sa.Column("report_id", sa.Text),
)
event_gaps = sa.Table(
    "event_gaps",
    metadata,
    sa.Column("incident_no", sa.Text),
    sa.Column("gap_no", sa.Integer),
    sa.Column("gap_start", DT),
    sa.Column("gap_end", DT),
    sa.Column("gap_s", sa.Float),
)


# a finding's columns (etl.rules.findings.COLUMNS); finding_key: etl.rules.keys.finding_key, stable across runs
def _finding_columns() -> list[sa.Column]:
    return [
        sa.Column("finding_key", sa.Text, primary_key=True),
        sa.Column("rule_id", sa.Text),
        sa.Column("article", sa.Text),
        sa.Column("unit_code", sa.Text),
        sa.Column("case_no", sa.Text),
        sa.Column("action_id", sa.Text),
        sa.Column("doc_id", sa.Text),
        sa.Column("incident_no", sa.Text),
        sa.Column("clip_id", sa.Text),
        sa.Column("device_sn", sa.Text),
        sa.Column("log_id", sa.Text),
        sa.Column("police_no", sa.Text),
        sa.Column("doc_type", sa.Text),  # DOC-MISSING: the missing type
        sa.Column("window_id", sa.Text),  # WINDOW-CCTV
        sa.Column("occurred_at", DT),  # the time that assigns it to a period
        sa.Column("month", sa.Text),  # YYYY-MM of occurred_at (period assignment)
        sa.Column("cause", sa.Text),  # AV-NONE / AV-GAP cause hint
        sa.Column("gap_start", DT),
        sa.Column("gap_end", DT),
        sa.Column("gap_s", sa.Float),
        sa.Column("detail", sa.Text),
    ]


findings = sa.Table("findings", metadata, *_finding_columns())
# the AV findings an excused event would have without its Art. 17 report (etl.rules.av.excused_rules); they
# count where the excuse is not effective (etl.warehouse.verdicts)
excused_findings = sa.Table(
    "excused_findings",
    metadata,
    *_finding_columns(),
    sa.Column("report_id", sa.Text),
    sa.Index("ix_excused_findings_incident_no", "incident_no"),
)
# who each finding names (etl.rules.officers; issue 18): the finding keeps its key, its officers are rows here
finding_officers = sa.Table(
    "finding_officers",
    metadata,
    sa.Column("finding_key", sa.Text),
    sa.Column("police_no", sa.Text),
    sa.Column("cause", sa.Text),  # AV-NONE / AV-GAP / AV-OFFICER: no_device | device_repair | not_recorded
    sa.Column("basis", sa.Text),  # attended | officer | case_handler
    sa.Index("ix_finding_officers_finding_key", "finding_key"),
    sa.Index("ix_finding_officers_police_no", "police_no"),
)
# the officer's record per period (etl.scoring.officers; view v_officer_records)
officer_records = sa.Table(
    "officer_records",
    metadata,
    sa.Column("period", sa.Text),
    sa.Column("police_no", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("events_attended", sa.Integer),
    sa.Column("events_fully_recorded", sa.Integer),
    sa.Column("own_coverage", sa.Float),
    sa.Column("findings_av", sa.Integer),
    sa.Column("findings_text", sa.Integer),
    sa.Column("findings_access", sa.Integer),
    sa.Column("findings_integrity", sa.Integer),
    sa.Index("ix_officer_records_police_no_period", "police_no", "period"),
    sa.Index("ix_officer_records_unit_code_period", "unit_code", "period"),
)
# events and fully recorded (or excused) events per owning unit and month: the 现场记录 heatmap reads these few
# rows instead of a year of events (issue 18: a province's year is millions); rebuilt with event_coverage
coverage_months = sa.Table(
    "coverage_months",
    metadata,
    sa.Column("unit_code", sa.Text),
    sa.Column("month", sa.Text),  # YYYY-MM of arrived_at
    sa.Column("events", sa.Integer),
    sa.Column("ok", sa.Integer),  # status full or excused
    sa.Index("ix_coverage_months_month_unit_code", "month", "unit_code"),
)
metrics = sa.Table(
    "metrics",
    metadata,
    sa.Column("period", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("metric_id", sa.Text),
    sa.Column("numerator", sa.Float),
    sa.Column("denominator", sa.Float),
    sa.Column("value", sa.Float),
)
unit_scores = sa.Table(
    "unit_scores",
    metadata,
    sa.Column("scheme_id", sa.Text),
    sa.Column("scheme_version", sa.Text),
    sa.Column("active", sa.SmallInteger),
    sa.Column("period", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("unit_level", sa.Text),
    sa.Column("total", sa.Float),
    sa.Column("grade", sa.Text),
    sa.Column("rank", sa.Integer),
    sa.Column("veto", sa.SmallInteger),
)
unit_item_scores = sa.Table(
    "unit_item_scores",
    metadata,
    sa.Column("scheme_id", sa.Text),
    sa.Column("scheme_version", sa.Text),
    sa.Column("active", sa.SmallInteger),
    sa.Column("period", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("item_id", sa.Text),
    sa.Column("item_name", sa.Text),
    sa.Column("points", sa.Float),
    sa.Column("objects", sa.Integer),
    sa.Column("clean", sa.Integer),
    sa.Column("deductions", sa.Float),
    sa.Column("score", sa.Float),
)
evaluation = sa.Table(
    "evaluation",
    metadata,
    sa.Column("run_id", sa.Integer),
    sa.Column("as_of", DT),
    sa.Column("data_as_of", DT),
    sa.Column("scheme_id", sa.Text),
    sa.Column("scheme_version", sa.Text),
    sa.Column("integrity_checked", sa.SmallInteger),
    sa.Column("computed_at", DT),
    sa.Column("excuse_review", sa.Text),  # auto | required (config/rules.yaml) of this evaluation; v_findings reads it
)

# the data-quality queue (etl.rules.data_quality): objects the rules could not judge or judged on partial data;
# derived, but a row's first_seen_run survives every rerun (rows no longer found stay with current = 0)
data_quality = sa.Table(
    "data_quality",
    metadata,
    sa.Column("kind", sa.Text, primary_key=True),
    sa.Column("source", sa.Text, primary_key=True),
    sa.Column("table_name", sa.Text, primary_key=True),
    sa.Column("object_key", sa.Text, primary_key=True),
    sa.Column("unit_code", sa.Text),  # the unit that must fix it
    sa.Column("detail", sa.Text),
    sa.Column("first_seen_run", sa.Integer),
    sa.Column("last_seen_run", sa.Integer),
    sa.Column("current", sa.SmallInteger),  # 1: found by the last evaluation
    sa.Index("ix_data_quality_unit_code_kind", "unit_code", "kind"),
)

# --- the supervision record (shared/spec/supervision.md) -------------------------------------------
# Judgements people make about the findings.  Written only by etl.supervision's actions (pages and CLI), never
# by `etl run`: no run deletes, truncates or rewrites these tables (tests/test_supervision_persistence.py).
# Keys are stable (finding_key, incident_no, period + version), so a judgement survives every rebuild of the
# derived data; a judgement whose object left the sources is kept and shown as orphaned.
SUPERVISION_TABLES = (
    "sup_finding_state",
    "sup_reviews",
    "sup_appeals",
    "sup_excuse_reviews",
    "sup_excuse_history",
    "sup_publications",
    "sup_published_scores",
    "sup_published_items",
    "sup_published_findings",
    "sup_published_frames",
    "sup_campaigns",
    "sup_spotcheck_items",
    "sup_spotcheck_points",
    "sup_spotcheck_history",
    "sup_notices",
    "sup_notice_findings",
    "sup_notice_events",
)
sup_finding_state = sa.Table(  # the current verdict of a finding (absent: open); version guards stale writes
    "sup_finding_state",
    metadata,
    sa.Column("finding_key", sa.Text, primary_key=True),
    sa.Column("state", sa.Text, nullable=False),  # open | confirmed | exempted
    sa.Column("category", sa.Text),  # 不可抗力 | 数据错误 | 已书面说明 | 其他
    sa.Column("reason", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),  # 1 on the first write, +1 on every change
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", DT),
    # the finding as it was at the last write: an orphaned judgement stays readable
    sa.Column("rule_id", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("month", sa.Text),
    sa.Column("detail", sa.Text),
)
sup_reviews = sa.Table(  # every verdict ever given, append-only
    "sup_reviews",
    metadata,
    sa.Column("review_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("finding_key", sa.Text, nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),  # confirm | exempt | reopen
    sa.Column("category", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by_user", sa.Text, nullable=False),
    sa.Column("role", sa.Text),
    sa.Column("at", DT, nullable=False),
    sa.Column("source", sa.Text),  # review | appeal
)
sup_appeals = sa.Table(
    "sup_appeals",
    metadata,
    sa.Column("appeal_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("finding_key", sa.Text, nullable=False),
    sa.Column("unit_code", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("filed_by", sa.Text, nullable=False),
    sa.Column("filed_at", DT, nullable=False),
    sa.Column("late", sa.SmallInteger, nullable=False),  # 1: filed after the period's publication
    sa.Column("decision", sa.Text),  # NULL (pending) | upheld | rejected
    sa.Column("decision_reason", sa.Text),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", DT),
    sa.Column("version", sa.Integer, nullable=False),
)
# One pending appeal per finding, guarded by the database (two unit administrators filing at the same moment).
sa.Index(
    "ux_sup_appeals_pending",
    sup_appeals.c.finding_key,
    unique=True,
    sqlite_where=sup_appeals.c.decision.is_(None),
    postgresql_where=sup_appeals.c.decision.is_(None),
)
sup_excuse_reviews = sa.Table(  # the current judgement of an event's Art. 17 interruption report
    "sup_excuse_reviews",
    metadata,
    sa.Column("incident_no", sa.Text, primary_key=True),
    sa.Column("report_id", sa.Text),
    sa.Column("verdict", sa.Text, nullable=False),  # accepted | rejected
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by_user", sa.Text, nullable=False),
    sa.Column("at", DT, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
)
sup_excuse_history = sa.Table(
    "sup_excuse_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("incident_no", sa.Text, nullable=False),
    sa.Column("report_id", sa.Text),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by_user", sa.Text, nullable=False),
    sa.Column("at", DT, nullable=False),
)
sup_publications = sa.Table(
    "sup_publications",
    metadata,
    sa.Column("publication_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("scheme_id", sa.Text, nullable=False),
    sa.Column("scheme_version", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("published_by", sa.Text, nullable=False),
    sa.Column("published_at", DT, nullable=False),
    sa.Column("as_of", DT),
    sa.Column("data_as_of", DT),
    sa.UniqueConstraint("period", "version", name="uq_sup_publications_period_version"),
)
sup_published_scores = sa.Table(
    "sup_published_scores",
    metadata,
    sa.Column("publication_id", sa.Integer, nullable=False),
    sa.Column("period", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("unit_code", sa.Text, nullable=False),
    sa.Column("unit_level", sa.Text),
    sa.Column("total", sa.Float),
    sa.Column("grade", sa.Text),
    sa.Column("rank", sa.Integer),
    sa.Column("veto", sa.SmallInteger),
)
sup_published_items = sa.Table(
    "sup_published_items",
    metadata,
    sa.Column("publication_id", sa.Integer, nullable=False),
    sa.Column("unit_code", sa.Text, nullable=False),
    sa.Column("item_id", sa.Text, nullable=False),
    sa.Column("item_name", sa.Text),
    sa.Column("points", sa.Float),
    sa.Column("objects", sa.Integer),
    sa.Column("clean", sa.Integer),
    sa.Column("deductions", sa.Float),
    sa.Column("score", sa.Float),
)
sup_published_findings = sa.Table(  # every finding that counted in the published figures, with its verdict
    "sup_published_findings",
    metadata,
    sa.Column("publication_id", sa.Integer, nullable=False),
    sa.Column("finding_key", sa.Text, nullable=False),
    sa.Column("rule_id", sa.Text),
    sa.Column("article", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("review_state", sa.Text),
    sa.Column("month", sa.Text),
    sa.Column("occurred_at", DT),
    sa.Column("detail", sa.Text),
)
sup_published_frames = sa.Table(  # the workbook's inputs at city scope, frozen (zstd Arrow IPC)
    "sup_published_frames",
    metadata,
    sa.Column("publication_id", sa.Integer, primary_key=True),
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("data", sa.LargeBinary),
)

# --- spot-checks (随机抽查, Art. 16, 11): campaigns, their sampled objects and the checklist results ---------
sup_campaigns = sa.Table(
    "sup_campaigns",
    metadata,
    sa.Column("campaign_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("period", sa.Text, nullable=False),  # 2026-07 | 2026-Q3 | 2026
    sa.Column("object_kind", sa.Text, nullable=False),  # events | cases
    sa.Column("scope_unit", sa.Text),  # NULL: the whole city; else the unit whose scope was drawn
    sa.Column("per_unit", sa.Integer, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    sa.Column("population", sa.Integer, nullable=False),  # objects that could be drawn
    sa.Column("drawn", sa.Integer, nullable=False),
    sa.Column("draw_note", sa.Text),  # e.g. the units whose population was smaller than the sample size
    sa.Column("reviewers", sa.Text),  # comma-separated user names assigned (NULL: any legal user)
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_by", sa.Text, nullable=False),
    sa.Column("created_at", DT, nullable=False),
    sa.Column("state", sa.Text, nullable=False),  # open | closed
    sa.Column("version", sa.Integer, nullable=False),
)
sup_spotcheck_items = sa.Table(  # one sampled object of a campaign and its current review result
    "sup_spotcheck_items",
    metadata,
    sa.Column("campaign_id", sa.Integer, primary_key=True),
    sa.Column("object_key", sa.Text, primary_key=True),  # incident_no (events) | case_no (cases)
    sa.Column("object_kind", sa.Text, nullable=False),
    sa.Column("unit_code", sa.Text, nullable=False),  # the object's unit when drawn
    sa.Column("period", sa.Text, nullable=False),  # the campaign's period
    sa.Column("month", sa.Text),  # YYYY-MM of the object's time (arrived_at | registered_at)
    sa.Column("occurred_at", DT),  # the object's time
    sa.Column("draw_order", sa.Integer, nullable=False),
    sa.Column("assigned_to", sa.Text),
    sa.Column("verdict", sa.Text),  # NULL (not reviewed) | pass | fail
    sa.Column("failed_points", sa.Text),  # "16.2,16.6" (sorted point ids) | NULL
    sa.Column("note", sa.Text),
    sa.Column("reviewed_by", sa.Text),
    sa.Column("reviewed_at", DT),
    sa.Column("version", sa.Integer, nullable=False),  # 1 when drawn, +1 on every review
)
sup_spotcheck_points = sa.Table(  # the checklist of the current review: one row per point
    "sup_spotcheck_points",
    metadata,
    sa.Column("campaign_id", sa.Integer, primary_key=True),
    sa.Column("object_key", sa.Text, primary_key=True),
    sa.Column("point_id", sa.Text, primary_key=True),  # 16.1-16.7, 16.v, 11 | an article number for cases
    sa.Column("result", sa.Text, nullable=False),  # pass | fail | n/a
    sa.Column("note", sa.Text),
)
sup_spotcheck_history = sa.Table(  # every review ever recorded, append-only
    "sup_spotcheck_history",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", sa.Integer, nullable=False),
    sa.Column("object_key", sa.Text, nullable=False),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("failed_points", sa.Text),
    sa.Column("points", sa.Text),  # JSON {point_id: [result, note]}
    sa.Column("note", sa.Text),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("by_user", sa.Text, nullable=False),
    sa.Column("at", DT, nullable=False),
)

# --- rectification (整改, Art. 35): notices, their findings, and what happened to them ----------------------
sup_notices = sa.Table(
    "sup_notices",
    metadata,
    sa.Column("notice_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("unit_code", sa.Text, nullable=False),
    sa.Column("issued_by", sa.Text, nullable=False),
    sa.Column("issued_at", DT, nullable=False),
    sa.Column("deadline", sa.Date, nullable=False),  # due by the end of this day
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("basis", sa.Text, nullable=False),  # findings | period | campaign
    sa.Column("basis_ref", sa.Text),  # "2026-07 AV-NONE,AV-GAP" | campaign id
    sa.Column("period", sa.Text),  # the period the notice counts in (its findings' period, or the issue month)
    sa.Column("accountability", sa.Text),  # JSON {"officers": [police_no...], "paragraph": "..."} | NULL
    sa.Column("state", sa.Text, nullable=False),  # open | responded | returned | closed
    sa.Column("closed_at", DT),
    sa.Column("closed_by", sa.Text),
    sa.Column("version", sa.Integer, nullable=False),
)
sup_notice_findings = sa.Table(  # the findings a notice orders rectified, copied as they were at issue
    "sup_notice_findings",
    metadata,
    sa.Column("notice_id", sa.Integer, primary_key=True),
    sa.Column("finding_key", sa.Text, primary_key=True),
    sa.Column("rule_id", sa.Text),
    sa.Column("article", sa.Text),
    sa.Column("unit_code", sa.Text),
    sa.Column("month", sa.Text),
    sa.Column("detail", sa.Text),
    sa.Index("ix_sup_notice_findings_key", "finding_key"),
)
sup_notice_events = sa.Table(  # the notice's history, append-only: issue, respond, return, accept
    "sup_notice_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("notice_id", sa.Integer, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # issue | respond | return | accept
    sa.Column("text", sa.Text, nullable=False),  # the notice text, the measures taken, the re-check note
    sa.Column("deadline", sa.Date),  # issue: the deadline; return: a new deadline (NULL: unchanged)
    sa.Column("by_user", sa.Text, nullable=False),
    sa.Column("at", DT, nullable=False),
)

# --- the dashboard's own audit log (append-only from the application) -------------------
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", DT),
    sa.Column("username", sa.Text),
    sa.Column("role", sa.Text),
    sa.Column("scope", sa.Text),
    sa.Column("page", sa.Text),
    sa.Column("action", sa.Text),
    sa.Column("object", sa.Text),
    sa.Column("reason", sa.Text),
    # the hash chain (etl.warehouse.audit): the row before's row_hash, and SHA-256 of prev_hash and this row
    sa.Column("prev_hash", sa.Text),
    sa.Column("row_hash", sa.Text),
)
AUDIT_CHAIN_COLUMNS = ("prev_hash", "row_hash")
# The database refuses UPDATE and DELETE of audit rows (and TRUNCATE on PostgreSQL); docs/SECURITY.md
_AUDIT_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
        "DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log",
        "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
        "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    ],
}


def _ensure_audit_chain(conn: Connection) -> None:
    """The audit log's hash-chain columns and its append-only triggers.  A log of before the chain gets the
    columns, its rows sealed into the chain in id order (before the triggers exist), then the triggers."""
    from etl.warehouse.chain import GENESIS, row_hash

    dialect = conn.dialect.name
    have = {c["name"] for c in sa.inspect(conn).get_columns("audit_log")}
    missing = [c for c in AUDIT_CHAIN_COLUMNS if c not in have]
    if missing:
        for c in missing:
            conn.exec_driver_sql(f"ALTER TABLE audit_log ADD COLUMN {c} TEXT")
        prev = GENESIS
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.id)).mappings().all()
        for r in rows:
            h = row_hash(dict(r), prev)
            conn.execute(audit_log.update().where(audit_log.c.id == r["id"]).values(prev_hash=prev, row_hash=h))
            prev = h
    if dialect == "sqlite":
        for sql in _AUDIT_TRIGGERS["sqlite"]:
            conn.exec_driver_sql(sql)
    elif dialect == "postgresql":
        exists = conn.exec_driver_sql(
            "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass "
            "AND tgname IN ('audit_log_no_change', 'audit_log_no_truncate')"
        ).scalar()
        if exists != 2:
            for sql in _AUDIT_TRIGGERS["postgresql"]:
                conn.exec_driver_sql(sql)


# The distribution key (etl.warehouse.distribution): each fact and finding table's county bureau; the units' own
# (org_units.county_code) from which the others follow.  Every writer of the ETL sets it; a row written without
# it (by hand, an older version) is filled before the rules read the warehouse (distribution.backfill), found
# through a partial index that is empty otherwise.
for _t in [*DISTRIBUTED, "org_units"]:
    _tab = metadata.tables[_t]
    _tab.append_column(sa.Column(DISTRIBUTION_KEY, sa.Text))
    _missing = _tab.c[DISTRIBUTION_KEY].is_(None)
    sa.Index(
        f"ix_{_t}_{DISTRIBUTION_KEY}_missing",
        _tab.c[DISTRIBUTION_KEY],
        sqlite_where=_missing,
        postgresql_where=_missing,
    )

for _t, _cols in {
    "findings": ["rule_id", "unit_code", "month"],
    "clips": ["device_sn", "started_at"],
    "event_coverage": ["unit_code", "arrived_at"],
    "metrics": ["period", "unit_code"],
    "unit_scores": ["period", "unit_code"],
    "unit_item_scores": ["period", "unit_code"],
    "quarantine": ["run_id"],
    "case_documents": ["case_no"],
    "case_actions": ["case_no"],
    "incident_officers": ["police_no"],
    # the rows below a rewritten parent (etl.warehouse.distribution.rehome) are found by these
    "access_log": ["clip_id"],
    "deliveries": ["doc_id"],
    "interruption_reports": ["incident_no"],
}.items():
    tab = metadata.tables[_t]
    sa.Index(f"ix_{_t}_{'_'.join(_cols)}", *[tab.c[c] for c in _cols])

# Partial indexes of the tagged clips (a small share): the metrics' tag look-ups (警情/案件关联率) read
# them instead of scanning every clip.  The case one also covers the rules' read of case-tagged clips
# (clip_id included: 433k rows at city scale without a look-up into the table each).
for _name, (_tag, _cols) in {
    # device_sn too: the data-quality queue's clock-drift estimate reads a month's tagged clips index-only
    "ix_clips_incident_no_tagged_cover": ("incident_no", ["incident_no", "started_at", "device_sn"]),
    "ix_clips_case_no_tagged_cover": ("case_no", ["case_no", "started_at", "ended_at", "clip_id"]),
}.items():
    _clips = metadata.tables["clips"]
    _where = _clips.c[_tag].isnot(None)
    sa.Index(_name, *[_clips.c[c] for c in _cols], sqlite_where=_where, postgresql_where=_where)

# Partial indexes of the data-quality queue's suspects (etl.rules.data_quality; issue 16: the queue adds <= 1 s
# to a daily run): clips without a wearer (~10% at city scale: the owner look-up reads the index only) and
# clips imported before they ended (normally none).  Plain indexes of the action and document type codes: the
# queue asks for their distinct values (a loose index scan, a few dozen seeks) instead of scanning the tables.
_clips = metadata.tables["clips"]
for _name, (_cols, _where) in {
    "ix_clips_ownerless": (["device_sn", "started_at"], _clips.c.police_no.is_(None)),
    "ix_clips_imported_early": (["started_at"], _clips.c.imported_at < _clips.c.ended_at),
}.items():
    sa.Index(_name, *[_clips.c[c] for c in _cols], sqlite_where=_where, postgresql_where=_where)
sa.Index("ix_case_actions_action_type", metadata.tables["case_actions"].c.action_type)
sa.Index("ix_case_documents_doc_type", metadata.tables["case_documents"].c.doc_type)

# The dashboard's case search (案件检查, dashboard.queries.search_cases; issue 18, part 4): the newest cases of a
# scope, then the findings of just those cases (and, for 仅显示有问题的案件, one case at a time).
_cases = metadata.tables["cases"]
sa.Index("ix_cases_registered_at_case_no", _cases.c.registered_at, _cases.c.case_no)
sa.Index("ix_cases_unit_code_registered_at", _cases.c.unit_code, _cases.c.registered_at)
for _t in ("findings", "excused_findings"):
    _tab = metadata.tables[_t]
    _where = _tab.c.case_no.isnot(None)
    sa.Index(f"ix_{_t}_case_no", _tab.c.case_no, sqlite_where=_where, postgresql_where=_where)

# The dashboard's access audit (调阅审计, dashboard.queries.access_records / access_summary; issue 18, part 4): the
# period's records newest first (equal times by record id), of the whole city or of a scope's counties.
_access = metadata.tables["access_log"]
sa.Index("ix_access_log_at_log_id", _access.c.at, _access.c.log_id)
sa.Index("ix_access_log_county_code_at_log_id", _access.c[DISTRIBUTION_KEY], _access.c.at, _access.c.log_id)
# A unit administrator's 待办 (etl.supervision.inbox: the findings it may appeal) and every other read of a scope's
# findings without a rule: the scope's rows instead of every finding.
for _t in ("findings", "excused_findings"):
    _tab = metadata.tables[_t]
    sa.Index(f"ix_{_t}_unit_code_month", _tab.c.unit_code, _tab.c.month)
    # the whole city's or province's findings of a period (复核's rule filter and queue): the period's months, not
    # every finding (1.7 s on the 10x warehouse for the rule filter by occurred_at)
    sa.Index(f"ix_{_t}_month_rule_id", _tab.c.month, _tab.c.rule_id)

# Blobs PostgreSQL should store as they are (STORAGE EXTERNAL): zstd-compressed snapshots and fingerprints
# (random hashes) gain nothing from its own compression, which cost a city daily run ~1.3 s of writing.
UNCOMPRESSED_BLOBS = [("rule_snapshots", "data"), ("raw_fingerprint_parts", "data"), ("rescore_inputs", "data")]
# Tables of earlier versions, dropped by ensure_schema: derived data whose successor is rebuilt by the next run
# (raw_fingerprints: one blob per table; without fingerprints the next run compares the tables in full once).
RETIRED_TABLES = ("raw_fingerprints",)

# Indexes of earlier versions, dropped from existing warehouses by ensure_schema.
RETIRED_INDEXES = {"ix_clips_case_no_tagged": "clips", "ix_clips_incident_no_tagged": "clips"}

# the findings' columns (findings and excused_findings share them): the union under v_findings
_FINDING_VIEW_COLUMNS = [c.name for c in findings.columns if c.name != DISTRIBUTION_KEY]  # the key stays inside


def _columns(alias: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in _FINDING_VIEW_COLUMNS)


def _orphaned(alias: str) -> str:
    """SQL 0/1: the finding of ``alias``.finding_key is in neither findings nor excused_findings now."""
    return (
        f"CASE WHEN EXISTS (SELECT 1 FROM findings o WHERE o.finding_key = {alias}.finding_key) "
        f"OR EXISTS (SELECT 1 FROM excused_findings o WHERE o.finding_key = {alias}.finding_key) THEN 0 ELSE 1 END"
    )


VIEWS: dict[str, str] = {
    "v_event_coverage": """
        SELECT incident_no, unit_code, arrived_at, ended_at, window_s, covered_s, covered_fraction,
               gap_count, status, cause
        FROM event_coverage""",
    # per officer (issue 18): who attended each event and each case (the mirrors), who each finding names, and
    # the officer's record per period (etl.scoring.officers)
    "v_event_officers": """
        SELECT incident_no, police_no FROM incident_officers""",
    "v_case_officers": """
        SELECT case_no, police_no, role FROM case_officers""",
    "v_finding_officers": """
        SELECT finding_key, police_no, cause, basis FROM finding_officers""",
    "v_officer_records": """
        SELECT period, police_no, unit_code, events_attended, events_fully_recorded, own_coverage,
               findings_av, findings_text, findings_access, findings_integrity
        FROM officer_records""",
    # every finding of `findings`, plus the findings of the excused events whose excuse the legal department
    # rejected, or not yet accepted when the last evaluation ran with `excuse_review: required` (the same rule as
    # etl.warehouse.verdicts.Verdicts.counting; evaluation.excuse_review holds the mode), each with
    # its review state (open when never reviewed; exempted findings stay here, marked), its latest appeal and the
    # latest rectification notice naming it (notice_id)
    "v_findings": f"""
        SELECT f.finding_key, f.rule_id, f.article, f.unit_code, f.case_no, f.action_id, f.doc_id, f.incident_no,
               f.clip_id, f.device_sn, f.log_id, f.police_no, f.doc_type, f.window_id, f.occurred_at, f.cause,
               f.gap_start, f.gap_end, f.gap_s, f.detail, f.month,
               COALESCE(s.state, 'open') AS review_state,
               CASE WHEN a.appeal_id IS NULL THEN NULL ELSE COALESCE(a.decision, 'pending') END AS appeal_state,
               ln.notice_id
        FROM (
            SELECT {_columns("g")} FROM findings g
            UNION ALL
            SELECT {_columns("x")} FROM excused_findings x
            LEFT JOIN sup_excuse_reviews r ON r.incident_no = x.incident_no
            WHERE r.verdict = 'rejected'
               OR (r.verdict IS NULL AND (SELECT MAX(e.excuse_review) FROM evaluation e) = 'required')
        ) f
        LEFT JOIN sup_finding_state s ON s.finding_key = f.finding_key
        LEFT JOIN (
            SELECT finding_key, MAX(appeal_id) AS appeal_id FROM sup_appeals GROUP BY finding_key
        ) la ON la.finding_key = f.finding_key
        LEFT JOIN sup_appeals a ON a.appeal_id = la.appeal_id
        LEFT JOIN (
            SELECT finding_key, MAX(notice_id) AS notice_id FROM sup_notice_findings GROUP BY finding_key
        ) ln ON ln.finding_key = f.finding_key""",
    "v_unit_scores": """
        SELECT period, unit_code, unit_level, total, grade, rank, veto, scheme_version, scheme_id
        FROM unit_scores WHERE active = 1""",
    "v_unit_item_scores": """
        SELECT period, unit_code, item_id, item_name, points, objects, clean, deductions, score,
               scheme_version, scheme_id
        FROM unit_item_scores WHERE active = 1""",
    # trends (issue 18): every standard metric per unit scope and period (every month, quarter and year with
    # data, across years; etl.scoring.metrics); value NULL when the denominator is 0
    "v_unit_metrics": """
        SELECT period, unit_code, metric_id AS metric, numerator, denominator,
               CASE WHEN denominator > 0 THEN value ELSE NULL END AS value
        FROM metrics""",
    "v_quarantine": """
        SELECT run_id, source, table_name, row_key, reason, payload FROM quarantine""",
    # whether each check of a run actually ran, and over what (`check` is a reserved word: quote it)
    "v_source_health": """
        SELECT run_id, check_name AS "check", performed, objects, detail FROM source_health""",
    # the data-quality queue: the objects the last evaluation could not judge or judged on partial data, each with
    # the unit that must fix it (etl.rules.data_quality.KINDS)
    "v_data_quality": """
        SELECT kind, unit_code, source, table_name, object_key, detail, first_seen_run, last_seen_run
        FROM data_quality WHERE current = 1""",
    # the review history; orphaned = 1 when the finding is in neither findings nor excused_findings any more
    "v_reviews": f"""
        SELECT r.finding_key, r.verdict, r.category, r.reason, r.by_user, r.at, {_orphaned("r")} AS orphaned,
               r.review_id, r.role, r.source
        FROM sup_reviews r""",
    "v_appeals": f"""
        SELECT a.appeal_id, a.finding_key, a.unit_code, a.reason, a.filed_by, a.filed_at, a.decision,
               a.decided_by, a.decided_at, a.decision_reason, a.late, a.version, {_orphaned("a")} AS orphaned
        FROM sup_appeals a""",
    # the sampled objects of the spot-check campaigns: unit_code is the object's current unit (its unit when
    # drawn once it left the sources: orphaned = 1); verdict NULL until reviewed
    "v_spotcheck_items": """
        SELECT i.campaign_id, i.object_kind, i.object_key, COALESCE(e.unit_code, i.unit_code) AS unit_code,
               i.period, i.verdict, i.failed_points, i.reviewed_by, i.reviewed_at, i.assigned_to, i.note, i.version,
               i.draw_order, i.month, i.occurred_at, m.state AS campaign_state,
               CASE WHEN e.incident_no IS NULL THEN 1 ELSE 0 END AS orphaned
        FROM sup_spotcheck_items i
        JOIN sup_campaigns m ON m.campaign_id = i.campaign_id
        LEFT JOIN event_coverage e ON e.incident_no = i.object_key
        WHERE i.object_kind = 'events'
        UNION ALL
        SELECT i.campaign_id, i.object_kind, i.object_key, COALESCE(c.unit_code, i.unit_code) AS unit_code,
               i.period, i.verdict, i.failed_points, i.reviewed_by, i.reviewed_at, i.assigned_to, i.note, i.version,
               i.draw_order, i.month, i.occurred_at, m.state AS campaign_state,
               CASE WHEN c.case_no IS NULL THEN 1 ELSE 0 END AS orphaned
        FROM sup_spotcheck_items i
        JOIN sup_campaigns m ON m.campaign_id = i.campaign_id
        LEFT JOIN cases c ON i.object_kind = 'cases' AND c.case_no = i.object_key
        WHERE i.object_kind <> 'events'""",
    # the rectification notices; overdue = 1 when not closed and the database's current date is past the deadline,
    # or closed on a day after it (__TODAY__ / __DATE__(...): the dialect's, see _dialect_sql)
    "v_rectifications": """
        SELECT n.notice_id, n.unit_code, n.issued_by, n.issued_at, n.deadline, n.state,
               CASE WHEN n.state <> 'closed' AND __TODAY__ > n.deadline THEN 1
                    WHEN n.state = 'closed' AND __DATE__(n.closed_at) > n.deadline THEN 1 ELSE 0 END AS overdue,
               (SELECT COUNT(*) FROM sup_notice_findings nf WHERE nf.notice_id = n.notice_id) AS findings,
               n.closed_at, n.closed_by, n.basis, n.basis_ref, n.period, n.version,
               (SELECT MAX(ev.at) FROM sup_notice_events ev
                WHERE ev.notice_id = n.notice_id AND ev.kind = 'respond') AS responded_at
        FROM sup_notices n""",
    "v_published_scores": """
        SELECT p.period, p.version, s.unit_code, s.unit_level, s.total, s.grade, s.rank, s.veto, p.scheme_version,
               p.published_by, p.published_at, p.scheme_id, p.publication_id
        FROM sup_published_scores s JOIN sup_publications p ON p.publication_id = s.publication_id""",
    # the latest published version of each period against the current active scores: the units that differ
    # (published or current total missing counts as a difference)
    "v_restatement": """
        WITH latest AS (
            SELECT p.publication_id, p.period, p.version FROM sup_publications p
            WHERE p.version = (SELECT MAX(q.version) FROM sup_publications q WHERE q.period = p.period)
        ), published AS (
            SELECT l.period, l.version, s.unit_code, s.total FROM latest l
            JOIN sup_published_scores s ON s.publication_id = l.publication_id
        ), cur AS (
            SELECT period, unit_code, total FROM unit_scores WHERE active = 1
        )
        SELECT pb.period, pb.unit_code, pb.version AS published_version, pb.total AS published_total,
               c.total AS current_total, c.total - pb.total AS delta
        FROM published pb LEFT JOIN cur c ON c.period = pb.period AND c.unit_code = pb.unit_code
        WHERE CASE WHEN pb.total = c.total THEN 0 WHEN pb.total IS NULL AND c.total IS NULL THEN 0 ELSE 1 END = 1
        UNION ALL
        SELECT c.period, c.unit_code, l.version AS published_version, NULL AS published_total,
               c.total AS current_total, NULL AS delta
        FROM cur c JOIN latest l ON l.period = c.period
        WHERE NOT EXISTS (
            SELECT 1 FROM published pb WHERE pb.period = c.period AND pb.unit_code = c.unit_code
        )""",
}


_DATE_OF = re.compile(r"__DATE__\(([^()]*)\)")
_DIALECT_DATES = {  # dialect -> (the current local date, the date of a time)
    "sqlite": ("date('now', 'localtime')", r"date(\1)"),  # dates are text 'YYYY-MM-DD' there
    "postgresql": ("CURRENT_DATE", r"CAST(\1 AS DATE)"),
}


def _dialect_sql(body: str, dialect: str) -> str:
    """A view's SQL for ``dialect``: ``__TODAY__`` the current local date, ``__DATE__(x)`` the date of a time."""
    today, date_of = _DIALECT_DATES.get(dialect, ("CURRENT_DATE", r"DATE(\1)"))
    return _DATE_OF.sub(date_of, body.replace("__TODAY__", today))


def ensure_schema(conn: Connection) -> None:
    """Create missing tables, indexes and (re)create the public views, in the caller's transaction."""
    inspector = sa.inspect(conn)
    if inspector.has_table("findings") and "finding_id" in {c["name"] for c in inspector.get_columns("findings")}:
        # findings numbered per run (before finding_key): a mart, rebuilt by the next run; its view goes first
        for name in VIEWS:
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        conn.exec_driver_sql("DROP TABLE findings")
    if inspector.has_table("evaluation") and "excuse_review" not in {
        c["name"] for c in inspector.get_columns("evaluation")
    }:  # a warehouse of before the Art. 17 review: the column the views read (the next run or rescore fills it)
        conn.exec_driver_sql("ALTER TABLE evaluation ADD COLUMN excuse_review TEXT")
    for name in RETIRED_TABLES:
        if inspector.has_table(name):
            conn.exec_driver_sql(f"DROP TABLE {name}")
    metadata.create_all(conn, checkfirst=True)
    _ensure_distribution_key(conn)
    # create_all skips the indexes of a table that exists already: those added since it was made
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)
    inspector = sa.inspect(conn)
    for name, table in RETIRED_INDEXES.items():
        if name in {ix["name"] for ix in inspector.get_indexes(table)}:
            on = f" ON {table}" if conn.dialect.name in ("mysql", "mariadb") else ""
            conn.exec_driver_sql(f"DROP INDEX {name}{on}")
    if conn.dialect.name == "postgresql":
        if conn.dialect.server_version_info >= (
            14,
        ):  # the heatmap's months (现场记录): planned per month, not per event
            conn.exec_driver_sql(
                "CREATE STATISTICS IF NOT EXISTS st_event_coverage_month "
                "ON (date_trunc('month', arrived_at)) FROM event_coverage"
            )
        for table, column in UNCOMPRESSED_BLOBS:
            storage = conn.exec_driver_sql(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s", (table, column)
            ).scalar()
            if storage != "e":
                conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
    _ensure_audit_chain(conn)
    for name, body in VIEWS.items():
        _ensure_view(conn, name, _dialect_sql(body, conn.dialect.name))


def _ensure_distribution_key(conn: Connection) -> None:
    """A warehouse of before the distribution key: add ``county_code`` where it is missing and fill it (the
    added column stays nullable there; SQLite cannot add a NOT NULL column without a default)."""
    inspector = sa.inspect(conn)
    added = False
    for name in ["org_units", *DISTRIBUTED]:
        if DISTRIBUTION_KEY not in {c["name"] for c in inspector.get_columns(name)}:
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {DISTRIBUTION_KEY} TEXT")
            added = True
    if added:
        backfill(conn)


def _ensure_view(conn: Connection, name: str, sql: str) -> None:
    """Create or replace the view ``name`` only when its definition changed, so that readers never see it
    missing and a run takes no lock on an unchanged view.  SQLite keeps the statement text (compared as is);
    PostgreSQL keeps a digest of it in the view's comment, and replaces it with CREATE OR REPLACE (drop and
    create, in the caller's transaction, only when its columns changed)."""
    create = f"CREATE VIEW {name} AS {sql}"
    dialect = conn.dialect.name
    if dialect == "sqlite":
        current = conn.exec_driver_sql(
            "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = ?", (name,)
        ).scalar()
        if current == create:
            return
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        conn.exec_driver_sql(create)
    elif dialect == "postgresql":
        import hashlib

        mark = "avsup:" + hashlib.sha256(create.encode("utf-8")).hexdigest()[:32]
        current = conn.exec_driver_sql("SELECT obj_description(to_regclass(%s), 'pg_class')", (name,)).scalar()
        if current == mark:
            return
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {name} AS {sql}")
        except sa.exc.DBAPIError:  # its columns changed: replaced within the caller's transaction
            conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
            conn.exec_driver_sql(create)
        conn.exec_driver_sql(f"COMMENT ON VIEW {name} IS '{mark}'")
    else:  # MariaDB/MySQL: CREATE OR REPLACE is atomic there
        conn.exec_driver_sql(f"CREATE OR REPLACE VIEW {name} AS {sql}")
