"""Media integrity: is each clip's original file there, and is it the file that was imported?

``check_media`` stats every clip's original under the media root and re-hashes
(SHA-256, streamed) only files whose (size, mtime_ns) changed since the last
check, files not checked before, and clips whose catalogue row changed.  Results
live in ``media_files``; the INTEGRITY-* findings are computed from it by the
rules.  Only rows whose result changed are rewritten, so an unchanged media
root changes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from etl.warehouse.db import TS_FORMAT, bulk_insert, temp_keys

READ_BYTES = 1 << 20
COLUMNS = ["clip_id", "file_path", "present", "size_bytes", "mtime_ns", "sha256_actual", "checked_at"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(READ_BYTES):
            h.update(block)
    return h.hexdigest()


def _stat(root: Path, rel: str | None) -> tuple[int, int | None, int | None]:
    if not rel:
        return 0, None, None
    try:
        st = (root / rel).stat()
    except (OSError, ValueError):
        return 0, None, None
    if not os.path.isfile(root / rel):
        return 0, None, None
    return 1, st.st_size, st.st_mtime_ns


def check_media(
    conn: Connection, media_root: Path | None, changed: Collection[str] | None = None, now: datetime | None = None
) -> dict:
    """Refresh ``media_files`` for every clip; ``changed`` = clip ids whose row was (re)loaded this run.

    Returns ``{"checked": bool, "reason": str | None, "clips": n, "present": n, "missing": n,
    "hashed": n, "updated": n}``.
    """
    if media_root is None:
        return {"checked": False, "reason": "未声明媒体根目录（media_root），跳过完整性检查"}
    root = Path(media_root)
    if not root.is_dir():
        return {"checked": False, "reason": f"媒体根目录不存在（{root}），跳过完整性检查"}
    now_text = (now or datetime.now()).strftime(TS_FORMAT)
    clips = conn.exec_driver_sql("SELECT clip_id, file_path FROM clips").fetchall()
    prev = {
        r[0]: r[1:]
        for r in conn.exec_driver_sql(
            "SELECT clip_id, file_path, present, size_bytes, mtime_ns, sha256_actual FROM media_files"
        ).fetchall()
    }
    changed_set = set(changed or ())
    out_rows: list[tuple] = []
    hashed = present_n = 0
    for clip_id, rel in clips:
        present, size, mtime = _stat(root, rel)
        present_n += present
        old = prev.pop(clip_id, None)
        sha = None
        if present:
            same_file = old is not None and old[0] == rel and old[1] == 1 and old[2] == size and old[3] == mtime
            if same_file and clip_id not in changed_set and old[4]:
                sha = old[4]
            else:
                try:
                    sha = sha256_file(root / rel)
                    hashed += 1
                except OSError:
                    present, size, mtime = 0, None, None
        row = (rel, present, size, mtime, sha)
        if old is None or tuple(old) != row:
            out_rows.append((clip_id, *row, now_text))
    # rows for clips no longer catalogued, and changed rows, are rewritten
    stale = list(prev) + [r[0] for r in out_rows]
    if stale:
        conn.exec_driver_sql(f"DELETE FROM media_files WHERE clip_id IN {temp_keys(conn, 'etl_keys', stale)}")
    if out_rows:
        bulk_insert(conn, "media_files", pd.DataFrame(out_rows, columns=COLUMNS, dtype=object))
    return {
        "checked": True,
        "reason": None,
        "clips": len(clips),
        "present": present_n,
        "missing": len(clips) - present_n,
        "hashed": hashed,
        "updated": len(out_rows),
    }
