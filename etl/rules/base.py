"""Shared plumbing of the rules: reading warehouse tables, clip ownership, interval arithmetic.

Times inside the rules are float seconds since 1970-01-01 of the naive local
wall-clock time (NaN for null): cheap to compare, exact for whole seconds, and
the same on SQLite (text) and PostgreSQL (timestamp) because the database does
the conversion (``unixepoch(...)``, or ``strftime('%s', ...)`` before SQLite 3.38 /
``EXTRACT(EPOCH ...)``).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.errors import ConfigError
from etl.sources.contract import TABLES
from etl.warehouse import snapshots
from etl.warehouse.db import fetch_frame

EPOCH = datetime(1970, 1, 1)
SHIFT = np.int64(2**33)  # group multiplier: relative times stay below it (~270 years)
TS_FMT = "%Y-%m-%d %H:%M:%S"
# unixepoch() exists from SQLite 3.38 (the library Python's sqlite3 module links, which the pysqlite driver uses)
_SQLITE_UNIXEPOCH = sqlite3.sqlite_version_info >= (3, 38, 0)


def to_epoch(dt: datetime) -> float:
    """Naive datetime -> seconds since 1970-01-01."""
    return (pd.Timestamp(dt).tz_localize(None).to_pydatetime() - EPOCH).total_seconds()


def epoch_sql(dialect: str, col: str) -> str:
    """SQL expression: a datetime column as whole seconds since 1970-01-01 (naive, no time zone)."""
    if dialect == "sqlite":
        if _SQLITE_UNIXEPOCH:  # same value as below for every input (same formula in SQLite), ~5x cheaper per row
            return f"unixepoch({col})"
        return f"CAST(strftime('%s', {col}) AS INTEGER)"
    if dialect == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {col}) AS BIGINT)"
    if dialect in ("mysql", "mariadb"):
        return f"TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {col})"
    raise ConfigError(f"不支持的数据仓库类型：{dialect}（支持 SQLite、PostgreSQL、MySQL/MariaDB）")


def fetch(conn: Connection, sql: str, columns: list[str], dt_cols: set[str] | frozenset = frozenset()) -> pd.DataFrame:
    """``etl.warehouse.db.fetch_frame`` with ``dt_cols`` (epoch seconds the database computed) as float seconds."""
    df = fetch_frame(conn, sql, columns)
    for name in dt_cols:
        df[name] = _seconds(df[name].to_numpy())
    return df


def _seconds(vals: np.ndarray) -> np.ndarray:
    """Epoch seconds the database computed (int or None per row) -> float64, NaN for null."""
    try:  # numpy's C conversion (None -> NaN) is several times cheaper than pd.to_numeric on objects
        return np.asarray(vals, dtype=np.float64)
    except (TypeError, ValueError):  # e.g. Decimal or text from a driver: the general, coercing path
        return pd.to_numeric(pd.Series(vals, dtype=object), errors="coerce").to_numpy(dtype=np.float64)


def select_list(conn: Connection, table: str, columns: list[str], alias: str | None = None) -> tuple[str, set[str]]:
    """'a.x, <epoch(a.t)> AS t, ...' for a mirror table's columns, and the set of datetime columns."""
    tab = TABLES[table]
    dt_cols = {c.name for c in tab.columns if c.kind == "dt" and c.name in columns}
    q = conn.dialect.identifier_preparer.quote
    pre = f"{alias}." if alias else ""
    parts = [f"{epoch_sql(conn.dialect.name, pre + q(c))} AS {q(c)}" if c in dt_cols else f"{pre}{q(c)}"
             for c in columns]
    return ", ".join(parts), dt_cols


def read_table(conn: Connection, table: str, columns: list[str] | None = None, where: str = "",
               kept: bool | None = None) -> pd.DataFrame:
    """A mirror table (or media_files) with datetime columns as float epoch seconds.

    ``kept``: may come from its snapshot (``etl.warehouse.snapshots``); by default only a whole table (no ``where``).
    Pass True only with a ``where`` on the row alone (not the evaluation date) and columns holding the key.
    """
    if table in TABLES:
        columns = columns or TABLES[table].column_names
        sel, dt_cols = select_list(conn, table, columns)
    else:  # media_files: no datetime column is needed by the rules
        assert columns is not None
        sel, dt_cols = ", ".join(columns), set()
    if (not where if kept is None else kept) and table in TABLES:  # large mirrors: from their snapshot
        frame = snapshots.read(conn, table, columns, sel, dt_cols, where)
        if frame is not None:
            return frame
    sql = f"SELECT {sel} FROM {conn.dialect.identifier_preparer.quote(table)}" + (f" WHERE {where}" if where else "")
    return fetch(conn, sql + snapshots.order_by(conn, table), columns, dt_cols)  # the order of a snapshot


def sql_str(value: str) -> str:
    """A SQL string literal (values come from config and code, never from users)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: list[str]) -> str:
    return "(" + ", ".join(sql_str(v) for v in values) + ")" if values else "(NULL)"


def sql_ts(sec: float) -> str:
    """Epoch seconds -> a 'YYYY-MM-DD HH:MM:SS' literal, comparable with datetime columns on every dialect."""
    return sql_str(pd.Timestamp(sec, unit="s").strftime(TS_FMT))


def has_table(conn: Connection, table: str) -> bool:
    import sqlalchemy as sa

    return sa.inspect(conn).has_table(table)


def flag(s: pd.Series) -> pd.Series:
    """0/1/null column -> bool (only 1 is true)."""
    return pd.to_numeric(s, errors="coerce").fillna(0).astype("int64") == 1


def blank(s: pd.Series) -> pd.Series:
    """True where a text column is null or only whitespace."""
    return s.isna() | (s.astype("string").str.strip().fillna("") == "")


def fmt_ts(sec: pd.Series | np.ndarray) -> pd.Series:
    """Epoch seconds -> 'YYYY-MM-DD HH:MM:SS' text (empty for null)."""
    ts = pd.to_datetime(pd.Series(sec, dtype="float64"), unit="s")
    return ts.dt.strftime(TS_FMT).fillna("")


def _duration(sec: float) -> str:
    s = round(sec)
    h, m, r = s // 3600, (s % 3600) // 60, s % 60
    if h:
        return f"{h}小时{m:02d}分{r:02d}秒"
    return f"{m}分{r:02d}秒" if m else f"{r}秒"


def fmt_duration(sec: pd.Series | np.ndarray) -> pd.Series:
    """Seconds -> '45秒' / '12分05秒' / '1小时02分03秒'."""
    s = pd.Series(sec, dtype="float64").fillna(0)
    return pd.Series([_duration(x) for x in s.to_numpy()], index=s.index, dtype=object)


def _cache_key(conn: Connection, as_of: datetime, cfg: dict) -> tuple:
    tx = conn.get_transaction()
    return (id(tx) if tx is not None else None, as_of, repr(sorted(cfg["params"].items())))


def put_cached(conn: Connection, name: str, as_of: datetime, cfg: dict, value: object) -> None:
    """Keep a frame on the connection for the next rule step of the same transaction and evaluation."""
    conn.info[name] = (_cache_key(conn, as_of, cfg), value)


def take_cached(conn: Connection, name: str, as_of: datetime, cfg: dict) -> object | None:
    """The frame ``put_cached`` left for this transaction and evaluation (removed), else None."""
    item = conn.info.pop(name, None)
    if item is None or item[0] != _cache_key(conn, as_of, cfg):
        return None
    return item[1]


# --- clip ownership --------------------------------------------------------------------


def resolve_owners(clips: pd.DataFrame, assignments: pd.DataFrame) -> pd.Series:
    """The officer each clip belongs to (rules.md "Events").

    ``police_no`` when set; otherwise the officer the device was assigned to at
    the clip's ``started_at``: the assignment with ``from_at <= started_at <
    to_at`` (``to_at`` null = still held).  Should a ledger hold overlapping
    assignments, the one with the latest ``from_at`` wins.  Clips with neither
    belong to nobody (NaN).
    """
    owner = clips["police_no"].astype(object).where(~blank(clips["police_no"]), None)
    need = owner.isna().to_numpy() & clips["started_at"].notna().to_numpy()
    if not need.any() or assignments.empty:
        return owner
    a = assignments.dropna(subset=["device_sn", "police_no", "from_at"])
    if a.empty:
        return owner
    codes, uniques = pd.factorize(pd.concat([a["device_sn"], clips.loc[need, "device_sn"]], ignore_index=True))
    a_dev = codes[: len(a)].astype(np.int64)
    c_dev = codes[len(a):].astype(np.int64)
    base = min(a["from_at"].min(), clips.loc[need, "started_at"].min()) - 1
    a_key = a_dev * SHIFT + (a["from_at"].to_numpy() - base).astype(np.int64)
    order = np.argsort(a_key, kind="stable")
    a_key = a_key[order]
    a_dev_s = a_dev[order]
    a_to = a["to_at"].to_numpy()[order]
    a_officer = a["police_no"].to_numpy()[order]
    c_start = clips.loc[need, "started_at"].to_numpy()
    c_key = c_dev * SHIFT + (c_start - base).astype(np.int64)
    idx = np.searchsorted(a_key, c_key, side="right") - 1
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    ok &= a_dev_s[safe] == c_dev
    to = a_to[safe]
    ok &= np.isnan(to) | (c_start < to)
    resolved = np.where(ok, a_officer[safe], None)
    owner = owner.copy()
    owner.loc[need] = resolved
    return owner


# --- interval arithmetic (integer seconds, grouped) ------------------------------------


def merge_runs(group: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of intervals per group: sorted, disjoint runs (touching intervals merge).

    All arrays int64; ``start``/``end`` relative seconds in [0, SHIFT); only
    positive-length intervals should be passed.
    """
    if len(group) == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, e
    order = np.argsort(group * SHIFT + start)  # one int64 key sorts faster than lexsort
    g, s, e = group[order], start[order], end[order]
    runmax = np.maximum.accumulate(g * SHIFT + e)
    new = np.ones(len(g), dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (g[1:] * SHIFT + s[1:] > runmax[:-1])
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(g) - 1]
    rg = g[first]
    return rg, s[first], runmax[last] - rg * SHIFT


def runs_in_windows(run_g: np.ndarray, run_s: np.ndarray, run_e: np.ndarray,
                    q_g: np.ndarray, q_s: np.ndarray, q_e: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query window (group, start, end): the parts of its group's runs inside it.

    Runs must come from ``merge_runs`` (sorted, disjoint).  Returns (query
    index, clipped start, clipped end) for every positive-length intersection.
    """
    ks = run_g * SHIFT + run_s
    ke = run_g * SHIFT + run_e
    lo = np.searchsorted(ke, q_g * SHIFT + q_s, side="right")  # first run ending after the window starts
    hi = np.searchsorted(ks, q_g * SHIFT + q_e, side="left")  # first run starting at/after the window end
    cnt = np.maximum(hi - lo, 0)
    total = int(cnt.sum())
    q_idx = np.repeat(np.arange(len(q_g), dtype=np.int64), cnt)
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    r_idx = np.repeat(lo, cnt) + offs
    cs = np.maximum(run_s[r_idx], q_s[q_idx])
    ce = np.minimum(run_e[r_idx], q_e[q_idx])
    keep = ce > cs
    return q_idx[keep], cs[keep], ce[keep]


def any_overlap(item_g: np.ndarray, item_s: np.ndarray, item_e: np.ndarray,
                q_g: np.ndarray, q_s: np.ndarray, q_e: np.ndarray) -> np.ndarray:
    """Per query: does an item of the same group intersect [q_s, q_e] with positive length?"""
    if len(q_g) == 0:
        return np.zeros(0, dtype=bool)
    pos = item_e > item_s
    rg, rs, re = merge_runs(item_g[pos], item_s[pos], item_e[pos])
    q_idx, _, _ = runs_in_windows(rg, rs, re, q_g, q_s, q_e)
    out = np.zeros(len(q_g), dtype=bool)
    out[q_idx] = True
    return out


def union_gaps(n: int, q_idx: np.ndarray, cs: np.ndarray, ce: np.ndarray, win_s: np.ndarray, win_e: np.ndarray,
               tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Covered seconds per window and its gaps (maximal uncovered parts longer than ``tolerance``).

    ``q_idx, cs, ce``: covered pieces inside window ``q_idx`` (any order,
    overlapping allowed).  Returns (covered[n], gap window index, gap start,
    gap end), gaps ordered by window then time.
    """
    rg, rs, re = merge_runs(q_idx, cs, ce)
    covered = np.bincount(rg, weights=(re - rs).astype(np.float64), minlength=n)[:n] if n else np.zeros(0)
    if len(rg):
        first = np.ones(len(rg), dtype=bool)
        first[1:] = rg[1:] != rg[:-1]
        last = np.ones(len(rg), dtype=bool)
        last[:-1] = rg[1:] != rg[:-1]
        prev_end = np.r_[np.int64(0), re[:-1]]
        before_s = np.where(first, win_s[rg], prev_end)
        tail_g = rg[last]
        g_idx = np.r_[rg, tail_g]
        g_s = np.r_[before_s, re[last]]
        g_e = np.r_[rs, win_e[tail_g]]
    else:
        g_idx = g_s = g_e = np.empty(0, dtype=np.int64)
    empty = np.ones(n, dtype=bool)
    empty[rg] = False
    e_idx = np.flatnonzero(empty)
    g_idx = np.r_[g_idx, e_idx].astype(np.int64)
    g_s = np.r_[g_s, win_s[e_idx]].astype(np.int64)
    g_e = np.r_[g_e, win_e[e_idx]].astype(np.int64)
    keep = (g_e - g_s) > tolerance
    g_idx, g_s, g_e = g_idx[keep], g_s[keep], g_e[keep]
    order = np.lexsort((g_s, g_idx))
    return covered, g_idx[order], g_s[order], g_e[order]
