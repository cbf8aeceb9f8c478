"""A few objects the rules cannot judge, so that the demo's 数据质量 page is not empty (issue 16).

Real source systems are messy; a demo whose data-quality queue is empty teaches a new user nothing about it.
``add_unjudgeable`` appends new rows only (no existing row changes, so every finding of the manifest stays
as it is), each one landing in ``v_data_quality`` with its kind and none of them a finding:

* ``onsite_no_times``: two incidents marked on-site, one without its end time, one without arrival and end
  (no window: not an on-site event; no officers, no case);
* ``clip_no_owner``: a clip of a spare device (never assigned) with no wearer;
* ``unknown_action_type``: an action of a code the rule configuration does not know (mediation);
* ``unknown_document_type``: a document of an unknown code (a situation note).

The rows are picked from the data with ``rng`` (deterministic: same seed, same bytes).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl.demo.common import NULL_T, compact_stamps

UNKNOWN_ACTION = "mediation"
UNKNOWN_DOCUMENT = "situation_note"


def _append(frame: pd.DataFrame, rows: list[dict]) -> pd.DataFrame:
    """``rows`` added at the end, every other column empty, dtypes of ``frame`` kept where they can be."""
    add = pd.DataFrame(rows, columns=frame.columns)
    for col in frame.columns:
        if col not in rows[0]:
            add[col] = NULL_T if frame[col].dtype == np.int64 else None
    out = pd.concat([frame, add.astype({c: frame[c].dtype for c in rows[0] if frame[c].dtype == np.int64})])
    return out.reset_index(drop=True)


def add_unjudgeable(rng: np.random.Generator, d: dict) -> dict[str, list[str]]:
    """Append the objects above to the frames of ``d`` (``etl.demo.build``'s dict, in place); returns their keys
    per kind (tests)."""
    keys: dict[str, list[str]] = {}
    inc = d["incidents"]
    base = inc[(inc["on_site"] == 1) & (inc["ended_at"] != NULL_T)].iloc[int(rng.integers(0, 50))]
    rows, taken = [], set(inc["incident_no"])
    for i, (arrived, ended) in enumerate([(True, False), (False, False)], start=1):
        no = f"{base['incident_no'][:-4]}{9990 + i}"
        while no in taken:  # a unit with that many incidents in the month: the next free number
            no = f"{no[:-4]}{(int(no[-4:]) + 2) % 10000:04d}"
        taken.add(no)
        rows.append(
            {
                "unit_code": base["unit_code"],
                "on_site": 1,
                "category": base["category"],
                "incident_no": no,
                "received_at": int(base["received_at"]) + 7 * 86400,
                "arrived_at": int(base["arrived_at"]) + 7 * 86400 if arrived else NULL_T,
                "ended_at": NULL_T if not ended else int(base["ended_at"]),
                "updated_at": int(base["updated_at"]) + 7 * 86400,
                "case_no": None,
            }
        )
        keys.setdefault("onsite_no_times", []).append(no)
    d["incidents"] = _append(inc, rows)

    clips, devices = d["clips"], d["devices"]
    assigned = set(d["device_assignments"]["device_sn"])
    spare = devices[(devices["status"] == "spare") & ~devices["device_sn"].isin(assigned)]
    if len(spare):
        dev = spare.iloc[int(rng.integers(0, len(spare)))]
        model = clips.iloc[int(rng.integers(0, len(clips) // 2))]
        start = int(model["started_at"])
        cid = f"V{len(clips) + 1:09d}"
        stamp = compact_stamps(np.array([start], dtype=np.int64))[0]
        row = {
            "started_at": start,
            "ended_at": start + 600,
            "device_sn": dev["device_sn"],
            "police_no": None,
            "explicit": False,
            "is_evidence": 0,
            "imported_at": start + 3600,
            "deleted_at": NULL_T,
            "clip_id": cid,
            "file_path": f"{dev['unit_code']}/{stamp[:6]}/{dev['device_sn']}_{stamp}_{cid[-6:]}.MP4",
            "updated_at": start + 3600,
            "size_bytes": int(model["size_bytes"]),
        }
        d["clips"] = _append(clips, [row])
        keys["clip_no_owner"] = [cid]

    acts, docs = d["case_actions"], d["case_documents"]
    act = acts.iloc[int(rng.integers(0, len(acts)))]
    aid = f"{act['case_no']}-X99"
    d["case_actions"] = d["actions"] = _append(
        acts,
        [
            {
                "action_id": aid,
                "case_no": act["case_no"],
                "action_type": UNKNOWN_ACTION,
                "started_at": int(act["started_at"]) + 3600,
                "ended_at": int(act["ended_at"]) + 3600,
                "police_no": act["police_no"],
                "updated_at": int(act["updated_at"]) + 3600,
            }
        ],
    )
    keys["unknown_action_type"] = [aid]
    doc = docs.iloc[int(rng.integers(0, len(docs)))]
    did = f"{doc['case_no']}-D99"
    d["case_documents"] = _append(
        docs,
        [
            {
                "doc_id": did,
                "case_no": doc["case_no"],
                "doc_type": UNKNOWN_DOCUMENT,
                "created_at": int(doc["created_at"]) + 600,
                "drafter_no": doc["drafter_no"],
                "updated_at": int(doc["updated_at"]) + 600,
            }
        ],
    )
    keys["unknown_document_type"] = [did]
    return keys
