"""A clip's original file for a reviewer: where it is (:func:`clip_file`) and whether it plays (:func:`playable`).

The integrity check (``etl.warehouse.integrity``) finds an original at ``media_root / clips.file_path``; this
module finds it the same way, so the file a reviewer plays is the file whose hash was checked.  The media root
is the one declared in the ``sources.yaml`` of the latest successful run unless the caller names one.  A
catalogued path that leaves the media root (``../``, an absolute path) is refused, never opened.

:func:`playable` probes a file with PyAV (FFmpeg): it opens, has a video stream and one frame decodes.  Every
refusal carries a Chinese reason for the page (文件不存在 / 无法读取 / 不是可播放的视频 …); nothing here raises
for a bad file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import Connection

from etl.warehouse.db import read_df

NOT_FOUND = "文件不存在"
UNREADABLE = "无法读取"
NOT_VIDEO = "不是可播放的视频"
MIME_TYPES = {"webm": "video/webm", "matroska": "video/webm", "mp4": "video/mp4", "mov": "video/mp4"}


def media_root_of_last_run(conn: Connection) -> tuple[Path | None, str | None]:
    """The media root declared by the sources file of the latest successful run: (path, None) or (None, reason)."""
    from etl.errors import ConfigError
    from etl.sources.config import load

    runs = read_df(
        conn, "SELECT sources_file FROM etl_runs WHERE status = 'ok' AND sources_file IS NOT NULL ORDER BY run_id DESC"
    )
    if runs.empty:
        return None, "数据仓库没有成功的加载记录，无法确定媒体根目录"
    try:
        cfg = load(str(runs["sources_file"].iloc[0]))
    except ConfigError as exc:
        return None, f"无法读取数据源配置以确定媒体根目录：{exc}"
    if cfg.media_root is None:
        return None, "数据源配置未声明媒体根目录（media_root）"
    return cfg.media_root, None


def clip_file(conn: Connection, clip_id: str, media_root: Path | str | None = None) -> tuple[Path | None, str | None]:
    """The original file of ``clip_id``: (path, None) when it is there, else (None, a Chinese reason).

    ``media_root`` None = the root declared by the latest successful run (``media_root_of_last_run``)."""
    row = read_df(conn, "SELECT file_path, deleted_at FROM clips WHERE clip_id = :c", {"c": str(clip_id)})
    if row.empty:
        return None, f"未知的视音频编号：{clip_id}"
    rel, deleted = row["file_path"].iloc[0], row["deleted_at"].iloc[0]
    if deleted is not None and deleted == deleted:  # noqa: PLR0124 - NaN/NaT: not deleted
        return None, "该视音频已在媒体平台删除，原始文件不可调阅"
    if rel is None or rel != rel or not str(rel).strip():  # noqa: PLR0124
        return None, "媒体平台未登记该视音频的文件路径"
    if media_root is None:
        media_root, reason = media_root_of_last_run(conn)
        if media_root is None:
            return None, reason
    root = Path(media_root)
    if not root.is_dir():
        return None, f"媒体根目录不存在：{root}"
    path = root / str(rel)
    try:
        inside = os.path.commonpath([root.resolve(), path.resolve()]) == str(root.resolve())
    except (OSError, ValueError):
        inside = False
    if not inside:
        return None, "登记的文件路径不在媒体根目录内，拒绝打开"
    if not path.is_file():
        return None, f"{NOT_FOUND}：{rel}"
    return path, None


def playable(path: Path | str | None) -> tuple[bool, str | None]:
    """(True, None) when ``path`` opens as a container with a video stream whose first frame decodes, else
    (False, reason): 文件不存在, 无法读取 (permissions, I/O) or 不是可播放的视频 (any other failure)."""
    if path is None:
        return False, NOT_FOUND
    p = Path(path)
    if not p.is_file():
        return False, NOT_FOUND
    try:
        with p.open("rb") as fh:
            fh.read(1)
    except OSError:
        return False, UNREADABLE
    import av

    try:
        with av.open(str(p), "r", timeout=5) as container:
            if not container.streams.video:
                return False, f"{NOT_VIDEO}（没有视频流）"
            for _frame in container.decode(video=0):
                return True, None
    except (av.FFmpegError, OSError, ValueError, EOFError, IndexError, StopIteration):
        return False, NOT_VIDEO
    return False, f"{NOT_VIDEO}（没有可解码的画面）"


def mime_type(path: Path | str) -> str:
    """The MIME type a browser should be told for a playable file (by its container; default video/mp4)."""
    import av

    try:
        with av.open(str(path), "r", timeout=5) as container:
            names = container.format.name.split(",")
    except (av.FFmpegError, OSError, ValueError):
        return "video/mp4"
    if str(path).lower().endswith(".webm") or "webm" in names:
        return "video/webm"
    return next((MIME_TYPES[n] for n in names if n in MIME_TYPES), "video/mp4")
