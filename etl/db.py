"""Warehouse connection helpers shared by the ETL, the rules and the dashboard.

One code path for SQLite (embedded default) and PostgreSQL (production):
SQLAlchemy Core for DDL and queries, the driver's bulk path for inserts
(``executemany`` of plain tuples on SQLite, ``COPY`` on PostgreSQL).

Datetimes are exchanged as text ``YYYY-MM-DD HH:MM:SS`` on the way in: SQLite
stores them as such, PostgreSQL parses them into ``timestamp``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

DEFAULT_WAREHOUSE = "sqlite:///data/warehouse.sqlite"
TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def warehouse_url(url: str | None = None) -> str:
    """The warehouse URL: explicit argument, else $WAREHOUSE_URL, else the default."""
    return url or os.environ.get("WAREHOUSE_URL") or DEFAULT_WAREHOUSE


def sqlite_path(url: str) -> Path | None:
    """The database file of a file-based SQLite URL, else None."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):])
    return None


def is_new_sqlite(url: str) -> bool:
    """A SQLite warehouse file that does not exist yet (or is empty)."""
    path = sqlite_path(url)
    return path is not None and (not path.exists() or path.stat().st_size == 0)


def make_engine(url: str | None = None, *, journal: str = "WAL") -> Engine:
    """An engine on the warehouse.  SQLite: ``journal`` is the journal mode its connections set (WAL lets the
    dashboard read while a run writes; the first load into a new file uses DELETE, see etl.pipeline)."""
    url = warehouse_url(url)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record):  # noqa: ANN001
            # Python's sqlite3 opens transactions lazily; let SQLAlchemy's
            # BEGIN govern instead so that DDL is transactional too.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA journal_mode={journal}")
            # NORMAL is durable enough with WAL; a rollback journal needs FULL to survive a power cut
            cur.execute("PRAGMA synchronous=" + ("NORMAL" if journal.upper() == "WAL" else "FULL"))
            cur.execute("PRAGMA foreign_keys=OFF")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-200000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):  # noqa: ANN001
            conn.exec_driver_sql("BEGIN")

    return engine


def to_db_value(v):  # noqa: ANN001, ANN201
    """Plain Python value for a driver: NaN/NaT -> None, Timestamps -> text."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if v is pd.NaT:
        return None
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.strftime(TS_FORMAT)
    if isinstance(v, date):
        return v.isoformat()
    if hasattr(v, "item"):  # numpy scalar
        return v.item()
    return v


def _column_values(s: pd.Series) -> list:
    """One column as plain Python values for a driver (None for missing), vectorised by dtype."""
    dtype = s.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return s.dt.strftime(TS_FORMAT).astype(object).where(s.notna(), None).tolist()
    if pd.api.types.is_float_dtype(dtype) and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        values = s.to_numpy()
        out = values.astype(object)
        out[np.isnan(values)] = None
        return out.tolist()
    if (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) \
            and not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return s.tolist()
    values = s.to_numpy(dtype=object, na_value=None) if isinstance(dtype, pd.api.extensions.ExtensionDtype) \
        else s.to_numpy(dtype=object)
    if not isinstance(dtype, pd.api.extensions.ExtensionDtype):
        values = values.copy()
        values[pd.isna(values)] = None
    return values.tolist()


def _rows(df: pd.DataFrame, columns: Sequence[str]) -> list[tuple]:
    conv = [_column_values(df[col]) for col in columns]
    rows = list(zip(*conv, strict=True)) if conv else []
    # numpy scalars and leftovers
    return [tuple(to_db_value(v) for v in r) for r in rows] if _needs_conversion(rows) else rows


def _needs_conversion(rows: list[tuple]) -> bool:
    for r in rows[:50]:
        for v in r:
            if v is not None and not isinstance(v, (str, int, float, bool)):
                return True
            if isinstance(v, float) and math.isnan(v):
                return True
    return False


def bulk_insert(conn: Connection, table: str | sa.Table, data: pd.DataFrame | Iterable[tuple],
                columns: Sequence[str] | None = None, *, plain: bool = False) -> int:
    """Insert many rows fast inside the caller's transaction.

    ``data`` is a DataFrame (its columns named as the table's, or ``columns``
    chosen) or an iterable of tuples in ``columns`` order.  ``plain=True``
    promises that every value is already a plain Python ``str``/``int``/
    ``float``/``bool`` or ``None`` (no NaN, numpy scalars or Timestamps), so
    the rows are passed to the driver without a conversion pass.
    """
    name = table if isinstance(table, str) else table.name
    if isinstance(data, pd.DataFrame):
        cols = list(columns or data.columns)
        rows = list(zip(*(data[c].tolist() for c in cols), strict=True)) if plain else _rows(data, cols)
    else:
        if columns is None:
            raise ValueError("columns are required for tuple rows")
        cols = list(columns)
        rows = [tuple(r) for r in data] if plain else [tuple(to_db_value(v) for v in r) for r in data]
    if not rows:
        return 0
    dialect = conn.dialect.name
    quoted = ", ".join(conn.dialect.identifier_preparer.quote(c) for c in cols)
    qname = conn.dialect.identifier_preparer.quote(name)
    if dialect == "postgresql":
        raw = conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(f"COPY {qname} ({quoted}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row(r)
    else:
        marks = ", ".join(["?" if dialect == "sqlite" else "%s"] * len(cols))
        conn.exec_driver_sql(f"INSERT INTO {qname} ({quoted}) VALUES ({marks})", rows)
    return len(rows)


def fetch_rows(conn: Connection, sql: str) -> list[tuple]:
    """Run ``sql`` (no parameters) on the driver cursor: plain tuples, no per-row SQLAlchemy objects."""
    cur = conn.connection.cursor()
    try:
        cur.execute(sql)
        return cur.fetchall()
    finally:
        cur.close()


def fetch_frame(conn: Connection, sql: str, columns: list[str]) -> pd.DataFrame:
    """``fetch_rows`` as a frame of plain object columns (no string-dtype inference): fast at city scale."""
    rows = fetch_rows(conn, sql)
    if rows:
        try:  # C-speed transposition (pandas internal); plain zip otherwise
            from pandas._libs.lib import to_object_array_tuples

            mat = to_object_array_tuples(rows)
            cols = [mat[:, i] for i in range(len(columns))]
        except (ImportError, TypeError, ValueError):
            cols = [np.array(c, dtype=object) for c in zip(*rows, strict=True)]
    else:
        cols = [np.empty(0, dtype=object) for _ in columns]
    return pd.DataFrame({name: pd.Series(np.ascontiguousarray(vals, dtype=object), dtype=object)
                         for name, vals in zip(columns, cols, strict=True)}, columns=columns)


def temp_rows(conn: Connection, name: str, columns: dict[str, str], rows: Iterable[tuple]) -> str:
    """Fill the temporary table ``name`` (``columns``: name -> SQL type; created on first use, emptied
    first) with plain-value ``rows``; returns ``(SELECT <columns> FROM name)`` for IN filters and joins."""
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} ("
                         + ", ".join(f"{c} {t}" for c, t in columns.items()) + ")")
    conn.exec_driver_sql(f"DELETE FROM {name}")
    bulk_insert(conn, name, list(rows), list(columns), plain=True)
    return f"(SELECT {', '.join(columns)} FROM {name})"


def temp_keys(conn: Connection, name: str, values: Iterable) -> str:
    """``temp_rows`` for one text column ``k``: ``(SELECT k FROM name)``."""
    return temp_rows(conn, name, {"k": "TEXT"}, ((str(v),) for v in values))


def read_df(conn: Connection | Engine, sql: str | sa.sql.ClauseElement, params: dict | None = None,
            parse_dates: Sequence[str] | None = None) -> pd.DataFrame:
    """Run one query with bound parameters and return a DataFrame."""
    stmt = sa.text(sql) if isinstance(sql, str) else sql
    if isinstance(conn, Engine):
        with conn.connect() as c:
            return read_df(c, stmt, params, parse_dates)
    res = conn.execute(stmt, params or {})
    columns = list(res.keys())
    cursor = getattr(res, "cursor", None)
    if isinstance(stmt, sa.TextClause) and cursor is not None:
        # textual SQL has no result processors: the driver's rows as they are (no per-row Row objects)
        rows = cursor.fetchall()
        res.close()
    else:  # plain tuples: pandas probes each SQLAlchemy Row with hasattr(), ~10x slower at 10^5 rows
        rows = [tuple(r) for r in res.fetchall()]
    df = pd.DataFrame(rows, columns=columns)
    for col in parse_dates or ():
        if col in df.columns:
            df[col] = pd.to_datetime(df[col], errors="coerce")
    return df




def refresh_statistics(conn: Connection, tables: Sequence[str]) -> None:
    """Give PostgreSQL's planner statistics for tables just written in this transaction.

    Autovacuum only analyses committed data, so inside the first run's transaction
    the planner would see empty tables and pick per-row rescans (measured at city
    scale: the metrics step took 299 s without this, 9 s with it).  ANALYZE is
    allowed inside a transaction.  SQLite's planner needs no statistics here.
    """
    if conn.dialect.name != "postgresql":
        return
    prep = conn.dialect.identifier_preparer
    conn.exec_driver_sql("ANALYZE " + ", ".join(prep.quote(t) for t in tables))
