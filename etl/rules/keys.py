"""Rule identity: article and the object key that identifies one finding.

Used by the rules (to fill ``findings``), the demo (to write its manifest of
injected breaches) and the tests that compare the two (recall / precision).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

RULES: dict[str, dict] = {
    # rule id: article(s) as shown to users, key columns of the finding
    "AV-NONE": {"article": "第五条、第十五条", "key": ("incident_no",)},
    "AV-GAP": {"article": "第十五条、第十七条", "key": ("incident_no",)},
    "AV-OFFICER": {"article": "第十七条", "key": ("incident_no", "police_no")},
    "DOC-MISSING": {"article": "第十三条", "key": ("action_id", "doc_type")},
    "AV-MEASURE": {"article": "第十四条、第十九条", "key": ("action_id",)},
    "DOC-SIGNATURE": {"article": "第十一条、第十二条、第十三条", "key": ("doc_id",)},
    "START-APPROVAL": {"article": "第九条", "key": ("case_no",)},
    "MAJOR-REVIEW": {"article": "第九条、第二十一条", "key": ("case_no",)},
    "NOT-FILED-NOTICE": {"article": "第十条", "key": ("case_no",)},
    "DECISION-RECORD": {"article": "第二十条、第二十一条", "key": ("doc_id",)},
    "RIGHTS-NOTICE": {"article": "第十二条", "key": ("case_no",)},
    "SIMPLE-PROCEDURE": {"article": "第二十二条", "key": ("case_no",)},
    "DELIVERY": {"article": "第二十三条", "key": ("doc_id",)},
    "PERFORMANCE-CHECK": {"article": "第二十四条", "key": ("case_no",)},
    "EQUIP-ADMIN": {"article": "第三十一条", "key": ("unit_code",)},
    "EQUIP-REPAIR": {"article": "第三十五条", "key": ("device_sn",)},
    "EQUIP-IDLE": {"article": "第五条", "key": ("device_sn", "month")},
    "EQUIP-LEDGER": {"article": "第三十一条", "key": ("unit_code", "device_sn")},
    "ACCESS-RECORD": {"article": "第三十二条", "key": ("log_id",)},
    "ACCESS-SCOPE": {"article": "第二十八条", "key": ("log_id",)},
    "ACCESS-EXTERNAL": {"article": "第三十三条", "key": ("log_id",)},
    "DELETE-UNLOGGED": {"article": "第三十二条、第三十三条", "key": ("clip_id",)},
    "INTEGRITY-HASH": {"article": "第三十三条、第三十五条", "key": ("clip_id",)},
    "INTEGRITY-MISSING": {"article": "第三十五条", "key": ("clip_id",)},
    "INTEGRITY-DELETED": {"article": "第二十九条、第三十五条", "key": ("clip_id",)},
    "UPLOAD-LATE": {"article": "第三十一条", "key": ("clip_id",)},  # rules.md v1.1: the 24-hour upload rule
    "WINDOW-CCTV": {"article": "第八条", "key": ("unit_code", "window_id")},
}

# Columns of the demo manifest (manifest.csv): rule_id then every key column.
MANIFEST_COLUMNS = ["rule_id"] + sorted({c for r in RULES.values() for c in r["key"]})


def object_key(rule_id: str, row: dict) -> tuple:
    """The identity of one finding of ``rule_id`` taken from a mapping of columns."""
    return (rule_id, *(None if row.get(c) in ("", None) else str(row.get(c)) for c in RULES[rule_id]["key"]))


# --- finding identity (shared/spec/supervision.md "Stable identity") ------------------------------------
# finding_key = the rule id and the rule's key columns joined by ":" (a missing value is empty text), e.g.
# "AV-NONE:J2026…", "AV-OFFICER:J2026…:P1001", "EQUIP-IDLE:SN1:2026-07"; AV-GAP adds the gap's start as
# YYYYMMDDTHHMMSS (an event has one finding per gap).  The key depends on the breach alone, never on the
# order of a run: the same breach keeps it across full and incremental runs, warehouses and databases.
KEY_SEPARATOR = ":"
_EXTRA_KEY = {"AV-GAP": "gap_start"}  # rule -> the time column added to its key columns


def _stamp(value: object) -> str:
    """A time as YYYYMMDDTHHMMSS ('' when missing); a datetime, a Timestamp, 'YYYY-MM-DD HH:MM:SS' text or epoch
    seconds."""
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return ""
    t = pd.Timestamp(value, unit="s") if isinstance(value, (int, float)) else pd.Timestamp(value)
    return "" if pd.isna(t) else t.strftime("%Y%m%dT%H%M%S")


def _part(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and value != value) else str(value)


def finding_key(rule_id: str, row: Mapping) -> str:
    """The finding_key of one finding of ``rule_id`` from a mapping of its columns (see above)."""
    parts = [rule_id, *(_part(row.get(c)) for c in RULES[rule_id]["key"])]
    if rule_id in _EXTRA_KEY:
        parts.append(_stamp(row.get(_EXTRA_KEY[rule_id])))
    return KEY_SEPARATOR.join(parts)


def finding_keys(frame: pd.DataFrame) -> pd.Series:
    """The finding_key of every row of a findings frame (``rule_id`` and the key columns; AV-GAP's
    ``gap_start`` as datetime64 or epoch seconds), vectorised per rule: no Python per row."""
    out = np.full(len(frame), "", dtype=object)
    if frame.empty:
        return pd.Series(out, index=frame.index, dtype=object)
    rule = frame["rule_id"].to_numpy(dtype=object)
    for rule_id in pd.unique(rule):
        if rule_id not in RULES:
            raise ValueError(f"unknown rule id {rule_id!r}: add it to etl.rules.keys.RULES")
        mask = rule == rule_id
        sub = frame.iloc[np.flatnonzero(mask)]
        key = pd.Series(np.full(len(sub), rule_id, dtype=object), index=sub.index)
        for c in RULES[rule_id]["key"]:
            v = sub[c] if c in sub.columns else pd.Series(None, index=sub.index, dtype=object)
            key = key + KEY_SEPARATOR + v.astype(object).where(v.notna(), "").astype(str)
        if rule_id in _EXTRA_KEY:
            t = sub[_EXTRA_KEY[rule_id]]
            if not pd.api.types.is_datetime64_any_dtype(t):
                num = pd.to_numeric(t, errors="coerce")
                t = pd.to_datetime(num, unit="s") if num.notna().sum() == t.notna().sum() else pd.to_datetime(t)
            key = key + KEY_SEPARATOR + t.dt.strftime("%Y%m%dT%H%M%S").fillna("")
        out[mask] = key.to_numpy(dtype=object)
    return pd.Series(out, index=frame.index, dtype=object)
