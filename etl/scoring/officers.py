"""The officer's record (issue 18, "Per officer"; Art. 17, 35): tables ``finding_officers`` and ``officer_records``.

One step of the evaluation (``etl.evaluation``), after the findings: it takes the coverage (events and their
attending officers, with each officer's own covered seconds), the findings and the excused events' findings,
and the verdicts, and rebuilds

- ``finding_officers`` (view ``v_finding_officers``): who each finding names (``etl.rules.officers``), for
  every finding of ``findings`` and ``excused_findings``;
- ``officer_records`` (view ``v_officer_records``): per officer and period (year, quarter, month, by the
  event's ``arrived_at`` and the finding's month):
  events_attended         on-site events the officer attended (incident_officers);
  events_fully_recorded   of those, the events with status ``full`` (an excused event was not fully recorded);
  own_coverage            mean over those events (window longer than 0) of the share of the window the officer's
                          own clips cover (null without such an event);
  findings_<family>       findings naming the officer, by family (``etl.rules.officers.FAMILY``), counted as the
                          scores count them: exempted findings nowhere, an excused event's findings where its
                          excuse is not effective (``etl.warehouse.verdicts``).
  unit_code is the officer's current unit (``officers``); for a number unknown there, the unit of the last event
  they attended (else null).

The verdicts are those of the run: a verdict given later (``etl.supervision``, rescore without a run) reaches
``officer_records`` with the next run.  Set-based pandas, no Python per row.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules import base
from etl.rules import officers as named
from etl.warehouse.db import bulk_insert
from etl.warehouse.distribution import with_county

if TYPE_CHECKING:
    from etl.rules.coverage import Coverage
    from etl.warehouse.partitions import Partition
    from etl.warehouse.snapshots import Snapshots
    from etl.warehouse.verdicts import Verdicts

FAMILIES = ("av", "text", "access", "integrity")
RECORD_COLUMNS = [
    "period",
    "police_no",
    "unit_code",
    "events_attended",
    "events_fully_recorded",
    "own_coverage",
    *[f"findings_{f}" for f in FAMILIES],
]


def _month_no(sec: np.ndarray) -> np.ndarray:
    """Epoch seconds -> months since 1970-01 as int64 (-1 for NaN)."""
    sec = np.asarray(sec, dtype=np.float64)
    ok = ~np.isnan(sec)
    out = np.full(len(sec), -1, dtype=np.int64)
    out[ok] = np.floor(sec[ok]).astype("int64").astype("datetime64[s]").astype("datetime64[M]").astype(np.int64)
    return out


def _text_month_no(month: np.ndarray) -> np.ndarray:
    """'YYYY-MM' texts -> months since 1970-01 as int64 (-1 for anything else); parsed once per distinct text."""
    code, uniq = pd.factorize(pd.Series(month, dtype=object), use_na_sentinel=True)
    parsed = pd.to_datetime(pd.Series(uniq, dtype=object), format="%Y-%m", errors="coerce")
    nums = np.where(parsed.isna(), -1, parsed.to_numpy().astype("datetime64[M]").astype(np.int64))
    return np.where(code >= 0, np.r_[nums, -1][code], -1).astype(np.int64)


def records(
    events: pd.DataFrame,
    pairs: pd.DataFrame,
    counted: pd.DataFrame,
    links: pd.DataFrame,
    officers: pd.DataFrame,
) -> pd.DataFrame:
    """``officer_records`` from frames (pure): ``finish`` of ``parts``; the arguments: see ``parts``."""
    return finish([parts(events, pairs, counted, links, officers)], officers)


_SUMS = ["events_attended", "events_fully_recorded", "cov_sum", "cov_n", *[f"findings_{f}" for f in FAMILIES]]


def finish(partial: list[tuple[pd.DataFrame, pd.DataFrame]], officers: pd.DataFrame) -> pd.DataFrame:
    """``officer_records`` (RECORD_COLUMNS) from the ``parts`` of one or several partitions (an officer may
    attend events of several): their sums added, the mean coverage taken, the unit of an unknown number that of
    the last event they attended in any.  Pure."""
    sums = pd.concat([p[0] for p in partial], ignore_index=True)
    last = pd.concat([p[1] for p in partial], ignore_index=True)
    if len(partial) > 1:
        sums = sums.groupby(["period", "police_no"], as_index=False, sort=False)[_SUMS].sum()
    out = sums
    n = out["cov_n"].to_numpy(dtype=np.float64)
    out["own_coverage"] = np.where(n > 0, out["cov_sum"].to_numpy(dtype=np.float64) / np.where(n > 0, n, 1.0), np.nan)
    unit = officers.drop_duplicates("police_no").set_index("police_no")["unit_code"]
    u = unit.reindex(out["police_no"].to_numpy()).to_numpy(dtype=object)
    unknown = pd.isna(u)
    if unknown.any() and len(last):  # a number unknown to officers: the unit of the last event they attended
        last = last.iloc[np.lexsort((last["arrived_at"].to_numpy(dtype=np.float64),))]
        last = pd.Series(last["unit_code"].to_numpy(dtype=object), index=last["police_no"].to_numpy(dtype=object))
        last = last[~last.index.duplicated(keep="last")]
        u[unknown] = last.reindex(out["police_no"].to_numpy()[unknown]).to_numpy(dtype=object)
    out["unit_code"] = pd.Series(np.where(pd.isna(u), None, u), index=out.index, dtype=object)
    for col in ["events_attended", "events_fully_recorded", *[f"findings_{f}" for f in FAMILIES]]:
        out[col] = np.rint(out[col].to_numpy(dtype=np.float64)).astype(np.int64)
    out = out.sort_values(["period", "police_no"], kind="stable").reset_index(drop=True)
    return out[RECORD_COLUMNS]


def parts(
    events: pd.DataFrame,
    pairs: pd.DataFrame,
    counted: pd.DataFrame,
    links: pd.DataFrame,
    officers: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The officers' sums per period (period, police_no, _SUMS) and, for numbers unknown to ``officers``, each
    attended event's time and unit (police_no, arrived_at, unit_code), from frames (pure):

    events   incident_no, unit_code, arrived_at (epoch s), window_s, status   (the coverage's events)
    pairs    incident_no, police_no, own_s                                    (the coverage's pairs)
    counted  finding_key, rule_id, month                                      (the findings that count)
    links    finding_key, police_no                                           (finding_officers: one row a pair)
    officers police_no, unit_code

    Officers and months are integer codes throughout (city scale: ~650k pairs, ~160k links); text only for the
    output rows.
    """
    ev_pos = pd.Index(events["incident_no"].to_numpy(dtype=object)).get_indexer(pairs["incident_no"].to_numpy())
    keep = ev_pos >= 0
    ev_pos = ev_pos[keep]
    p_officer = pairs["police_no"].to_numpy(dtype=object)[keep]
    ev_month = _month_no(events["arrived_at"].to_numpy())
    win = events["window_s"].to_numpy(dtype=np.float64)[ev_pos]
    has_win = win > 0
    own = pairs["own_s"].to_numpy(dtype=np.float64)[keep]
    share = np.minimum(np.where(has_win, own / np.where(has_win, win, 1.0), 0.0), 1.0)
    full = events["status"].to_numpy(dtype=object)[ev_pos] == "full"

    fam = counted["rule_id"].map(named.FAMILY).to_numpy(dtype=object)
    c = counted[pd.notna(fam)].drop_duplicates("finding_key")
    c_pos = pd.Index(c["finding_key"].to_numpy(dtype=object)).get_indexer(links["finding_key"].to_numpy(dtype=object))
    l_ok = c_pos >= 0
    c_pos = c_pos[l_ok]
    l_officer = links["police_no"].to_numpy(dtype=object)[l_ok]
    c_family = c["rule_id"].map(named.FAMILY).to_numpy(dtype=object)[c_pos]
    c_month = _text_month_no(c["month"].to_numpy(dtype=object))[c_pos]

    code, uniq = pd.factorize(np.concatenate([p_officer, l_officer]), use_na_sentinel=True)
    months = np.concatenate([ev_month[ev_pos], c_month])
    n_att = len(p_officer)
    valid = (code >= 0) & (months >= 0)
    m0 = int(months[valid].min()) if valid.any() else 0
    n_m = int(months[valid].max()) - m0 + 1 if valid.any() else 1
    key = np.where(valid, code.astype(np.int64) * n_m + (months - m0), -1)

    cols = {
        "events_attended": np.r_[np.ones(n_att), np.zeros(len(l_officer))],
        "events_fully_recorded": np.r_[full.astype(np.float64), np.zeros(len(l_officer))],
        "cov_sum": np.r_[np.where(has_win, share, 0.0), np.zeros(len(l_officer))],
        "cov_n": np.r_[has_win.astype(np.float64), np.zeros(len(l_officer))],
    }
    for f in FAMILIES:
        cols[f"findings_{f}"] = np.r_[np.zeros(n_att), (c_family == f).astype(np.float64)]
    ukey, inv = np.unique(key[valid], return_inverse=True)
    sums = {k: np.bincount(inv, weights=v[valid], minlength=len(ukey)) for k, v in cols.items()}
    off_i, mon = ukey // n_m, ukey % n_m + m0
    month_text = mon.astype("datetime64[M]").astype(str)
    year = mon // 12 + 1970
    quarter = (mon % 12) // 3 + 1
    texts = [  # each month row counts in its month, its quarter and its year
        month_text,
        np.char.add(np.char.add(year.astype(str), "-Q"), quarter.astype(str)),
        year.astype(str),
    ]
    frames = [pd.DataFrame({"period": t.astype(object), "off_i": off_i, **sums}) for t in texts]
    allp = pd.concat(frames, ignore_index=True)
    out = allp.groupby(["period", "off_i"], as_index=False, sort=True).sum()
    out["police_no"] = np.asarray(uniq, dtype=object)[out["off_i"].to_numpy()]
    strangers = ~pd.Index(p_officer).isin(pd.Index(officers["police_no"].dropna().to_numpy(dtype=object)))
    last = pd.DataFrame(
        {
            "police_no": p_officer[strangers],
            "arrived_at": events["arrived_at"].to_numpy(dtype=np.float64)[ev_pos][strangers],
            "unit_code": events["unit_code"].to_numpy(dtype=object)[ev_pos][strangers],
        }
    )
    return out[["period", "police_no", *_SUMS]], last


def compute(
    conn: Connection,
    *,
    coverage: Coverage,
    findings: pd.DataFrame,
    excused: pd.DataFrame | None,
    verdicts: Verdicts,
    snapshots: Snapshots | None = None,
) -> dict[str, int]:
    """Rebuild ``finding_officers`` and ``officer_records`` inside the caller's transaction.

    ``coverage``: the coverage step's; ``findings``, ``excused``: the findings step's frames (``findings`` and
    ``excused_findings`` as written); ``verdicts``: the run's.  Returns row counts."""

    def read(table: str) -> pd.DataFrame:  # whole tables, as the rules read them: the same snapshots
        return base.read_table(conn, table, snapshots=snapshots)

    clear(conn)
    links, part = _links_and_parts(conn, read, coverage, findings, excused, verdicts)
    n = write_records(conn, finish([part], read("officers")))
    return {"finding_officers": links, "officer_records": n}


def compute_partition(
    conn: Connection,
    *,
    coverage: Coverage,
    findings: pd.DataFrame,
    excused: pd.DataFrame | None,
    verdicts: Verdicts,
    partition: Partition,
) -> tuple[int, tuple[pd.DataFrame, pd.DataFrame]]:
    """``compute`` for one partition of the evaluation (``etl.evaluation``): its findings' ``finding_officers``
    added (``clear`` empties the tables first), and its ``parts`` of the officers' records, which ``finish`` adds
    up over the partitions for ``write_records``.  Returns (links written, parts)."""

    def read(table: str) -> pd.DataFrame:  # the partition's case officers; the reference tables whole
        return base.read_table(conn, table, where=partition.restrict(conn, table))

    return _links_and_parts(conn, read, coverage, findings, excused, verdicts)


def link_rest(conn: Connection, findings: pd.DataFrame) -> int:
    """The ``finding_officers`` of the findings no partition holds (``etl.rules.findings.compute_rest``: the
    equipment, window and spot-check findings, which name an officer of their own or nobody, never an event's or
    a case's), added; returns the rows."""
    none = pd.DataFrame({c: pd.Series(dtype=object) for c in ("incident_no", "police_no", "case_no", "role")})
    events = pd.DataFrame({"incident_no": pd.Series(dtype=object), "arrived_at": pd.Series(dtype=np.float64)})
    links = named.frame(
        findings, events, none, none, base.read_table(conn, "device_assignments"), base.read_table(conn, "devices")
    )
    bulk_insert(conn, "finding_officers", with_county(conn, "finding_officers", links), plain=True)
    return len(links)


def clear(conn: Connection) -> None:
    """Empty the tables this step writes."""
    conn.exec_driver_sql("DELETE FROM finding_officers")
    conn.exec_driver_sql("DELETE FROM officer_records")


def _links_and_parts(
    conn: Connection,
    read: Callable[[str], pd.DataFrame],
    cov: Coverage,
    findings: pd.DataFrame,
    excused: pd.DataFrame | None,
    verdicts: Verdicts,
) -> tuple[int, tuple[pd.DataFrame, pd.DataFrame]]:
    """Add the ``finding_officers`` of ``findings`` and ``excused``; returns their number and the officers'
    ``parts``."""
    case_officers = read("case_officers")
    assignments = read("device_assignments")
    devices = read("devices")
    officers = read("officers")
    every = findings if excused is None or excused.empty else pd.concat([findings, excused], ignore_index=True)
    links = named.frame(every, cov.events, cov.pairs, case_officers, assignments, devices)
    counted = verdicts.counting(findings, excused)[["finding_key", "rule_id", "month"]]
    part = parts(cov.events, cov.pairs, counted, links, officers)
    bulk_insert(conn, "finding_officers", with_county(conn, "finding_officers", links), plain=True)
    return len(links), part


def write_records(conn: Connection, rec: pd.DataFrame) -> int:
    """Add ``rec`` (``finish``'s) to ``officer_records``, which ``clear`` emptied; returns its rows."""
    own = rec["own_coverage"].to_numpy()
    rec["own_coverage"] = pd.Series(np.where(np.isnan(own), None, own), index=rec.index, dtype=object)
    bulk_insert(conn, "officer_records", with_county(conn, "officer_records", rec), plain=True)
    return len(rec)
