"""The data-quality queue: every object the rules could not judge, or judged on partial data (issue 16).

One row per (kind, source, table_name, object_key), attributed to the unit that must fix it, with a Chinese
detail.  ``evaluate`` finds the current rows (no writes); ``compute`` writes the derived table
``data_quality`` (view ``v_data_quality``) inside the run's transaction, keeping for every row the run that
first saw it (``first_seen_run``, never reset while the row stays in the queue) and the last run that saw it
(``last_seen_run``); a row no longer found stays in the table with ``current = 0`` (so a row that comes back
later keeps its first run; the view lists the current rows only).

Two sources feed the queue:

* the quarantine (``v_quarantine``): source rows staging refused (unknown officer or device, end before start,
  duplicate key, and any other contract breach: kind ``source_rejected``), as long as their key is not in the
  mirror (once a clean version of the row loads, it is resolved).  The rows of the tables that carry
  ``updated_at`` are not read again below the watermark, so a row deleted from the source after it was refused
  stays listed until the source sends a clean version of its key; the full-compare tables are staged in full
  by every run;
* the mirrors as the rules read them: objects the rules skip or judge on partial data (``KINDS`` below).

Each kind read from the mirrors is one SQL filter, so that only the suspects leave the database (one scan
of the table; the date filter in SQL too), plus the coverage's events (officers, arrival times).  The coverage
rules never correct a device clock: ``clock_drift`` only says which devices and by how much.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules import base
from etl.sources.contract import TABLES
from etl.warehouse.db import bulk_insert, fetch_rows, key_in, read_df
from etl.warehouse.distribution import with_county

if TYPE_CHECKING:
    from etl.rules.coverage import Coverage
    from etl.warehouse.snapshots import Snapshots

TABLE = "data_quality"
COLUMNS = ["kind", "unit_code", "source", "table_name", "object_key", "detail"]
KEY = ["kind", "source", "table_name", "object_key"]

# kind -> Chinese name, who must fix it, what to do (docs/DATA_QUALITY.md lists the same).
KINDS: dict[str, dict[str, str]] = {
    "unknown_officer": {
        "name": "未知人员",
        "unit": "引用该人员的记录所属单位（警情、案件、设备或视频的单位）",
        "fix": "核对警号；确为本单位人员的，报请人事/信通部门补录人员名册",
    },
    "unknown_device": {
        "name": "未知设备",
        "unit": "视频佩戴人或领用人所在单位（无法确定时为市局）",
        "fix": "核对设备编号；新设备先在执法记录仪管理平台登记入账",
    },
    "clip_no_owner": {
        "name": "视频无归属人员",
        "unit": "设备所属单位",
        "fix": "补录该设备的领用记录（领用人、领用时间），或在平台上补填视频佩戴人",
    },
    "onsite_no_times": {
        "name": "现场警情缺少到达或结束时间",
        "unit": "警情办理单位",
        "fix": "在接处警系统补录到达现场时间和现场处置结束时间",
    },
    "end_before_arrival": {
        "name": "警情结束时间早于到达时间",
        "unit": "警情办理单位",
        "fix": "在接处警系统更正到达现场时间或现场处置结束时间",
    },
    "unknown_action_type": {
        "name": "未知执法活动类型",
        "unit": "案件办理单位",
        "fix": "在办案系统改用规则配置中的执法活动代码，或报法制部门在规则配置中增补该代码",
    },
    "unknown_document_type": {
        "name": "未知文书类型",
        "unit": "案件办理单位",
        "fix": "在办案系统改用规则配置中的文书代码，或报法制部门在规则配置中增补该代码",
    },
    "no_officers": {
        "name": "案件或警情无执法人员",
        "unit": "案件或警情办理单位",
        "fix": "在办案系统补录承办人/协办人，或在接处警系统补录出警人员",
    },
    "clip_bad_times": {
        "name": "视频时间不合理",
        "unit": "设备所属单位",
        "fix": "核对设备时钟和平台导入记录，更正视频开始、结束或导入时间",
    },
    "duplicate_key": {
        "name": "主键重复且内容不同",
        "unit": "记录所属单位（无法确定时为市局）",
        "fix": "在源系统或台账中删除重复的记录，只保留正确的一条",
    },
    "clock_drift": {
        "name": "设备时钟偏差",
        "unit": "设备所属单位",
        "fix": "校准该执法记录仪的时钟；偏差期间的覆盖率按原始时间计算，如有异议可提出申诉",
    },
    "source_rejected": {
        "name": "源数据行被拒收",
        "unit": "记录所属单位（无法确定时为市局）",
        "fix": "按原因更正源系统中的该行（缺少主键或必填项、时间无法解析、取值无效等）",
    },
}
KIND_NAMES: dict[str, str] = {k: v["name"] for k, v in KINDS.items()}

# quarantine reason prefix -> kind (checked in this order; staging's texts, etl.sources.staging)
_REASON_KINDS = [
    ("未知人员", "unknown_officer"),
    ("未知设备", "unknown_device"),
    ("主键重复且内容不同", "duplicate_key"),
]
_END_BEFORE_START = "结束时间早于开始时间"
# the object tables of the evaluation: every row of them is judged or in the queue (tests/test_data_quality_*)
OBJECT_TABLES = ("incidents", "cases", "case_actions", "case_documents", "clips")


def _frame(rows: dict[str, object]) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = None
    return df[COLUMNS].astype(object)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})


class _Reader:
    """The rules' table reader (snapshots when the run has them), and lookups of units for attribution."""

    def __init__(self, conn: Connection, snapshots: Snapshots | None) -> None:
        self.conn = conn
        self.snapshots = snapshots
        self._maps: dict[str, pd.Series] = {}

    def read(self, table: str, columns: list[str], where: str = "") -> pd.DataFrame:
        return base.read_table(self.conn, table, columns, where, kept=True, snapshots=self.snapshots)

    def query(self, table: str, columns: list[str], where: str) -> pd.DataFrame:
        """The few rows of a filter that may depend on the date or on other tables: read plainly (one scan in
        the database, cheaper than a snapshot's row count check of a filtered read)."""
        return base.read_table(self.conn, table, columns, where, kept=False)

    def unit_of(self, table: str) -> pd.Series:
        """key -> unit_code of ``cases``, ``incidents``, ``devices`` or ``officers``."""
        if table not in self._maps:
            key = TABLES[table].key[0]
            df = read_df(self.conn, f"SELECT {key}, unit_code FROM {table}")
            self._maps[table] = pd.Series(df["unit_code"].to_numpy(dtype=object), index=df[key].astype(str))
        return self._maps[table]

    def root_unit(self) -> str | None:
        rows = fetch_rows(self.conn, "SELECT unit_code FROM org_units WHERE parent_code IS NULL ORDER BY unit_code")
        return str(rows[0][0]) if rows else None


def _up_to(column: str, as_of_s: float) -> str:
    """SQL: ``column`` up to the evaluation date, or without time."""
    return f"({column} IS NULL OR {column} <= {base.sql_ts(as_of_s)})"


def _lookup(values: pd.Series, mapping: pd.Series) -> np.ndarray:
    out = mapping.reindex(values.astype(object).where(values.notna(), "").astype(str).to_numpy()).to_numpy(dtype=object)
    return np.where(pd.isna(out), None, out)


# --- the kinds read from the mirrors ------------------------------------------------------------


def onsite_no_times(r: _Reader, as_of_s: float) -> pd.DataFrame:
    """On-site incidents (``on_site = 1``, received up to the evaluation date) without arrival or end time: the
    coverage rules cannot build their window."""
    ev = r.query(
        "incidents",
        ["incident_no", "unit_code", "received_at", "arrived_at", "ended_at"],
        f"on_site = 1 AND (arrived_at IS NULL OR ended_at IS NULL) AND {_up_to('received_at', as_of_s)}",
    )
    missing = np.where(
        ev["arrived_at"].isna() & ev["ended_at"].isna(),
        "到达现场时间和现场处置结束时间",
        np.where(ev["arrived_at"].isna(), "到达现场时间", "现场处置结束时间"),
    )
    return _frame(
        {
            "kind": "onsite_no_times",
            "unit_code": ev["unit_code"].to_numpy(dtype=object),
            "source": TABLES["incidents"].system,
            "table_name": "incidents",
            "object_key": ev["incident_no"].astype(str).to_numpy(dtype=object),
            "detail": "警情 "
            + ev["incident_no"].astype(str).to_numpy(dtype=object)
            + " 标记为现场执法，但缺少"
            + missing
            + "，无法判定现场执法全程记录（未计入现场执法音像记录）",
        }
    )


def events_without_officers(coverage: Coverage) -> pd.DataFrame:
    """On-site events without any attending officer: judged (no one can have recorded: AV-NONE), but on partial
    data, as the officers who were there are not known."""
    ev = coverage.events[coverage.events["officers"].to_numpy() == 0]
    return _frame(
        {
            "kind": "no_officers",
            "unit_code": ev["unit_code"].to_numpy(dtype=object),
            "source": TABLES["incidents"].system,
            "table_name": "incidents",
            "object_key": ev["incident_no"].astype(str).to_numpy(dtype=object),
            "detail": "现场警情 "
            + ev["incident_no"].astype(str).to_numpy(dtype=object)
            + "（到达 "
            + base.fmt_ts(ev["arrived_at"]).to_numpy(dtype=object)
            + "）没有登记出警人员，无法核对民警的录像，覆盖率按无人录像判定",
        }
    )


def cases_without_officers(r: _Reader, as_of_s: float) -> pd.DataFrame:
    """Cases (registered up to the evaluation date) without a handler or assistant: the supporting-clip check of
    their measures can only use the action's officer and the case tag."""
    c = read_df(
        r.conn,
        "SELECT c.case_no, c.unit_code FROM cases c WHERE (c.registered_at IS NULL OR c.registered_at <= "
        f"{base.sql_ts(as_of_s)}) AND NOT EXISTS (SELECT 1 FROM case_officers o WHERE o.case_no = c.case_no "
        "AND o.county_code = c.county_code) "
        "ORDER BY c.case_no",
    ).astype(object)
    return _frame(
        {
            "kind": "no_officers",
            "unit_code": c["unit_code"].to_numpy(dtype=object),
            "source": TABLES["cases"].system,
            "table_name": "cases",
            "object_key": c["case_no"].astype(str).to_numpy(dtype=object),
            "detail": "案件 "
            + c["case_no"].astype(str).to_numpy(dtype=object)
            + " 没有登记承办人或协办人，执法措施的音像记录只能按活动负责人和案件关联视频核对",
        }
    )


def distinct_codes(conn: Connection, table: str, column: str) -> set[str | None]:
    """The distinct values of an indexed column (None among them when a row has none): a loose index scan, one
    seek per value (a recursive query, the same on SQLite and PostgreSQL), not a scan of the table."""
    # ``column`` and ``table`` are the contract's names (constants of this module), never user input
    rows = fetch_rows(
        conn,
        f"WITH RECURSIVE v(code) AS (SELECT MIN({column}) FROM {table} UNION ALL "
        f"SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > v.code) FROM v WHERE v.code IS NOT NULL) "
        "SELECT code FROM v WHERE code IS NOT NULL",
    )
    out: set[str | None] = {str(row[0]) for row in rows}
    if fetch_rows(conn, f"SELECT 1 FROM {table} WHERE {column} IS NULL LIMIT 1"):
        out.add(None)
    return out


def _unknown_codes(
    r: _Reader,
    table: str,
    key: str,
    code: str,
    time: str,
    known: list[str],
    kind: str,
    noun: str,
    why: str,
    as_of_s: float,
) -> pd.DataFrame:
    """The rows of a case table (``key``, ``case_no``, ``code``, ``time``) whose ``code`` is not in ``known``,
    as queue rows of ``kind`` owned by the case's unit; ``noun`` / ``why``: the detail's words.

    The table's distinct codes come first, from the code's index (``distinct_codes``); the rows are read only
    when some code (or an empty one) is unknown, and then through the index as well."""
    present = distinct_codes(r.conn, table, code)
    unknown = sorted(c for c in present if c is not None and c not in set(known))
    if not unknown and None not in present:
        return _empty()
    rows = r.query(
        table,
        [key, "case_no", code, time],
        f"({code} IS NULL OR {code} IN {base.sql_list(unknown)}) AND {_up_to(time, as_of_s)}",
    )
    text = lambda c: rows[c].astype(object).where(rows[c].notna(), "").astype(str).to_numpy(dtype=object)  # noqa: E731
    return _frame(
        {
            "kind": kind,
            "unit_code": _lookup(rows["case_no"], r.unit_of("cases")),
            "source": TABLES[table].system,
            "table_name": table,
            "object_key": rows[key].astype(str).to_numpy(dtype=object),
            "detail": "案件 " + text("case_no") + f" 的{noun} " + text(key) + " 类型代码“" + text(code) + why,
        }
    )


def unknown_action_types(r: _Reader, cfg: dict, as_of_s: float) -> pd.DataFrame:
    """Actions whose type the rule configuration does not know: no document or AV requirement is checked."""
    return _unknown_codes(
        r, "case_actions", "action_id", "action_type", "started_at", sorted(cfg["actions"]),
        "unknown_action_type", "执法活动", "”不在规则配置中，未核查其应制作的文书和音像记录", as_of_s,
    )  # fmt: skip


def known_document_types(cfg: dict) -> list[str]:
    return sorted(set(cfg["documents"]) | {d for a in cfg["actions"].values() for d in a["documents"]})


def unknown_document_types(r: _Reader, cfg: dict, as_of_s: float) -> pd.DataFrame:
    """Documents whose type the rule configuration does not know: they satisfy no requirement and no document
    check (signature, decision, delivery) applies to them."""
    return _unknown_codes(
        r, "case_documents", "doc_id", "doc_type", "created_at", known_document_types(cfg),
        "unknown_document_type", "文书", "”不在规则配置中，不能作为任何应制作文书，也未核查签字、送达等要求", as_of_s,
    )  # fmt: skip


def clip_problems(r: _Reader, as_of_s: float) -> list[pd.DataFrame]:
    """Clips (started up to the evaluation date) that belong to nobody (no wearer and no assignment of their
    device at their start: they cover no officer's event) and clips imported before they ended."""
    # ownerless in SQL as ``resolve_owners`` decides it (the latest assignment of the device starting at or
    # before the clip's start, if it is still open then), so that only the few suspects leave the database;
    # they are resolved again below, the rules' way
    latest = (
        "SELECT 1 FROM device_assignments a WHERE a.device_sn = clips.device_sn AND a.police_no IS NOT NULL "
        "AND a.from_at <= clips.started_at AND (a.to_at IS NULL OR clips.started_at < a.to_at) AND NOT EXISTS ("
        "SELECT 1 FROM device_assignments b WHERE b.device_sn = a.device_sn AND b.police_no IS NOT NULL "
        "AND b.from_at > a.from_at AND b.from_at <= clips.started_at)"
    )
    # two reads, each through its partial index (etl.warehouse.schema: ix_clips_ownerless,
    # ix_clips_imported_early), instead of one scan of every clip for the OR of both
    cols = ["clip_id", "device_sn", "police_no", "started_at", "ended_at", "imported_at"]
    up_to = _up_to("started_at", as_of_s)
    c = pd.concat(
        [
            r.query("clips", cols, f"police_no IS NULL AND {up_to} AND NOT EXISTS ({latest})"),
            r.query("clips", cols, f"imported_at < ended_at AND {up_to}"),
        ],
        ignore_index=True,
    )
    c = c.drop_duplicates("clip_id").sort_values("clip_id", kind="stable").reset_index(drop=True)
    if c.empty:
        return []
    unit = _lookup(c["device_sn"], r.unit_of("devices"))
    key = c["clip_id"].astype(str).to_numpy(dtype=object)
    dev = c["device_sn"].astype(str).to_numpy(dtype=object)
    start = base.fmt_ts(c["started_at"]).to_numpy(dtype=object)
    owner = base.resolve_owners(c, r.read("device_assignments", list(TABLES["device_assignments"].column_names)))
    lost = owner.isna().to_numpy()
    late = (c["imported_at"].to_numpy() < c["ended_at"].to_numpy()) & ~c["imported_at"].isna().to_numpy()
    src = TABLES["clips"].system
    no_owner = _frame(
        {
            "kind": "clip_no_owner",
            "unit_code": unit[lost],
            "source": src,
            "table_name": "clips",
            "object_key": key[lost],
            "detail": "视频 "
            + key[lost]
            + "（设备 "
            + dev[lost]
            + "，开始 "
            + start[lost]
            + "）既未登记佩戴人，该时间也没有该设备的领用记录，不能计入任何民警的现场录像",
        }
    )
    bad = _frame(
        {
            "kind": "clip_bad_times",
            "unit_code": unit[late],
            "source": src,
            "table_name": "clips",
            "object_key": key[late],
            "detail": "视频 "
            + key[late]
            + "（设备 "
            + dev[late]
            + "）导入时间 "
            + base.fmt_ts(c["imported_at"]).to_numpy(dtype=object)[late]
            + " 早于结束时间 "
            + base.fmt_ts(c["ended_at"]).to_numpy(dtype=object)[late]
            + "，时间不可信（设备时钟或平台记录有误）",
        }
    )
    return [no_owner, bad]


def drift_events(events: pd.DataFrame, cfg: dict, as_of_s: float) -> pd.DataFrame:
    """The on-site events (the coverage's: incident_no, arrived_at) arriving in the ``clock_drift_days`` days up
    to the evaluation date: what ``clock_drift`` reads (a partition's, added up over the partitions)."""
    since = as_of_s - float(cfg["params"]["clock_drift_days"]) * 86400
    t = events["arrived_at"].to_numpy()
    return events.loc[(t > since) & (t <= as_of_s), ["incident_no", "arrived_at"]]


def clock_drift(r: _Reader, cfg: dict, events: pd.DataFrame, as_of_s: float) -> pd.DataFrame:
    """Devices whose clock is off now: per device, the offset of each on-site event it covers (arrival in the
    ``clock_drift_days`` days up to the evaluation date) is the start of its first clip tagged with the event
    (``clips.incident_no``: a tag, independent of any clock) minus the dispatch arrival time; the device's offset
    is the median over those events.  Flagged when estimated from at least ``clock_drift_min_events`` events and
    its size exceeds ``clock_drift_s``.  Nothing is corrected (the coverage rules use the clips' own times)."""
    limit = float(cfg["params"]["clock_drift_s"])
    need = int(cfg["params"]["clock_drift_min_events"])
    days = float(cfg["params"]["clock_drift_days"])
    ev = drift_events(events, cfg, as_of_s).reset_index(drop=True)
    if ev.empty:
        return _empty()
    # the clips tagged with the window's events, looked up by event in the partial index of tagged clips, which
    # covers these columns (a month's ~20k events at city scale: ~90k clips read index-only, instead of
    # scanning the year's 1.2M tagged ones)
    tagged = key_in(r.conn, "dq_drift", ["incident_no"], pd.DataFrame({"k": ev["incident_no"].astype(str)}))
    c = base.read_table(
        r.conn,
        "clips",
        ["device_sn", "incident_no", "started_at"],
        f"incident_no IS NOT NULL AND {tagged}",
        kept=False,
    )
    pos = pd.Index(ev["incident_no"].to_numpy(), dtype=object).get_indexer(c["incident_no"].to_numpy(dtype=object))
    ok = (pos >= 0) & c["started_at"].notna().to_numpy() & c["device_sn"].notna().to_numpy()
    if not ok.any():
        return _empty()
    x = pd.DataFrame(
        {
            "device_sn": c["device_sn"].to_numpy(dtype=object)[ok],
            "ev": pos[ok],
            "start": c["started_at"].to_numpy()[ok],
        }
    )
    first = x.groupby(["device_sn", "ev"], sort=False)["start"].min().reset_index()
    first["offset"] = first["start"].to_numpy() - ev["arrived_at"].to_numpy()[first["ev"].to_numpy()]
    per = first.groupby("device_sn")["offset"].agg(["median", "size"])
    per = per[(per["size"] >= need) & (per["median"].abs() > limit)].sort_index()
    if per.empty:
        return _empty()
    med = per["median"].to_numpy()
    dev = per.index.astype(str).to_numpy(dtype=object)
    way = np.where(med < 0, "早于", "晚于")
    return _frame(
        {
            "kind": "clock_drift",
            "unit_code": _lookup(pd.Series(dev), r.unit_of("devices")),
            "source": TABLES["clips"].system,
            "table_name": "devices",
            "object_key": dev,
            "detail": "设备 "
            + dev
            + " 在其记录的 "
            + per["size"].astype(str).to_numpy(dtype=object)
            + " 起现场警情中，首段关联视频的开始时间中位数"
            + way
            + "接处警到达时间 "
            + base.fmt_duration(np.abs(med)).to_numpy(dtype=object)
            + f"（近 {days:g} 天，允许偏差 {limit:g} 秒），设备时钟可能不准；覆盖率按原始时间计算，未作校正",
        }
    )


# --- the kinds read from the quarantine ---------------------------------------------------------


def _quarantine_kind(table: str, reason: str) -> str:
    for prefix, kind in _REASON_KINDS:
        if reason.startswith(prefix):
            return kind
    if reason.startswith(_END_BEFORE_START):
        if table == "incidents":
            return "end_before_arrival"
        if table == "clips":
            return "clip_bad_times"
    return "source_rejected"


def _payload_get(payload: object, names: tuple[str, ...]) -> str | None:
    try:
        rec = json.loads(payload) if isinstance(payload, str) else None
    except ValueError:
        return None
    if not isinstance(rec, dict):
        return None
    for n in names:
        v = rec.get(n)
        if v is not None and str(v).strip():
            return str(v).strip()
    return None


def _quarantine_unit(r: _Reader, table: str, payload: object, row_key: str, root: str | None) -> str | None:
    """The unit that must fix a refused row: its own unit, else that of its incident, case, device or
    officer (looked up in the warehouse), else the root unit.  The payload holds the source's column names:
    renamed columns are not found (the key's first part is tried too)."""
    own = _payload_get(payload, ("unit_code",))
    if own:
        return own
    first = row_key.split("|")[0] if row_key else None
    for col, ref in (("incident_no", "incidents"), ("case_no", "cases"), ("device_sn", "devices")):
        v = _payload_get(payload, (col,)) or (first if TABLES.get(table) and TABLES[table].key[0] == col else None)
        if v:
            unit = r.unit_of(ref).get(v)
            if isinstance(unit, str):
                return unit
    if table == "case_documents":  # its case may be the one refused
        v = _payload_get(payload, ("case_no",))
        if v:
            return r.unit_of("cases").get(v, root)
    for col in ("police_no", "user_no"):
        v = _payload_get(payload, (col,))
        if v:
            unit = r.unit_of("officers").get(v)
            if isinstance(unit, str):
                return unit
    return root


def from_quarantine(r: _Reader) -> pd.DataFrame:
    """Refused source rows whose key is not in the mirror now, one per (kind, source, table, key): the latest
    reason recorded for it."""
    q = read_df(r.conn, "SELECT run_id, source, table_name, row_key, reason, payload FROM quarantine")
    if q.empty:
        return _empty()
    q = q.astype(object).where(q.notna(), None)
    q["row_key"] = q["row_key"].map(lambda v: "" if v is None else str(v))
    q["reason"] = q["reason"].map(lambda v: "" if v is None else str(v))
    q["kind"] = [_quarantine_kind(str(t), rs) for t, rs in zip(q["table_name"], q["reason"], strict=True)]
    keep = np.ones(len(q), dtype=bool)
    for table, rows in q.groupby("table_name"):
        tab = TABLES.get(str(table))
        if tab is None:
            continue
        parts = rows["row_key"].str.split("|", expand=True, regex=False)
        if parts.shape[1] != len(tab.key):
            continue
        parts = parts.fillna("").drop_duplicates()
        parts.columns = list(tab.key)
        cond = key_in(r.conn, "dq_keys", tab.key, parts, [tab.column(k).kind for k in tab.key])
        cols = ", ".join(r.conn.dialect.identifier_preparer.quote(k) for k in tab.key)
        present = {
            "|".join("" if v is None else str(v) for v in row)
            for row in fetch_rows(r.conn, f"SELECT {cols} FROM {table} WHERE {cond}")
        }
        if tab.key and any(tab.column(k).kind == "dt" for k in tab.key):
            present |= {p.replace("T", " ") for p in present}
        keep[rows.index.to_numpy()] = ~rows["row_key"].isin(present).to_numpy()
    q = q[keep]
    q = q.sort_values(["run_id"], kind="stable", na_position="first").drop_duplicates(
        ["kind", "source", "table_name", "row_key"], keep="last"
    )
    if q.empty:
        return _empty()
    root = r.root_unit()
    units = [
        _quarantine_unit(r, str(t), p, k, root)
        for t, p, k in zip(q["table_name"], q["payload"], q["row_key"], strict=True)
    ]
    return _frame(
        {
            "kind": q["kind"].to_numpy(dtype=object),
            "unit_code": np.asarray(units, dtype=object),
            "source": q["source"].to_numpy(dtype=object),
            "table_name": q["table_name"].to_numpy(dtype=object),
            "object_key": q["row_key"].to_numpy(dtype=object),
            "detail": "源数据 "
            + q["source"].astype(str).to_numpy(dtype=object)
            + "."
            + q["table_name"].astype(str).to_numpy(dtype=object)
            + " 的记录 "
            + q["row_key"].to_numpy(dtype=object)
            + " 未装入（"
            + q["reason"].to_numpy(dtype=object)
            + "），未参与考评",
        }
    )


# --- the step -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_jit(conn: Connection) -> Iterator[None]:
    """PostgreSQL without JIT compilation for the queue's queries, then as before (in the run's transaction).
    The queue's queries are short index reads whose plans look costly to the planner: compiling them took
    ~0.5 s of the 1 s the ownerless-clip read took at city scale."""
    if conn.dialect.name != "postgresql":
        yield
        return
    before = conn.exec_driver_sql("SELECT current_setting('jit')").scalar()
    conn.exec_driver_sql("SET LOCAL jit = off")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"SET LOCAL jit = {'on' if before == 'on' else 'off'}")


def evaluate(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    coverage: Coverage | None = None,
    snapshots: Snapshots | None = None,
    gathered: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """The current queue (COLUMNS), ordered by kind, unit and key; no writes.  ``coverage``: the coverage step's
    (read here when None); ``snapshots``: the run's.  ``gathered``: instead of a coverage, what an evaluation by
    partition gathered from each partition's (``from_coverage``, concatenated)."""
    as_of_s = float(np.floor(base.to_epoch(as_of)))
    if gathered is None:
        if coverage is None:
            from etl.rules import coverage as cov_rules

            coverage = cov_rules.evaluate(conn, as_of, cfg, snapshots=snapshots)
        gathered = from_coverage(coverage, cfg, as_of)
    without, recent = gathered
    r = _Reader(conn, snapshots)
    with _no_jit(conn):
        frames = [
            from_quarantine(r),
            onsite_no_times(r, as_of_s),
            without,
            cases_without_officers(r, as_of_s),
            unknown_action_types(r, cfg, as_of_s),
            unknown_document_types(r, cfg, as_of_s),
            *clip_problems(r, as_of_s),
            clock_drift(r, cfg, recent, as_of_s),
        ]
    frames = [f for f in frames if len(f)]
    if not frames:
        return _empty()
    df = pd.concat(frames, ignore_index=True).drop_duplicates(KEY, keep="first")
    order = {k: i for i, k in enumerate(KINDS)}
    df = df.assign(_o=df["kind"].map(order), _u=df["unit_code"].fillna(""))
    return df.sort_values(["_o", "_u", "table_name", "object_key"], kind="stable")[COLUMNS].reset_index(drop=True)


def from_coverage(coverage: Coverage, cfg: dict, as_of: datetime) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the queue takes from a coverage (of the whole warehouse or of one partition): the rows of its
    events without officers, and its events in the clock-drift window (``drift_events``)."""
    as_of_s = float(np.floor(base.to_epoch(as_of)))
    return events_without_officers(coverage), drift_events(coverage.events, cfg, as_of_s)


def compute(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    run_id: int | None = None,
    coverage: Coverage | None = None,
    snapshots: Snapshots | None = None,
    gathered: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, int]:
    """Rebuild ``data_quality`` in the caller's transaction; returns the current rows per kind (every kind).
    The arguments: see ``evaluate``."""
    now = evaluate(conn, as_of, cfg, coverage=coverage, snapshots=snapshots, gathered=gathered)
    old = read_df(conn, f"SELECT {', '.join(KEY)}, first_seen_run FROM {TABLE}").astype(object)
    first = {tuple(row[:4]): row[4] for row in old.itertuples(index=False, name=None) if pd.notna(row[4])}
    keys = list(now[KEY].itertuples(index=False, name=None))
    out = now.copy()
    out["first_seen_run"] = pd.Series([first.get(k, run_id) for k in keys], index=out.index, dtype=object)
    out["first_seen_run"] = out["first_seen_run"].map(lambda v: None if v is None or pd.isna(v) else int(v))
    out["last_seen_run"] = run_id
    out["current"] = 1
    # the current rows are written anew (their first run carried over); the others stay, no longer current, so
    # that a row coming back later keeps the run that first saw it
    if keys:
        conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE {key_in(conn, 'dq_now', KEY, now[KEY])}")
    conn.exec_driver_sql(f"UPDATE {TABLE} SET current = 0 WHERE current = 1")
    bulk_insert(conn, TABLE, with_county(conn, TABLE, out[[*COLUMNS, "first_seen_run", "last_seen_run", "current"]]))
    counts = now["kind"].value_counts()
    return {k: int(counts.get(k, 0)) for k in KINDS}
