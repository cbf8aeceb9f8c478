"""Incremental, idempotent load of staged tables into the warehouse mirrors.

All functions work inside the caller's transaction (the whole ``etl run`` is
one transaction), so a watermark is always committed together with the rows
it covers.

* Tables with ``updated_at``: only rows above the watermark (updated_at, key)
  arrive from staging; earlier versions of those keys are deleted, the new
  ones inserted, the watermark moved to the largest (updated_at, key) loaded.
* Tables without ``updated_at``: the staged content is hashed; when the hash
  differs from the one in ``table_hashes`` the table's rows are replaced.
* Quarantine rows are inserted once: a rejected row already recorded with the
  same reason and payload is not recorded again.

Inserts go through :func:`etl.warehouse.db.bulk_insert` (executemany of tuples on
SQLite, COPY on PostgreSQL) in chunks, so memory stays flat; large frames
into SQLite through :func:`etl.warehouse.db.insert_arrow` in one statement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.engine import Connection

from etl.sources.contract import Table
from etl.sources.staging import KEY_SEP, QUARANTINE_COLUMNS, Staged, isin
from etl.warehouse import distribution
from etl.warehouse.db import (
    TS_FORMAT,
    bulk_insert,
    fetch_frame,
    fetch_rows,
    insert_arrow,
    is_empty,
    key_in,
    param_mark,
    temp_keys,
)
from etl.warehouse.schema import metadata

if TYPE_CHECKING:
    from etl.warehouse.snapshots import Snapshots

CHUNK_ROWS = 50_000
INDEX_REBUILD_ROWS = 50_000  # from this many rows into an empty table, drop and rebuild secondary indexes
Progress = Callable[[int], None]  # called with the number of rows just written


@dataclass
class LoadResult:
    loaded: int = 0  # rows written into the mirror
    quarantined: int = 0  # new quarantine rows recorded
    replaced: bool = False  # full-compare table whose content changed
    was_empty: bool = False  # the mirror had no rows before this load


def _q(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def insert_frame(
    conn: Connection,
    name: str,
    df: pd.DataFrame,
    on_chunk: Progress | None = None,
    chunk: int = CHUNK_ROWS,
    order: np.ndarray | None = None,
) -> int:
    """Bulk-insert a frame in chunks (bounded memory for the tuples the driver needs).

    ``order`` (row positions) inserts in that order without copying the whole frame.
    """
    if insert_arrow(conn, name, df, order):  # large frames into SQLite: in C, in one statement
        if on_chunk:
            on_chunk(len(df))
        return len(df)
    total = 0
    for start in range(0, len(df), chunk):
        rows = slice(start, start + chunk) if order is None else order[start : start + chunk]
        part = _plain(df.iloc[rows])
        total += bulk_insert(conn, name, part, plain=True)
        if on_chunk:
            on_chunk(len(part))
    return total


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Object columns of plain Python values (str, int, None): what the drivers take without conversion."""
    out = {}
    for c in df.columns:
        s = df[c]
        if isinstance(s.dtype, pd.StringDtype):
            values = pa.array(s, type=pa.large_string()).to_numpy(zero_copy_only=False)
        elif pd.api.types.is_datetime64_any_dtype(s.dtype):
            values = s.dt.strftime(TS_FORMAT).astype(object).where(s.notna(), None).to_numpy()
        else:
            values = s.astype(object).where(s.notna(), None).to_numpy()
        out[c] = pd.Series(values, dtype=object, copy=False)
    return pd.DataFrame(out, columns=df.columns)


def get_watermark(conn: Connection, table: str) -> tuple[str, str] | None:
    row = conn.exec_driver_sql(
        "SELECT updated_at, row_key FROM watermarks WHERE table_name = " + param_mark(conn), (table,)
    ).first()
    return (row[0], row[1]) if row else None


def set_watermark(conn: Connection, table: str, wm: tuple[str, str]) -> None:
    p = param_mark(conn)
    conn.exec_driver_sql(f"DELETE FROM watermarks WHERE table_name = {p}", (table,))
    conn.exec_driver_sql(
        f"INSERT INTO watermarks (table_name, updated_at, row_key) VALUES ({p}, {p}, {p})", (table, wm[0], wm[1])
    )


def content_hash(df: pd.DataFrame, key: tuple[str, ...]) -> str:
    """Order-independent SHA-256 of a staged frame's content."""
    ordered = df.sort_values(list(key), kind="stable").reset_index(drop=True) if len(df) else df
    h = hashlib.sha256(",".join(df.columns).encode())
    h.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return h.hexdigest()


def get_hash(conn: Connection, table: str) -> str | None:
    row = conn.exec_driver_sql(
        f"SELECT content_hash FROM table_hashes WHERE table_name = {param_mark(conn)}", (table,)
    ).first()
    return row[0] if row else None


def set_hash(conn: Connection, table: str, digest: str) -> None:
    p = param_mark(conn)
    conn.exec_driver_sql(f"DELETE FROM table_hashes WHERE table_name = {p}", (table,))
    conn.exec_driver_sql(f"INSERT INTO table_hashes (table_name, content_hash) VALUES ({p}, {p})", (table, digest))


def forget_hash(conn: Connection, table: str) -> None:
    conn.exec_driver_sql(f"DELETE FROM table_hashes WHERE table_name = {param_mark(conn)}", (table,))


def apply_kept(
    conn: Connection,
    table: Table,
    gone: pd.DataFrame,
    staged: Staged,
    run_id: int | None,
    on_chunk: Progress | None = None,
    *,
    snapshots: Snapshots | None = None,
) -> LoadResult:
    """The load of a full-compare table whose unchanged rows skipped staging (``etl.warehouse.fingerprints``): delete the
    mirror rows whose source row is gone or changed (``gone``: their keys), insert the staged new rows."""
    res = LoadResult(was_empty=False)
    if len(gone):
        _delete_rows(conn, table, gone, snapshots)
    res.loaded = insert_sorted(conn, table, staged.clean, False, on_chunk, snapshots=snapshots)
    res.replaced = bool(len(gone) or res.loaded)
    res.quarantined = write_quarantine(conn, staged.quarantine, run_id)
    return res


def delete_keys(conn: Connection, table: Table, keys: pd.Series, snapshots: Snapshots | None = None) -> None:
    """Delete the mirror rows whose (single-column) key is in ``keys``, via a temporary key table (told to
    the run's ``snapshots``, when given)."""
    if len(table.key) != 1:
        raise ValueError(f"{table.name}: delete by key needs a single-column key")
    col = _q(conn, table.key[0])
    if snapshots is not None:
        snapshots.note(table.name, pd.DataFrame({table.key[0]: keys.to_numpy()}))
    conn.exec_driver_sql(
        f"DELETE FROM {_q(conn, table.name)} WHERE {col} IN "
        f"{temp_keys(conn, 'etl_keys', keys.astype(object).to_numpy())}"
    )


class WarehouseKeys:
    """The keys of a (single-column key) mirror, looked up in the warehouse for just the values asked about.

    Staging an incremental day checks a few thousand references; reading every key of a large mirror
    (2.5M clips) for that would cost seconds.  When many values are asked about (a whole table without
    ``updated_at`` is re-staged every day), all keys are read once instead.  A first load in pieces uses it
    too, for a referenced table of more than ``HELD_MAX`` rows (a province's 23.5M clip ids held as text took
    ~0.6 GB for the whole load): a piece of 300k references probes in ~1.6 s, measured.
    """

    # The most keys of a mirror held in memory (~30 bytes each): WarehouseKeys reads every key only of a mirror up
    # to this size, and a first load keeps the keys of a referenced table up to it (above: looked up here).  At
    # 10x city only the clips (23.5M) are above; looking up the cases and incidents too cost ~150 s of probes.
    HELD_MAX = 5_000_000

    def __init__(self, conn: Connection, table: Table, rows: int | None = None) -> None:
        """``rows``: the mirror's row count when the caller knows it (a first load that just wrote it: counting
        23.5M clips inside the load's transaction read the whole heap, ~30 s at 10x city, measured)."""
        if len(table.key) != 1:
            raise ValueError(f"{table.name}: key look-up needs a single-column key")
        self.conn, self.table = conn, table
        self._all: pa.Array | None = None  # every key, once reading them all is the cheaper way
        self._count: int | None = rows

    def _rows(self) -> int:
        if self._count is None:
            self._count = int(
                self.conn.exec_driver_sql(f"SELECT COUNT(*) FROM {_q(self.conn, self.table.name)}").scalar()
            )
        return self._count

    def contains(self, s: pd.Series) -> pd.Series:
        values = pd.unique(s.dropna().astype(object).to_numpy())
        if not len(values):
            return pd.Series(False, index=s.index)
        conn = self.conn
        col, name = _q(conn, self.table.key[0]), _q(conn, self.table.name)
        rows = self._rows()
        if self._all is None and len(values) * 6 > rows and rows <= self.HELD_MAX:  # a probe costs ~6 key reads
            self._all = pa.array([r[0] for r in fetch_rows(conn, f"SELECT {col} FROM {name}")], type=pa.large_string())
        if self._all is not None:
            return isin(s, self._all)
        temp_keys(conn, "etl_probe", values)
        # a value at a time through the key's index: as a join (IN, EXISTS) PostgreSQL's planner hashed all
        # 23.5M keys of the mirror instead (7-10 s for 300k values, against ~1.6 s probed; measured)
        found = fetch_rows(
            conn, f"SELECT k FROM etl_probe p WHERE (SELECT 1 FROM {name} t WHERE t.{col} = p.k) IS NOT NULL"
        )
        return isin(s, pd.Index([r[0] for r in found], dtype=object))


def insert_sorted(
    conn: Connection,
    table: Table,
    df: pd.DataFrame,
    into_empty: bool,
    on_chunk: Progress | None = None,
    *,
    snapshots: Snapshots | None = None,
    rebuild_indexes: bool = True,
) -> int:
    """Insert rows in key order; into an empty table, secondary indexes are built once afterwards
    (``rebuild_indexes=False``: the caller dropped them, ``indexes_deferred``).

    Key order makes the primary-key B-tree append-only; building an index over
    the loaded table is several times cheaper than maintaining it row by row.
    """
    if df.empty:
        return 0
    if snapshots is not None:
        snapshots.note(table.name, df)
    keys = pa.table({k: pa.array(df[k], type=pa.large_string()) for k in table.key})
    order = pc.sort_indices(keys, sort_keys=[(k, "ascending") for k in table.key]).to_numpy()
    if bool((order == np.arange(len(order))).all()):  # already in key order (usual for a first load): no gather
        order = None
    rebuild = rebuild_indexes and into_empty and len(df) >= INDEX_REBUILD_ROWS
    indexes = list(metadata.tables[table.name].indexes) if rebuild else []
    for ix in indexes:
        ix.drop(conn)
    n = insert_frame(conn, table.name, distribution.with_county(conn, table.name, df), on_chunk, order=order)
    for ix in indexes:
        ix.create(conn)
    if not into_empty:  # rewritten rows may have moved to another county: the rows below them follow
        if table.name == "org_units":
            distribution.rehome(conn, "org_units", [*df["unit_code"], *distribution.refresh_units(conn)])
        elif table.name in distribution.PARENTS:
            distribution.rehome(conn, table.name, df[table.key[0]])
    return n


@contextmanager
def indexes_deferred(conn: Connection, table: Table) -> Iterator[None]:
    """A load in pieces into an empty mirror: its secondary indexes dropped before the first piece and built
    once after the last (on failure the run's transaction rolls the drop back)."""
    indexes = list(metadata.tables[table.name].indexes)
    for ix in indexes:
        ix.drop(conn)
    yield
    for ix in indexes:
        ix.create(conn)


def append_piece(
    conn: Connection,
    table: Table,
    staged: Staged,
    run_id: int | None,
    on_chunk: Progress | None = None,
    *,
    snapshots: Snapshots | None = None,
) -> LoadResult:
    """One staged piece of a table loaded in pieces into a mirror that was empty (``etl.sources.pieces``):
    its keys are new (a key's rows are all in one piece), so its rows are inserted as they are; the
    quarantine recorded.  The caller moves the watermark once, after the last piece."""
    res = LoadResult(was_empty=True)
    res.loaded = insert_sorted(conn, table, staged.clean, True, on_chunk, snapshots=snapshots, rebuild_indexes=False)
    res.replaced = res.loaded > 0
    res.quarantined = write_quarantine(conn, staged.quarantine, run_id)
    return res


def load_incremental(
    conn: Connection,
    table: Table,
    staged: Staged,
    on_chunk: Progress | None = None,
    *,
    snapshots: Snapshots | None = None,
) -> LoadResult:
    """Replace changed rows of a table with ``updated_at`` and move its watermark."""
    res = LoadResult(was_empty=is_empty(conn, table.name))
    clean = staged.clean
    if len(clean):
        if not res.was_empty:
            delete_keys(conn, table, clean[table.key[0]], snapshots)
        res.loaded = insert_sorted(conn, table, clean, res.was_empty, on_chunk, snapshots=snapshots)
    if staged.watermark is not None:
        old = get_watermark(conn, table.name)
        if old is None or staged.watermark > old:
            set_watermark(conn, table.name, staged.watermark)
    return res


def load_full(
    conn: Connection,
    table: Table,
    staged: Staged,
    on_chunk: Progress | None = None,
    mirror: Mirror | None = None,
    hashed: bool = True,
    *,
    snapshots: Snapshots | None = None,
) -> LoadResult:
    """Bring a table without ``updated_at`` to the staged content when that content changed.

    Into an empty mirror everything is inserted.  Otherwise the rows are compared
    by key and content with the mirror: rows gone or changed are deleted, new and
    changed rows inserted (a day's new rows of a 570k-row table, not the table).
    """
    res = LoadResult(was_empty=is_empty(conn, table.name))
    if not hashed:  # fingerprinted (etl.warehouse.fingerprints): unchanged content is found row by row, no table hash
        forget_hash(conn, table.name)
        if res.was_empty:
            res.loaded = insert_sorted(conn, table, staged.clean, True, on_chunk, snapshots=snapshots)
            res.replaced = res.loaded > 0
        else:
            res.loaded, deleted = _apply_difference(conn, table, staged.clean, on_chunk, mirror, snapshots)
            res.replaced = bool(res.loaded or deleted)
        return res
    digest = content_hash(staged.clean, table.key)
    if digest == get_hash(conn, table.name) and not (res.was_empty and len(staged.clean)):
        return res
    if res.was_empty:
        res.loaded = insert_sorted(conn, table, staged.clean, True, on_chunk, snapshots=snapshots)
    else:
        res.loaded, _deleted = _apply_difference(conn, table, staged.clean, on_chunk, mirror, snapshots)
    res.replaced = True
    set_hash(conn, table.name, digest)
    return res


def _render_sql(conn: Connection, col: str, kind: str) -> str:
    """SELECT expression giving a mirror column in staging's text form (datetimes as canonical text)."""
    q = _q(conn, col)
    name = conn.dialect.name
    if kind in ("dt", "date") and name == "postgresql":
        return f"to_char({q}, '{'YYYY-MM-DD HH24:MI:SS' if kind == 'dt' else 'YYYY-MM-DD'}')"
    if kind in ("dt", "date") and name in ("mysql", "mariadb"):
        return f"DATE_FORMAT({q}, '{'%Y-%m-%d %H:%i:%s' if kind == 'dt' else '%Y-%m-%d'}')"
    return q


def row_text(df: pd.DataFrame, columns: list[str]) -> pa.Array:
    """Each row's columns as one text (null distinct from empty): staged frames and mirror reads render alike."""
    parts = []
    for c in columns:
        s = df[c]
        try:
            arr = pa.array(
                s.astype(object) if s.dtype == object or isinstance(s.dtype, pd.StringDtype) else s, from_pandas=True
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed value types in one column: text one by one
            arr = pa.array([None if pd.isna(v) else str(v) for v in s.astype(object)], type=pa.large_string())
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = (
                pc.cast(arr, pa.large_string())
                if not pa.types.is_null(arr.type)
                else pa.nulls(len(arr), pa.large_string())
            )
        parts.append(pc.cast(arr, pa.large_string()))
    sep = pa.scalar("\x1f", type=pa.large_string())
    return pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="\x00")


@dataclass
class Mirror:
    """A mirror's rows in staging's text form, and each row as one text (see ``row_text``)."""

    rows: pd.DataFrame
    text: pa.Array

    def holds(self, df: pd.DataFrame) -> np.ndarray:
        """Per row of a staged-form frame: is exactly this row in the mirror?"""
        found = pc.is_in(row_text(df, list(self.rows.columns)), value_set=self.text)
        return pc.fill_null(found, False).to_numpy(zero_copy_only=False)


def read_mirror(conn: Connection, table: Table) -> Mirror:
    cols = table.column_names
    kinds = {c.name: c.kind for c in table.columns}
    sql = "SELECT " + ", ".join(_render_sql(conn, c, kinds[c]) for c in cols) + f" FROM {_q(conn, table.name)}"
    rows = fetch_frame(conn, sql, cols)
    return Mirror(rows, row_text(rows, cols))


def _apply_difference(
    conn: Connection,
    table: Table,
    clean: pd.DataFrame,
    on_chunk: Progress | None,
    mirror: Mirror | None = None,
    snapshots: Snapshots | None = None,
) -> tuple[int, int]:
    """Delete the mirror rows that are gone or changed; insert the new and changed rows (counts returned).

    Rows are compared as whole texts: a mirror row whose text is not among the staged rows is deleted (its key
    is gone or its content changed), a staged row whose text is not in the mirror is inserted.
    """
    mirror = mirror or read_mirror(conn, table)
    new_text = row_text(clean, table.column_names)
    fresh = ~pc.fill_null(pc.is_in(new_text, value_set=mirror.text), False).to_numpy(zero_copy_only=False)
    gone = ~pc.fill_null(pc.is_in(mirror.text, value_set=new_text), False).to_numpy(zero_copy_only=False)
    drop = mirror.rows.loc[gone, list(table.key)]
    if len(drop):
        _delete_rows(conn, table, drop, snapshots)
    return insert_sorted(conn, table, clean[fresh].reset_index(drop=True), False, on_chunk, snapshots=snapshots), len(
        drop
    )


def _delete_rows(conn: Connection, table: Table, keys: pd.DataFrame, snapshots: Snapshots | None = None) -> None:
    """Delete mirror rows by (possibly multi-column) key."""
    if snapshots is not None:
        snapshots.note(table.name, keys)
    kinds = [table.column(k).kind for k in table.key]
    conn.exec_driver_sql(f"DELETE FROM {_q(conn, table.name)} WHERE {key_in(conn, 'etl_del', table.key, keys, kinds)}")


def write_quarantine(conn: Connection, quarantine: pd.DataFrame, run_id: int | None) -> int:
    """Record rejected rows not recorded before (same table, key, reason and payload)."""
    if quarantine.empty:
        return 0
    q = quarantine[QUARANTINE_COLUMNS].drop_duplicates()
    p = param_mark(conn)
    tables = sorted(q["table_name"].unique())
    existing = []
    for t in tables:
        rows = conn.exec_driver_sql(
            f"SELECT source, table_name, row_key, reason, payload FROM quarantine WHERE table_name = {p}", (t,)
        ).fetchall()
        existing.extend(tuple(r) for r in rows)
    if existing:
        old = pd.DataFrame(existing, columns=QUARANTINE_COLUMNS, dtype=object)
        q = q.astype(object).merge(old.drop_duplicates(), how="left", indicator=True)
        q = q[q["_merge"] == "left_only"].drop(columns="_merge")
    if q.empty:
        return 0
    q = q.assign(run_id=run_id)
    return bulk_insert(conn, "quarantine", q[["run_id", *QUARANTINE_COLUMNS]])


def load_table(
    conn: Connection,
    table: Table,
    staged: Staged,
    run_id: int | None,
    on_chunk: Progress | None = None,
    mirror: Mirror | None = None,
    hashed: bool = True,
    *,
    snapshots: Snapshots | None = None,
) -> LoadResult:
    """Load one staged table (incremental or full compare) and record its quarantine.  ``mirror``: the
    table's mirror already read (full compare), so it is not read twice.  ``hashed=False``: a fingerprinted
    full-compare table, compared row by row without a table content hash.  ``snapshots``: the run's
    (``etl.warehouse.snapshots.Snapshots``), told every key deleted or inserted."""
    if table.has_updated_at:
        res = load_incremental(conn, table, staged, on_chunk, snapshots=snapshots)
    else:
        res = load_full(conn, table, staged, on_chunk, mirror, hashed, snapshots=snapshots)
    res.quarantined = write_quarantine(conn, staged.quarantine, run_id)
    if staged.retried_quarantine is not None:  # already recorded: adds nothing unless the reason changed
        res.quarantined += write_quarantine(conn, staged.retried_quarantine, run_id)
    return res


__all__ = [
    "KEY_SEP",
    "LoadResult",
    "load_table",
    "get_watermark",
    "WarehouseKeys",
    "write_quarantine",
    "insert_frame",
    "content_hash",
    "apply_kept",
    "append_piece",
    "indexes_deferred",
    "set_watermark",
    "forget_hash",
    "is_empty",
]
