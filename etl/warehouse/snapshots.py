"""The large mirrors as the rules read them, kept between runs (table ``rule_snapshots``).

The rules read several mirrors whole or by a row filter (cases, actions,
documents, case and incident officers, deliveries, on-site incidents,
case-tagged clips, deleted or late clips: 2.8M rows at city scale).  That
read costs ~7 s of a daily run on SQLite, ~5 s on PostgreSQL, while a day
changes a few thousand of those rows.  So each run keeps, per (table,
columns, row filter) read, the rows it read as one Arrow IPC blob.  The next
run takes the blob and reads from the mirror only the rows whose key the load
touched (deleted or inserted; ``Snapshots.note``), putting them back in the read's
order, so the frame is the one a whole read gives:
- SQLite: rowid order (each row's ``rowid`` is kept in the blob);
- PostgreSQL: key order in bytes (``order_by``: ``COLLATE "C"``, the order
  Arrow sorts text in); every read of these tables there is so ordered, kept
  or not (a plain read's order is the heap's, which is not stable).

A snapshot is used only where that holds (otherwise the table is read whole
and its snapshot written anew):
- SQLite or PostgreSQL warehouse, inside an ``etl run`` that tracks its load
  (a ``Snapshots`` object, created by the pipeline and handed to the load and
  to the rules' table reader);
- the snapshot was written by the last successful run (``etl_runs``): a run
  without rules, or anything else between, leaves it out of date;
- same ``VERSION`` and the same columns;
- the load of this run touched fewer than ``MAX_DELTA`` keys of the table;
- after the patch the snapshot holds as many rows as the mirror (a cheap
  check that nothing was written around the loader; like the fingerprints,
  it trusts that mirror rows are not edited in place by anything else);
- every value converts to Arrow and back unchanged in type (text, integers,
  null; a column mixing kinds, as SQLite allows, is read plainly every run).

Snapshots are written inside the run's transaction, so they commit or roll
back with the mirrors they describe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.sources.contract import TABLES
from etl.warehouse.db import fetch, key_in, param_mark

TABLE = "rule_snapshots"
VERSION = "1"  # bump when the stored form or the frame it gives changes
# Read whole by the rules and large at city scale; the small ones cost less to read than to keep.
KEPT = frozenset(
    {
        "cases",
        "case_actions",
        "case_documents",
        "case_officers",
        "deliveries",
        "incident_officers",
        "incidents",
        "clips",
    }
)
MAX_DELTA = 100_000  # touched keys beyond which reading the table whole is the cheaper way
_ROWID = "_rowid"
_SEP = "\x1f"


class Snapshots:
    """The snapshots of one ``etl run``, the one interface to them: created by the pipeline in the run's
    transaction (after its ``etl_runs`` row, before the load), told by the load which keys it touched
    (``note``), asked by the rules' table reader for frames (``read``), written at the end (``finish``).

    Without a ``Snapshots`` (a run without the pipeline: tests, benchmarks, the workbook) nothing is kept
    and every table is read from its mirror."""

    def __init__(self, conn: Connection, run_id: int) -> None:
        from etl.warehouse.schema import etl_runs

        self.run_id = run_id
        # snapshots written by the last successful run (or by this one) are up to date at the start
        self.trusted_run: int | None = conn.execute(
            sa.select(sa.func.max(etl_runs.c.run_id)).where((etl_runs.c.status == "ok") & (etl_runs.c.run_id != run_id))
        ).scalar()
        self.touched: dict[str, list[tuple[np.ndarray, ...]] | None] = {}  # None: too many
        # snapshots this run read or patched, written by ``finish``: a frame read whole (with _rowid) or a
        # patched table; a frame is kept as read (copy-on-write: callers' edits do not reach it)
        self.pending: dict[str, pd.DataFrame | pa.Table] = {}

    def note(self, table: str, keys: pd.DataFrame) -> None:
        """The load deleted or inserted the rows of ``table`` with these keys (key columns of the contract)."""
        if table not in KEPT or not len(keys):
            return
        seen = self.touched.get(table, [])
        if seen is None:
            return
        if sum(len(k[0]) for k in seen) + len(keys) > MAX_DELTA:
            self.touched[table] = None
            return
        seen.append(tuple(keys[c].astype(object).to_numpy() for c in TABLES[table].key))
        self.touched[table] = seen

    def read(
        self, conn: Connection, table: str, columns: list[str], select: str, dt_cols: set[str], where: str = ""
    ) -> pd.DataFrame | None:
        """The rows of mirror ``table`` matching ``where`` (``select``: its columns as the rules read them)
        through their snapshot; None where snapshots do not apply (the caller reads the mirror).

        ``where`` must depend on the row alone (not on the evaluation date or other tables), and the columns
        must include the table's key."""
        if table not in KEPT or conn.dialect.name not in ("sqlite", "postgresql"):
            return None
        if any(k not in columns for k in TABLES[table].key):  # cannot be patched (e.g. clip_runs' read of every clip)
            return None
        name = _name(table, columns, where)
        mine = self.pending.get(name)
        if mine is not None:  # read before in this run: as it was then (nothing writes mirrors after the load)
            return mine[columns] if isinstance(mine, pd.DataFrame) else _frame(mine, columns)
        cond = f" WHERE {where}" if where else ""
        q = conn.dialect.identifier_preparer.quote
        stored, current = self._stored(conn, name)
        touched = [] if current else self.touched.get(table, [])  # read before in this run: patched already
        if stored is not None and touched is not None:
            tab = _patch(conn, table, stored, touched, select, dt_cols, columns, where) if touched else stored
            if tab is not None and tab.num_rows == _count(conn, q(table) + cond):
                if touched:
                    self.pending[name] = tab
                elif not current:
                    p = param_mark(conn)
                    conn.exec_driver_sql(f"UPDATE {TABLE} SET run_id = {p} WHERE name = {p}", (self.run_id, name))
                return _frame(tab, columns)
        df = _fetch(conn, table, select, cond, columns, dt_cols)
        self.pending[name] = df.copy(deep=False)
        return df[columns]

    def finish(self, conn: Connection) -> None:
        """Write the snapshots this run read whole or patched, drop those it did not use (out of date from
        now on).  Written here, after the rules, so that their cost (Arrow conversion, compression) is not
        the rules' and each is written once."""
        for name, kept in self.pending.items():
            tab = _arrow(kept) if isinstance(kept, pd.DataFrame) else kept
            if tab is None:  # values Arrow would not give back as they are: no snapshot
                conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE name = {param_mark(conn)}", (name,))
            else:
                _write(conn, name, self.run_id, tab)
        self.pending.clear()
        if sa.inspect(conn).has_table(TABLE):
            conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE run_id <> {param_mark(conn)}", (self.run_id,))

    def _stored(self, conn: Connection, name: str) -> tuple[pa.Table | None, bool]:
        """The snapshot ``name`` where it may be used, and whether this run wrote it already (nothing to patch)."""
        p = param_mark(conn)
        row = conn.exec_driver_sql(f"SELECT run_id, version, data FROM {TABLE} WHERE name = {p}", (name,)).first()
        if row is None or row[0] not in (self.trusted_run, self.run_id) or row[1] != VERSION or row[2] is None:
            return None, False
        try:
            return pa.ipc.open_stream(pa.py_buffer(row[2])).read_all(), row[0] == self.run_id
        except (pa.ArrowInvalid, OSError):
            return None, False


def _name(table: str, columns: list[str], where: str) -> str:
    return f"{table}:{','.join(columns)}" + (f"|{where}" if where else "")


def order_by(conn: Connection, table: str) -> str:
    """' ORDER BY ...' of a kept table's rows on PostgreSQL: by key, in byte order (COLLATE "C", the order
    Arrow sorts text in), so that a whole read and a patched snapshot give the same frame.  '' on SQLite,
    whose reads keep rowid order (a snapshot adds ``_rowid``), and for other tables."""
    if conn.dialect.name == "sqlite" or table not in KEPT:
        return ""
    q = conn.dialect.identifier_preparer.quote
    return " ORDER BY " + ", ".join(f'{q(k)} COLLATE "C"' for k in TABLES[table].key)


def _fetch(conn: Connection, table: str, select: str, cond: str, columns: list[str], dt_cols: set[str]) -> pd.DataFrame:
    """The rows matching ``cond`` (' WHERE ...' or '') in a snapshot's order: ``etl.warehouse.db.fetch`` of
    ``columns``, led by ``_rowid`` on SQLite."""
    q = conn.dialect.identifier_preparer.quote
    if conn.dialect.name == "sqlite":
        sql = f"SELECT rowid, {select} FROM {q(table)}{cond} ORDER BY rowid"
        return fetch(conn, sql, [_ROWID, *columns], dt_cols)
    return fetch(conn, f"SELECT {select} FROM {q(table)}{cond}{order_by(conn, table)}", columns, dt_cols)


def _count(conn: Connection, rows: str) -> int:
    return int(conn.exec_driver_sql(f"SELECT COUNT(*) FROM {rows}").scalar())


def _write(conn: Connection, name: str, run_id: int, tab: pa.Table) -> None:
    sink = pa.BufferOutputStream()  # zstd: a tenth of the bytes, and cheaper to write than the plain form
    with pa.ipc.new_stream(sink, tab.schema, options=pa.ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(tab)
    p = param_mark(conn)
    conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE name = {p}", (name,))
    conn.exec_driver_sql(
        f"INSERT INTO {TABLE} (name, run_id, version, data) VALUES ({p}, {p}, {p}, {p})",
        (name, run_id, VERSION, sink.getvalue().to_pybytes()),
    )


def _key_text(cols: list) -> pa.Array:
    parts = [pc.cast(c if isinstance(c, pa.ChunkedArray | pa.Array) else pa.array(c), pa.large_string()) for c in cols]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(
        *parts, pa.scalar(_SEP, type=pa.large_string()), null_handling="replace", null_replacement=""
    )


def _patch(
    conn: Connection,
    table: str,
    stored: pa.Table,
    touched: list[tuple[np.ndarray, ...]],
    select: str,
    dt_cols: set[str],
    columns: list[str],
    where: str,
) -> pa.Table | None:
    """``stored`` without the rows whose key the load touched, plus those keys' rows now in the mirror."""
    key = list(TABLES[table].key)
    keys = pd.DataFrame({k: np.concatenate([t[i] for t in touched]) for i, k in enumerate(key)}).drop_duplicates()
    try:
        gone = pc.is_in(
            _key_text([stored.column(k) for k in key]),
            value_set=_key_text([keys[k].astype(str).to_numpy(dtype=object) for k in key]),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):  # a key of bytes, not text
        return None  # the caller reads the table whole
    kept = stored.filter(pc.invert(pc.fill_null(gone, False)))
    cond = " WHERE " + key_in(conn, "etl_snap", key, keys) + (f" AND ({where})" if where else "")
    added = _arrow(_fetch(conn, table, select, cond, columns, dt_cols), kept.schema)
    if added is None:
        return None
    both = pa.concat_tables([kept, added])
    if _ROWID not in both.column_names:  # PostgreSQL: in key order, as order_by reads it
        return both.take(pc.sort_indices(both, sort_keys=[(k, "ascending") for k in key]))
    if not len(added) or not len(kept) or pc.min(added.column(_ROWID)).as_py() > pc.max(kept.column(_ROWID)).as_py():
        return both  # new rows come last in rowid order (the usual case): no sort
    return both.take(pc.sort_indices(both.column(_ROWID)))


def _arrow(df: pd.DataFrame, schema: pa.Schema | None = None) -> pa.Table | None:
    """The frame as Arrow where ``_frame`` gives it back value for value and type for type (float64 columns;
    object columns of text, of integers or of bytes, with nulls); else None.  ``schema``: the types the
    columns must have (a column of nulls only takes any type)."""
    arrays = {}
    for name in df.columns:
        s = df[name]
        try:
            if s.dtype == np.float64:
                arr = pa.array(s.to_numpy(), type=pa.float64(), from_pandas=True)
            elif s.dtype == object:
                kind = pd.api.types.infer_dtype(s.to_numpy(), skipna=True)
                typ = {
                    "string": pa.large_string(),
                    "empty": pa.large_string(),
                    "integer": pa.int64(),
                    "bytes": pa.large_binary(),
                }.get(kind)
                if typ is None:
                    return None
                arr = pa.array(s.to_numpy(), type=typ)
            else:
                return None
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            return None
        if schema is not None and arr.type != schema.field(name).type:
            if arr.null_count != len(arr):
                return None
            arr = pa.nulls(len(arr), schema.field(name).type)
        arrays[name] = arr
    return pa.table(arrays)


def _frame(tab: pa.Table, columns: list[str]) -> pd.DataFrame:
    """The rules' frame from a snapshot: float64 datetimes, every other column plain Python objects."""
    out = {}
    for name in columns:
        col = tab.column(name)
        typ = col.type
        if pa.types.is_floating(typ):
            vals = col.to_numpy()
            out[name] = pd.Series(vals, dtype=np.float64)
            continue
        if pa.types.is_integer(typ):
            vals = pc.fill_null(col, 0).to_numpy().astype(object)
            if col.null_count:
                vals[pc.is_null(col).to_numpy(zero_copy_only=False)] = None
        else:
            vals = col.to_numpy(zero_copy_only=False)
            vals = np.ascontiguousarray(vals, dtype=object)
        out[name] = pd.Series(vals, dtype=object)
    return pd.DataFrame(out, columns=columns)
