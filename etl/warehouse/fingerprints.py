"""Rows of a full-compare table that are exactly what the last run loaded skip staging (table ``raw_fingerprint_parts``).

Tables without ``updated_at`` are read whole every run and compared with the
mirror (``etl.warehouse.load.load_full``).  At city scale four of them (incident
officers, case officers, access records, deliveries: 960k rows) cost 6.5 s of
a daily run, nearly all of it spent validating and comparing rows that did not
change.  So the load keeps, per such table, a 128-bit fingerprint of every raw
source row it loaded (two 64-bit pandas row hashes with different keys) and
the row's key.  The next run fingerprints the raw rows again: rows found among
the stored ones are in the mirror exactly as staged before and are not staged
again; only the others are staged and inserted, and the mirror rows whose raw
row is gone are deleted.  The result is the mirror the full compare would give.

The stored fingerprints are used only where that holds (otherwise the full
compare runs and stores them anew):
- same ``sources.yaml`` column mapping (sources hash) and the same ``VERSION``
  of this scheme and of staging;
- the mirror holds as many rows as there are fingerprints (a cheap check
  that nothing was written around the loader; like the content hash of the
  full compare, it trusts that rows were not edited in place);
- the table is not referenced by another table (their checks need every key)
  and is not ``device_assignments`` (clip ownership follows its whole content);
- no full-compare table it references changed in this run (a row valid before
  could now point at a removed key), while tables with ``updated_at`` never
  lose keys;
- no new row shares its key with a kept row, and no kept row occurs twice
  (the full compare would put such rows in quarantine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.sources.contract import Table

TABLE = "raw_fingerprint_parts"
PART_ROWS = 1_000_000  # rows of one stored part (~50 MB: 16 bytes of fingerprint and the key per row)
VERSION = "3"  # bump when staging changes what a raw row turns into, or this format
_KEYS = ("etl-raw-rows-a01", "etl-raw-rows-b02")  # 16-byte hash keys of the two row hashes
NOT_FOR = frozenset({"device_assignments"})


def of(raw: pd.DataFrame) -> np.ndarray:
    """One 128-bit fingerprint per raw row, as two uint64 columns (column values in order, null distinct
    from empty)."""
    h = np.empty((len(raw), 2), dtype=np.uint64)
    for i, key in enumerate(_KEYS):
        h[:, i] = pd.util.hash_pandas_object(raw, index=False, hash_key=key).to_numpy() if len(raw) else []
    return h


@dataclass
class Stored:
    """The fingerprints and keys of the rows the last run loaded."""

    prints: np.ndarray  # (n, 2) uint64
    keys: pd.DataFrame  # the table's key columns, aligned with ``prints``


def read(conn: Connection, table: Table, sources_hash: str) -> Stored | None:
    rows = conn.execute(
        sa.text(f"SELECT part, sources_hash, version, data FROM {TABLE} WHERE table_name = :t ORDER BY part"),
        {"t": table.name},
    ).fetchall()
    if (
        not rows
        or [r[0] for r in rows] != list(range(len(rows)))  # every part, once
        or any(r[1] != sources_hash or r[2] != VERSION or r[3] is None for r in rows)
    ):
        return None
    try:
        data = pa.concat_tables([pa.ipc.open_stream(pa.py_buffer(bytes(r[3]))).read_all() for r in rows])
        del rows
        prints = np.column_stack([data.column("h1").to_numpy(), data.column("h2").to_numpy()]).astype(np.uint64)
        keys = pd.DataFrame({k: pd.Series(data.column(k), dtype="str") for k in table.key})
    except (pa.ArrowException, KeyError, ValueError):  # unreadable: the full compare runs and stores them anew
        return None
    return Stored(prints=prints.reshape(-1, 2), keys=keys)


def write(conn: Connection, table: Table, sources_hash: str, prints: np.ndarray, keys: pd.DataFrame) -> None:
    """Replace the table's stored fingerprints: PART_ROWS rows a part (one part, empty, for no rows), each an
    Arrow IPC stream, so that the blob and the driver's copies of it stay small whatever the table's size."""
    forget(conn, table.name)
    for part, start in enumerate(range(0, max(len(prints), 1), PART_ROWS)):
        stop = min(start + PART_ROWS, len(prints))
        data = pa.table(
            {
                "h1": pa.array(prints[start:stop, 0]),
                "h2": pa.array(prints[start:stop, 1]),
                # from the keys' Arrow buffers: no Python string per key (tens of millions at province scale)
                **{k: pa.array(keys[k].iloc[start:stop], type=pa.large_string()) for k in table.key},
            }
        )
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, data.schema) as out:
            out.write_table(data)
        del data
        conn.execute(  # the stream's buffer as it is (a memoryview), not a copy of it as bytes
            sa.text(f"INSERT INTO {TABLE} (table_name, part, sources_hash, version, data) VALUES (:t, :p, :h, :v, :d)"),
            {"t": table.name, "p": part, "h": sources_hash, "v": VERSION, "d": memoryview(sink.getvalue())},
        )


def forget(conn: Connection, name: str) -> None:
    conn.execute(sa.text(f"DELETE FROM {TABLE} WHERE table_name = :t"), {"t": name})


def _found(prints: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Per row of ``prints``: is the same 128-bit fingerprint in ``among``?  Matched on the first half
    (sorted search), confirmed on the second.  Should two rows of ``among`` share a first half (a 2**-64
    chance), a row may be reported missing: it is then staged and loaded again, which is merely slower."""
    if not len(prints) or not len(among):
        return np.zeros(len(prints), dtype=bool)
    order = np.argsort(among[:, 0], kind="stable")
    first = among[order, 0]
    pos = np.minimum(np.searchsorted(first, prints[:, 0]), len(first) - 1)
    cand = order[pos]
    return (among[cand, 0] == prints[:, 0]) & (among[cand, 1] == prints[:, 1])


@dataclass
class Split:
    """A raw frame against the stored fingerprints."""

    prints: np.ndarray  # of every raw row
    kept: np.ndarray  # bool per raw row: loaded before exactly so
    kept_stored: np.ndarray  # bool per stored row: its raw row is still there
    stored: Stored


def split(raw: pd.DataFrame, stored: Stored) -> Split | None:
    """Which raw rows were loaded before exactly as they are; None when a kept row occurs twice."""
    prints = of(raw)
    kept = _found(prints, stored.prints)
    first = np.sort(prints[kept, 0])
    if bool((first[1:] == first[:-1]).any()):
        return None
    kept_stored = _found(stored.prints, prints)
    return Split(prints, kept, kept_stored, stored)
