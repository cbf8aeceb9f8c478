"""Shared plumbing of the rules: SQL literals, flags and text, times and durations as text; and, from the
warehouse package (``etl.warehouse.db``, ``reads``, ``intervals``), reading tables, clip ownership and
interval arithmetic, which the load needs too.

Times inside the rules are float seconds since 1970-01-01 of the naive local
wall-clock time (NaN for null): cheap to compare, exact for whole seconds, and
the same on SQLite (text) and PostgreSQL (timestamp) because the database does
the conversion (``unixepoch(...)``, or ``strftime('%s', ...)`` before SQLite 3.38 /
``EXTRACT(EPOCH ...)``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.times import TS_FORMAT as TS_FMT
from etl.times import epoch_text

# Reading the warehouse, clip ownership and interval arithmetic live in the warehouse package (the load needs
# them too); the rules take them from here.
from etl.warehouse.db import EPOCH as EPOCH
from etl.warehouse.db import epoch_sql as epoch_sql
from etl.warehouse.db import fetch as fetch
from etl.warehouse.db import to_epoch as to_epoch
from etl.warehouse.intervals import SHIFT as SHIFT
from etl.warehouse.intervals import any_overlap as any_overlap
from etl.warehouse.intervals import blank as blank
from etl.warehouse.intervals import merge_runs as merge_runs
from etl.warehouse.intervals import resolve_owners as resolve_owners
from etl.warehouse.intervals import runs_in_windows as runs_in_windows
from etl.warehouse.intervals import union_gaps as union_gaps
from etl.warehouse.reads import read_table as read_table
from etl.warehouse.reads import select_list as select_list


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


def fmt_ts(sec: pd.Series | np.ndarray) -> pd.Series:
    """Epoch seconds -> 'YYYY-MM-DD HH:MM:SS' text (empty for null); see ``etl.times.epoch_text``."""
    return epoch_text(sec)


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
