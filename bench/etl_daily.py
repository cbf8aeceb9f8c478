"""Benchmark of the daily incremental `etl run` (one new day of data) on the city demo (prints figures, asserts nothing).

    .venv/bin/python bench/etl_daily.py [--src DIR] [--day YYYY-MM-DD] [--work DIR] [--warehouse URL]
                                        [--verify [--verify-warehouse URL]] [--keep]

Goal (issue 3): a daily incremental run (one new day of data) <= 30 s at city scale.

1. Copies every source declared in ``DIR/sources.yaml`` (default
   ``bench/.cache/city``, generated with ``--no-media`` when missing) into a
   work folder, with a byte-identical ``sources.yaml`` so that the watermarks
   stay valid, and turns the copy into "the day before": every row created on
   or after the day (default: the latest day with new incidents, cases or
   clips) is removed, and so is every row referring to a removed row (contract
   references).  Kept rows changed on or after the day are set back: their
   ``updated_at`` becomes the last second before the day and their nullable
   times from the day on (closed_at, imported_at, deleted_at, to_at ...) and
   tags of removed rows become empty.  Rows updated before the day stay as
   they are (below the watermark, the daily run never reads them again), and
   so do the rows they refer to, even when created on the day ("pinned": a
   case registered after midnight whose actions and documents were recorded
   the evening before).  Each source is edited in its own format: SQLite by
   DELETE/UPDATE, CSV rewritten in the same encoding, header and date format,
   XLSX through openpyxl.  Ledger workbooks (a snapshot) are kept as they are.
2. Runs ``pipeline.run`` on the day-before sources into a fresh warehouse
   (the initial load, not the point).
3. Puts the full sources back in place and runs ``pipeline.run`` again: the
   daily incremental run.  Prints its wall time, per-step split, rows per
   table and peak RSS.
4. ``--verify``: a full run of the full sources into another fresh warehouse,
   to check that the incremental run gives the same findings and row counts.

Each run is a child process (its own peak RSS; the copy and edit are not
counted).  ``--warehouse`` takes the URL of an empty database (PostgreSQL for
the production figure); ``--verify-warehouse`` another one for the check
(default: a SQLite file in the work folder).
"""

from __future__ import annotations

import abc
import argparse
import os
import pickle
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.etl_full import _print_run, machine_probe  # noqa: E402
from etl.sources import config as config_mod  # noqa: E402
from etl.sources.config import CONTRACT_DT_FORMAT, TableSource  # noqa: E402
from etl.sources.contract import LOAD_ORDER, TABLES, Table  # noqa: E402
from etl.sources.extract import can_push_down, cell_text  # noqa: E402
from etl.sources.staging import isin, parse_dt  # noqa: E402

DEFAULT_SRC = ROOT / "bench" / ".cache" / "city"
# The column that says when a row came into being; rows from the cut-off on are removed.
CREATED = {
    "cases": "registered_at",
    "case_actions": "started_at",
    "case_documents": "created_at",
    "deliveries": "delivered_at",
    "incidents": "received_at",
    "interruption_reports": "reported_at",
    "device_assignments": "from_at",
    "unit_admins": "from_at",
    "clips": "started_at",
    "access_log": "at",
}
DAY_TABLES = ("incidents", "cases", "clips")  # the default day: the latest with new rows in one of these
CHUNK_ROWS = 200_000


# --- reading and editing one source table in its own format --------------------------------------------


class SourceTable(abc.ABC):
    """One declared table: contract-named text frames to look at, then row removals and cell edits."""

    def __init__(self, src: TableSource):
        self.src = src

    def _names(self, columns: list[str], present: list[str]) -> dict[str, str]:
        """Contract column -> source column, for the contract columns the source has."""
        out = {}
        for c in columns:
            s = self.src.source_column(c)
            if s in present:
                out[c] = s
        return out

    @abc.abstractmethod
    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """Frames of the given contract columns (text, NA for empty), indexed by a row handle."""

    @abc.abstractmethod
    def apply(self, remove: np.ndarray, edits: dict[str, tuple[str | None, np.ndarray]]) -> None:
        """Remove the rows with these handles; set column values (None: empty) on other handles."""


def _text_frame(data: dict[str, object], index) -> pd.DataFrame:  # noqa: ANN001
    df = pd.DataFrame({c: pd.Series(v, index=index, dtype=object) for c, v in data.items()}, index=index)
    df = df.astype("str")
    return df.where(df.notna() & (df != ""))


class SqliteTable(SourceTable):
    """A table of a SQLite file (``sqlite:///path``); row handle = rowid."""

    def __init__(self, src: TableSource):
        super().__init__(src)
        url = sa.make_url(src.system.url or "")
        self.path = Path(url.database or "")
        self.qname = '"' + src.name.replace('"', '""') + '"'

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path)

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        con = self._connect()
        try:
            present = [r[1] for r in con.execute(f"PRAGMA table_info({self.qname})")]
            names = self._names(columns, present)
            sel = ", ".join(["rowid"] + ['"' + s.replace('"', '""') + '"' for s in names.values()])
            cur = con.execute(f"SELECT {sel} FROM {self.qname}")
            while rows := cur.fetchmany(CHUNK_ROWS):
                cols = list(zip(*rows, strict=True))
                index = pd.Index(np.asarray(cols[0], dtype=np.int64))
                yield _text_frame(
                    {c: [None if v is None else str(v) for v in col] for c, col in zip(names, cols[1:], strict=True)},
                    index,
                )
        finally:
            con.close()

    def apply(self, remove: np.ndarray, edits: dict[str, tuple[str | None, np.ndarray]]) -> None:
        con = self._connect()
        try:
            con.execute("CREATE TEMP TABLE bench_rows (r INTEGER PRIMARY KEY)")

            def fill(handles: np.ndarray) -> None:
                con.execute("DELETE FROM bench_rows")
                con.executemany("INSERT INTO bench_rows VALUES (?)", ((int(h),) for h in handles))

            for col, (value, handles) in edits.items():
                if len(handles):
                    fill(handles)
                    qcol = '"' + self.src.source_column(col).replace('"', '""') + '"'
                    con.execute(
                        f"UPDATE {self.qname} SET {qcol} = ? WHERE rowid IN (SELECT r FROM bench_rows)", (value,)
                    )
            if len(remove):
                fill(remove)
                con.execute(f"DELETE FROM {self.qname} WHERE rowid IN (SELECT r FROM bench_rows)")
            con.commit()
        finally:
            con.close()


class CsvTable(SourceTable):
    """``<folder>/<name>.csv``: read as text, rewritten with the same encoding, header and line ends."""

    def __init__(self, src: TableSource):
        super().__init__(src)
        self.path = (src.system.folder or Path()) / f"{src.name}.csv"
        self.raw: pd.DataFrame | None = None

    def _load(self) -> pd.DataFrame:
        if self.raw is None:
            self.raw = pd.read_csv(
                self.path, dtype=str, encoding=self.src.system.encoding, keep_default_na=False, na_filter=False
            )
        return self.raw

    def _headers(self) -> dict[str, str]:
        """Cleaned header (as the reader sees it) -> header in the file."""
        return {str(c).replace("\ufeff", "").strip(): c for c in self._load().columns}

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        raw, heads = self._load(), self._headers()
        names = self._names(columns, list(heads))
        yield _text_frame({c: raw[heads[s]].to_numpy(dtype=object) for c, s in names.items()}, raw.index)

    def apply(self, remove: np.ndarray, edits: dict[str, tuple[str | None, np.ndarray]]) -> None:
        raw, heads = self._load(), self._headers()
        for col, (value, handles) in edits.items():
            if len(handles):
                raw.loc[handles, heads[self.src.source_column(col)]] = value or ""
        with open(self.path, "rb") as f:
            newline = "\r\n" if b"\r\n" in f.read(1 << 16) else "\n"
        text = raw.drop(index=remove).to_csv(index=False, lineterminator=newline)
        self.path.write_bytes(text.encode(self.src.system.encoding))
        self.raw = None


class XlsxTable(SourceTable):
    """``<folder>/<name>.xlsx``, first sheet, header row first; row handle = worksheet row number."""

    def __init__(self, src: TableSource):
        super().__init__(src)
        self.path = (src.system.folder or Path()) / f"{src.name}.xlsx"

    def _header(self, ws) -> list[str]:  # noqa: ANN001
        first = next(ws.iter_rows(min_row=1, max_row=1, values_only=True), ())
        return [str(cell_text(h) or "").replace("\ufeff", "").strip() for h in first]

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        from openpyxl import load_workbook

        wb = load_workbook(self.path, read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            header = self._header(ws)
            names = self._names(columns, header)
            pos = {c: header.index(s) for c, s in names.items()}
            rows = list(ws.iter_rows(min_row=2, values_only=True))
        finally:
            wb.close()
        index = pd.Index(np.arange(2, len(rows) + 2, dtype=np.int64))
        yield _text_frame({c: [cell_text(r[i]) if i < len(r) else None for r in rows] for c, i in pos.items()}, index)

    def apply(self, remove: np.ndarray, edits: dict[str, tuple[str | None, np.ndarray]]) -> None:
        from openpyxl import load_workbook

        wb = load_workbook(self.path)
        ws = wb.worksheets[0]
        header = self._header(ws)
        for col, (value, handles) in edits.items():
            column = header.index(self.src.source_column(col)) + 1
            for row in handles:
                ws.cell(row=int(row), column=column).value = value
        rows = sorted((int(r) for r in remove), reverse=True)
        while rows:  # delete runs of consecutive rows, last first
            end = start = rows.pop(0)
            while rows and rows[0] == start - 1:
                start = rows.pop(0)
            ws.delete_rows(start, end - start + 1)
        wb.save(self.path)


def source_table(src: TableSource) -> SourceTable | None:
    kind = src.system.kind
    if kind == "url":
        if sa.make_url(src.system.url or "").get_backend_name() != "sqlite":
            raise SystemExit(f"{src.label}: only SQLite files can be copied and edited, not {src.system.location}")
        return SqliteTable(src)
    return {"csv": CsvTable, "xlsx": XlsxTable}.get(kind, lambda _src: None)(src)


# --- the day-before copy ---------------------------------------------------------------------------------


@dataclass
class Edit:
    rows: int = 0
    removed: int = 0
    edited: int = 0  # kept rows set back to their state before the cut-off
    pinned: int = 0  # rows from the cut-off on kept because unchanged rows refer to them
    columns: dict[str, int] = field(default_factory=dict)


def _dt(s: pd.Series, fmt: str) -> pd.Series:
    """Canonical ``YYYY-MM-DD HH:MM:SS`` text as the ETL parses it (NA where it cannot)."""
    return parse_dt(s.astype("str"), fmt)


def _from(s: pd.Series, fmt: str, cutoff: str) -> np.ndarray:
    return _dt(s, fmt).ge(cutoff).fillna(False).to_numpy(dtype=bool)


def _later(df: pd.DataFrame, fmt: str, cutoff: str) -> np.ndarray:
    """Rows the daily run will see again: updated from the cut-off on, or every row of a table without updated_at.

    Only those may differ between the day-before copy and the full sources.
    """
    if "updated_at" in df.columns:
        return _from(df["updated_at"], fmt, cutoff)
    return np.ones(len(df), dtype=bool)


def _in(s: pd.Series, keys: set | pd.Index | None) -> np.ndarray:
    if keys is None or not len(keys):
        return np.zeros(len(s), dtype=bool)
    return isin(s, pd.Index(list(keys) if isinstance(keys, set) else keys, dtype="str")).to_numpy(dtype=bool)


def _removable() -> set[str]:
    """Tables that can lose rows: a creation column, or a reference to such a table."""
    out: set[str] = set()
    for name in LOAD_ORDER:
        if name in CREATED or any(ref in out and ref != name for _c, ref, _k in TABLES[name].refs):
            out.add(name)
    return out


def _soft_refs(table: Table, removed: dict[str, pd.Index]) -> dict[str, str]:
    """Optional columns named after the key of a table that lost rows, outside the contract refs (tags)."""
    hard = {c for c, _t, _k in table.refs}
    out = {}
    for name, keys in removed.items():
        key = TABLES[name].key[0]
        if (
            name != table.name
            and len(keys)
            and key in table.column_names
            and key not in hard
            and key not in table.key
            and not table.column(key).required
        ):
            out[key] = name
    return out


def pinned_keys(cfg: config_mod.SourcesConfig, tables: dict[str, SourceTable], cut: str) -> dict[str, set]:
    """Keys that must stay in the copy: referred to (directly or not) by rows that stay.

    A row updated before the cut-off is below the watermark, so the daily run
    never reads it again: it has to be in the day-before copy as it is, and so
    must the rows it refers to (e.g. actions of an emergency start, recorded
    before their case was registered).  Children first (reverse load order).
    """
    can_go = _removable()
    pinned: dict[str, set] = {}
    for name in reversed(LOAD_ORDER):
        table, st = TABLES[name], tables.get(name)
        refs = [(c, ref) for c, ref, _k in table.refs if ref in can_go and ref != name]
        if st is None or not refs or not (table.has_updated_at or pinned.get(name)):
            continue
        cols = [*table.key, *(c for c, _r in refs), *(["updated_at"] if table.has_updated_at else [])]
        for df in st.chunks(list(dict.fromkeys(cols))):
            stays = ~_later(df, st.src.dt_format, cut)
            if len(table.key) == 1:
                stays |= _in(df[table.key[0]], pinned.get(name))
            for col, ref in refs:
                if col in df.columns and stays.any():
                    pinned.setdefault(ref, set()).update(df[col][stays].dropna().to_numpy(dtype=object))
    return pinned


def _columns(table: Table, removed: dict[str, pd.Index]) -> list[str]:
    """The contract columns needed to edit a table; empty when it needs no editing."""
    created = CREATED.get(table.name)
    refs = [c for c, ref, _k in table.refs if ref in removed and len(removed[ref])]
    nullable = [c.name for c in table.columns if c.kind == "dt" and not c.required and c.name != "updated_at"]
    soft = list(_soft_refs(table, removed))
    if not (created or refs or nullable or soft):
        return []
    cols = [*table.key, *([created] if created else []), *refs, *nullable, *soft]
    if table.has_updated_at:
        cols.append("updated_at")
    return list(dict.fromkeys(cols))


def day_before(cfg: config_mod.SourcesConfig, cutoff: datetime) -> dict[str, Edit]:
    """Edit the copied sources in place into their state at ``cutoff``; returns what changed per table.

    Removed: rows created from the cut-off on, and rows referring to removed
    rows.  Set back, on kept rows the daily run will read again (see _later):
    nullable times from the cut-off on and tags of removed rows become empty,
    updated_at becomes the last second before the cut-off.
    """
    cut = cutoff.strftime(CONTRACT_DT_FORMAT)
    tables = {name: st for name, src in cfg.tables.items() if (st := source_table(src)) is not None}
    pinned = pinned_keys(cfg, tables, cut)
    removed: dict[str, pd.Index] = {}
    report: dict[str, Edit] = {}
    for name in LOAD_ORDER:
        table, st = TABLES[name], tables.get(name)
        cols = _columns(table, removed) if st is not None else []
        if not cols:
            continue
        fmt = st.src.dt_format
        before = (cutoff - timedelta(seconds=1)).strftime(fmt)
        soft = _soft_refs(table, removed)
        ed = Edit()
        drop: list[np.ndarray] = []
        sets: dict[str, tuple[str | None, list[np.ndarray]]] = {}
        gone: list[pd.Series] = []
        for df in st.chunks(cols):
            handles = df.index.to_numpy()
            ed.rows += len(df)
            later = _later(df, fmt, cut)
            go = np.zeros(len(df), dtype=bool)
            created = CREATED.get(name)
            if created in df.columns:
                go |= _from(df[created], fmt, cut)
            for col, ref, _k in table.refs:
                if col in df.columns:
                    go |= _in(df[col], removed.get(ref))
            stays = ~later
            if len(table.key) == 1:
                stays |= _in(df[table.key[0]], pinned.get(name))
            rm = go & ~stays
            ed.pinned += int((go & stays).sum())
            back = ~rm & later
            changed = np.zeros(len(df), dtype=bool)
            for c in df.columns:
                col = table.column(c)
                if c in soft:
                    hit = back & _in(df[c], removed[soft[c]])
                elif col.kind == "dt" and not col.required and c != "updated_at":
                    hit = back & _from(df[c], fmt, cut)
                else:
                    continue
                if hit.any():
                    sets.setdefault(c, (None, []))[1].append(handles[hit])
                    ed.columns[c] = ed.columns.get(c, 0) + int(hit.sum())
                    changed |= hit
            if "updated_at" in df.columns and back.any():
                sets.setdefault("updated_at", (before, []))[1].append(handles[back])
                ed.columns["updated_at"] = ed.columns.get("updated_at", 0) + int(back.sum())
                changed |= back
            ed.removed += int(rm.sum())
            ed.edited += int(changed.sum())
            drop.append(handles[rm])
            if len(table.key) == 1 and rm.any():
                gone.append(df[table.key[0]][rm].dropna())
        if gone:
            removed[name] = pd.Index(pd.concat(gone).to_numpy(dtype=object), dtype="str")
        if ed.removed or ed.edited:
            st.apply(np.concatenate(drop), {c: (v, np.concatenate(h)) for c, (v, h) in sets.items()})
        report[name] = ed
    return report


def latest_day(cfg: config_mod.SourcesConfig) -> date:
    """The latest day on which one of DAY_TABLES has a new row."""
    latest = None
    for name in DAY_TABLES:
        src = cfg.tables.get(name)
        st = source_table(src) if src is not None else None
        if st is None:
            continue
        col = CREATED[name]
        for df in st.chunks([col]):
            if col in df.columns:
                top = _dt(df[col], src.dt_format).max()
                if isinstance(top, str) and (latest is None or top > latest):
                    latest = top
    if latest is None:
        raise SystemExit(f"no {', '.join(CREATED[t] for t in DAY_TABLES)} in the sources: pass --day")
    return datetime.strptime(latest, CONTRACT_DT_FORMAT).date()


# --- copying the sources ---------------------------------------------------------------------------------


def source_paths(cfg: config_mod.SourcesConfig) -> list[Path]:
    """The files and folders the sources live in, relative to the folder of sources.yaml."""
    base = cfg.path.parent
    out = []
    for system in cfg.systems.values():
        if system.url:
            url = sa.make_url(system.url)
            if url.get_backend_name() != "sqlite" or not url.database:
                raise SystemExit(f"system {system.name}: only SQLite files and folders can be copied")
            path = Path(url.database)
        else:
            path = system.folder or base
        try:
            rel = path.resolve().relative_to(base)
        except ValueError:
            raise SystemExit(f"system {system.name}: {path} is outside {base}, cannot be copied") from None
        if rel == Path("."):
            raise SystemExit(f"system {system.name}: the folder of sources.yaml itself cannot be copied")
        out.append(rel)
    return out


def copy_sources(src_dir: Path, work: Path, paths: list[Path], media_root: Path | None) -> None:
    """Copy (or copy again) every source into the work folder, at the same relative paths."""
    shutil.copyfile(src_dir / "sources.yaml", work / "sources.yaml")
    for rel in paths:
        source, target = src_dir / rel, work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    if media_root is not None and media_root.exists():  # read only: a link is enough
        link = work / media_root.relative_to(src_dir.resolve())
        if not link.exists():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(media_root, target_is_directory=True)


# --- runs, each in a child process -----------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: ru_maxrss would include the parent's at fork)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(sources: str, url: str, out: str) -> None:
    from etl import pipeline

    t0, c0 = time.perf_counter(), time.process_time()
    result = pipeline.run(Path(sources), warehouse=url, progress=False)
    fig = {
        "wall": time.perf_counter() - t0,
        "cpu": time.process_time() - c0,
        "rss_mb": _peak_rss_mb(),
        "load_avg": os.getloadavg()[0],
    }
    Path(out).write_bytes(pickle.dumps((result, fig)))


def measure(label: str, sources: Path, url: str, work: Path):  # noqa: ANN201
    out = work / "run.pickle"
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(sources), url, str(out)], cwd=ROOT, stderr=subprocess.PIPE, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed:\n{proc.stderr[-3000:]}")
    result, fig = pickle.loads(out.read_bytes())
    out.unlink()
    print()
    _print_run(label, result, fig["wall"])
    rejected = sum(t.rejected for t in result.tables.values())
    print(
        f"  CPU {fig['cpu']:.1f} s, peak RSS {fig['rss_mb']:,.0f} MB, machine load average {fig['load_avg']:.1f}, "
        f"rows rejected {rejected:,}"
    )
    return result, fig


def print_tables(cfg: config_mod.SourcesConfig, result) -> None:  # noqa: ANN001
    print(f"  {'table':<22}{'read':>11}{'unchanged':>11}{'loaded':>10}{'rejected':>10}{'seconds':>9}  how")
    for name, st in result.tables.items():
        src = cfg.tables[name]
        if TABLES[name].has_updated_at:
            how = "watermark in SQL" if can_push_down(src) else f"watermark, whole {src.system.kind} read"
        else:
            how = "whole table compared, " + ("changed" if st.loaded else "same")
        print(
            f"  {name:<22}{st.read:>11,}{st.unchanged:>11,}{st.loaded:>10,}{st.rejected:>10,}{st.seconds:>9.2f}  {how}"
        )
    tables = result.tables.values()
    print(
        f"  {'total':<22}{sum(t.read for t in tables):>11,}{sum(t.unchanged for t in tables):>11,}"
        f"{sum(t.loaded for t in tables):>10,}{sum(t.rejected for t in tables):>10,}"
        f"{sum(t.seconds for t in tables):>9.2f}"
    )


def fresh_warehouse(url: str) -> None:
    """Delete a SQLite warehouse file; refuse a database that already holds runs."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        for f in path.parent.glob(path.name + "*"):
            f.unlink()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if sa.inspect(conn).has_table("etl_runs"):
                raise SystemExit(f"{url.split('@')[-1]} is not empty: pass the URL of an empty database")
    finally:
        engine.dispose()


def row_counts(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in [*TABLES, "findings"]}
    finally:
        engine.dispose()


def _findings(result) -> dict[str, int]:  # noqa: ANN001
    return {k: int(v) for k, v in ((result.rules or {}).get("findings") or {}).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default=str(DEFAULT_SRC), help="demo folder with sources.yaml (read only)")
    ap.add_argument("--day", default=None, help="YYYY-MM-DD: the new day (default: latest day with new rows)")
    ap.add_argument("--work", default=None, help="work folder, must not exist (default /tmp/av_daily_<pid>)")
    ap.add_argument("--warehouse", default=None, help="URL of an empty warehouse (default: SQLite in the work folder)")
    ap.add_argument("--verify", action="store_true", help="full run of the full sources to compare the findings")
    ap.add_argument("--verify-warehouse", default=None, help="URL of another empty warehouse for --verify")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("--child", nargs=3, metavar=("SOURCES", "URL", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    src_dir = Path(args.src).resolve()
    if not (src_dir / "sources.yaml").exists():
        from etl.demo import generate

        t = time.perf_counter()
        print(generate(src_dir, scale="city", media=False))
        print(f"demo: {time.perf_counter() - t:.1f} s")
    cfg_src = config_mod.load(src_dir / "sources.yaml")
    paths = source_paths(cfg_src)
    work = Path(args.work or f"/tmp/av_daily_{os.getpid()}").resolve()
    work.mkdir(parents=True, exist_ok=False)
    try:
        t = time.perf_counter()
        copy_sources(src_dir, work, paths, cfg_src.media_root)
        cfg = config_mod.load(work / "sources.yaml")
        same = "identical" if cfg.sources_hash == cfg_src.sources_hash else "DIFFERENT"
        print(f"sources: {src_dir} -> {work} (sources.yaml {same}), copied in {time.perf_counter() - t:.1f} s")
        day = date.fromisoformat(args.day) if args.day else latest_day(cfg)
        cutoff = datetime.combine(day, datetime.min.time())
        t = time.perf_counter()
        report = day_before(cfg, cutoff)
        print(f"day before {day}: rows created from {cutoff} on removed, in {time.perf_counter() - t:.1f} s")
        print(f"  {'table':<22}{'rows':>11}{'removed':>10}{'set back':>10}{'pinned':>8}  columns set back")
        for name, ed in report.items():
            cols = ", ".join(f"{c} {n:,}" for c, n in ed.columns.items())
            print(f"  {name:<22}{ed.rows:>11,}{ed.removed:>10,}{ed.edited:>10,}{ed.pinned:>8,}  {cols}")

        url = args.warehouse or f"sqlite:///{work / 'warehouse.sqlite'}"
        fresh_warehouse(url)
        print(f"warehouse: {url.split('@')[-1]}")
        machine_probe("before the runs")
        measure("initial load (day before)", work / "sources.yaml", url, work)

        t = time.perf_counter()
        copy_sources(src_dir, work, paths, cfg_src.media_root)
        print(f"\nfull sources back in place in {time.perf_counter() - t:.1f} s")
        machine_probe("before the daily run")
        daily, fig = measure(f"daily incremental run ({day})", work / "sources.yaml", url, work)
        print_tables(cfg, daily)
        print(f"  goal (daily run <= 30 s): {'met' if fig['wall'] <= 30 else 'NOT met'} ({fig['wall']:.1f} s)")
        inc = _findings(daily)
        machine_probe("after the daily run")

        if args.verify:
            vurl = args.verify_warehouse or f"sqlite:///{work / 'warehouse_full.sqlite'}"
            fresh_warehouse(vurl)
            print(f"\nverify warehouse: {vurl.split('@')[-1]}")
            full, _fig = measure("full run of the full sources (verify)", work / "sources.yaml", vurl, work)
            ref = _findings(full)
            same = inc == ref and daily.as_of == full.as_of
            print(
                f"\nfindings: daily incremental {sum(inc.values()):,}, full run {sum(ref.values()):,} "
                f"(as of {daily.as_of} / {full.as_of}): {'same per rule' if same else 'DIFFERENT'}"
            )
            for rule in sorted(set(inc) | set(ref)):
                if inc.get(rule, 0) != ref.get(rule, 0):
                    print(f"  {rule}: incremental {inc.get(rule, 0):,}, full {ref.get(rule, 0):,}")
            a, b = row_counts(url), row_counts(vurl)
            diff = {t: (a[t], b[t]) for t in a if a[t] != b[t]}
            print(f"warehouse rows (contract tables, findings): {'same' if not diff else f'DIFFERENT {diff}'}")
        else:
            print(
                f"\nfindings: daily incremental {sum(inc.values()):,} (as of {daily.as_of}); "
                "full-run count: pass --verify"
            )
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
