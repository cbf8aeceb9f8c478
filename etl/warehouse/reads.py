"""Mirror tables as the rules read them: datetime columns as epoch seconds (``etl.warehouse.db.to_epoch``).

``read_table`` is the one table reader of the rules (through their ``Ctx``)
and of the clip-run maintenance.  Whether a frame comes from the mirror or
from its snapshot (``etl.warehouse.snapshots``) is decided here, by the
``Snapshots`` of the run when one is given; the reader's callers do not care.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy.engine import Connection

from etl.sources.contract import TABLES
from etl.warehouse.db import epoch_sql, fetch
from etl.warehouse.snapshots import order_by

if TYPE_CHECKING:
    from etl.warehouse.snapshots import Snapshots


def select_list(conn: Connection, table: str, columns: list[str], alias: str | None = None) -> tuple[str, set[str]]:
    """'a.x, <epoch(a.t)> AS t, ...' for a mirror table's columns, and the set of datetime columns."""
    tab = TABLES[table]
    dt_cols = {c.name for c in tab.columns if c.kind == "dt" and c.name in columns}
    q = conn.dialect.identifier_preparer.quote
    pre = f"{alias}." if alias else ""
    parts = [
        f"{epoch_sql(conn.dialect.name, pre + q(c))} AS {q(c)}" if c in dt_cols else f"{pre}{q(c)}" for c in columns
    ]
    return ", ".join(parts), dt_cols


def read_table(
    conn: Connection,
    table: str,
    columns: list[str] | None = None,
    where: str = "",
    kept: bool | None = None,
    snapshots: Snapshots | None = None,
) -> pd.DataFrame:
    """A mirror table (or media_files) with datetime columns as float epoch seconds.

    ``kept``: may come from its snapshot (through ``snapshots``, the run's, when given); by default only a
    whole table (no ``where``).  Pass True only with a ``where`` on the row alone (not the evaluation date)
    and columns holding the key.
    """
    if table in TABLES:
        columns = columns or TABLES[table].column_names
        sel, dt_cols = select_list(conn, table, columns)
    else:  # media_files: no datetime column is needed by the rules
        assert columns is not None
        sel, dt_cols = ", ".join(columns), set()
    if snapshots is not None and (not where if kept is None else kept) and table in TABLES:  # large mirrors
        frame = snapshots.read(conn, table, columns, sel, dt_cols, where)
        if frame is not None:
            return frame
    sql = f"SELECT {sel} FROM {conn.dialect.identifier_preparer.quote(table)}" + (f" WHERE {where}" if where else "")
    return fetch(conn, sql + order_by(conn, table), columns, dt_cols)  # the order of a snapshot
