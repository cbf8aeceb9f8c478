"""Tiny source systems in every form sources.md allows, for the ETL tests.

``base_tables()`` is a small, valid data set of every contract table (text
values, contract column names).  ``write_sources()`` writes it as SQLite
databases, CSV folders (any encoding, any datetime format), XLSX folders,
tables in an existing database (PostgreSQL, MariaDB) and a ledger folder, and
writes the matching ``sources.yaml``.  ``dump_warehouse()`` reads back what a
run left, normalised so SQLite and PostgreSQL compare equal.
"""

from __future__ import annotations

import copy
import random
import sqlite3
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
import yaml

from etl.sources.contract import LEDGER_COLUMNS, LEDGER_STATUS, SYSTEMS, TABLES

DT_FMT = "%Y-%m-%d %H:%M:%S"
ROOT_DIR = Path(__file__).resolve().parent.parent
CITY, COUNTY, STATION, COUNTY2 = "140400000000", "140402000000", "140402510000", "140403000000"


def _rows(table: str, rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=TABLES[table].column_names, dtype=object)


def base_tables() -> dict[str, pd.DataFrame]:
    """A small valid data set of every contract table (values as text, None for null)."""
    t: dict[str, pd.DataFrame] = {}
    t["org_units"] = _rows(
        "org_units",
        [
            (CITY, "长治市公安局", None, "city"),
            (COUNTY, "长治市公安局潞州分局", CITY, "county"),
            (STATION, "潞州分局东街派出所", COUNTY, "station"),
            (COUNTY2, "长治市公安局上党分局", CITY, "county"),
        ],
    )
    t["officers"] = _rows(
        "officers",
        [
            ("012345", "王建国", STATION, "police", "1", "1"),
            ("012346", "李明", STATION, "police", "0", "1"),
            ("F00101", "张辅警", STATION, "auxiliary", "0", "1"),
            ("023001", "赵刚", COUNTY2, "police", "1", "1"),
        ],
    )
    t["cases"] = _rows(
        "cases",
        [
            (
                "C2026001",
                STATION,
                "殴打他人案",
                "general",
                "ex_officio",
                "0",
                "0",
                "2026-03-01 09:00:00",
                "2026-03-01 10:00:00",
                "2026-03-01 09:30:00",
                "1",
                "2026-03-20 16:00:00",
                "2026-03-25 10:00:00",
                "0",
                "2026-03-25 10:00:00",
            ),
            (
                "C2026002",
                COUNTY2,
                "违反治安管理",
                "simple",
                "report",
                "0",
                "0",
                "2026-03-05 14:00:00",
                None,
                None,
                None,
                None,
                None,
                "1",
                "2026-03-05 15:00:00",
            ),
        ],
    )
    t["case_officers"] = _rows(
        "case_officers",
        [
            ("C2026001", "012345", "handler"),
            ("C2026001", "012346", "assistant"),
            ("C2026002", "023001", "handler"),
        ],
    )
    t["case_actions"] = _rows(
        "case_actions",
        [
            (
                "A0001",
                "C2026001",
                "inquiry",
                "2026-03-02 09:00:00",
                "2026-03-02 10:00:00",
                "012345",
                "2026-03-02 10:00:00",
            ),
            (
                "A0002",
                "C2026001",
                "on_site_inspection",
                "2026-03-03 09:00:00",
                "2026-03-03 09:40:00",
                "012346",
                "2026-03-03 09:40:00",
            ),
            (
                "A0003",
                "C2026002",
                "inquiry",
                "2026-03-05 14:10:00",
                "2026-03-05 14:30:00",
                "023001",
                "2026-03-05 14:30:00",
            ),
        ],
    )
    t["case_documents"] = _rows(
        "case_documents",
        [
            (
                "D0001",
                "C2026001",
                "A0001",
                "inquiry_record",
                "2026-03-02 10:00:00",
                "012345",
                None,
                None,
                "《治安管理处罚法》第九十四条",
                "1",
                "0",
                "1",
                None,
                "2026-03-02 10:00:00",
            ),
            (
                "D0002",
                "C2026001",
                None,
                "penalty_decision",
                "2026-03-20 16:00:00",
                "012345",
                "012346",
                "012345",
                "《治安管理处罚法》第四十三条",
                "1",
                "0",
                "1",
                None,
                "2026-03-20 16:00:00",
            ),
        ],
    )
    t["deliveries"] = _rows(
        "deliveries",
        [
            ("V0001", "D0002", "direct", "2026-03-21 09:00:00", "1", None, None, None, None),
        ],
    )
    t["incidents"] = _rows(
        "incidents",
        [
            (
                "J2026030100001",
                STATION,
                "纠纷",
                "2026-03-01 08:40:00",
                "2026-03-01 08:55:00",
                "2026-03-01 09:30:00",
                "1",
                "C2026001",
                "2026-03-01 09:30:00",
            ),
            (
                "J2026030500002",
                COUNTY2,
                "治安",
                "2026-03-05 13:40:00",
                "2026-03-05 13:50:00",
                "2026-03-05 14:05:00",
                "1",
                None,
                "2026-03-05 14:05:00",
            ),
            ("J2026030600003", STATION, "求助", "2026-03-06 20:00:00", None, None, "0", None, "2026-03-06 20:30:00"),
        ],
    )
    t["incident_officers"] = _rows(
        "incident_officers",
        [
            ("J2026030100001", "012345"),
            ("J2026030100001", "F00101"),
            ("J2026030500002", "023001"),
        ],
    )
    t["interruption_reports"] = _rows(
        "interruption_reports",
        [
            ("R0001", "J2026030500002", "023001", "电量耗尽", "2026-03-05 18:00:00"),
        ],
    )
    t["devices"] = _rows(
        "devices",
        [
            ("DSJ0001", "bodycam", "DSJ-V9", STATION, "in_use", "2025-12-01 09:00:00", "2025-11-20"),
            ("DSJ0002", "bodycam", "DSJ-V9", STATION, "in_use", "2025-12-01 09:00:00", "2025-11-20"),
            ("DSJ0003", "bodycam", "DSJ-V9", COUNTY2, "repair", "2026-02-01 09:00:00", "2025-11-20"),
        ],
    )
    t["device_assignments"] = _rows(
        "device_assignments",
        [
            ("DSJ0001", "012345", "2025-12-01 09:00:00", None),
            ("DSJ0002", "F00101", "2025-12-01 09:00:00", None),
            ("DSJ0003", "023001", "2025-12-01 09:00:00", "2026-02-01 09:00:00"),
        ],
    )
    t["unit_admins"] = _rows("unit_admins", [(STATION, "012346", "2025-12-01 00:00:00", None)])
    t["clips"] = _rows(
        "clips",
        [
            (
                "K000001",
                "DSJ0001",
                "012345",
                "2026-03-01 08:54:00",
                "2026-03-01 09:10:00",
                "1024",
                "aa" * 32,
                "2026-03-01 12:00:00",
                "2026/03/K000001.mp4",
                "J2026030100001",
                "C2026001",
                "1",
                None,
                "2026-03-01 12:00:00",
            ),
            (
                "K000002",
                "DSJ0001",
                "012345",
                "2026-03-01 09:10:00",
                "2026-03-01 09:31:00",
                "2048",
                "bb" * 32,
                "2026-03-01 12:00:00",
                "2026/03/K000002.mp4",
                "J2026030100001",
                None,
                "0",
                None,
                "2026-03-01 12:00:00",
            ),
            (
                "K000003",
                "DSJ0002",
                None,
                "2026-03-01 08:56:00",
                "2026-03-01 09:25:00",
                "4096",
                "cc" * 32,
                "2026-03-01 13:00:00",
                "2026/03/K000003.mp4",
                None,
                None,
                "0",
                None,
                "2026-03-01 13:00:00",
            ),
        ],
    )
    t["access_log"] = _rows(
        "access_log",
        [
            ("L0001", "K000001", "view", "012346", "2026-03-10 10:00:00", "案件审核", None, None, None),
            (
                "L0002",
                "K000001",
                "external",
                "012345",
                "2026-03-11 10:00:00",
                "法院调取",
                "012345",
                "2026-03-11 09:00:00",
                "潞州区人民法院",
            ),
        ],
    )
    t["service_windows"] = _rows("service_windows", [(STATION, "W01", "1", "1"), (COUNTY2, "W01", "1", "0")])
    t["ledger_entries"] = _rows(
        "ledger_entries",
        [
            (STATION, "DSJ0001", "012345", "2025-12-01 09:00:00", "in_use"),
            (STATION, "DSJ0002", None, None, "spare"),
        ],
    )
    return t


@dataclass
class Form:
    """How one system is written: ``sqlite`` file, ``csv``/``xlsx`` folder, or ``url`` (existing database)."""

    kind: str = "sqlite"
    url: str | None = None
    encoding: str = "utf-8"
    datetime_format: str | None = None
    extra: dict = field(default_factory=dict)  # more keys for the system's YAML entry


def _reformat(df: pd.DataFrame, table: str, fmt: str | None) -> pd.DataFrame:
    """Write dt columns in ``fmt`` (values that are not valid contract datetimes are kept as they are)."""
    if not fmt or fmt == DT_FMT:
        return df
    out = df.copy()
    for c in TABLES[table].columns:
        if c.kind != "dt" or c.name not in out:
            continue
        parsed = pd.to_datetime(out[c.name], format=DT_FMT, errors="coerce")
        out[c.name] = [p.strftime(fmt) if not pd.isna(p) else v for p, v in zip(parsed, out[c.name], strict=True)]
    return out


def _source_frame(df: pd.DataFrame, table: str, tcfg: dict, fmt: str | None) -> tuple[str, pd.DataFrame]:
    """The frame as the source holds it: source table name, source column names, source datetime format."""
    df = _reformat(df, table, tcfg.get("datetime_format") or fmt)
    back = {dst: src for src, dst in (tcfg.get("columns") or {}).items()}
    return tcfg.get("name", table), df.rename(columns=back)


def write_sqlite_db(path: Path, frames: dict[str, pd.DataFrame]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        for name, df in frames.items():
            cols = ", ".join(f'"{c}" TEXT' for c in df.columns)
            con.execute(f'DROP TABLE IF EXISTS "{name}"')
            con.execute(f'CREATE TABLE "{name}" ({cols})')
            marks = ", ".join("?" * len(df.columns))
            rows = df.astype(object).where(df.notna(), None).itertuples(index=False, name=None)
            if any(df[c].dtype != object and df[c].dtype != "str" for c in df.columns):  # typed frame
                rows = (tuple(_norm(v) for v in r) for r in rows)
            con.executemany(f'INSERT INTO "{name}" VALUES ({marks})', list(rows))
    con.close()


def write_url_db(url: str, frames: dict[str, pd.DataFrame]) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for name, df in frames.items():
            df.to_sql(name, conn, if_exists="replace", index=False)
    engine.dispose()


def write_xlsx(path: Path, df: pd.DataFrame) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append([str(c) for c in df.columns])
    for row in df.astype(object).where(df.notna(), None).itertuples(index=False, name=None):
        ws.append(list(row))
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def write_ledgers(folder: Path, df: pd.DataFrame) -> None:
    """One ``<unit_code>.xlsx`` per unit with the Chinese ledger headers and status words."""
    folder.mkdir(parents=True, exist_ok=True)
    to_cn = {v: k for k, v in LEDGER_COLUMNS.items()}
    words = {v: k for k, v in LEDGER_STATUS.items()}
    for unit, part in df.groupby("unit_code", sort=True):
        out = part.drop(columns="unit_code").copy()
        out["status"] = out["status"].map(lambda s: words.get(s, s))
        write_xlsx(folder / f"{unit}.xlsx", out.rename(columns=to_cn))


def write_sources(
    root: Path,
    data: dict[str, pd.DataFrame] | None = None,
    forms: dict[str, Form] | None = None,
    tables_cfg: dict | None = None,
    media_root: str | None = None,
    systems: tuple[str, ...] | None = None,
) -> Path:
    """Write every system of ``data`` in its form under ``root`` and return ``root/sources.yaml``."""
    data = data if data is not None else base_tables()
    forms = forms or {}
    tables_cfg = copy.deepcopy(tables_cfg or {})
    systems = systems or tuple(SYSTEMS)
    root.mkdir(parents=True, exist_ok=True)
    sys_yaml: dict[str, dict] = {}
    for system in systems:
        form = forms.get(system, Form("xlsx") if system == "ledgers" else Form())
        names = [t for t in SYSTEMS[system] if t in data]
        if system == "ledgers":
            write_ledgers(root / "ledgers", data["ledger_entries"])
            sys_yaml[system] = {"folder": "ledgers", **form.extra}
            continue
        frames = dict(_source_frame(data[t], t, tables_cfg.get(t, {}), form.datetime_format) for t in names)
        entry: dict = {}
        if form.kind == "sqlite":
            write_sqlite_db(root / f"{system}.sqlite", frames)
            entry["url"] = f"sqlite:///{system}.sqlite"
        elif form.kind == "url":
            write_url_db(form.url, frames)
            entry["url"] = form.url
        elif form.kind == "csv":
            folder = root / f"{system}_csv"
            folder.mkdir(parents=True, exist_ok=True)
            for name, df in frames.items():
                df.to_csv(folder / f"{name}.csv", index=False, encoding=form.encoding)
            entry.update(folder=f"{system}_csv", format="csv", encoding=form.encoding)
        elif form.kind == "xlsx":
            for name, df in frames.items():
                write_xlsx(root / f"{system}_xlsx" / f"{name}.xlsx", df)
            entry.update(folder=f"{system}_xlsx", format="xlsx")
        else:
            raise ValueError(form.kind)
        if form.datetime_format:
            entry["datetime_format"] = form.datetime_format
        entry.update(form.extra)
        sys_yaml[system] = entry
    doc: dict = {"version": 1}
    if media_root:
        doc["media_root"] = media_root
    doc["systems"] = sys_yaml
    if tables_cfg:
        doc["tables"] = tables_cfg
    path = root / "sources.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_media(root: Path, clips: pd.DataFrame, content: bytes | None = None) -> dict[str, str]:
    """Real files for the clips at media root ``root``; returns clip_id -> SHA-256 (also set in ``clips``)."""
    import hashlib

    out = {}
    for i, (clip_id, rel) in enumerate(zip(clips["clip_id"], clips["file_path"], strict=True)):
        body = content or f"clip {clip_id} {i}".encode() * 100
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
        out[clip_id] = hashlib.sha256(body).hexdigest()
    clips["sha256"] = clips["clip_id"].map(out)
    return out


# --- bigger synthetic data (crash test) -------------------------------------------------------


def synthetic(n_clips: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """The base tables plus ``n_clips`` clips, about n/10 incidents and n/20 access-log rows."""
    rng = random.Random(seed)
    t = base_tables()
    devices = list(t["devices"]["device_sn"])
    officers = list(t["officers"]["police_no"])
    t0 = datetime(2026, 1, 1)
    n_inc = max(1, n_clips // 10)
    inc_rows = []
    for i in range(n_inc):
        at = t0 + timedelta(minutes=7 * i)
        inc_rows.append(
            (
                f"S{i:09d}",
                STATION,
                "纠纷",
                at.strftime(DT_FMT),
                (at + timedelta(minutes=10)).strftime(DT_FMT),
                (at + timedelta(minutes=40)).strftime(DT_FMT),
                str(i % 2),
                None,
                (at + timedelta(hours=1)).strftime(DT_FMT),
            )
        )
    t["incidents"] = pd.concat([t["incidents"], _rows("incidents", inc_rows)], ignore_index=True)
    clip_rows = []
    # every 10 minutes, closer for large n: all within ~300 days of 2026-01-01, never after the run's wall clock
    # (rows dated after it are quarantined, issue 16)
    step = min(600, 300 * 86400 // max(n_clips, 1))
    for i in range(n_clips):
        start = t0 + timedelta(seconds=step * i + rng.randrange(60))
        end = start + timedelta(seconds=rng.randrange(30, 900))
        clip_rows.append(
            (
                f"Z{i:09d}",
                devices[i % len(devices)],
                officers[i % len(officers)] if i % 3 else None,
                start.strftime(DT_FMT),
                end.strftime(DT_FMT),
                str(rng.randrange(10**6, 10**9)),
                f"{rng.getrandbits(256):064x}",
                (end + timedelta(hours=3)).strftime(DT_FMT),
                f"z/{i}.mp4",
                f"S{(i // 10):09d}",
                None,
                str(i % 2),
                None,
                (end + timedelta(hours=3)).strftime(DT_FMT),
            )
        )
    t["clips"] = pd.concat([t["clips"], _rows("clips", clip_rows)], ignore_index=True)
    acc = [
        (
            f"Y{i:08d}",
            f"Z{(i * 7) % n_clips:09d}",
            "view",
            officers[i % len(officers)],
            (t0 + timedelta(minutes=i)).strftime(DT_FMT),
            "复核",
            None,
            None,
            None,
        )
        for i in range(n_clips // 20)
    ]
    t["access_log"] = pd.concat([t["access_log"], _rows("access_log", acc)], ignore_index=True)
    return t


# --- reading back ------------------------------------------------------------------------------

MIRRORS = list(TABLES)


def _norm(v):  # noqa: ANN001, ANN202
    if v is None or v is pd.NaT or v is pd.NA:
        return None
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
        v = v.item()
    if isinstance(v, datetime):
        return v.strftime(DT_FMT)
    if isinstance(v, date):
        return v.isoformat()
    return v


def dump_warehouse(url: str, with_bookkeeping: bool = True) -> dict[str, list[tuple]]:
    """Every mirror table (and watermarks, hashes, quarantine without run ids) as sorted tuples."""
    engine = sa.create_engine(url)
    out: dict[str, list[tuple]] = {}
    queries = {t: f"SELECT * FROM {t}" for t in MIRRORS}
    if with_bookkeeping:
        queries |= {
            "watermarks": "SELECT table_name, updated_at, row_key FROM watermarks",
            "table_hashes": "SELECT table_name, content_hash FROM table_hashes",
            "quarantine": "SELECT source, table_name, row_key, reason, payload FROM quarantine",
            "media_files": "SELECT clip_id, file_path, present, size_bytes, mtime_ns, sha256_actual FROM media_files",
        }
    with engine.connect() as conn:
        for name, sql in queries.items():
            rows = conn.exec_driver_sql(sql).fetchall()
            out[name] = sorted((tuple(_norm(v) for v in r) for r in rows), key=lambda r: tuple(str(x) for x in r))
    engine.dispose()
    return out


def count(url: str, table: str) -> int:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        n = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar()
    engine.dispose()
    return int(n)


def query(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(_norm(v) for v in r) for r in conn.exec_driver_sql(sql).fetchall()]
    engine.dispose()
    return rows
