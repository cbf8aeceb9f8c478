"""Timestamps as the warehouse keeps them: text 'YYYY-MM-DD HH:MM:SS' on SQLite, timestamp elsewhere.

The one implementation of the timestamp idea: the format, a datetime as a
bound SQL parameter, any datetime value or text as display text, and epoch
seconds (the rules' time axis) as text; and the supervision record's clock (``today``, ``now``: ``$AVSUP_TODAY``).
"""

from __future__ import annotations

import os
from datetime import date, datetime

import numpy as np
import pandas as pd

from etl.errors import ConfigError

TS_FORMAT = "%Y-%m-%d %H:%M:%S"


def _dialect_name(target: object) -> str:
    """A dialect name from a name, an engine, a connection or anything with ``.dialect.name``."""
    return target if isinstance(target, str) else target.dialect.name  # type: ignore[attr-defined]


def ts_param(target: object, value: datetime) -> str | datetime:
    """A datetime as a bound parameter (whole seconds): text on SQLite (how it stores times), datetime elsewhere.

    ``target``: a dialect name ('sqlite', 'postgresql', ...), an engine or a connection.
    """
    value = pd.Timestamp(value).to_pydatetime().replace(microsecond=0)
    return value.strftime(TS_FORMAT) if _dialect_name(target) == "sqlite" else value


def ts_text(value: object) -> str | None:
    """'YYYY-MM-DD HH:MM:SS' of a datetime value or text (text is cut to 19 characters); None for null."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or value is pd.NaT:
        return None
    if isinstance(value, str):
        return value[:19]
    ts = pd.Timestamp(value)
    return None if pd.isna(ts) else ts.strftime(TS_FORMAT)


def epoch_text(sec: pd.Series | np.ndarray) -> pd.Series:
    """Epoch seconds -> 'YYYY-MM-DD HH:MM:SS' text (empty for null), vectorised."""
    ts = pd.to_datetime(pd.Series(sec, dtype="float64"), unit="s")
    return ts.dt.strftime(TS_FORMAT).fillna("")


# --- the clock of the supervision record (rectification deadlines, overdue) -----------------------------------
TODAY_ENV = "AVSUP_TODAY"


def today() -> date:
    """Today's date: ``$AVSUP_TODAY`` (YYYY-MM-DD) when set -- the clock tests and demos set -- else the system's.

    Overdue rectification notices are judged against this date, not the evaluation date.
    """
    text = os.environ.get(TODAY_ENV, "").strip()
    if not text:
        return date.today()
    try:
        return datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise ConfigError(f"环境变量 {TODAY_ENV} 的日期格式应为 YYYY-MM-DD：{text}") from None


def now() -> datetime:
    """The time of a supervision write (whole seconds): ``today()``'s date at the current time of day."""
    current = datetime.now().replace(microsecond=0)
    day = today()
    return current if day == current.date() else datetime.combine(day, current.time())
