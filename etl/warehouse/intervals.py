"""Clip ownership and interval arithmetic: pure numpy over epoch seconds, no database.

Used by the load (``etl.warehouse.clip_runs`` keeps each officer's merged
runs) and by the rules (coverage, the supporting-clip check of the case
rules), which take these through ``etl.rules.base``.  Times are the rules'
epoch seconds (see ``etl.warehouse.db.to_epoch``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHIFT = np.int64(2**33)  # group multiplier: relative times stay below it (~270 years)
RUN_DTYPE = np.dtype("<i8")  # stored runs (clip_runs.starts / ends): little-endian int64 epoch seconds


def encode_runs(values: np.ndarray) -> bytes:
    """Run starts or ends as stored in ``clip_runs``."""
    return np.ascontiguousarray(values, dtype=RUN_DTYPE).tobytes()


def decode_runs(blob: bytes | memoryview | None) -> np.ndarray:
    """``encode_runs`` undone; an empty array for none."""
    return np.frombuffer(bytes(blob), dtype=RUN_DTYPE) if blob else np.empty(0, dtype=np.int64)


def own_shares(win_s: np.ndarray, win_e: np.ndarray, run_s: np.ndarray, run_e: np.ndarray) -> np.ndarray:
    """Per window [start, end) (epoch seconds), the share of it that one officer's sorted, disjoint runs cover
    (``clip_runs``): the coverage's ``own_s`` over the window's length, by the same arithmetic
    (``runs_in_windows``); NaN for a window of no length."""
    ws, we = np.asarray(win_s, dtype=np.int64), np.asarray(win_e, dtype=np.int64)
    rs, re_ = np.asarray(run_s, dtype=np.int64), np.asarray(run_e, dtype=np.int64)
    zero = np.zeros(len(ws), dtype=np.int64)
    q_idx, cs, ce = runs_in_windows(np.zeros(len(rs), dtype=np.int64), rs, re_, zero, ws, we)
    covered = np.bincount(q_idx, weights=(ce - cs).astype(np.float64), minlength=len(ws))[: len(ws)]
    window = (we - ws).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(window > 0, np.minimum(covered / np.where(window > 0, window, 1.0), 1.0), np.nan)


def blank(s: pd.Series) -> pd.Series:
    """True where a text column is null or only whitespace."""
    return s.isna() | (s.astype("string").str.strip().fillna("") == "")


# --- clip ownership --------------------------------------------------------------------


def resolve_owners(clips: pd.DataFrame, assignments: pd.DataFrame) -> pd.Series:
    """The officer each clip belongs to (rules.md "Events").

    ``police_no`` when set; otherwise the officer the device was assigned to at
    the clip's ``started_at``: the assignment with ``from_at <= started_at <
    to_at`` (``to_at`` null = still held).  Should a ledger hold overlapping
    assignments, the one with the latest ``from_at`` wins.  Clips with neither
    belong to nobody (NaN).
    """
    owner = clips["police_no"].astype(object).where(~blank(clips["police_no"]), None)
    need = owner.isna().to_numpy() & clips["started_at"].notna().to_numpy()
    if not need.any() or assignments.empty:
        return owner
    a = assignments.dropna(subset=["device_sn", "police_no", "from_at"])
    if a.empty:
        return owner
    codes, uniques = pd.factorize(pd.concat([a["device_sn"], clips.loc[need, "device_sn"]], ignore_index=True))
    a_dev = codes[: len(a)].astype(np.int64)
    c_dev = codes[len(a) :].astype(np.int64)
    base = min(a["from_at"].min(), clips.loc[need, "started_at"].min()) - 1
    a_key = a_dev * SHIFT + (a["from_at"].to_numpy() - base).astype(np.int64)
    order = np.argsort(a_key, kind="stable")
    a_key = a_key[order]
    a_dev_s = a_dev[order]
    a_to = a["to_at"].to_numpy()[order]
    a_officer = a["police_no"].to_numpy()[order]
    c_start = clips.loc[need, "started_at"].to_numpy()
    c_key = c_dev * SHIFT + (c_start - base).astype(np.int64)
    idx = np.searchsorted(a_key, c_key, side="right") - 1
    ok = idx >= 0
    safe = np.where(ok, idx, 0)
    ok &= a_dev_s[safe] == c_dev
    to = a_to[safe]
    ok &= np.isnan(to) | (c_start < to)
    resolved = np.where(ok, a_officer[safe], None)
    owner = owner.copy()
    owner.loc[need] = resolved
    return owner


# --- interval arithmetic (integer seconds, grouped) ------------------------------------


def merge_runs(group: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union of intervals per group: sorted, disjoint runs (touching intervals merge).

    All arrays int64; ``start``/``end`` relative seconds in [0, SHIFT); only
    positive-length intervals should be passed.
    """
    if len(group) == 0:
        e = np.empty(0, dtype=np.int64)
        return e, e, e
    order = np.argsort(group * SHIFT + start)  # one int64 key sorts faster than lexsort
    g, s, e = group[order], start[order], end[order]
    runmax = np.maximum.accumulate(g * SHIFT + e)
    new = np.ones(len(g), dtype=bool)
    new[1:] = (g[1:] != g[:-1]) | (g[1:] * SHIFT + s[1:] > runmax[:-1])
    first = np.flatnonzero(new)
    last = np.r_[first[1:] - 1, len(g) - 1]
    rg = g[first]
    return rg, s[first], runmax[last] - rg * SHIFT


def runs_in_windows(
    run_g: np.ndarray, run_s: np.ndarray, run_e: np.ndarray, q_g: np.ndarray, q_s: np.ndarray, q_e: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each query window (group, start, end): the parts of its group's runs inside it.

    Runs must come from ``merge_runs`` (sorted, disjoint).  Returns (query
    index, clipped start, clipped end) for every positive-length intersection.
    """
    ks = run_g * SHIFT + run_s
    ke = run_g * SHIFT + run_e
    lo = np.searchsorted(ke, q_g * SHIFT + q_s, side="right")  # first run ending after the window starts
    hi = np.searchsorted(ks, q_g * SHIFT + q_e, side="left")  # first run starting at/after the window end
    cnt = np.maximum(hi - lo, 0)
    total = int(cnt.sum())
    q_idx = np.repeat(np.arange(len(q_g), dtype=np.int64), cnt)
    offs = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    r_idx = np.repeat(lo, cnt) + offs
    cs = np.maximum(run_s[r_idx], q_s[q_idx])
    ce = np.minimum(run_e[r_idx], q_e[q_idx])
    keep = ce > cs
    return q_idx[keep], cs[keep], ce[keep]


def any_overlap(
    item_g: np.ndarray, item_s: np.ndarray, item_e: np.ndarray, q_g: np.ndarray, q_s: np.ndarray, q_e: np.ndarray
) -> np.ndarray:
    """Per query: does an item of the same group intersect [q_s, q_e] with positive length?"""
    if len(q_g) == 0:
        return np.zeros(0, dtype=bool)
    pos = item_e > item_s
    rg, rs, re = merge_runs(item_g[pos], item_s[pos], item_e[pos])
    q_idx, _, _ = runs_in_windows(rg, rs, re, q_g, q_s, q_e)
    out = np.zeros(len(q_g), dtype=bool)
    out[q_idx] = True
    return out


def union_gaps(
    n: int, q_idx: np.ndarray, cs: np.ndarray, ce: np.ndarray, win_s: np.ndarray, win_e: np.ndarray, tolerance: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Covered seconds per window and its gaps (maximal uncovered parts longer than ``tolerance``).

    ``q_idx, cs, ce``: covered pieces inside window ``q_idx`` (any order,
    overlapping allowed).  Returns (covered[n], gap window index, gap start,
    gap end), gaps ordered by window then time.
    """
    rg, rs, re = merge_runs(q_idx, cs, ce)
    covered = np.bincount(rg, weights=(re - rs).astype(np.float64), minlength=n)[:n] if n else np.zeros(0)
    if len(rg):
        first = np.ones(len(rg), dtype=bool)
        first[1:] = rg[1:] != rg[:-1]
        last = np.ones(len(rg), dtype=bool)
        last[:-1] = rg[1:] != rg[:-1]
        prev_end = np.r_[np.int64(0), re[:-1]]
        before_s = np.where(first, win_s[rg], prev_end)
        tail_g = rg[last]
        g_idx = np.r_[rg, tail_g]
        g_s = np.r_[before_s, re[last]]
        g_e = np.r_[rs, win_e[tail_g]]
    else:
        g_idx = g_s = g_e = np.empty(0, dtype=np.int64)
    empty = np.ones(n, dtype=bool)
    empty[rg] = False
    e_idx = np.flatnonzero(empty)
    g_idx = np.r_[g_idx, e_idx].astype(np.int64)
    g_s = np.r_[g_s, win_s[e_idx]].astype(np.int64)
    g_e = np.r_[g_e, win_e[e_idx]].astype(np.int64)
    keep = (g_e - g_s) > tolerance
    g_idx, g_s, g_e = g_idx[keep], g_s[keep], g_e[keep]
    order = np.lexsort((g_s, g_idx))
    return covered, g_idx[order], g_s[order], g_e[order]
