"""Warehouse schema: mirrors of the source tables, ETL bookkeeping, marts and views.

The mirrors are generated from ``etl.sources.contract`` so the contract stays the one
place that names source columns.  Views named in ``shared/spec/interface.md``
(``v_event_coverage``, ``v_findings``, ``v_unit_scores``,
``v_unit_item_scores``, ``v_quarantine``) are the public interface; everything
else may change.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from etl.sources.contract import TABLES

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
raw_fingerprints = sa.Table(  # etl.warehouse.fingerprints: the raw rows each full-compare table was last loaded from
    "raw_fingerprints",
    metadata,
    sa.Column("table_name", sa.Text, primary_key=True),
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
findings = sa.Table(
    "findings",
    metadata,
    sa.Column("finding_id", sa.Integer, primary_key=True),
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
}.items():
    tab = metadata.tables[_t]
    sa.Index(f"ix_{_t}_{'_'.join(_cols)}", *[tab.c[c] for c in _cols])

# Partial indexes of the tagged clips (a small share): the metrics' tag look-ups (警情/案件关联率) read
# them instead of scanning every clip.  The case one also covers the rules' read of case-tagged clips
# (clip_id included: 433k rows at city scale without a look-up into the table each).
for _name, (_tag, _cols) in {
    "ix_clips_incident_no_tagged": ("incident_no", ["incident_no", "started_at"]),
    "ix_clips_case_no_tagged_cover": ("case_no", ["case_no", "started_at", "ended_at", "clip_id"]),
}.items():
    _clips = metadata.tables["clips"]
    _where = _clips.c[_tag].isnot(None)
    sa.Index(_name, *[_clips.c[c] for c in _cols], sqlite_where=_where, postgresql_where=_where)

# Blobs PostgreSQL should store as they are (STORAGE EXTERNAL): zstd-compressed snapshots and fingerprints
# (random hashes) gain nothing from its own compression, which cost a city daily run ~1.3 s of writing.
UNCOMPRESSED_BLOBS = [("rule_snapshots", "data"), ("raw_fingerprints", "data")]

# Indexes of earlier versions, dropped from existing warehouses by ensure_schema.
RETIRED_INDEXES = {"ix_clips_case_no_tagged": "clips"}

VIEWS: dict[str, str] = {
    "v_event_coverage": """
        SELECT incident_no, unit_code, arrived_at, ended_at, window_s, covered_s, covered_fraction,
               gap_count, status, cause
        FROM event_coverage""",
    "v_findings": """
        SELECT finding_id, rule_id, article, unit_code, case_no, action_id, doc_id, incident_no, clip_id,
               device_sn, log_id, police_no, doc_type, window_id, occurred_at, cause, gap_start, gap_end,
               gap_s, detail
        FROM findings""",
    "v_unit_scores": """
        SELECT period, unit_code, unit_level, total, grade, rank, veto, scheme_version, scheme_id
        FROM unit_scores WHERE active = 1""",
    "v_unit_item_scores": """
        SELECT period, unit_code, item_id, item_name, points, objects, clean, deductions, score,
               scheme_version, scheme_id
        FROM unit_item_scores WHERE active = 1""",
    "v_quarantine": """
        SELECT run_id, source, table_name, row_key, reason, payload FROM quarantine""",
}


def ensure_schema(conn: Connection) -> None:
    """Create missing tables, indexes and (re)create the public views, in the caller's transaction."""
    metadata.create_all(conn, checkfirst=True)
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
        for table, column in UNCOMPRESSED_BLOBS:
            storage = conn.exec_driver_sql(
                "SELECT attstorage FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s", (table, column)
            ).scalar()
            if storage != "e":
                conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE EXTERNAL")
    for name, body in VIEWS.items():
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE VIEW {name} AS {body}")
