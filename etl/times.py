"""Timestamps as the warehouse keeps them: text 'YYYY-MM-DD HH:MM:SS' on SQLite, timestamp elsewhere.

The one implementation of the timestamp idea: the format, a datetime as a
bound SQL parameter, any datetime value or text as display text, and epoch
seconds (the rules' time axis) as text; and the supervision record's clock (``today``, ``now``: ``$AVSUP_TODAY``).
"""

from __future__ import annotations

import os
import re
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


# --- source times with an explicit offset -> the bureau's local time -------------------------------------------
# ISO 8601 text ending in an offset: "Z", "+08:00", "+0800", "+08", "-05:30" (a space before it is allowed)
_OFFSET = r"(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_WITH_OFFSET = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s?" + _OFFSET


def local_zone() -> str:
    """The bureau's time zone (``timezone`` of config/settings.yaml; Asia/Shanghai)."""
    from etl import settings

    return str(settings.load().get("timezone") or "Asia/Shanghai")


def to_local(value: object, tz: str | None = None) -> object:
    """Source time(s) in the bureau's local time ``tz`` (default ``local_zone()``), without an offset.

    A time with an explicit offset ("2026-07-01T00:30:00Z", "... +00:00", "+0800", "-05:00", or a tz-aware
    datetime) is converted to ``tz`` and written as text ``YYYY-MM-DD HH:MM:SS`` (a datetime stays a naive
    datetime).  A time without an offset is taken as already local and returned unchanged, as is anything that
    is not a time (staging then judges it).  Accepts a scalar or a pandas Series (vectorised; other values of
    the Series untouched).
    """
    zone = tz or local_zone()
    if isinstance(value, pd.Series):
        return _series_to_local(value, zone)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return value
    if isinstance(value, str):
        if not re.match(_WITH_OFFSET, value.strip()):
            return value
        ts = pd.Timestamp(_normalise_offset(value.strip()))
        return ts.tz_convert(zone).tz_localize(None).strftime(TS_FORMAT)
    if isinstance(value, datetime | pd.Timestamp):
        ts = pd.Timestamp(value)
        if ts.tzinfo is None:
            return value
        local = ts.tz_convert(zone).tz_localize(None)
        return local if isinstance(value, pd.Timestamp) else local.to_pydatetime()
    return value


def _normalise_offset(text: str) -> str:
    """'... +0800' / '... +08' / '...Z' -> a form pandas parses ('+08:00'); the space before an offset goes."""
    m = re.search(r"\s?([+-])(\d{2}):?(\d{2})?$", text)
    if m:
        return text[: m.start()] + f"{m.group(1)}{m.group(2)}:{m.group(3) or '00'}"
    return text[:-1] + "+00:00" if text[-1] in "Zz" else text


def _series_to_local(s: pd.Series, zone: str) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert(zone).dt.tz_localize(None)
    if s.dtype != object and not pd.api.types.is_string_dtype(s.dtype):
        return s
    if s.dtype != object and not bool(s.str.strip().str.match(_WITH_OFFSET).fillna(False).any()):
        return s  # text without any offset (the common case, vectorised: staging calls this for every time)
    text = s.where(s.map(lambda v: isinstance(v, str)))
    has = text.str.strip().str.match(_WITH_OFFSET).fillna(False).astype(bool)
    aware = s.map(lambda v: isinstance(v, datetime | pd.Timestamp) and pd.Timestamp(v).tzinfo is not None)
    if not has.any() and not aware.any():
        return s
    out = s.astype(object).copy()
    if has.any():
        norm = text[has].str.strip().map(_normalise_offset)
        parsed = pd.to_datetime(norm, utc=True, format="ISO8601", errors="coerce")
        local = parsed.dt.tz_convert(zone).dt.tz_localize(None).dt.strftime(TS_FORMAT)
        out[has] = local.where(parsed.notna(), s[has])
    if aware.any():
        out[aware] = [pd.Timestamp(v).tz_convert(zone).tz_localize(None).to_pydatetime() for v in s[aware]]
    return out.astype(s.dtype) if pd.api.types.is_string_dtype(s.dtype) and not aware.any() else out
