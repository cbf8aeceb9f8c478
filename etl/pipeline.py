"""``etl run``: read every declared source, stage, load, check media, evaluate rules — one transaction.

Everything a run writes (mirror rows, watermarks, content hashes, quarantine,
media_files, marts, its ``etl_runs`` row) is committed together at the end.
When anything fails (unreadable source, bug, interrupt) the transaction rolls
back, so the warehouse is exactly as before, and a ``failed`` ``etl_runs``
row is then recorded in a separate small transaction.  A killed process
leaves nothing: the database discards the open transaction.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.memory import release_freed
from etl.progress import Progress
from etl.sources import config as config_mod
from etl.sources.contract import LOAD_ORDER, TABLES, Table
from etl.sources.extract import read_table
from etl.sources.staging import Staged, isin, row_keys, stage, with_retried
from etl.warehouse import clip_runs, fingerprints
from etl.warehouse.db import is_empty, is_new_sqlite, make_engine, param_mark, warehouse_url
from etl.warehouse.integrity import check_media
from etl.warehouse.load import WarehouseKeys, apply_kept, get_watermark, load_table, read_mirror
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


@dataclass
class TableStats:
    read: int = 0  # rows delivered by the source
    unchanged: int = 0  # rows loaded by an earlier run (at or below the watermark, or fingerprinted)
    loaded: int = 0  # rows written into the warehouse
    rejected: int = 0  # rows rejected in this run
    quarantined: int = 0  # of those, newly recorded in the quarantine table
    seconds: float = 0.0
    replaced: bool = False  # a full-compare table whose content changed


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

    def stats_json(self) -> str:
        return json.dumps(
            {
                "tables": {k: asdict(v) for k, v in self.tables.items()},
                "quarantine_reasons": self.reasons,
                "integrity": self.integrity,
                "findings": (self.rules or {}).get("findings"),
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


def _load_all(
    conn: Connection,
    cfg: config_mod.SourcesConfig,
    run_id: int,
    result: RunResult,
    progress: Progress,
    snapshots: Snapshots,
) -> set[str]:
    """Extract, stage and load every declared table in contract order; returns the clip ids loaded."""
    # A changed sources.yaml (renamed columns, formats) invalidates the watermarks: re-read everything.
    use_watermarks = _last_ok_hash(conn) == cfg.sources_hash
    state = _LoadRun(conn, cfg, run_id, result, progress, snapshots)
    plan = [name for name in LOAD_ORDER if name in cfg.tables]
    marks = {
        name: get_watermark(conn, name) if TABLES[name].has_updated_at and use_watermarks else None for name in plan
    }
    # Sources are read by one background thread, up to READ_AHEAD tables ahead of the load: reading (driver
    # fetches, file parsing) overlaps with staging and writing the tables before it.  Staging and loading
    # stay in contract order on this thread and connection.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="etl-read")
    futures: dict[str, Future | None] = {}
    try:
        for i, name in enumerate(plan):
            for later in plan[: i + 1 + READ_AHEAD]:
                if later not in futures:
                    wm = marks[later]
                    futures[later] = pool.submit(read_table, cfg.tables[later], wm[0] if wm else None)
            _load_one(state, name, futures[name], marks[name])
            futures[name] = None  # its rows are loaded: let them go
            release_freed()  # and their pages back to the OS, before the next table (see etl.memory)
    finally:  # on failure do not wait for reads still queued
        pool.shutdown(wait=False, cancel_futures=True)
    state.runs.refresh(conn)  # ownership changes when only device_assignments were declared and changed
    result.reasons = dict(state.reasons)
    return state.loaded_clips


def _load_one(state: _LoadRun, name: str, raw_future: Future, wm: tuple[str, str] | None) -> None:
    """Stage and load one table whose source read is under way in ``raw_future``."""
    conn, cfg, known, progress = state.conn, state.cfg, state.known, state.progress
    src = cfg.tables[name]
    table = TABLES[name]
    t0 = time.perf_counter()
    progress.stage(f"读取 {name}")
    raw = raw_future.result()
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
    staged = _stage(raw, src, table, known, watermark=wm, loaded=mirror.holds if mirror is not None else None)
    if wm is not None:  # rows an earlier run rejected for an unknown reference may be valid now
        retry = _rejected_for_references(conn, table, list(raw.columns))
        if len(retry):
            staged = with_retried(staged, _stage(retry, src, table, known), table)
    raw_prints = fingerprints.of(raw) if prints else None
    del raw
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


def _stage(
    raw: pd.DataFrame, src: config_mod.TableSource, table: Table, known: dict[str, pd.Index], **options
) -> Staged:  # noqa: ANN003 - stage()'s watermark and loaded
    """``etl.sources.staging.stage`` with the source's column mapping and datetime format."""
    return stage(
        raw,
        table,
        source=src.system.name,
        label=src.label,
        columns=src.columns,
        dt_format=src.dt_format,
        known=known,
        **options,
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
    staged = _stage(raw[~sp.kept], cfg.tables[table.name], table, state.known)
    new_keys = pd.concat(
        [row_keys(staged.clean, table.key), staged.quarantine["row_key"].astype("str")], ignore_index=True
    )
    kept_keys = row_keys(stored.keys[sp.kept_stored], table.key)
    if isin(new_keys, pd.Index(kept_keys)).any():  # the full compare would reject both copies
        return False
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
    """Source rows of a watermark table quarantined earlier for an unknown reference and still not in the
    mirror, rebuilt from their recorded payloads: they sit below the watermark, so the source read skips
    them, yet the row they point at (a case registered after its documents arrived) may have come since."""
    key = conn.dialect.identifier_preparer.quote(table.key[0])
    name = conn.dialect.identifier_preparer.quote(table.name)
    p = param_mark(conn)
    rows = conn.exec_driver_sql(
        f"SELECT DISTINCT q.payload FROM quarantine q WHERE q.table_name = {p} AND q.reason LIKE {p} "
        f"AND NOT EXISTS (SELECT 1 FROM {name} m WHERE m.{key} = q.row_key)",
        (table.name, "未知%"),
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
) -> RunResult:
    """Load every declared source into the warehouse, check media, evaluate the rules; one transaction."""
    sources = Path(sources)
    url = warehouse_url(warehouse)
    started = datetime.now().replace(microsecond=0)
    cfg = config_mod.load(sources)
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
            loaded_clips = _load_all(conn, cfg, run_id, result, prog, snapshots)
            result.timings["load"] = round(time.perf_counter() - t0, 3)

            t0 = time.perf_counter()
            prog.stage("检查媒体文件完整性")
            result.integrity = check_media(conn, cfg.media_root, changed=loaded_clips)
            result.timings["integrity"] = round(time.perf_counter() - t0, 3)

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
