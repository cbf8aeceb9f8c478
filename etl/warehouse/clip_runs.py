"""Each officer's recorded time as merged runs, kept up to date by the load (table ``clip_runs``).

``Maintenance`` also keeps ``clip_days`` (clips per device and day, see
``etl.warehouse.clip_days``) from the same before/after view of the loaded clips.

Coverage (rules.md "Events") and the supporting-clip check of the case rules
only need, per officer, the union of the clips they own.  Re-reading and
re-resolving every clip of the year in every run costs several seconds at city
scale (2.5M rows through the database driver), so the load keeps the union
itself: one row per officer with the disjoint, sorted runs (touching clips
merge) as two little-endian int64 arrays of epoch seconds (naive wall-clock,
as everywhere in the rules).

Ownership is rules.md's: ``police_no`` when set, otherwise the officer the
device was assigned to at ``started_at`` (``etl.warehouse.intervals.resolve_owners``).
Only positive-length clips count.

What a load can change, and what is refreshed then (``Maintenance``):
- new clips: merged into their owner's stored runs (the union of a union);
- changed clips whose owner or interval moved: their old and new owner's runs,
  recomputed from the mirror (a run cannot be split without the other clips);
  a changed clip whose owner and interval stayed (new import time, deletion
  mark) changes nothing;
- a changed ``device_assignments`` table: every officer on an assignment row
  of a device whose rows changed, before or after;
- the first load into an empty clip mirror: everything, from the staged frame
  in memory (no re-read);
- a warehouse whose ``clip_runs`` is empty while clips exist (built by an
  older version, or rows written around the loader, as some tests do): a full
  rebuild from the mirror, by the loader and by the readers alike.
Only the affected officers' rows are rewritten, inside the run's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.times import TS_FORMAT
from etl.warehouse import clip_days
from etl.warehouse.db import bulk_insert, is_empty, temp_keys
from etl.warehouse.distribution import with_county
from etl.warehouse.intervals import decode_runs, encode_runs, merge_runs, resolve_owners
from etl.warehouse.partitions import WHOLE, Partition
from etl.warehouse.reads import read_table

TABLE = "clip_runs"
FIRST_LOAD_BUCKET_ROWS = 2_000_000  # intervals merged at a time after a first load (memory, not the result)
encode, decode = encode_runs, decode_runs  # the stored layout (etl.warehouse.intervals, which readers may use)


def compute(clips: pd.DataFrame, assignments: pd.DataFrame, officers: Iterable[str] | None = None) -> pd.DataFrame:
    """Rows of ``clip_runs`` from clips (device_sn, police_no, started_at, ended_at as epoch seconds).

    ``officers``: keep only these owners (None: all).
    """
    owner = resolve_owners(clips, assignments)
    ok = owner.notna().to_numpy() & clips["started_at"].notna().to_numpy() & clips["ended_at"].notna().to_numpy()
    if officers is not None:
        ok &= owner.isin(list(officers)).to_numpy()
    start = clips["started_at"].to_numpy(dtype=np.float64)[ok]
    end = clips["ended_at"].to_numpy(dtype=np.float64)[ok]
    pos = end > start
    names = owner.to_numpy(dtype=object)[ok][pos]
    if not len(names):
        return pd.DataFrame(
            {
                "police_no": pd.Series(dtype=object),
                "runs": pd.Series(dtype="int64"),
                "starts": pd.Series(dtype=object),
                "ends": pd.Series(dtype=object),
            }
        )
    codes, uniques = pd.factorize(names, sort=True)
    rg, rs, re = merge_runs(codes.astype(np.int64), start[pos].astype(np.int64), end[pos].astype(np.int64))
    return _rows_of(np.asarray(uniques, dtype=object), rg, rs, re)


def _rows_of(names: np.ndarray, rg: np.ndarray, rs: np.ndarray, re: np.ndarray) -> pd.DataFrame:
    """``clip_runs`` rows from merged runs (group codes index ``names``)."""
    bounds = np.flatnonzero(np.r_[True, rg[1:] != rg[:-1], True]) if len(rg) else np.zeros(1, dtype=np.int64)
    lo, hi = bounds[:-1], bounds[1:]
    return pd.DataFrame(
        {
            "police_no": pd.Series(names[rg[lo]], dtype=object),
            "runs": (hi - lo).astype(np.int64),
            "starts": pd.Series([encode(rs[a:b]) for a, b in zip(lo, hi, strict=True)], dtype=object),
            "ends": pd.Series([encode(re[a:b]) for a, b in zip(lo, hi, strict=True)], dtype=object),
        }
    )


def _write(conn: Connection, rows: pd.DataFrame, officers: list[str] | None) -> None:
    _clear(conn, officers)
    _insert(conn, rows)


def _clear(conn: Connection, officers: list[str] | None) -> None:
    if officers is None:
        conn.exec_driver_sql(f"DELETE FROM {TABLE}")
    else:
        conn.exec_driver_sql(f"DELETE FROM {TABLE} WHERE police_no IN {temp_keys(conn, 'etl_officers', officers)}")


def _insert(conn: Connection, rows: pd.DataFrame) -> None:
    if len(rows):
        bulk_insert(conn, TABLE, with_county(conn, TABLE, rows[["police_no", "runs", "starts", "ends"]]), plain=True)


def _buckets(sizes: np.ndarray, target: int) -> list[tuple[int, int]]:
    """Consecutive ranges [lo, hi) of group codes whose ``sizes`` add up to at most ``target`` each (a group
    larger than ``target`` is a range of its own); none when there are no groups."""
    bounds, held = [0], 0
    for i, n in enumerate(sizes.tolist()):
        if held and held + n > target:
            bounds.append(i)
            held = 0
        held += n
    if len(sizes):
        bounds.append(len(sizes))
    return list(zip(bounds[:-1], bounds[1:], strict=False))


def _assignments(conn: Connection) -> pd.DataFrame:
    return read_table(conn, "device_assignments", ["device_sn", "police_no", "from_at", "to_at"])


def rebuild(conn: Connection, officers: Iterable[str] | None = None) -> int:
    """Recompute the runs of ``officers`` (None: everyone) from the clip mirror; returns the officers written."""
    asg = _assignments(conn)
    cols = ["device_sn", "police_no", "started_at", "ended_at"]
    if officers is None:
        clips = read_table(conn, "clips", cols)
    else:
        officers = sorted({str(o) for o in officers if o is not None})
        if not officers:
            return 0
        # their own clips, and the unowned clips of every device ever assigned to them
        devices = sorted(set(asg.loc[asg["police_no"].isin(officers), "device_sn"].dropna()))
        cond = (
            f"police_no IN {temp_keys(conn, 'etl_officers', officers)}"
            f" OR ((police_no IS NULL OR TRIM(police_no) = '')"
            f" AND device_sn IN {temp_keys(conn, 'etl_devices', devices)})"
        )
        clips = read_table(conn, "clips", cols, where=cond)
    rows = compute(clips, asg, officers)
    _write(conn, rows, officers)
    return len(rows)


def _epoch(text: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(text.astype(object), format=TS_FORMAT, errors="coerce")
    sec = ts.to_numpy(dtype="datetime64[s]").astype(np.int64).astype(np.float64)
    sec[ts.isna().to_numpy()] = np.nan
    return sec


def needs_full_rebuild(conn: Connection) -> bool:
    """Clips exist but no runs were ever built (older warehouse, or rows written around the loader)."""
    has_runs = conn.exec_driver_sql(f"SELECT 1 FROM {TABLE} LIMIT 1").first() is not None
    return not has_runs and conn.exec_driver_sql("SELECT 1 FROM clips LIMIT 1").first() is not None


@dataclass(frozen=True)
class Runs:
    """Every officer's runs: ``group[i]`` is the position in ``officers`` of run i; sorted by (group, start)."""

    officers: pd.Index
    group: np.ndarray  # int64
    start: np.ndarray  # int64 epoch seconds
    end: np.ndarray


def unpack(rows: Iterable[tuple]) -> Runs:
    """(police_no, starts, ends) rows, ``police_no`` ascending -> ``Runs``."""
    rows = list(rows)
    starts = [decode(r[1]) for r in rows]
    ends = [decode(r[2]) for r in rows]
    counts = np.array([len(x) for x in starts], dtype=np.int64)
    empty = np.empty(0, dtype=np.int64)
    return Runs(
        officers=pd.Index([r[0] for r in rows], dtype=object),
        group=np.repeat(np.arange(len(rows), dtype=np.int64), counts),
        start=np.concatenate(starts).astype(np.int64) if rows else empty,
        end=np.concatenate(ends).astype(np.int64) if rows else empty,
    )


def read(conn: Connection, partition: Partition = WHOLE) -> Runs:
    """All runs from the warehouse (rebuilt first when they were never built).

    For a partition (``etl.warehouse.partitions``): the runs of the officers its events and cases name
    (attending, acting, handling), whatever their own county: an officer may attend another county's event."""
    if needs_full_rebuild(conn):
        rebuild(conn)
    where = ""
    if not partition.whole:
        named = " UNION ".join(
            f"SELECT police_no FROM {t} WHERE {partition.where(conn, t)}"
            for t in ("incident_officers", "case_actions", "case_officers")
        )
        where = f" WHERE police_no IN ({named})"
    return unpack(conn.execute(sa.text(f"SELECT police_no, starts, ends FROM {TABLE}{where} ORDER BY police_no")))


def of_clips(clips: pd.DataFrame, assignments: pd.DataFrame) -> Runs:
    """``Runs`` straight from clip and assignment frames (epoch seconds), without the warehouse."""
    rows = compute(clips, assignments).sort_values("police_no")
    return unpack(rows[["police_no", "starts", "ends"]].itertuples(index=False, name=None))


class Maintenance:
    """Collects, table by table during a load, what changes clip ownership; ``refresh`` rewrites those runs.

    The pipeline calls ``before(conn, name, staged_clean)`` just before loading
    a table, ``after(conn, name, staged_clean, replaced_or_loaded, was_empty)``
    just after, and ``refresh(conn)`` once the clips are loaded.
    """

    def __init__(self) -> None:
        self.officers: set[str] = set()  # officers whose runs are recomputed from the clip mirror
        self.added: pd.DataFrame | None = None  # intervals of new clips to merge into their owners' runs
        self.day_pairs: list[pd.DataFrame] = []  # (device, day) pairs of clip_days to recount
        # a first load into the empty clip mirror, piece by piece (etl.sources.pieces): each piece's owned
        # intervals and its clip_days counts, in numbers (16 bytes a clip), combined by ``refresh``
        self.first_owner: list[np.ndarray] = []  # int32 owner ids (``_owner_ids``)
        self.first_start: list[np.ndarray] = []  # int64 epoch seconds
        self.first_length: list[np.ndarray] = []  # int32 seconds (a clip's end: start + length)
        self.first_days: list[clip_days.DayCounts] = []
        self._days_held = 0  # rows of first_days when they were last combined
        self._owner_ids: dict[str, int] = {}  # an owner's id: its order of first appearance
        self._device_ids: dict[str, int] = {}  # a device's code in first_days, likewise
        self._first_assignments: pd.DataFrame | None = None
        self._old_assignments: pd.DataFrame | None = None
        self._old_clips: pd.DataFrame | None = None

    def before(self, conn: Connection, name: str, clean: pd.DataFrame) -> None:
        if name == "device_assignments":
            self._old_assignments = _assignments(conn)
        elif name == "clips" and len(clean) and not is_empty(conn, "clips"):  # a first load replaces nothing
            self._old_clips = _previous_versions(conn, clean["clip_id"])

    def after(self, conn: Connection, name: str, clean: pd.DataFrame, changed: bool, was_empty: bool) -> None:
        if name == "device_assignments" and changed and self._old_assignments is not None:
            self.officers |= _assignment_officers(self._old_assignments, _assignments(conn))
        elif name == "clips" and len(clean):
            if was_empty:
                self._first_piece(conn, clean)
                return
            self._clips_changed(_assignments(conn), clean)
            self.day_pairs.append(clip_days.changed_pairs(clean, self._old_clips))

    def _first_piece(self, conn: Connection, clean: pd.DataFrame) -> None:
        """What a piece of the first clip load adds: its clips' owners and intervals (device_assignments load
        before clips, so ownership is final) and its per-day counts.  Kept compact: the owners as ids (``_owner_ids``),
        the times as integer seconds, not the piece's rows."""
        if self._first_assignments is None:
            self._first_assignments = _assignments(conn)
        started = _epoch(clean["started_at"])
        clips = pd.DataFrame(
            {
                "clip_id": clean["clip_id"].astype(object).to_numpy(),
                "device_sn": clean["device_sn"].astype(object).to_numpy(),
                "police_no": clean["police_no"].astype(object).where(clean["police_no"].notna(), None).to_numpy(),
                "started_at": started,
                "ended_at": _epoch(clean["ended_at"]),
            }
        )
        own = _owned_interval(clips, self._first_assignments)
        own = own[own["owner"].notna()]
        start = own["start"].to_numpy().astype(np.int64)
        self.first_owner.append(_ids(own["owner"], self._owner_ids))
        self.first_start.append(start)
        self.first_length.append((own["end"].to_numpy().astype(np.int64) - start).astype(np.int32))
        self.first_days.append(clip_days.day_counts(_ids(clean["device_sn"], self._device_ids), started))
        held = sum(len(d) for d in self.first_days)
        if held > max(2 * self._days_held, clip_days.WRITE_ROWS):  # pieces out of time order repeat device-days
            self.first_days = [clip_days.combine(self.first_days)]
            self._days_held = len(self.first_days[0])

    def _first_load(self, conn: Connection) -> int:
        """The runs and clip_days of a first clip load from what its pieces left (``_first_piece``).  The owners
        are merged and written a bucket at a time (owners in name order, about ``FIRST_LOAD_BUCKET_ROWS``
        intervals each), so the sort of the merge never holds every clip of the province at once."""
        days, self.first_days, self._days_held = self.first_days, [], 0
        clip_days.write_combined(conn, days, np.array(list(self._device_ids), dtype=object))  # empties days
        names = np.array(list(self._owner_ids), dtype=object)
        ids = _concat_emptying(self.first_owner, np.int32)  # a column at a time: never two copies of all three
        starts = _concat_emptying(self.first_start, np.int64)
        ends = starts + _concat_emptying(self.first_length, np.int32)
        self._first_assignments, self._owner_ids, self._device_ids = None, {}, {}
        _clear(conn, None)
        if not len(ids):
            return 0
        order = np.argsort(names, kind="stable")  # rows in name order, as a single merge writes them
        rank = np.empty(len(names), dtype=np.int32)
        rank[order] = np.arange(len(names), dtype=np.int32)
        codes, names = rank[ids], names[order]
        del ids
        written = 0
        for lo, hi in _buckets(np.bincount(codes, minlength=len(names)), FIRST_LOAD_BUCKET_ROWS):
            sel = np.flatnonzero((codes >= lo) & (codes < hi))
            rg, rs, re = merge_runs(codes[sel].astype(np.int64), starts[sel], ends[sel])
            del sel
            rows = _rows_of(names, rg, rs, re)
            _insert(conn, rows)
            written += len(rows)
        return written

    def _clips_changed(self, asg: pd.DataFrame, clean: pd.DataFrame) -> None:
        """New clips are merged into their owner's runs; a changed clip whose owner or interval moved makes
        its old and new owner's runs be recomputed (a run cannot be split without the other clips)."""
        new = pd.DataFrame(
            {
                "clip_id": clean["clip_id"].astype(object).to_numpy(),
                "device_sn": clean["device_sn"].astype(object).to_numpy(),
                "police_no": clean["police_no"].astype(object).where(clean["police_no"].notna(), None).to_numpy(),
                "started_at": _epoch(clean["started_at"]),
                "ended_at": _epoch(clean["ended_at"]),
            }
        )
        new = _owned_interval(new, asg)
        old = _owned_interval(self._old_clips, asg) if self._old_clips is not None else new.iloc[:0]
        both = new.merge(old, on="clip_id", how="left", suffixes=("", "_old"), indicator=True)
        fresh = both["_merge"] == "left_only"
        same = (
            (both["owner"].eq(both["owner_old"]) | (both["owner"].isna() & both["owner_old"].isna()))
            & both["start"].eq(both["start_old"])
            & both["end"].eq(both["end_old"])
        )
        moved = both[~fresh & ~same]
        self.officers |= set(moved["owner"].dropna()) | set(moved["owner_old"].dropna())
        add = both[fresh & both["owner"].notna()][["owner", "start", "end"]]
        self.added = add if self.added is None else pd.concat([self.added, add], ignore_index=True)

    def refresh(self, conn: Connection) -> int:
        """Rewrite the runs of everything collected so far; returns the officers written."""
        if self.first_start:
            self.officers, self.added, self.day_pairs = set(), None, []
            return self._first_load(conn)
        officers, added = self.officers, self.added
        day_pairs = pd.concat(self.day_pairs, ignore_index=True) if self.day_pairs else None
        self.officers, self.added, self.day_pairs = set(), None, []
        clip_days.refresh(conn, day_pairs)
        if needs_full_rebuild(conn):
            return rebuild(conn)
        n = rebuild(conn, officers) if officers else 0
        if added is not None:
            added = added[~added["owner"].isin(list(officers))]  # those were rebuilt from the mirror
            n += _merge_added(conn, added)
        return n


def _ids(values: pd.Series, ids: dict[str, int]) -> np.ndarray:
    """int32 ids of text ``values`` (-1: missing), new values numbered on from ``ids`` (which keeps them)."""
    codes, uniques = pd.factorize(values.astype(object).to_numpy(dtype=object))
    of_uniques = np.array([ids.setdefault(str(u), len(ids)) for u in uniques] + [-1], dtype=np.int32)
    return of_uniques[codes]  # code -1 (missing) takes the last slot


def _concat_emptying(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """The parts concatenated as ``dtype``; ``parts`` emptied (their memory free once the copy is made)."""
    out = np.concatenate(parts).astype(dtype, copy=False) if parts else np.empty(0, dtype=dtype)
    parts.clear()
    return out


def _owned_interval(clips: pd.DataFrame, asg: pd.DataFrame) -> pd.DataFrame:
    """clip_id, owner, start, end of clips as coverage counts them: owner None and times NaN when the clip
    adds nothing (no owner, no times, not positive)."""
    owner = resolve_owners(clips, asg)
    start = clips["started_at"].to_numpy(dtype=np.float64)
    end = clips["ended_at"].to_numpy(dtype=np.float64)
    counts = owner.notna().to_numpy() & (end > start)
    return pd.DataFrame(
        {
            "clip_id": clips["clip_id"].astype(object).to_numpy(),
            "owner": np.where(counts, owner.to_numpy(dtype=object), None),
            "start": np.where(counts, start, np.nan),
            "end": np.where(counts, end, np.nan),
        }
    )


def _merge_added(conn: Connection, added: pd.DataFrame) -> int:
    """Merge new intervals into their owners' stored runs (the union of a union is the union)."""
    if added.empty:
        return 0
    owners = sorted(set(added["owner"]))
    rows = conn.exec_driver_sql(
        f"SELECT police_no, starts, ends FROM {TABLE} WHERE police_no IN {temp_keys(conn, 'etl_officers', owners)}"
    ).fetchall()
    stored = unpack(sorted(rows, key=lambda r: r[0]))
    names = np.r_[np.asarray(stored.officers, dtype=object)[stored.group], added["owner"].to_numpy(dtype=object)]
    starts = np.r_[stored.start, added["start"].to_numpy(dtype=np.int64)]
    ends = np.r_[stored.end, added["end"].to_numpy(dtype=np.int64)]
    codes, uniques = pd.factorize(names, sort=True)
    rg, rs, re = merge_runs(codes.astype(np.int64), starts, ends)
    _write(conn, _rows_of(np.asarray(uniques, dtype=object), rg, rs, re), owners)
    return len(owners)


def _previous_versions(conn: Connection, keys: pd.Series) -> pd.DataFrame:
    """The stored versions of the clips about to be replaced (what their runs were built from)."""
    cols = ["clip_id", "device_sn", "police_no", "started_at", "ended_at"]
    keys_sql = temp_keys(conn, "etl_clip_keys", keys.astype(object).to_numpy())
    return read_table(conn, "clips", cols, where=f"clip_id IN {keys_sql}")


def _assignment_officers(old: pd.DataFrame, new: pd.DataFrame) -> set[str]:
    """Every officer on an assignment row of a device whose rows differ between ``old`` and ``new``."""
    cols = ["device_sn", "police_no", "from_at", "to_at"]
    diff = old[cols].drop_duplicates().merge(new[cols].drop_duplicates(), how="outer", indicator=True)
    devices = set(diff.loc[diff["_merge"] != "both", "device_sn"])
    both = pd.concat([old[cols], new[cols]], ignore_index=True)
    return set(both.loc[both["device_sn"].isin(devices), "police_no"].dropna().astype(str))
