"""``etl run``: read every declared source, stage, load, check media, evaluate rules — one transaction.

Everything a run writes (mirror rows, watermarks, content hashes, quarantine,
media_files, marts, its ``etl_runs`` row) is committed together at the end.
When anything fails (unreadable source, bug, interrupt) the transaction rolls
back, so the warehouse is exactly as before, and a ``failed`` ``etl_runs``
row is then recorded in a separate small transaction.  A killed process
leaves nothing: the database discards the open transaction.

Source health (shared/spec/interface.md ``v_source_health``): every check of
a run records whether it ran and over what (table ``source_health``, written
with the run).  The faults a source can have each give one behaviour: one bad
row (undecodable bytes, ragged line, bad cell, dated after the run's
wall-clock time + ``future_tolerance_h``, media path outside the root) is one
quarantined row; a source that cannot be read fails the run; a full-compare
table that shrinks by more than ``shrink_guard`` stops the run unless
accepted (``accept_shrink``); a second run on the same warehouse exits at once
(``etl.warehouse.runlock``).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl import settings
from etl.errors import ConfigError, EtlError
from etl.memory import release_freed
from etl.progress import Progress
from etl.rules import config as rules_config
from etl.sources import config as config_mod
from etl.sources.contract import LOAD_ORDER, TABLES, Table
from etl.sources.extract import (
    BAD_CELL_REASON,
    RAGGED_REASON,
    UNDECODABLE_REASON,
    can_push_down,
    read_table,
    source_bytes,
)
from etl.sources.pieces import NewRows, Survey, pieces, read_new, survey
from etl.sources.staging import (
    FUTURE_REASON,
    MEDIA_PATH_REASON,
    MEDIA_PATHS,
    Staged,
    compact,
    isin,
    row_keys,
    stage,
    with_retried,
)
from etl.warehouse import clip_runs, fingerprints, runlock
from etl.warehouse.db import bulk_insert, is_empty, is_new_sqlite, make_engine, param_mark, warehouse_url
from etl.warehouse.integrity import check_media
from etl.warehouse.load import (
    WarehouseKeys,
    append_piece,
    apply_kept,
    forget_hash,
    get_watermark,
    indexes_deferred,
    load_table,
    read_mirror,
    set_watermark,
)
from etl.warehouse.schema import ensure_schema, etl_runs
from etl.warehouse.snapshots import Snapshots

# Columns whose latest day defines the default evaluation date.
AS_OF_COLUMNS = (
    ("incidents", "received_at"),
    ("clips", "started_at"),
    ("cases", "registered_at"),
    ("case_actions", "started_at"),
    ("access_log", "at"),
)
READ_AHEAD = 8  # source tables read ahead of the load (memory: their raw rows wait in memory)
REFERENCED = {ref for t in TABLES.values() for _c, ref, _k in t.refs}
FULL_COMPARE = frozenset(name for name, t in TABLES.items() if not t.has_updated_at)  # the shrink guard's tables
HEALTH_COLUMNS = ["run_id", "check_name", "performed", "objects", "detail"]


class ShrinkError(EtlError):
    """A full-compare table would lose more rows than ``shrink_guard`` allows: the run stops, nothing written."""


@dataclass
class TableStats:
    read: int = 0  # rows delivered by the source
    unchanged: int = 0  # rows loaded by an earlier run (at or below the watermark, or fingerprinted)
    loaded: int = 0  # rows written into the warehouse
    rejected: int = 0  # rows rejected in this run
    quarantined: int = 0  # of those, newly recorded in the quarantine table
    seconds: float = 0.0
    replaced: bool = False  # a full-compare table whose content changed
    pieces: int = 0  # pieces it was loaded in (etl.sources.pieces); 0: read and loaded whole


@dataclass
class RunResult:
    run_id: int | None
    status: str
    sources: Path
    warehouse: str
    started_at: datetime
    ended_at: datetime
    as_of: datetime | None
    tables: dict[str, TableStats] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # "table: reason kind" -> rows rejected
    integrity: dict = field(default_factory=dict)
    rules: dict | None = None  # what etl.evaluation.evaluate returned; None when not evaluated
    timings: dict[str, float] = field(default_factory=dict)
    health: list[tuple[str, int, int | None, str]] = field(default_factory=list)  # source_health rows of the run

    def stats_json(self) -> str:
        return json.dumps(
            {
                "tables": {k: asdict(v) for k, v in self.tables.items()},
                "quarantine_reasons": self.reasons,
                "integrity": self.integrity,
                "findings": (self.rules or {}).get("findings"),
                "partitions": (self.rules or {}).get("partitions"),  # county groups evaluated one at a time
                "timings": {
                    **self.timings,
                    **{f"rules.{k}": v for k, v in ((self.rules or {}).get("timings") or {}).items()},
                },
            },
            ensure_ascii=False,
            default=str,
        )

    def summary(self) -> str:
        secs = (self.ended_at - self.started_at).total_seconds()
        lines = [
            f"数据加载完成：运行编号 {self.run_id}，用时 {secs:.1f} 秒",
            f"数据源配置：{self.sources}",
            f"数据仓库：{_safe_url(self.warehouse)}",
            f"{'表':<21}{'读取':>10}{'未变':>10}{'载入':>10}{'隔离':>8}",
        ]  # CJK labels are double width
        for name, st in self.tables.items():
            lines.append(f"{name:<22}{st.read:>12,}{st.unchanged:>12,}{st.loaded:>12,}{st.rejected:>10,}")
        if parts := [f"{name}（{st.pieces} 段）" for name, st in self.tables.items() if st.pieces > 1]:
            lines.append(f"分段载入：{'、'.join(parts)}，每段不超过设置的 etl.load_piece_rows 行")
        total = sum(st.rejected for st in self.tables.values())
        new = sum(st.quarantined for st in self.tables.values())
        if total:
            lines.append(f"隔离行共 {total:,} 行（本次新记录 {new:,} 行，见 v_quarantine），按原因：")
            lines += [f"  {k}：{v:,}" for k, v in sorted(self.reasons.items(), key=lambda kv: (-kv[1], kv[0]))]
        else:
            lines.append("隔离行：无")
        integ = self.integrity
        if integ.get("checked"):
            lines.append(
                f"完整性检查：已检查 {integ['clips']:,} 个视频的原始文件，缺失 {integ['missing']:,} 个，"
                f"本次计算哈希 {integ['hashed']:,} 个"
            )
        else:
            lines.append(f"完整性检查：未进行（{integ.get('reason') or '未知原因'}）")
        as_of = self.as_of.strftime("%Y-%m-%d %H:%M:%S") if self.as_of else "—"
        if self.rules is None:
            lines.append(f"规则评估：未进行（--no-rules）；评估时间本应为 {as_of}")
        else:
            counts = self.rules.get("findings") or {}
            n = sum(int(v) for v in counts.values()) if isinstance(counts, dict) else counts
            lines.append(f"规则评估：评估时间 {as_of}，发现问题 {n:,} 条")
            if (self.rules.get("partitions") or 1) > 1:
                lines.append(
                    f"  按区县分组评估：{self.rules['partitions']} 组（每组不超过设置的 etl.partition_rows 行）"
                )
            if isinstance(counts, dict):
                lines += [f"  {rule}：{int(v):,}" for rule, v in sorted(counts.items())]
        return "\n".join(lines)


def _safe_url(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001
        return url


def reason_kind(reason: str) -> str:
    """The reason without the offending value: "未知单位 1404…" -> "未知单位"."""
    for prefix in (UNDECODABLE_REASON, RAGGED_REASON, BAD_CELL_REASON):
        if reason.startswith(prefix):
            return prefix
    if reason.startswith(("未知", "主键重复")):
        return reason.split(" ", 1)[0]
    for sep in ("=", "（"):
        if sep in reason:
            return reason.split(sep, 1)[0]
    return reason


def default_as_of(conn: Connection) -> datetime | None:
    """End (23:59:59) of the latest day present in the loaded data."""
    latest = None
    for table, col in AS_OF_COLUMNS:
        value = conn.exec_driver_sql(f"SELECT MAX({col}) FROM {table}").scalar()
        if value is None:
            continue
        ts = pd.Timestamp(value).to_pydatetime()
        latest = ts if latest is None or ts > latest else latest
    return latest.replace(hour=23, minute=59, second=59, microsecond=0) if latest else None


def _last_ok_hash(conn: Connection) -> str | None:
    row = conn.execute(
        sa.select(etl_runs.c.sources_hash).where(etl_runs.c.status == "ok").order_by(etl_runs.c.run_id.desc()).limit(1)
    ).first()
    return row[0] if row else None


@dataclass
class _LoadRun:
    """The run-wide state of the load, shared by every table's ``_load_one``."""

    conn: Connection
    cfg: config_mod.SourcesConfig
    run_id: int
    result: RunResult
    progress: Progress
    snapshots: Snapshots  # told every mirror key the load deletes or inserts
    known: dict[str, pd.Index] = field(default_factory=dict)  # keys of the referenced tables loaded so far
    reasons: Counter = field(default_factory=Counter)  # "table：reason kind" -> rows rejected
    runs: clip_runs.Maintenance = field(default_factory=clip_runs.Maintenance)  # clip_runs and clip_days
    loaded_clips: set[str] = field(default_factory=set)  # clip ids loaded (for the integrity check)
    not_after: str | None = None  # rows dated after this are quarantined (run's wall clock + future_tolerance_h)
    shrink_guard: float = 0.5  # share of a full-compare table's rows it may lose before the run stops
    accept_shrink: frozenset[str] = frozenset()  # tables allowed to shrink this run (--accept-shrink)
    staged_rows: int = 0  # rows validated this run (the future-date and path checks ran over them)
    paths_checked: int = 0  # clips rows whose media path staging checked
    shrink: dict[str, tuple[int, int]] = field(default_factory=dict)  # full-compare table -> (rows before, after)
    piece_rows: int = 500_000  # a table read into an empty mirror is loaded in pieces of this many rows

    def let_go(self) -> None:
        """Drop what only the load and the integrity check needed before the rules run: the referenced keys (up
        to ``WarehouseKeys.HELD_MAX`` a table; larger ones are looked up in the warehouse) and the clip ids loaded."""
        self.known.clear()
        self.loaded_clips = set()


def _load_all(
    conn: Connection,
    cfg: config_mod.SourcesConfig,
    run_id: int,
    result: RunResult,
    progress: Progress,
    snapshots: Snapshots,
    guards: dict | None = None,
) -> _LoadRun:
    """Extract, stage and load every declared table in contract order; returns the run's load state (the clip
    ids loaded, the figures of the checks).  ``guards``: ``not_after``, ``shrink_guard``, ``accept_shrink``."""
    # A changed sources.yaml (renamed columns, formats) invalidates the watermarks: re-read everything.
    use_watermarks = _last_ok_hash(conn) == cfg.sources_hash
    state = _LoadRun(conn, cfg, run_id, result, progress, snapshots, **(guards or {}))
    state.piece_rows = int(settings.load()["etl"]["load_piece_rows"])
    plan = [name for name in LOAD_ORDER if name in cfg.tables]
    marks = {
        name: get_watermark(conn, name) if TABLES[name].has_updated_at and use_watermarks else None for name in plan
    }
    by_pieces = {name for name in plan if _in_pieces(conn, cfg.tables[name], TABLES[name], marks[name])}
    # Sources are read by one background thread, up to READ_AHEAD tables ahead of the load: reading (driver
    # fetches, file parsing) overlaps with staging and writing the tables before it.  Staging and loading
    # stay in contract order on this thread and connection.  The files waiting (read or being read, not yet
    # loaded) stay within etl.read_ahead_mb: at province scale a few whole CSV tables are gigabytes.
    budget = int(settings.load()["etl"]["read_ahead_mb"]) * 2**20
    by_stream = {name for name in plan if _streams_new_rows(cfg.tables[name], marks[name])}
    held = {name: 0 if name in by_pieces | by_stream else source_bytes(cfg.tables[name]) for name in plan}
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-read")
    futures: dict[str, Future | None] = {}
    try:
        for i, name in enumerate(plan):
            for later in reads_ahead(plan, i, futures.keys(), held, budget):
                wm = marks[later]
                if later in by_pieces:  # surveyed ahead, its rows read piece by piece when it loads
                    futures[later] = pool.submit(survey, cfg.tables[later], TABLES[later], state.piece_rows)
                elif later in by_stream:  # only the rows above the watermark are kept
                    futures[later] = pool.submit(read_new, cfg.tables[later], TABLES[later], wm, state.piece_rows)
                else:
                    futures[later] = pool.submit(read_table, cfg.tables[later], wm[0] if wm else None)
            _load_one(state, name, futures[name], marks[name])
            futures[name] = None  # its rows are loaded: let them go
            release_freed()  # and their pages back to the OS, before the next table (see etl.memory)
    finally:  # on failure do not wait for reads still queued
        pool.shutdown(wait=False, cancel_futures=True)
    state.runs.refresh(conn)  # ownership changes when only device_assignments were declared and changed
    result.reasons = dict(state.reasons)
    return state


def reads_ahead(plan: list[str], i: int, started: Collection[str], held: dict[str, int], budget: int) -> list[str]:
    """The tables to start reading when table ``plan[i]`` is next to load: in contract order, up to READ_AHEAD
    beyond it, while the bytes ``held`` by the tables started and not yet loaded stay within ``budget`` (the
    next table itself is always read)."""
    waiting = sum(held[n] for n in plan[i:] if n in started)
    out = []
    for later in plan[i : i + 1 + READ_AHEAD]:
        if later in started:
            continue
        if later != plan[i] and waiting + held[later] > budget:
            break
        waiting += held[later]
        out.append(later)
    return out


def _load_one(state: _LoadRun, name: str, raw_future: Future, wm: tuple[str, str] | None) -> None:
    """Stage and load one table whose source read is under way in ``raw_future``."""
    conn, cfg, known, progress = state.conn, state.cfg, state.known, state.progress
    src = cfg.tables[name]
    table = TABLES[name]
    t0 = time.perf_counter()
    progress.stage(f"读取 {name}")
    raw = raw_future.result()
    if isinstance(raw, Survey):
        _load_pieces(state, name, raw, t0)
        return
    dropped = 0
    if isinstance(raw, NewRows):
        raw, dropped = raw.frame, raw.dropped
    progress.stage(f"校验 {name}（{len(raw):,} 行）")
    prints = _fingerprinted(table)
    if prints and _trusts_fingerprints(table, state.result) and _load_kept(state, table, raw, t0):
        return
    # A table without updated_at is re-read in full: rows already in the mirror as they are need no
    # reference look-ups in the warehouse, and the load compares against the same read of the mirror.
    mirror = None
    if (
        not table.has_updated_at
        and any(hasattr(known.get(ref), "contains") for _c, ref, _k in table.refs)
        and not is_empty(conn, table.name)
    ):
        mirror = read_mirror(conn, table)
    staged = _stage(
        raw,
        src,
        table,
        known,
        watermark=wm,
        loaded=mirror.holds if mirror is not None else None,
        state=state,
        dropped=dropped,
    )
    if wm is not None:  # rows an earlier run rejected for an unknown reference (or a future date) may be valid now
        retry = _rejected_for_references(conn, table, list(raw.columns))
        if len(retry):
            staged = with_retried(staged, _stage(retry, src, table, known, state=state), table)
    raw_prints = fingerprints.of(raw) if prints else None
    del raw
    if name in FULL_COMPARE:
        before = len(mirror.rows) if mirror is not None else _count(conn, name)
        _guard_shrink(state, name, before, len(staged.clean))
    progress.start(f"载入 {name}", len(staged.clean))
    state.runs.before(conn, name, staged.clean)
    res = load_table(
        conn,
        table,
        staged,
        state.run_id,
        on_chunk=progress.advance,
        mirror=mirror,
        hashed=not prints,
        snapshots=state.snapshots,
    )
    del mirror
    if raw_prints is not None:  # the mirror now holds exactly the clean rows: remember their raw rows
        fingerprints.write(conn, table, cfg.sources_hash, raw_prints[staged.rows], staged.clean[list(table.key)])
    state.runs.after(conn, name, staged.clean, changed=bool(res.loaded or res.replaced), was_empty=res.was_empty)
    if name == "clips":  # device_assignments load before clips (contract order): ownership is final now
        progress.stage("更新民警录像时段")
        state.runs.refresh(conn)
    if name in REFERENCED:
        if table.has_updated_at and not res.was_empty:
            known[name] = WarehouseKeys(conn, table)
        else:
            known[name] = pd.Index(staged.clean[table.key[0]], dtype="str")
    if name == "clips" and res.loaded and cfg.media_root is not None:
        state.loaded_clips.update(staged.clean["clip_id"].to_numpy(dtype=object))
    _record(
        state,
        name,
        TableStats(
            read=staged.read,
            unchanged=staged.unchanged,
            loaded=res.loaded,
            rejected=len(staged.quarantine),
            quarantined=res.quarantined,
            seconds=round(time.perf_counter() - t0, 3),
            replaced=res.replaced,
        ),
        staged.quarantine,
    )


def _streams_new_rows(src: config_mod.TableSource, wm: tuple[str, str] | None) -> bool:
    """Is this table read for its rows above the watermark only (``etl.sources.pieces.read_new``)?  A later run
    of a table with a watermark, from a CSV file or a database table whose SQL cannot take the watermark."""
    return wm is not None and (src.system.kind == "csv" or (src.system.kind == "url" and not can_push_down(src)))


def _in_pieces(conn: Connection, src: config_mod.TableSource, table: Table, wm: tuple[str, str] | None) -> bool:
    """Is this table read and loaded in pieces (``etl.sources.pieces``), should it be larger than one?  A first
    load (empty mirror, no watermark) of a CSV file or database table whose rows do not refer to each other
    (as org_units' parent_code does), with ``updated_at`` or fingerprinted: each piece then needs only its own
    rows and the keys of the tables loaded before it.  The others (the reference tables, compared whole with
    their mirror; device_assignments) and every later run read the table whole."""
    return (
        src.system.kind in ("csv", "url")
        and wm is None
        and (table.has_updated_at or _fingerprinted(table))
        and all(ref != table.name for _c, ref, _k in table.refs)
        and is_empty(conn, table.name)
    )


def _load_pieces(state: _LoadRun, name: str, surveyed: Survey, t0: float) -> None:
    """A surveyed table loaded piece by piece into its empty mirror: each piece read, staged and inserted
    on its own; the watermark, fingerprints, referenced keys and clip runs once at the end."""
    conn, cfg, progress = state.conn, state.cfg, state.progress
    src, table = cfg.tables[name], TABLES[name]
    prints = _fingerprinted(table)
    # a referenced table of more keys than memory should hold is looked up in the warehouse by the tables after it
    # (its keys held grew with the province: 23.5M clip ids); a smaller one keeps its keys, as a whole load does
    looked_up = name in REFERENCED and len(table.key) == 1 and surveyed.rows > WarehouseKeys.HELD_MAX
    st = TableStats(read=surveyed.rows)
    reasons: list[pd.Series] = []
    keys: list[pd.DataFrame] = []  # the loaded rows' keys (copies): fingerprints, references of later tables
    raw_prints: list[np.ndarray] = []
    watermark: tuple[str, str] | None = None
    progress.start(f"载入 {name}（分段，每段 {state.piece_rows:,} 行）", surveyed.rows)
    with indexes_deferred(conn, table):
        for raw in pieces(src, table, surveyed, state.piece_rows):
            staged = _stage(raw, src, table, state.known, state=state)
            if prints:
                raw_prints.append(fingerprints.of(raw)[staged.rows])
            del raw
            res = append_piece(conn, table, staged, state.run_id, progress.advance, snapshots=state.snapshots)
            state.runs.after(conn, name, staged.clean, changed=res.loaded > 0, was_empty=True)
            if prints or (name in REFERENCED and not looked_up):
                keys.append(pd.DataFrame({k: compact(staged.clean[k]) for k in table.key}))
            if name == "clips" and cfg.media_root is not None:
                state.loaded_clips.update(staged.clean["clip_id"].to_numpy(dtype=object))
            if staged.watermark is not None and (watermark is None or staged.watermark > watermark):
                watermark = staged.watermark
            st.pieces += 1
            st.loaded += res.loaded
            st.rejected += len(staged.quarantine)
            st.quarantined += res.quarantined
            reasons.append(staged.quarantine["reason"].astype(object))
            del staged
            release_freed()
    st.replaced = not table.has_updated_at and st.loaded > 0
    if watermark is not None:
        set_watermark(conn, name, watermark)
    loaded_keys = pd.concat(keys, ignore_index=True) if keys else pd.DataFrame(columns=list(table.key), dtype="str")
    del keys
    if prints:
        forget_hash(conn, name)
        fingerprints.write(
            conn, table, cfg.sources_hash, np.concatenate(raw_prints) if raw_prints else np.empty((0, 2)), loaded_keys
        )
    del raw_prints
    if looked_up:
        state.known[name] = WarehouseKeys(conn, table, rows=st.loaded)  # the mirror was empty: it holds these
    elif name in REFERENCED:
        state.known[name] = pd.Index(loaded_keys[table.key[0]], dtype="str")
    del loaded_keys
    if name == "clips":
        progress.stage("更新民警录像时段")
        state.runs.refresh(conn)
    st.seconds = round(time.perf_counter() - t0, 3)
    _record(state, name, st, pd.DataFrame({"reason": pd.concat(reasons, ignore_index=True) if reasons else []}))


def _stage(
    raw: pd.DataFrame,
    src: config_mod.TableSource,
    table: Table,
    known: dict[str, pd.Index],
    *,
    state: _LoadRun,
    **options,
) -> Staged:  # noqa: ANN003 - stage()'s watermark and loaded
    """``etl.sources.staging.stage`` with the source's column mapping and datetime format and the run's
    cut-off for future-dated rows; counts the rows the checks ran over."""
    staged = stage(
        raw,
        table,
        source=src.system.name,
        label=src.label,
        columns=src.columns,
        dt_format=src.dt_format,
        known=known,
        not_after=state.not_after,
        **options,
    )
    checked = staged.read - staged.unchanged
    state.staged_rows += checked
    if table.name in MEDIA_PATHS:
        state.paths_checked += checked
    return staged


def _count(conn: Connection, name: str) -> int:
    return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(name)}").scalar())


def _guard_shrink(state: _LoadRun, name: str, before: int, after: int) -> None:
    """The truncation guard: stop the run (nothing written) when a full-compare table would lose more than
    ``shrink_guard`` of its rows, or all of them, unless the table was accepted for this run."""
    if before <= 0:
        return
    state.shrink[name] = (before, after)
    lost = (before - after) / before
    if (after == 0 or lost > state.shrink_guard) and name not in state.accept_shrink:
        raise ShrinkError(
            f"表 {name} 的行数将从上次加载的 {before:,} 行降至 {after:,} 行（减少 {lost:.0%}，"
            f"超过 {state.shrink_guard:.0%}），疑似源数据导出不完整；本次运行已停止，数据仓库未改动。"
            f"如确认无误，请加 --accept-shrink {name} 重新运行"
        )


def _record(state: _LoadRun, name: str, st: TableStats, quarantine: pd.DataFrame) -> None:
    """A loaded table's figures into the run result and its progress line."""
    state.result.tables[name] = st
    for reason, n in quarantine["reason"].map(reason_kind).value_counts().items():
        state.reasons[f"{name}：{reason}"] += int(n)
    state.progress.finish(
        f"{name}：读取 {st.read:,} 行，载入 {st.loaded:,} 行，隔离 {st.rejected:,} 行，{st.seconds:.1f} 秒"
    )


def _fingerprinted(table: Table) -> bool:
    """Does the load keep fingerprints of this table's raw rows (see ``etl.warehouse.fingerprints`` for why)?"""
    return not (table.has_updated_at or table.name in REFERENCED or table.name in fingerprints.NOT_FOR)


def _trusts_fingerprints(table: Table, result: RunResult) -> bool:
    """Not when a full-compare table it references changed in this run: a row valid before may now point at
    a key that is gone (tables with updated_at never lose keys)."""
    return not any(
        not TABLES[ref].has_updated_at and getattr(result.tables.get(ref), "replaced", True)
        for _c, ref, _k in table.refs
    )


def _load_kept(state: _LoadRun, table: Table, raw: pd.DataFrame, t0: float) -> bool:
    """Load a full-compare table staging only the raw rows not loaded before exactly so (``etl.warehouse.fingerprints``).

    False, having written nothing, where the stored fingerprints cannot be trusted: the caller then stages
    and compares the whole table (and stores its fingerprints anew)."""
    conn, cfg = state.conn, state.cfg
    stored = fingerprints.read(conn, table, cfg.sources_hash)
    if stored is None:
        return False
    rows = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {conn.dialect.identifier_preparer.quote(table.name)}")
    if rows.scalar() != len(stored.keys):
        return False
    sp = fingerprints.split(raw, stored)
    if sp is None:
        return False
    staged = _stage(raw[~sp.kept], cfg.tables[table.name], table, state.known, state=state)
    new_keys = pd.concat(
        [row_keys(staged.clean, table.key), staged.quarantine["row_key"].astype("str")], ignore_index=True
    )
    kept_keys = row_keys(stored.keys[sp.kept_stored], table.key)
    if isin(new_keys, pd.Index(kept_keys)).any():  # the full compare would reject both copies
        return False
    _guard_shrink(state, table.name, len(stored.keys), int(sp.kept_stored.sum()) + len(staged.clean))
    state.progress.start(f"载入 {table.name}", len(staged.clean))
    res = apply_kept(
        conn,
        table,
        stored.keys[~sp.kept_stored],
        staged,
        state.run_id,
        on_chunk=state.progress.advance,
        snapshots=state.snapshots,
    )
    new_prints = sp.prints[~sp.kept][staged.rows]
    fingerprints.write(
        conn,
        table,
        cfg.sources_hash,
        np.concatenate([stored.prints[sp.kept_stored], new_prints]),
        pd.concat([stored.keys[sp.kept_stored], staged.clean[list(table.key)].astype("str")], ignore_index=True),
    )
    _record(
        state,
        table.name,
        TableStats(
            read=len(raw),
            unchanged=int(sp.kept.sum()),
            loaded=res.loaded,
            rejected=len(staged.quarantine),
            quarantined=res.quarantined,
            seconds=round(time.perf_counter() - t0, 3),
            replaced=res.replaced,
        ),
        staged.quarantine,
    )
    return True


def _rejected_for_references(conn: Connection, table: Table, raw_columns: list[str]) -> pd.DataFrame:
    """Source rows of a watermark table quarantined earlier for an unknown reference (or a date after that
    run) and still not in the mirror, rebuilt from their recorded payloads: they sit below the watermark, so
    the source read skips them, yet the row they point at (a case registered after its documents arrived)
    may have come since, or their date may have come."""
    key = conn.dialect.identifier_preparer.quote(table.key[0])
    name = conn.dialect.identifier_preparer.quote(table.name)
    p = param_mark(conn)
    rows = conn.exec_driver_sql(
        f"SELECT DISTINCT q.payload FROM quarantine q WHERE q.table_name = {p} AND (q.reason LIKE {p} "
        f"OR q.reason LIKE {p}) AND NOT EXISTS (SELECT 1 FROM {name} m WHERE m.{key} = q.row_key)",
        (table.name, "未知%", f"{FUTURE_REASON}%"),
    ).fetchall()
    records = []
    for (payload,) in rows:
        try:
            rec = json.loads(payload)
        except (TypeError, ValueError):
            continue
        if isinstance(rec, dict) and set(rec) <= set(raw_columns):
            records.append(rec)
    return (
        pd.DataFrame(records, columns=raw_columns, dtype=object).astype("str")
        if records
        else pd.DataFrame(columns=raw_columns)
    )


def run(
    sources: Path,
    warehouse: str | None = None,
    as_of: datetime | None = None,
    rules: bool = True,
    progress: bool | None = None,
    accept_shrink: Collection[str] = (),
    now: datetime | None = None,
) -> RunResult:
    """Load every declared source into the warehouse, check media, evaluate the rules; one transaction.

    ``accept_shrink``: full-compare tables allowed to shrink beyond ``shrink_guard`` in this run.  ``now``:
    the run's wall-clock time (tests; default the real one), which future-dated rows are measured against.
    Raises ``runlock.RunLockedError`` at once, writing nothing, while another run holds the warehouse.
    """
    sources = Path(sources)
    url = warehouse_url(warehouse)
    unknown = sorted(set(accept_shrink) - FULL_COMPARE)
    if unknown:
        raise ConfigError(
            f"--accept-shrink 只适用于全量对比的表（{'、'.join(sorted(FULL_COMPARE))}）：{'、'.join(unknown)}"
        )
    with runlock.hold(url):
        return _run(sources, url, as_of, rules, progress, frozenset(accept_shrink), now)


def _run(
    sources: Path,
    url: str,
    as_of: datetime | None,
    rules: bool,
    progress: bool | None,
    accept_shrink: frozenset[str],
    now: datetime | None,
) -> RunResult:
    started = (now or datetime.now()).replace(microsecond=0)
    cfg = config_mod.load(sources)
    params = rules_config.load()["params"]
    guards = {
        "not_after": (started + timedelta(hours=params["future_tolerance_h"])).strftime("%Y-%m-%d %H:%M:%S"),
        "shrink_guard": float(params["shrink_guard"]),
        "accept_shrink": accept_shrink,
    }
    # The first load into a new SQLite file runs with a rollback journal: a new file's pages need no journal
    # copy, while WAL would write everything twice (into the log, then the checkpoint; ~6 s at city scale).
    # A crash still leaves the file as before (empty).  The warehouse is switched to WAL after the commit.
    fresh = is_new_sqlite(url)
    engine = make_engine(url, journal="DELETE" if fresh else "WAL")
    prog = Progress(progress)
    result = RunResult(
        run_id=None, status="running", sources=sources, warehouse=url, started_at=started, ended_at=started, as_of=as_of
    )
    try:
        with engine.begin() as conn:
            t0 = time.perf_counter()
            ensure_schema(conn)
            run_id = conn.execute(
                etl_runs.insert().values(
                    started_at=started, status="running", sources_hash=cfg.sources_hash, sources_file=str(cfg.path)
                )
            ).inserted_primary_key[0]
            result.run_id = run_id
            snapshots = Snapshots(conn, run_id)  # the large mirrors as the rules read them, kept between runs
            state = _load_all(conn, cfg, run_id, result, prog, snapshots, guards)
            result.timings["load"] = round(time.perf_counter() - t0, 3)

            t0 = time.perf_counter()
            prog.stage("检查媒体文件完整性")
            clips_src = cfg.tables.get("clips")
            result.integrity = check_media(
                conn,
                cfg.media_root,
                changed=state.loaded_clips,
                run_id=run_id,
                source=clips_src.system.name if clips_src is not None else "media",
            )
            result.timings["integrity"] = round(time.perf_counter() - t0, 3)
            state.let_go()

            result.as_of = as_of or default_as_of(conn) or started
            if rules:
                release_freed()
                t0 = time.perf_counter()
                prog.stage("评估规则")
                from etl.evaluation import evaluate

                result.rules = evaluate(
                    conn,
                    as_of=result.as_of,
                    integrity_checked=bool(result.integrity.get("checked")),
                    run_id=run_id,
                    snapshots=snapshots,
                )
                result.timings["rules"] = round(time.perf_counter() - t0, 3)
            prog.finish("")
            result.health = _health(state, result, rules)
            bulk_insert(
                conn,
                "source_health",
                pd.DataFrame([(run_id, *h) for h in result.health], columns=HEALTH_COLUMNS, dtype=object),
            )
            result.status = "ok"
            result.ended_at = datetime.now().replace(microsecond=0)
            conn.execute(
                etl_runs.update()
                .where(etl_runs.c.run_id == run_id)
                .values(
                    ended_at=result.ended_at, status="ok", as_of=result.as_of, stats=result.stats_json(), message=None
                )
            )
    except BaseException as exc:
        _record_failure(engine, started, cfg, exc)
        raise
    finally:
        engine.dispose()
    if fresh:
        _switch_to_wal(url)
    return result


def _health(state: _LoadRun, result: RunResult, rules: bool) -> list[tuple[str, int, int | None, str]]:
    """The run's checks for ``source_health``: (check, performed 0/1, objects it ran over, detail)."""
    rows: list[tuple[str, int, int | None, str]] = []
    for name in LOAD_ORDER:
        st, src = result.tables.get(name), state.cfg.tables.get(name)
        if st is None or src is None:
            rows.append((f"load:{name}", 0, None, "未声明该数据源（可选系统），未加载"))
            continue
        rows.append(
            (
                f"load:{name}",
                1,
                st.read,
                f"{src.label}：读取 {st.read:,} 行，其中未变 {st.unchanged:,} 行，"
                f"载入 {st.loaded:,} 行，隔离 {st.rejected:,} 行",
            )
        )

    def rejected(prefix: str) -> int:
        return sum(n for k, n in state.reasons.items() if k.split("：", 1)[-1].startswith(prefix))

    rows.append(
        (
            "future_rows",
            1,
            state.staged_rows,
            f"校验 {state.staged_rows:,} 行的时间不晚于 {state.not_after}（运行时间 + future_tolerance_h），"
            f"隔离 {rejected(FUTURE_REASON):,} 行",
        )
    )
    integ = result.integrity
    if "clips" not in state.cfg.tables:
        rows.append(("media_paths", 0, None, "未声明视频目录（clips），未检查文件路径"))
    else:
        rows.append(
            (
                "media_paths",
                1,
                state.paths_checked,
                f"校验 {state.paths_checked:,} 条视频文件路径，{rejected(MEDIA_PATH_REASON):,} 条不在媒体根目录内（已隔离）；"
                f"完整性检查另发现 {integ.get('outside', 0):,} 条经符号链接等指向根目录之外（未打开）",
            )
        )
    if integ.get("checked"):
        rows.append(
            (
                "integrity",
                1,
                integ["clips"],
                f"已检查 {integ['clips']:,} 个视频的原始文件：存在 {integ['present']:,} 个，缺失 {integ['missing']:,} 个，"
                f"本次计算哈希 {integ['hashed']:,} 个",
            )
        )
    else:
        rows.append(("integrity", 0, integ.get("clips"), integ.get("reason") or "未检查完整性"))
    if state.shrink:
        accepted = [
            f"{n}（{b:,} → {a:,} 行）"
            for n, (b, a) in sorted(state.shrink.items())
            if n in state.accept_shrink and (a == 0 or (b - a) / b > state.shrink_guard)
        ]
        rows.append(
            (
                "shrink_guard",
                1,
                len(state.shrink),
                f"比较 {len(state.shrink)} 张全量对比表与上次加载的行数（减少超过 {state.shrink_guard:.0%} 即停止）"
                + (f"；按 --accept-shrink 接受：{'、'.join(accepted)}" if accepted else "；均未超过"),
            )
        )
    else:
        rows.append(("shrink_guard", 0, 0, "没有上次加载的全量对比表可比较（首次加载）"))
    if result.rules is None:
        rows.append(("rules", 0, None, "未评估规则（--no-rules）"))
    else:
        counts = result.rules.get("findings") or {}
        n = sum(int(v) for v in counts.values()) if isinstance(counts, dict) else int(counts or 0)
        as_of = result.as_of.strftime("%Y-%m-%d %H:%M:%S") if result.as_of else "—"
        integrity = "含" if integ.get("checked") else "不含"
        rows.append(("rules", 1, n, f"评估时间 {as_of}，发现问题 {n:,} 条（{integrity}完整性检查结果）"))
    return rows


def _switch_to_wal(url: str) -> None:
    """After a first load: WAL from now on, so the dashboard can read while later runs write."""
    engine = make_engine(url)  # its connections set journal_mode=WAL, which persists in the file
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    finally:
        engine.dispose()


def _record_failure(engine: sa.Engine, started: datetime, cfg: config_mod.SourcesConfig, exc: BaseException) -> None:
    """After the rollback: one ``failed`` row saying why (best effort, never masks the original error)."""
    message = str(exc).splitlines()[0][:500] if str(exc) else type(exc).__name__
    try:
        with engine.begin() as conn:
            etl_runs.create(conn, checkfirst=True)
            conn.execute(
                etl_runs.insert().values(
                    started_at=started,
                    ended_at=datetime.now().replace(microsecond=0),
                    status="failed",
                    sources_hash=cfg.sources_hash,
                    sources_file=str(cfg.path),
                    message=message,
                )
            )
    except Exception:  # noqa: BLE001, S110 - the warehouse itself may be what failed
        pass
