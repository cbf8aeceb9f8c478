"""Rule identity: article and the object key that identifies one finding.

Used by the rules (to fill ``findings``), the demo (to write its manifest of
injected breaches) and the tests that compare the two (recall / precision).
"""

from __future__ import annotations

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
    "INTEGRITY-HASH": {"article": "第三十三条、第三十五条", "key": ("clip_id",)},
    "INTEGRITY-MISSING": {"article": "第三十五条", "key": ("clip_id",)},
    "INTEGRITY-DELETED": {"article": "第二十九条、第三十五条", "key": ("clip_id",)},
    "UPLOAD-LATE": {"article": "第五条", "key": ("clip_id",)},
    "WINDOW-CCTV": {"article": "第八条", "key": ("unit_code", "window_id")},
}

# Columns of the demo manifest (manifest.csv): rule_id then every key column.
MANIFEST_COLUMNS = ["rule_id"] + sorted({c for r in RULES.values() for c in r["key"]})


def object_key(rule_id: str, row: dict) -> tuple:
    """The identity of one finding of ``rule_id`` taken from a mapping of columns."""
    return (rule_id, *(None if row.get(c) in ("", None) else str(row.get(c)) for c in RULES[rule_id]["key"]))
