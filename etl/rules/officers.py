"""Who each finding names (issue 18, "Per officer"; Art. 17, 35): the rows of ``finding_officers``.

A finding keeps its ``finding_key`` (the stable identity of the supervision record: one finding per breach,
never one per officer); the officers it names are rows of their own, ``finding_officers(finding_key, police_no,
cause, basis)``:

- AV-NONE and AV-GAP name every attending officer of the event (``basis`` ``attended``), AV-OFFICER the officer
  concerned (``officer``); each with a cause hint of their own, read as the event's hint is
  (``etl.rules.coverage``) but per officer: ``no_device`` (held no device at arrival), ``device_repair`` (every
  device they held then was in repair or lost since no later than arrival), otherwise ``not_recorded``;
- any other finding with a ``police_no`` names that officer (``officer``; no cause): the action's officer
  (DOC-MISSING, AV-MEASURE), the user of an access record, the wearer of a clip, the person who deleted
  (INTEGRITY-DELETED), the holder of an idle device;
- a finding of a case without a ``police_no`` (START-APPROVAL, DOC-SIGNATURE, DELIVERY ...) names the case's
  handlers (``case_officers`` with role ``handler``, 承办人: ``basis`` ``case_handler``).

DELETE-UNLOGGED, EQUIP-ADMIN, EQUIP-REPAIR, EQUIP-LEDGER, WINDOW-CCTV and SPOT-CHECK name nobody.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# rule families of the officer's record (v_officer_records: findings_av, findings_text, findings_access,
# findings_integrity); rules of no family (equipment, windows, spot-checks) are not counted per officer
FAMILY: dict[str, str] = {
    **{r: "av" for r in ("AV-NONE", "AV-GAP", "AV-OFFICER", "AV-MEASURE")},
    **{
        r: "text"
        for r in (
            "DOC-MISSING",
            "DOC-SIGNATURE",
            "START-APPROVAL",
            "MAJOR-REVIEW",
            "NOT-FILED-NOTICE",
            "DECISION-RECORD",
            "RIGHTS-NOTICE",
            "SIMPLE-PROCEDURE",
            "DELIVERY",
            "PERFORMANCE-CHECK",
        )
    },
    **{r: "access" for r in ("ACCESS-RECORD", "ACCESS-SCOPE", "ACCESS-EXTERNAL", "DELETE-UNLOGGED")},
    **{r: "integrity" for r in ("INTEGRITY-HASH", "INTEGRITY-MISSING", "INTEGRITY-DELETED", "UPLOAD-LATE")},
}
ATTENDED_RULES = ("AV-NONE", "AV-GAP")
COLUMNS = ["finding_key", "police_no", "cause", "basis"]


def officer_causes(
    pairs: pd.DataFrame, arrived_at: np.ndarray, assignments: pd.DataFrame, devices: pd.DataFrame
) -> np.ndarray:
    """Per (event, officer) row of ``pairs`` (police_no) with the event's ``arrived_at`` (epoch seconds): the
    officer's own cause hint, no_device / device_repair / not_recorded."""
    n = len(pairs)
    cause = np.full(n, "no_device", dtype=object)
    if not n:
        return cause
    x = pd.DataFrame({"i": np.arange(n), "police_no": pairs["police_no"].to_numpy(dtype=object), "t": arrived_at})
    held = x.merge(
        assignments[["device_sn", "police_no", "from_at", "to_at"]].astype({"police_no": object}), on="police_no"
    )
    held = held[(held["from_at"] <= held["t"]) & (held["to_at"].isna() | (held["t"] < held["to_at"]))]
    held = held.merge(devices[["device_sn", "status", "status_since"]], on="device_sn", how="left")
    held["broken"] = held["status"].isin(["repair", "lost"]) & (held["status_since"] <= held["t"])
    per = held.groupby("i")["broken"].all()
    cause[per.index.to_numpy()] = np.where(per.to_numpy(dtype=bool), "device_repair", "not_recorded")
    return cause


def frame(
    findings: pd.DataFrame,
    events: pd.DataFrame,
    pairs: pd.DataFrame,
    case_officers: pd.DataFrame,
    assignments: pd.DataFrame,
    devices: pd.DataFrame,
) -> pd.DataFrame:
    """The ``finding_officers`` rows of ``findings`` (finding_key, rule_id, incident_no, case_no, police_no).

    ``events``: the coverage's events (incident_no, arrived_at as epoch seconds); ``pairs``: its (event,
    attending officer) pairs; ``case_officers``: the mirror (case_no, police_no, role); ``assignments``,
    ``devices``: the mirrors (times as epoch seconds).  Pure: no database.
    """
    f = findings[["finding_key", "rule_id", "incident_no", "case_no", "police_no"]]
    rule = f["rule_id"].to_numpy(dtype=object)
    parts = []

    att = f[np.isin(rule, ATTENDED_RULES)][["finding_key", "incident_no"]]
    # only the pairs of those events take part in the join (city scale: ~650k pairs, a few thousand events)
    mine = pairs["incident_no"].isin(pd.unique(att["incident_no"].to_numpy(dtype=object))).to_numpy()
    few = pairs[mine]
    few = pd.DataFrame(
        {"incident_no": few["incident_no"].to_numpy(dtype=object), "police_no": few["police_no"].to_numpy(dtype=object)}
    )
    att = att.astype({"incident_no": object}).merge(few, on="incident_no")
    parts.append(att.assign(basis="attended")[["finding_key", "incident_no", "police_no", "basis"]])
    off = f[(rule == "AV-OFFICER") & f["police_no"].notna().to_numpy()]
    parts.append(off.assign(basis="officer")[["finding_key", "incident_no", "police_no", "basis"]])
    av = pd.concat(parts, ignore_index=True)
    arrived = pd.Series(events["arrived_at"].to_numpy(dtype=np.float64), index=events["incident_no"].to_numpy())
    av_t = arrived.reindex(av["incident_no"].to_numpy()).to_numpy()
    av["cause"] = officer_causes(av, av_t, assignments, devices)

    other = ~np.isin(rule, [*ATTENDED_RULES, "AV-OFFICER"])
    named = f[other & f["police_no"].notna().to_numpy()].assign(basis="officer", cause=None)
    case_level = f[other & f["police_no"].isna().to_numpy() & f["case_no"].notna().to_numpy()]
    handlers = case_officers[case_officers["role"] == "handler"][["case_no", "police_no"]].astype(object)
    by_case = (
        case_level[["finding_key", "case_no"]].merge(handlers, on="case_no").assign(basis="case_handler", cause=None)
    )

    out = pd.concat([av[COLUMNS], named[COLUMNS], by_case[COLUMNS]], ignore_index=True)
    out = out.drop_duplicates(["finding_key", "police_no"])
    return out.reset_index(drop=True).astype(object)
