"""Staging: rename, cast and validate one source table (pure pandas, no database).

``stage`` takes the raw text frame of a reader and returns the rows that meet
the contract (canonical values, contract column order) and the rows that do
not, each with a Chinese reason and the raw row as JSON.  A row gets the first
reason that applies, in this order: the reader's (undecodable bytes, ragged CSV
line, bad XLSX cell: ``extract.REJECT_COLUMN``), missing key, missing required
field, unparseable value (time, date, boolean, integer), bad enumeration value,
oversized field, a media path outside the media root, end before start, dated
after the run (``not_after``), duplicate key with different content, unknown
reference.  Exact duplicates collapse silently.

Reason texts start with a fixed prefix (the constants below) that readers of
the quarantine match on, e.g. ``DUPLICATE_KEY_REASON`` for the data-quality
queue's duplicate keys.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from etl import times
from etl.errors import SourceError
from etl.sources.config import CONTRACT_DT_FORMAT
from etl.sources.contract import Table
from etl.sources.extract import REJECT_COLUMN

DATE_FORMAT = "%Y-%m-%d"
DUPLICATE_KEY_REASON = "主键重复且内容不同"
FUTURE_REASON = "时间晚于运行时间"
MEDIA_PATH_REASON = "文件路径不在媒体根目录内"
# Columns that may lie in the future: the planned end of a holding (领用至 / 任职至).
NOT_DATED = frozenset({"to_at"})
# Paths relative to the media root (sources.md): a row whose path leaves it is quarantined, never opened.
MEDIA_PATHS = {"clips": "file_path"}
QUARANTINE_COLUMNS = ["source", "table_name", "row_key", "reason", "payload"]
KEY_SEP = "|"

# What a reference points at, for the reason text ("未知单位 140499000000").
REF_NOUNS = {
    "org_units": "单位",
    "officers": "人员",
    "devices": "设备",
    "cases": "案件",
    "incidents": "警情",
    "case_actions": "执法活动",
    "case_documents": "文书",
    "clips": "视频",
}
_BOOL = {"0": 0, "1": 1, "false": 0, "true": 1}


@dataclass
class Staged:
    clean: pd.DataFrame  # contract columns; text for str/dt/date, Int64 for bool/int
    quarantine: pd.DataFrame  # QUARANTINE_COLUMNS
    read: int  # rows the source delivered
    unchanged: int = 0  # rows at or below the watermark (already loaded)
    collapsed: int = 0  # exact duplicates dropped
    watermark: tuple[str, str] | None = None  # max (updated_at, key) over clean rows
    retried_quarantine: pd.DataFrame | None = None  # earlier rejections retried and still rejected
    rows: np.ndarray | None = None  # position of each clean row in the raw frame (after the watermark drop)


# --- casting (Series in, Series out) ---------------------------------------------------------


def _dt_text(parsed: pd.Series) -> pd.Series:
    """Datetimes -> ``YYYY-MM-DD HH:MM:SS`` text (vectorised; NaT -> NA)."""
    arr = parsed.to_numpy(dtype="datetime64[s]")
    text = pd.Series(np.datetime_as_string(arr, unit="s"), index=parsed.index, dtype="str")
    return text.str.replace("T", " ", regex=False).where(parsed.notna())


_CANONICAL_DT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def parse_dt(s: pd.Series, fmt: str = CONTRACT_DT_FORMAT) -> pd.Series:
    """Text in ``fmt`` -> canonical ``YYYY-MM-DD HH:MM:SS`` text; NA where it cannot be parsed.

    Values already in the contract format are accepted too (XLSX datetime cells
    arrive that way whatever the declared format).  Parsing is strict (no
    2026-02-30); text that is already canonical is kept as it is (fast path).
    """
    s = times.to_local(s)  # a time with an explicit offset, in the bureau's time zone (config/settings.yaml)
    parsed = pd.to_datetime(s, format=fmt, errors="coerce")
    if fmt != CONTRACT_DT_FORMAT:
        rest = parsed.isna() & s.notna()
        if rest.any():
            parsed = parsed.where(~rest, pd.to_datetime(s.where(rest), format=CONTRACT_DT_FORMAT, errors="coerce"))
    ok = parsed.notna()
    canonical = ok & s.str.fullmatch(_CANONICAL_DT).fillna(False).astype(bool)
    if bool(canonical.all()):
        return s
    out = s.where(canonical)
    redo = ok & ~canonical
    if redo.any():
        out[redo] = _dt_text(parsed[redo])
    return out


def parse_date(s: pd.Series) -> pd.Series:
    """``YYYY-MM-DD`` (or a contract datetime at midnight) -> ``YYYY-MM-DD``; NA where invalid."""
    parsed = pd.to_datetime(s, format=DATE_FORMAT, errors="coerce")
    rest = parsed.isna() & s.notna()
    if rest.any():
        parsed = parsed.where(~rest, pd.to_datetime(s.where(rest), format=CONTRACT_DT_FORMAT, errors="coerce"))
    return _dt_text(parsed).str.slice(0, 10)


def parse_bool(s: pd.Series) -> pd.Series:
    """``0``/``1`` (also ``true``/``false``) -> Int64; NA for anything else."""
    low = s.str.lower()
    one = (low.isin(("1", "true"))).fillna(False).to_numpy(dtype=bool)
    zero = (low.isin(("0", "false"))).fillna(False).to_numpy(dtype=bool)
    return pd.Series(pd.arrays.IntegerArray(one.astype("int64"), ~(one | zero)), index=s.index, dtype="Int64")


def parse_int(s: pd.Series) -> pd.Series:
    plain = s.str.fullmatch(r"[+-]?\d{1,18}")
    if bool((plain | s.isna()).all()):  # fast path: plain integers only
        return pd.Series(pc.cast(pa.array(s, type=pa.large_string()), pa.int64()), index=s.index).astype("Int64")
    num = pd.to_numeric(s, errors="coerce", dtype_backend="numpy_nullable")
    if not pd.api.types.is_integer_dtype(num.dtype):
        num = num.where(num.notna() & (num % 1 == 0))
        num = num.astype("Float64").round().astype("Int64")
    return num.astype("Int64")


# --- helpers ---------------------------------------------------------------------------------


LARGE_SET_ROWS = 1_000_000  # a set larger than this (and 4 x the values tested) is looked up the other way round
SET_SLICE_ROWS = 8_000_000  # ... a slice of it at a time (each slice's positions: 32 MB)


def isin(s: pd.Series, values: Collection) -> pd.Series:
    """``s.isin(values)`` for text, in Arrow's C kernel (pandas' own path loops in Python for Arrow strings)."""
    if isinstance(values, (pd.Index, pd.Series)):  # from the Arrow buffers of text: no Python string per key
        values = pa.array(values.astype("str"), type=pa.large_string())
    elif not isinstance(values, pa.Array):
        values = pa.array(
            np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object),
            type=pa.large_string(),
        )
    arr = pa.array(s.astype("str"), type=pa.large_string(), from_pandas=True)
    if len(values) > LARGE_SET_ROWS and len(values) > 4 * len(arr):
        return pd.Series(_in_large_set(arr, values), index=s.index)
    hit = pc.fill_null(pc.is_in(arr, value_set=values, skip_nulls=True), False)
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=s.index)


def _in_large_set(arr: pa.Array, values: pa.Array) -> np.ndarray:
    """``is_in`` the other way round, for a large set and fewer values to test (a piece of the access records
    against a province's 23.5M clip ids): Arrow's ``is_in`` builds a hash table of the set on every call (1.4 GB
    and 6.3 s for 23.5M ids, measured), while the set's keys looked up among the piece's distinct values need a
    table of those only.  Exact: the same result as ``is_in``."""
    distinct = pc.unique(pc.drop_null(arr))
    hit = np.zeros(len(distinct) + 1, dtype=bool)  # the last slot: a null value, never found
    for start in range(0, len(values), SET_SLICE_ROWS):  # the positions found, a slice of the set at a time
        pos = pc.drop_null(pc.index_in(values.slice(start, SET_SLICE_ROWS), value_set=distinct))
        hit[pos.to_numpy()] = True
    where = pc.fill_null(pc.index_in(arr, value_set=distinct), len(distinct))
    return hit[where.to_numpy()]


class _Reasons:
    """The first reason per row, filled check by check."""

    def __init__(self, index: pd.Index):
        self.values = pd.Series(None, index=index, dtype=object)

    def open(self) -> pd.Series:
        return self.values.isna()

    def flag(self, mask: pd.Series, prefix: str, values: pd.Series | None = None, suffix: str = "") -> None:
        """Give ``prefix + value + suffix`` to rows where ``mask`` holds and no reason is set yet.

        The text is built for the hit rows only (most rows of a big table are fine).
        """
        hit = mask.fillna(False).astype(bool) & self.open()
        if hit.any():
            text = prefix if values is None else prefix + values[hit].astype("str") + suffix
            self.values[hit] = text


def row_keys(df: pd.DataFrame, key: tuple[str, ...]) -> pd.Series:
    """Each row's key as one text (columns joined by ``KEY_SEP``), as the quarantine records it."""
    out = df[key[0]].fillna("").astype("str")
    for col in key[1:]:
        out = out + KEY_SEP + df[col].fillna("").astype("str")
    return out


def compact(s: pd.Series) -> pd.Series:
    """A text column copied into memory of its own.  What a load in pieces keeps from one piece to the next
    (keys, clip times) must not point into the piece's buffers: those few live bytes would pin the heap pages
    of the whole piece, which the allocator then cannot give back (measured: 2.4M clip keys kept as slices of
    their pieces held 1.1 GB; copied, 60 MB)."""
    arr = pa.array(s, type=pa.large_string(), from_pandas=True)
    return pd.Series(arr.take(pa.array(np.arange(len(arr)))), index=s.index, dtype="str")


def source_keys(raw: pd.DataFrame, table: Table, columns: Mapping[str, str], label: str) -> pd.Series:
    """Each raw row's key as ``stage`` computes it (renamed, trimmed, joined by ``KEY_SEP``)."""
    txt = _select(raw, table, columns, label, trim=False)
    return row_keys(pd.DataFrame({c: _trim(txt[c]) for c in table.key}), table.key)


def at_or_below(txt: pd.DataFrame, table: Table, dt_format: str, watermark: tuple[str, str]) -> np.ndarray:
    """Per row (contract columns, not yet trimmed): at or below the watermark (updated_at, key), i.e. loaded by
    an earlier run.  Only the columns this test reads are trimmed."""
    wm_u, wm_k = watermark
    probe = pd.DataFrame({c: _trim(txt[c]) for c in dict.fromkeys([*table.key, "updated_at"])})
    upd = parse_dt(probe["updated_at"], dt_format)
    return (upd.notna() & ((upd < wm_u) | ((upd == wm_u) & (row_keys(probe, table.key) <= wm_k)))).to_numpy()


def drop_loaded(
    raw: pd.DataFrame, table: Table, columns: Mapping[str, str], label: str, dt_format: str, watermark: tuple[str, str]
) -> tuple[pd.DataFrame, int]:
    """The raw rows above the watermark, and how many were dropped (a later run's read of a large file: what
    ``stage`` drops first, dropped while reading)."""
    old = at_or_below(_select(raw, table, columns, label, trim=False), table, dt_format, watermark)
    dropped = int(old.sum())
    return (raw[~old].reset_index(drop=True) if dropped else raw), dropped


def _payload(raw: pd.DataFrame) -> list[str]:
    obj = raw.astype(object).where(raw.notna(), None)
    return [json.dumps(rec, ensure_ascii=False) for rec in obj.to_dict("records")]


def _select(raw: pd.DataFrame, table: Table, columns: Mapping[str, str], label: str, trim: bool = True) -> pd.DataFrame:
    """Rename source columns to contract names; drop extras; add missing optional columns as NA; trim
    (``trim=False``: the caller trims)."""
    targets = set(columns.values())
    keep = [c for c in raw.columns if c in columns or (c in table.column_names and c not in targets)]
    df = raw[keep].rename(columns=dict(columns))
    df = df.loc[:, ~df.columns.duplicated()]
    missing = [c for c in table.column_names if c not in df.columns]
    required_missing = [c for c in missing if table.column(c).required]
    if required_missing:
        back = {v: k for k, v in columns.items()}
        names = "、".join(f"{c}（源列 {back[c]}）" if c in back else c for c in required_missing)
        raise SourceError(f"数据源 {label} 缺少必需列 {names}")
    for c in missing:
        df[c] = pd.Series(pd.NA, index=df.index, dtype="str")
    df = df[table.column_names]
    for c in df.columns if trim else ():
        df[c] = _trim(df[c])
    return df


def _trim(s: pd.Series) -> pd.Series:
    """Strip surrounding whitespace; empty text becomes NA.  Returns ``s`` itself when nothing changes."""
    s = s.astype("str")
    arr = pa.array(s, type=pa.large_string())
    trimmed = pc.utf8_trim_whitespace(arr)
    if pc.all(pc.equal(arr, trimmed)).as_py() not in (True, None):
        s = pd.Series(trimmed, index=s.index, dtype="str")
    if pc.any(pc.equal(trimmed, "")).as_py():
        s = s.where(s != "")
    return s


_ESCAPE_HINT = r"^[/\\]|^[A-Za-z]:|\.\.|\x00"


def outside_root(paths: pd.Series) -> pd.Series:
    """Per path (relative to the media root): does it leave the root?  Absolute paths (``/x``, ``\\x``,
    ``C:x``), ``..`` components climbing above the root and NUL characters do; ``\\`` counts as a separator.
    Purely lexical (the few paths with a hint of it are looked at one by one): a symbolic link inside the
    root pointing out of it is the integrity check's business."""
    hint = paths.str.contains(_ESCAPE_HINT, regex=True).fillna(False).astype(bool)
    out = pd.Series(False, index=paths.index)
    for i, p in paths[hint].items():
        out[i] = _leaves(str(p))
    return out


def _leaves(path: str) -> bool:
    if "\x00" in path or path[:1] in ("/", "\\") or re.match(r"[A-Za-z]:", path):
        return True
    depth = 0
    for part in re.split(r"[/\\]", path):
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        elif part not in ("", "."):
            depth += 1
    return False


# --- the stage -------------------------------------------------------------------------------


def stage(
    raw: pd.DataFrame,
    table: Table,
    *,
    source: str,
    label: str | None = None,
    columns: Mapping[str, str] | None = None,
    dt_format: str = CONTRACT_DT_FORMAT,
    known: Mapping[str, Collection] | None = None,
    watermark: tuple[str, str] | None = None,
    loaded: Callable[[pd.DataFrame], np.ndarray] | None = None,
    not_after: str | None = None,
    dropped: int = 0,
) -> Staged:
    """Validate one table's raw rows against the contract.

    ``known`` maps a referenced table name to the keys already valid for it
    (a collection, or an object with ``contains(series) -> bool series``)
    (warehouse keys, plus this run's loaded keys); a reference to a table
    missing from ``known`` is not checked.  Self-references (``parent_code``)
    also accept the keys staged here.  ``watermark`` (updated_at, key) skips
    rows already loaded by an earlier run.  ``loaded(frame)`` tells which rows
    (in staged form) are already in the warehouse exactly as they are: their
    references to warehouse-backed keys were checked when they were loaded
    (such keys are never deleted), so only the other rows are looked up.  ``not_after`` (canonical
    ``YYYY-MM-DD HH:MM:SS``): rows with a time or date after it are quarantined (``FUTURE_REASON``; the run's
    wall-clock time plus the tolerance: they must not move the evaluation date).  Rows a reader marked in
    ``REJECT_COLUMN`` are quarantined with the reader's reason and never count as already loaded.
    """
    label = label or f"{source}.{table.name}"
    raw = raw.reset_index(drop=True)
    read = len(raw) + dropped  # ``dropped``: rows at or below the watermark the reader left out (drop_loaded)
    marked = None  # the reader's reason per row (undecodable bytes, ragged line, bad cell)
    if REJECT_COLUMN in raw.columns:
        marked = raw[REJECT_COLUMN].astype("str")
        raw = raw.drop(columns=REJECT_COLUMN)
    txt = _select(raw, table, columns or {}, label, trim=False)
    unchanged = dropped
    if watermark is not None and table.has_updated_at:
        # rows at or below the watermark were loaded by an earlier run: drop them before any other check
        # (a daily run of a whole CSV file validates its few new rows, not the year); only the columns this
        # test reads are trimmed first, the others once the old rows are gone
        old = at_or_below(txt, table, dt_format, watermark)
        if marked is not None:
            old &= marked.isna().to_numpy()
        if old.any():
            unchanged += int(old.sum())
            raw = raw[~old].reset_index(drop=True)
            txt = txt[~old].reset_index(drop=True)
            marked = marked[~old].reset_index(drop=True) if marked is not None else None
    for c in txt.columns:
        txt[c] = _trim(txt[c])
    typed = txt.copy(deep=False)
    reasons = _Reasons(txt.index)
    if marked is not None:
        reasons.flag(marked.notna(), "", marked)

    for col in table.key:
        reasons.flag(txt[col].isna(), f"缺少主键 {col}")
    for c in table.columns:
        if c.required and c.name not in table.key:
            reasons.flag(txt[c.name].isna(), f"缺少必填字段 {c.name}")

    for c in table.columns:
        s = txt[c.name]
        if c.kind == "dt":
            typed[c.name] = parse_dt(s, dt_format)
            reasons.flag(s.notna() & typed[c.name].isna(), f"时间无法解析 {c.name}=", s)
        elif c.kind == "date":
            typed[c.name] = parse_date(s)
            reasons.flag(s.notna() & typed[c.name].isna(), f"日期无法解析 {c.name}=", s)
        elif c.kind == "bool":
            typed[c.name] = parse_bool(s)
            reasons.flag(s.notna() & typed[c.name].isna(), f"布尔值无效 {c.name}=", s)
        elif c.kind == "int":
            typed[c.name] = parse_int(s)
            reasons.flag(s.notna() & typed[c.name].isna(), f"整数无效 {c.name}=", s)
    for c in table.columns:
        s = txt[c.name]
        if c.choices:
            reasons.flag(s.notna() & ~isin(s, c.choices), f"取值无效 {c.name}=", s)
        if c.max_len:
            n = s.str.len()
            reasons.flag(n > c.max_len, f"字段超长 {c.name}（", n, f" 字符，上限 {c.max_len}）")
    if table.name in MEDIA_PATHS:
        col = MEDIA_PATHS[table.name]
        reasons.flag(outside_root(txt[col]), f"{MEDIA_PATH_REASON} {col}=", txt[col])
    for start, end in table.order:
        bad = typed[start].notna() & typed[end].notna() & (typed[end] < typed[start])
        both = typed[end].fillna("") + f" < {start}=" + typed[start].fillna("") if bad.any() else None
        reasons.flag(bad, f"结束时间早于开始时间 {end}=", both)
    if not_after is not None:
        for c in table.columns:
            if c.kind in ("dt", "date") and c.name not in NOT_DATED:
                limit = not_after if c.kind == "dt" else not_after[:10]
                late = typed[c.name].notna() & (typed[c.name].astype("str") > limit)
                reasons.flag(late, f"{FUTURE_REASON} {c.name}=", typed[c.name])  # no cut-off: same text each run

    keys = row_keys(txt, table.key)
    keep = pd.Series(True, index=txt.index)

    # Duplicates: identical rows collapse; same key with different content -> all copies out.
    has_key = txt[list(table.key)].notna().all(axis=1)
    if marked is not None:  # a row the reader could not take whole: its key is not trustworthy
        has_key &= marked.isna()
    if pc.count_distinct(pa.array(keys[keep], type=pa.large_string())).as_py() == int(keep.sum()):
        dup_key = pd.Series(False, index=txt.index)  # fast path: every key distinct
    else:
        dup_key = keys.duplicated(keep=False) & has_key & keep
    collapsed = 0
    if dup_key.any():
        cand = txt[dup_key]
        exact = cand.duplicated(keep="first")
        collapsed = int(exact.sum())
        keep[exact[exact].index] = False
        still = keys.where(keep & has_key).duplicated(keep=False) & keep & has_key
        reasons.flag(still, f"{DUPLICATE_KEY_REASON} ", keys)

    seen = None  # rows already in the warehouse as they are (computed on first need)
    for col, ref_table, _ref_col in table.refs:
        if known is None or (ref_table not in known and ref_table != table.name):
            continue
        valid = known.get(ref_table, ())
        s = txt[col]
        own = txt[table.key[0]][reasons.open() & keep].dropna() if ref_table == table.name else None
        if hasattr(valid, "contains"):  # keys looked up where they live (the warehouse), only those asked for
            if seen is None:
                seen = loaded(typed[table.column_names]) if loaded is not None else np.zeros(len(s), dtype=bool)
            found = pd.Series(True, index=s.index)
            found[~seen] = valid.contains(s[~seen]).to_numpy()
            if own is not None:
                found |= isin(s, pd.Index(own.astype("str")))
        else:
            if own is not None:
                valid = pd.Index(list(valid), dtype="str").append(pd.Index(own.astype("str")))
            found = isin(s, valid)
        noun = REF_NOUNS.get(ref_table, ref_table)
        reasons.flag(keep & s.notna() & ~found, f"未知{noun} ", s)

    bad = reasons.values.notna() & keep
    good = reasons.values.isna() & keep
    clean = typed if good.all() else typed[good].reset_index(drop=True)
    for c in table.columns:
        if c.kind in ("str", "dt", "date"):
            clean[c.name] = clean[c.name].astype("str")
    quarantine = pd.DataFrame(
        {
            "source": source,
            "table_name": table.name,
            "row_key": keys[bad].to_numpy(dtype=object),
            "reason": reasons.values[bad].to_numpy(dtype=object),
            "payload": _payload(raw[bad.to_numpy()]) if bad.any() else [],
        },
        columns=QUARANTINE_COLUMNS,
    )

    wm = None
    if table.has_updated_at and len(clean):
        ck = row_keys(clean, table.key)
        top = clean["updated_at"].max()
        wm = (str(top), str(ck[clean["updated_at"] == top].max()))
    return Staged(
        clean=clean,
        quarantine=quarantine,
        read=read,
        unchanged=unchanged,
        collapsed=collapsed,
        watermark=wm,
        rows=np.flatnonzero(good.to_numpy()),
    )


def with_retried(staged: Staged, retried: Staged, table: Table) -> Staged:
    """``staged`` plus the rows of an earlier rejection that pass now (``retried``), unless this run also
    brought a newer version of the same key.  The still-rejected ones are recorded again (the quarantine
    keeps one record per key, reason and payload), but are not counted as this run's rejections."""
    clean = retried.clean
    if len(clean) and len(staged.clean):
        newer = set(row_keys(staged.clean, table.key))
        clean = clean[~row_keys(clean, table.key).isin(newer).to_numpy()]
    if len(clean):
        clean = (
            pd.concat([staged.clean, clean], ignore_index=True) if len(staged.clean) else clean.reset_index(drop=True)
        )
    else:
        clean = staged.clean
    return dataclasses.replace(staged, clean=clean, retried_quarantine=retried.quarantine, rows=None)
