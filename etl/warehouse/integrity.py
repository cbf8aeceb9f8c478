"""Media integrity: is each clip's original file there, and is it the file that was imported?

``check_media`` stats every clip's original under the media root and re-hashes
(SHA-256, streamed) only files whose (size, mtime_ns) changed since the last
check, files not checked before, and clips whose catalogue row changed.  Results
live in ``media_files``; the INTEGRITY-* findings are computed from it by the
rules.  Only rows whose result changed are rewritten, so an unchanged media
root changes nothing.

A check that cannot tell anything is not performed, and says why, rather than
reporting every clip fine or every clip lost: no media root declared, the root
missing, the root empty (no file anywhere below it: an empty mount), or not one
catalogued file found under it (a wrong mount).  ``media_files`` then stays as
the last check left it, and the rules skip the INTEGRITY findings.

A catalogued path that leaves the media root (absolute, ``..``, or a symbolic
link pointing out of it) is never opened: the clip counts as not present and
the path is recorded in the quarantine with ``MEDIA_PATH_REASON``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Collection
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import Connection

from etl.sources.staging import MEDIA_PATH_REASON, QUARANTINE_COLUMNS, outside_root
from etl.warehouse.db import TS_FORMAT, bulk_insert, temp_keys
from etl.warehouse.distribution import with_county
from etl.warehouse.load import write_quarantine

READ_BYTES = 1 << 20
COLUMNS = ["clip_id", "file_path", "present", "size_bytes", "mtime_ns", "sha256_actual", "checked_at"]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(READ_BYTES):
            h.update(block)
    return h.hexdigest()


def _has_file(root: Path) -> bool:
    """Is there any regular file below ``root`` (stops at the first one)?"""
    return any(files for _dir, _subdirs, files in os.walk(root))


class _Resolver:
    """Where a catalogued path really is: inside the (real) media root or not, following symbolic links.

    The directories' real paths are cached (clips share a few thousand folders), so a clip costs one
    ``lstat``; only a file that is itself a link is resolved."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.real_root = os.path.realpath(root)
        self.prefix = self.real_root.rstrip(os.sep) + os.sep
        self.dirs: dict[str, bool] = {}

    def _inside(self, real: str) -> bool:
        return real == self.real_root or real.startswith(self.prefix)

    def stat(self, rel: str) -> tuple[int, int | None, int | None, str | None]:
        """(present, size, mtime_ns, where it leads when outside the root else None)."""
        path = os.path.join(self.root, rel)
        parent = os.path.dirname(path)
        inside = self.dirs.get(parent)
        if inside is None:
            inside = self.dirs[parent] = self._inside(os.path.realpath(parent))
        if not inside:
            return 0, None, None, os.path.realpath(parent)
        try:
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                real = os.path.realpath(path)
                if not self._inside(real):
                    return 0, None, None, real
                st = os.stat(path)
        except (OSError, ValueError):
            return 0, None, None, None
        if not stat.S_ISREG(st.st_mode):
            return 0, None, None, None
        return 1, st.st_size, st.st_mtime_ns, None


def _not_checked(reason: str, clips: int | None = None) -> dict:
    return {"checked": False, "reason": reason, "clips": clips}


def check_media(
    conn: Connection,
    media_root: Path | None,
    changed: Collection[str] | None = None,
    now: datetime | None = None,
    *,
    run_id: int | None = None,
    source: str = "media",
) -> dict:
    """Refresh ``media_files`` for every clip; ``changed`` = clip ids whose row was (re)loaded this run.

    Returns ``{"checked": bool, "reason": str | None, "clips": n, "present": n, "missing": n,
    "hashed": n, "updated": n, "outside": n}``; not checked: ``{"checked": False, "reason": why,
    "clips": n or None}``.  Paths leaving the root go to the quarantine (``run_id``, ``source``: the clips'
    system) once.
    """
    if media_root is None:
        return _not_checked("未声明媒体根目录（media_root），未检查完整性")
    root = Path(media_root)
    if not root.is_dir():
        return _not_checked(f"媒体根目录不存在（{root}），未检查完整性")
    clips = conn.exec_driver_sql("SELECT clip_id, file_path FROM clips").fetchall()
    if clips and not _has_file(root):
        return _not_checked(f"媒体根目录为空（{root}，可能未挂载），未检查完整性", len(clips))
    now_text = (now or datetime.now()).strftime(TS_FORMAT)
    prev = {
        r[0]: r[1:]
        for r in conn.exec_driver_sql(
            "SELECT clip_id, file_path, present, size_bytes, mtime_ns, sha256_actual FROM media_files"
        ).fetchall()
    }
    changed_set = set(changed or ())
    resolver = _Resolver(root)
    lexical = outside_root(pd.Series([r[1] for r in clips], dtype="str")).to_numpy() if clips else []
    out_rows: list[tuple] = []
    outside: list[tuple[str, str, str | None]] = []
    hashed = present_n = 0
    for (clip_id, rel), leaves in zip(clips, lexical, strict=True):
        if not rel:
            present, size, mtime, where = 0, None, None, None
        elif leaves:
            present, size, mtime, where = 0, None, None, "（路径本身）"
        else:
            present, size, mtime, where = resolver.stat(rel)
        if where is not None:
            outside.append((clip_id, rel, where))
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
    if clips and not present_n:
        return _not_checked(f"媒体根目录中找不到任何登记的原始文件（{root}，可能挂载错误），未检查完整性", len(clips))
    # rows for clips no longer catalogued, and changed rows, are rewritten
    stale = list(prev) + [r[0] for r in out_rows]
    if stale:
        conn.exec_driver_sql(f"DELETE FROM media_files WHERE clip_id IN {temp_keys(conn, 'etl_keys', stale)}")
    if out_rows:
        rows = pd.DataFrame(out_rows, columns=COLUMNS, dtype=object)
        bulk_insert(conn, "media_files", with_county(conn, "media_files", rows))
    if outside:
        write_quarantine(conn, _outside_rows(outside, source), run_id)
    return {
        "checked": True,
        "reason": None,
        "clips": len(clips),
        "present": present_n,
        "missing": len(clips) - present_n,
        "hashed": hashed,
        "updated": len(out_rows),
        "outside": len(outside),
    }


def _outside_rows(outside: list[tuple[str, str, str | None]], source: str) -> pd.DataFrame:
    """Quarantine rows of the catalogued paths that leave the media root (never opened)."""
    return pd.DataFrame(
        [
            (
                source,
                "clips",
                clip_id,
                f"{MEDIA_PATH_REASON} file_path={rel}",
                json.dumps({"clip_id": clip_id, "file_path": rel, "指向": where}, ensure_ascii=False),
            )
            for clip_id, rel, where in outside
        ],
        columns=QUARANTINE_COLUMNS,
        dtype=object,
    )
