"""The audit log's hash chain: the hash of one row (``etl.warehouse.audit`` writes and verifies, the schema seals
rows of before the chain).  A low module of the warehouse package: imports nothing of it."""

from __future__ import annotations

import hashlib
import json

from etl.times import ts_text

GENESIS = "0" * 64  # prev_hash of the first row
CONTENT_COLUMNS = ("id", "at", "username", "role", "scope", "page", "action", "object", "reason")


def row_hash(row: dict, prev_hash: str) -> str:
    """SHA-256 (hex) of ``prev_hash`` and the row's content columns as canonical JSON (the time as text)."""
    values = []
    for c in CONTENT_COLUMNS:
        v = row.get(c)
        if c == "at":
            v = ts_text(v)
        elif c == "id" and v is not None:
            v = int(v)
        values.append(v)
    body = json.dumps([prev_hash, *values], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()
