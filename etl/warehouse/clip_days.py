"""Clips per device and day, kept up to date by the load (table ``clip_days``).

The usage metrics (使用率, device-days with a clip), EQUIP-IDLE (a month without
any clip) and the scores group every clip by device and month.  A grouped pass
over 2.5M clips costs 1.5–2 s in every run; the load keeps the per-day counts
instead and refreshes only the (device, day) pairs a run touches:
- the first load into an empty clip mirror: every pair, from the staged clips (piece by piece, combined);
- new or changed clips: the pairs of their new and previous versions (a
  changed clip whose device and start stayed changes nothing here);
- a warehouse whose ``clip_days`` is empty while clips exist: everything.
Days are the text 'YYYY-MM-DD' of ``started_at``; ``last_start`` is the
latest ``started_at`` of the day.
``per_month`` sums them per device and month for an evaluation date.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.times import TS_FORMAT, epoch_text, ts_param
from etl.warehouse.db import bulk_insert, read_df, temp_rows
from etl.warehouse.distribution import with_county

TABLE = "clip_days"
COLUMNS = ["device_sn", "day", "clips", "last_start"]
WRITE_ROWS = 500_000  # rows of a first load rendered and written at a time (write_combined)


def _day_sql(conn: Connection, col: str) -> str:
    if conn.dialect.name == "sqlite":
        return f"substr({col}, 1, 10)"
    if conn.dialect.name == "postgresql":
        return f"to_char({col}, 'YYYY-MM-DD')"
    return f"DATE_FORMAT({col}, '%Y-%m-%d')"


@dataclass
class DayCounts:
    """Clips per (device, day) in numbers, sorted by (device, day): what the first load keeps from its pieces
    until ``write_combined`` (20 bytes a row; as frames of text devices, 5.9M device-days at 10x city and
    their combination held ~0.6 GB).  ``device``: positions in the caller's list of device numbers."""

    device: np.ndarray  # int32
    day: np.ndarray  # int32 days since the epoch
    clips: np.ndarray  # int32
    last: np.ndarray  # int64 epoch seconds of the latest start

    def __len__(self) -> int:
        return len(self.day)


def day_counts(device: np.ndarray, started_s: np.ndarray) -> DayCounts:
    """``DayCounts`` of clips from their device codes (int, -1: no device) and start times in epoch seconds
    (NaN: none)."""
    ok = (device >= 0) & ~np.isnan(started_s)
    sec = started_s[ok].astype(np.int64)
    return _combine(device[ok], sec // 86400, np.ones(len(sec), dtype=np.int64), sec)


def combine(parts: list[DayCounts]) -> DayCounts:
    """The pieces' counts added up: a (device, day) in several pieces adds its clips and keeps its latest start."""
    if len(parts) == 1:
        return parts[0]
    return _combine(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("device", "day", "clips", "last")))


def _combine(device: np.ndarray, day: np.ndarray, clips: np.ndarray, last: np.ndarray) -> DayCounts:
    """One row per (device, day), sorted: the clips added up, the latest start kept (in numpy; pandas' string
    max per group took 33 s for 590k groups)."""
    if not len(day):
        e32 = np.empty(0, dtype=np.int32)
        return DayCounts(e32, e32, e32, np.empty(0, dtype=np.int64))
    day = day.astype(np.int64)
    key = device.astype(np.int64) * np.int64(1 << 20) + (day - day.min())  # a day span far below 2**20
    order = np.argsort(key, kind="stable")
    k = key[order]
    del key
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    del k
    return DayCounts(
        device=device[order][first].astype(np.int32),
        day=day[order][first].astype(np.int32),
        clips=np.add.reduceat(clips[order].astype(np.int64), first).astype(np.int32),
        last=np.maximum.reduceat(last[order].astype(np.int64), first),
    )


def _render(counts: DayCounts, devices: np.ndarray, lo: int, hi: int) -> pd.DataFrame:
    """``clip_days`` rows [lo, hi) of ``counts`` (devices: the device numbers its codes index): the day as
    'YYYY-MM-DD', the latest start as text."""
    if hi <= lo:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    return pd.DataFrame(
        {
            "device_sn": pd.Series(devices[counts.device[lo:hi]], dtype=object),
            "day": pd.Series(
                counts.day[lo:hi].astype(np.int64).astype("datetime64[D]").astype(str).astype(object), dtype=object
            ),
            "clips": counts.clips[lo:hi].astype(np.int64),
            "last_start": pd.Series(
                epoch_text(counts.last[lo:hi].astype(np.float64)).to_numpy(dtype=object), dtype=object
            ),
        }
    )


def _write_all(conn: Connection, parts: Iterable[pd.DataFrame], plain: bool = False) -> None:
    """Replace every row of ``clip_days`` with ``parts`` (frames of rows, written one after the other)."""
    conn.exec_driver_sql(f"DELETE FROM {TABLE}")
    for rows in parts:
        if len(rows):
            bulk_insert(conn, TABLE, with_county(conn, TABLE, rows), plain=plain)


def rebuild(conn: Connection) -> None:
    """Every (device, day) from the clip mirror."""
    day = _day_sql(conn, "started_at")
    rows = conn.exec_driver_sql(
        f"SELECT device_sn, {day}, COUNT(*), MAX(started_at) FROM clips "
        f"WHERE device_sn IS NOT NULL AND started_at IS NOT NULL GROUP BY device_sn, {day}"
    ).fetchall()
    _write_all(conn, [pd.DataFrame([tuple(r) for r in rows], columns=COLUMNS)])


def refresh_pairs(conn: Connection, pairs: pd.DataFrame) -> int:
    """Recount the given (device_sn, day) pairs from the clip mirror (index range per pair)."""
    pairs = pairs.dropna().drop_duplicates()
    if pairs.empty:
        return 0
    day0 = pd.to_datetime(pairs["day"], format="%Y-%m-%d")
    rows = list(
        zip(
            pairs["device_sn"].astype(str),
            pairs["day"].astype(str),
            day0.dt.strftime(TS_FORMAT),
            (day0 + pd.Timedelta(days=1)).dt.strftime(TS_FORMAT),
            strict=True,
        )
    )
    ts = "TEXT" if conn.dialect.name == "sqlite" else "TIMESTAMP"
    temp_rows(conn, "etl_days", {"device_sn": "TEXT", "day": "TEXT", "day_start": ts, "day_end": ts}, rows)
    conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE (device_sn, day) IN (SELECT device_sn, day FROM etl_days)")
    if conn.dialect.name == "postgresql":
        # LATERAL: one index range of clips per pair (measured with 5,000 pairs at city scale: 0.13 s; the
        # planner's own choice, a hash join over every clip, took 1.0 s)
        sql = (
            "SELECT p.device_sn, p.day, x.n, x.last FROM etl_days p CROSS JOIN LATERAL ("
            "SELECT COUNT(*) AS n, MAX(c.started_at) AS last FROM clips c WHERE c.device_sn = p.device_sn "
            "AND c.started_at >= p.day_start AND c.started_at < p.day_end) x WHERE x.n > 0"
        )
    else:  # CROSS JOIN keeps the few pairs as the outer loop on SQLite (one index range of clips each)
        sql = (
            "SELECT p.device_sn, p.day, COUNT(*), MAX(c.started_at) FROM etl_days p CROSS JOIN clips c "
            "WHERE c.device_sn = p.device_sn AND c.started_at >= p.day_start AND c.started_at < p.day_end "
            "GROUP BY p.device_sn, p.day"
        )
    counted = conn.exec_driver_sql(sql).fetchall()
    if counted:
        bulk_insert(conn, TABLE, with_county(conn, TABLE, pd.DataFrame([tuple(r) for r in counted], columns=COLUMNS)))
    return len(pairs)


def needs_full_rebuild(conn: Connection) -> bool:
    has_days = conn.exec_driver_sql(f"SELECT 1 FROM {TABLE} LIMIT 1").first() is not None
    return not has_days and conn.exec_driver_sql("SELECT 1 FROM clips LIMIT 1").first() is not None


def _pairs(device_sn: pd.Series, started_at: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_sn": device_sn.astype(object).to_numpy(),
            "day": started_at.astype(object).where(started_at.notna(), None).str.slice(0, 10).to_numpy(dtype=object),
        }
    )


def changed_pairs(clean: pd.DataFrame, old: pd.DataFrame | None) -> pd.DataFrame:
    """(device, day) pairs to recount after loading staged clips ``clean`` over their previous versions ``old``
    (clip_id, device_sn, started_at as epoch seconds): both versions' pairs of every clip whose device or start
    moved (new clips included)."""
    new = pd.DataFrame(
        {
            "clip_id": clean["clip_id"].astype(object).to_numpy(),
            "device_sn": clean["device_sn"].astype(object).to_numpy(),
            "started_at": clean["started_at"].astype(object).to_numpy(),
        }
    )
    if old is None:
        old = pd.DataFrame(columns=["clip_id", "device_sn", "started_at"])
    old = pd.DataFrame(
        {
            "clip_id": old["clip_id"].astype(object).to_numpy(),
            "device_sn": old["device_sn"].astype(object).to_numpy(),
            "started_at": epoch_text(old["started_at"]).replace("", None).to_numpy(dtype=object),
        }
    )
    both = new.merge(old, on="clip_id", how="left", suffixes=("", "_old"))
    moved = ~(both["device_sn"].eq(both["device_sn_old"]) & both["started_at"].eq(both["started_at_old"]))
    both = both[moved]
    return pd.concat(
        [_pairs(both["device_sn"], both["started_at"]), _pairs(both["device_sn_old"], both["started_at_old"])],
        ignore_index=True,
    )


def refresh(conn: Connection, pairs: pd.DataFrame | None) -> None:
    """Bring ``clip_days`` up to date after a load into a clip mirror that was not empty: the touched pairs
    (everything, when it is empty while clips exist)."""
    if needs_full_rebuild(conn):
        rebuild(conn)
    elif pairs is not None and len(pairs):
        refresh_pairs(conn, pairs)


def write_combined(conn: Connection, parts: list[DayCounts], devices: np.ndarray) -> None:
    """``clip_days`` of a first load into the empty clip mirror, from each piece's ``day_counts`` (codes into
    ``devices``).  Empties ``parts`` once they are combined, and renders and writes the rows ``WRITE_ROWS`` at a
    time (5.9M device-days at 10x city took 3.5 GB as text rows written at once)."""
    rows = combine(parts) if parts else _combine(*[np.empty(0, dtype=np.int64)] * 4)
    parts.clear()
    _write_all(
        conn, (_render(rows, devices, lo, lo + WRITE_ROWS) for lo in range(0, len(rows), WRITE_ROWS)), plain=True
    )


def per_month(conn: Connection, as_of: datetime) -> pd.DataFrame:
    """Clips per device and month up to the evaluation date: device_sn, month, clips, days (distinct days
    with a clip), last_start.  From ``clip_days`` (the evaluation day up to its time from the clips
    themselves): one pass, read once per evaluation by ``etl.evaluation`` and handed to EQUIP-IDLE, the
    metrics and the scores (``etl.scoring.metrics.clip_months`` is this function)."""
    if needs_full_rebuild(conn):  # a warehouse written around the loader
        rebuild(conn)
    stamp = pd.Timestamp(as_of).replace(microsecond=0)
    day = stamp.strftime("%Y-%m-%d")
    whole_day = stamp.strftime("%H:%M:%S") == "23:59:59"  # the evaluation day counts in full
    df = read_df(
        conn,
        f"""
        SELECT device_sn, substr(day, 1, 7) AS month, SUM(clips) AS clips, COUNT(*) AS days,
               MAX(last_start) AS last_start
        FROM {TABLE} WHERE day {"<=" if whole_day else "<"} :day GROUP BY device_sn, substr(day, 1, 7)""",
        {"day": day},
    )
    if not whole_day:  # the evaluation day up to its time, from the clips themselves
        part = read_df(
            conn,
            """SELECT device_sn, COUNT(*) AS clips, MAX(started_at) AS last_start FROM clips
                                WHERE started_at >= :d0 AND started_at <= :as_of GROUP BY device_sn""",
            {"d0": ts_param(conn, stamp.normalize()), "as_of": ts_param(conn, as_of)},
        )
        if not part.empty:
            part = part.assign(month=day[:7], days=1)
            both = pd.concat([df, part[df.columns]], ignore_index=True)
            both["last_start"] = both["last_start"].astype(str)
            df = both.groupby(["device_sn", "month"], as_index=False).agg(
                clips=("clips", "sum"), days=("days", "sum"), last_start=("last_start", "max")
            )
    for col in ("clips", "days"):
        df[col] = pd.to_numeric(df[col]).astype("int64")
    df["month"] = df["month"].astype(str)
    return df
