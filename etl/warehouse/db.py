"""Warehouse connection helpers shared by the ETL, the rules and the dashboard.

One code path for SQLite (embedded default) and PostgreSQL (production):
SQLAlchemy Core for DDL and queries, the driver's bulk path for inserts
(``executemany`` of plain tuples on SQLite, ``COPY`` on PostgreSQL).  Large
frames into SQLite take a C path instead (``insert_arrow``): Apache Arrow's
ADBC SQLite driver writes them into a scratch file, which the warehouse
connection attaches and copies with one ``INSERT ... SELECT`` inside the
caller's transaction (measured on the city demo's 2.4M clips: 6.5 s instead
of 22.5 s for building Python tuples and ``executemany``).

Datetimes are exchanged as text ``YYYY-MM-DD HH:MM:SS`` on the way in: SQLite
stores them as such, PostgreSQL parses them into ``timestamp``.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sqlite3
import tempfile
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from etl.errors import ConfigError
from etl.times import TS_FORMAT  # noqa: F401 - the one format; importers of db.TS_FORMAT keep working

DEFAULT_WAREHOUSE = "sqlite:///data/warehouse.sqlite"
ARROW_MIN_ROWS = 100_000  # from this many rows a SQLite insert goes through insert_arrow
STAGE_PREFIX = "etl_stage_"  # schema names of the scratch files insert_arrow attaches


def warehouse_url(url: str | None = None) -> str:
    """The warehouse URL: explicit argument, else $WAREHOUSE_URL, else the default."""
    return url or os.environ.get("WAREHOUSE_URL") or DEFAULT_WAREHOUSE


def sqlite_path(url: str) -> Path | None:
    """The database file of a file-based SQLite URL, else None."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///") :])
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

        @sa.event.listens_for(engine, "checkin")
        def _detach(dbapi_conn, _record):  # noqa: ANN001
            # the transaction has ended: the scratch files insert_arrow attached can go (their files are
            # already unlinked; detaching closes them)
            _detach_stages(dbapi_conn)

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
    if (pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)) and not isinstance(
        dtype, pd.api.extensions.ExtensionDtype
    ):
        return s.tolist()
    values = (
        s.to_numpy(dtype=object, na_value=None)
        if isinstance(dtype, pd.api.extensions.ExtensionDtype)
        else s.to_numpy(dtype=object)
    )
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


def bulk_insert(
    conn: Connection,
    table: str | sa.Table,
    data: pd.DataFrame | Iterable[tuple],
    columns: Sequence[str] | None = None,
    *,
    plain: bool = False,
) -> int:
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
        if insert_arrow(conn, name, data[cols]):
            return len(data)
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
        marks = ", ".join([param_mark(conn)] * len(cols))
        conn.exec_driver_sql(f"INSERT INTO {qname} ({quoted}) VALUES ({marks})", rows)
    return len(rows)


def param_mark(conn: Connection) -> str:
    """The driver's positional parameter mark (for ``exec_driver_sql``)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


_STAGE_NUMBERS = itertools.count(1)


def _detach_stages(dbapi_conn) -> None:  # noqa: ANN001
    # a connection being discarded after an error may refuse: then it is closed anyway, nothing to keep tidy
    with contextlib.suppress(sqlite3.Error):
        names = [r[1] for r in dbapi_conn.execute("PRAGMA database_list").fetchall()]
        for name in names:
            if str(name).startswith(STAGE_PREFIX):
                dbapi_conn.execute(f"DETACH DATABASE {name}")


def _arrow_columns(df: pd.DataFrame, order: np.ndarray | None) -> pa.Table | None:
    """The frame as an Arrow table of text, integer and float columns (None when a column has no such
    form, e.g. mixed Python types): what the SQLite driver binds exactly as executemany would."""
    arrays = []
    for c in df.columns:
        s = df[c]
        try:
            if pd.api.types.is_datetime64_any_dtype(s.dtype):
                arr = pa.array(s.dt.strftime(TS_FORMAT), type=pa.large_string(), from_pandas=True)
            elif pd.api.types.is_bool_dtype(s.dtype):
                arr = pa.array(s, from_pandas=True).cast(pa.int64())
            else:
                arr = pa.array(s, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            return None
        if pa.types.is_string(arr.type):
            arr = arr.cast(pa.large_string())
        elif pa.types.is_null(arr.type):
            arr = pa.nulls(len(arr), pa.large_string())
        elif pa.types.is_boolean(arr.type):
            arr = arr.cast(pa.int64())
        elif pa.types.is_timestamp(arr.type) and arr.type.tz is None:
            arr = pc.strftime(arr, format=TS_FORMAT).cast(pa.large_string())
        elif not (
            pa.types.is_large_string(arr.type) or pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)
        ):
            return None  # bytes, decimals, nested values: the driver path decides
        arrays.append(arr)
    table = pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))])
    return table.take(pa.array(order)) if order is not None else table


def insert_arrow(conn: Connection, table: str, df: pd.DataFrame, order: np.ndarray | None = None) -> bool:
    """Insert a large frame into a SQLite table through a scratch file (see the module docstring).

    Rows ``order`` (positions) first when given.  Returns False, having written
    nothing, where this path does not apply (not SQLite, a small frame, the ADBC
    driver missing, a column without a plain Arrow form, no attach slot left):
    the caller then inserts through the driver.  The scratch file is unlinked
    as soon as it is attached and detached when the connection goes back to
    the pool; nothing is left behind, even after a crash.
    """
    if conn.dialect.name != "sqlite" or len(df) < ARROW_MIN_ROWS:
        return False
    try:
        import adbc_driver_sqlite.dbapi as adbc
    except ImportError:
        return False
    raw = conn.connection.driver_connection
    attached = [r[1] for r in raw.execute("PRAGMA database_list").fetchall() if r[1] not in ("main", "temp")]
    if len(attached) >= raw.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED):
        return False
    data = _arrow_columns(df, order)
    if data is None:
        return False
    alias = f"{STAGE_PREFIX}{next(_STAGE_NUMBERS)}"
    fd, path = tempfile.mkstemp(prefix=STAGE_PREFIX, suffix=".sqlite")
    os.close(fd)
    try:
        with adbc.connect(path) as scratch:
            with scratch.cursor() as cur:
                cur.adbc_ingest("rows", data, mode="create")
            scratch.commit()
        del data
        conn.exec_driver_sql(f"ATTACH DATABASE ? AS {alias}", (path,))
    finally:
        os.unlink(path)  # attached: SQLite reads it through its open descriptor
    q = conn.dialect.identifier_preparer.quote
    cols = ", ".join(q(c) for c in df.columns)
    picks = ", ".join(f"c{i}" for i in range(len(df.columns)))
    conn.exec_driver_sql(f"INSERT INTO {q(table)} ({cols}) SELECT {picks} FROM {alias}.rows ORDER BY rowid")
    return True


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
    return pd.DataFrame(
        {
            name: pd.Series(np.ascontiguousarray(vals, dtype=object), dtype=object)
            for name, vals in zip(columns, cols, strict=True)
        },
        columns=columns,
    )


# --- datetimes as epoch seconds (the rules' time axis) ------------------------------------------------
#
# Times inside the rules are float seconds since 1970-01-01 of the naive local wall-clock time (NaN for
# null): cheap to compare, exact for whole seconds, and the same on SQLite (text) and PostgreSQL
# (timestamp) because the database does the conversion (``unixepoch(...)``, or ``strftime('%s', ...)``
# before SQLite 3.38 / ``EXTRACT(EPOCH ...)``).

EPOCH = datetime(1970, 1, 1)
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
    """``fetch_frame`` with ``dt_cols`` (epoch seconds the database computed, see ``epoch_sql``) as float seconds."""
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


def is_empty(conn: Connection, name: str) -> bool:
    """Does table ``name`` hold no row?"""
    return conn.exec_driver_sql(f"SELECT 1 FROM {conn.dialect.identifier_preparer.quote(name)} LIMIT 1").first() is None


def temp_rows(conn: Connection, name: str, columns: dict[str, str], rows: Iterable[tuple]) -> str:
    """Fill the temporary table ``name`` (``columns``: name -> SQL type; created on first use, emptied
    first) with plain-value ``rows``; returns ``(SELECT <columns> FROM name)`` for IN filters and joins."""
    conn.exec_driver_sql(
        f"CREATE TEMPORARY TABLE IF NOT EXISTS {name} (" + ", ".join(f"{c} {t}" for c, t in columns.items()) + ")"
    )
    conn.exec_driver_sql(f"DELETE FROM {name}")
    bulk_insert(conn, name, list(rows), list(columns), plain=True)
    return f"(SELECT {', '.join(columns)} FROM {name})"


_KEY_CASTS = {"dt": "TIMESTAMP", "date": "DATE"}  # contract kinds SQLite stores as text, others typed


def key_in(conn: Connection, name: str, key: Sequence[str], keys: pd.DataFrame, kinds: Sequence[str] = ()) -> str:
    """SQL condition: the (possibly multi-column) ``key`` of a row is among the rows of ``keys`` (as text,
    through the temporary table ``name_<columns>``).  ``kinds``: the contract kinds of the key columns; a
    datetime or date key's text ('YYYY-MM-DD HH:MM:SS') is cast to the column's type where the database
    stores it typed (PostgreSQL has no timestamp = text)."""
    cols = {f"k{i}": "TEXT" for i in range(len(key))}
    temp_rows(
        conn, f"{name}_{len(cols)}", cols, (tuple(str(v) for v in r) for r in keys.itertuples(index=False, name=None))
    )
    picks = [
        f"CAST({c} AS {_KEY_CASTS[kind]})" if conn.dialect.name != "sqlite" and kind in _KEY_CASTS else c
        for c, kind in itertools.zip_longest(cols, kinds[: len(cols)], fillvalue="str")
    ]
    target = ", ".join(conn.dialect.identifier_preparer.quote(k) for k in key)
    return f"{target if len(cols) == 1 else f'({target})'} IN (SELECT {', '.join(picks)} FROM {name}_{len(cols)})"


def temp_keys(conn: Connection, name: str, values: Iterable) -> str:
    """``temp_rows`` for one text column ``k``: ``(SELECT k FROM name)``."""
    return temp_rows(conn, name, {"k": "TEXT"}, ((str(v),) for v in values))


def read_df(
    conn: Connection | Engine,
    sql: str | sa.sql.ClauseElement,
    params: dict | None = None,
    parse_dates: Sequence[str] | None = None,
) -> pd.DataFrame:
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

    Only the tables never analysed or changed in this transaction by more than
    autovacuum's own threshold (50 rows + 10 % of the rows last counted): a
    daily run changes a few thousand rows of the large mirrors, whose
    statistics stay good (measured at city scale: 1.4-1.9 s of ANALYZE per daily
    run saved).  The counts come from ``pg_stat_xact_user_tables``, which may
    also hold earlier transactions of the same server session not yet flushed:
    that only ever adds an ANALYZE (each ``etl run`` has its own session).
    """
    if conn.dialect.name != "postgresql":
        return
    stale = (
        conn.exec_driver_sql(
            """SELECT c.relname FROM pg_class c
           LEFT JOIN pg_stat_xact_user_tables x ON x.relid = c.oid
           WHERE c.relname = ANY(%s) AND c.relkind = 'r' AND pg_table_is_visible(c.oid)
             AND (c.reltuples < 0
                  OR COALESCE(x.n_tup_ins + x.n_tup_upd + x.n_tup_del, 0) > 50 + 0.1 * c.reltuples)""",
            (list(tables),),
        )
        .scalars()
        .all()
    )
    if stale:
        prep = conn.dialect.identifier_preparer
        conn.exec_driver_sql("ANALYZE " + ", ".join(prep.quote(t) for t in sorted(stale)))
