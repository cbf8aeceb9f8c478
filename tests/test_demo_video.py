"""Playable demo videos (etl.demo.video) and the reviewer's file probe (etl.warehouse.media)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import build, generate
from etl.demo.video import encode_clip
from etl.warehouse.media import clip_file, mime_type, playable


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo_video") / "small"
    summary = generate(out, scale="small", seed=2026)
    assert "可播放视频" in summary
    return out


@pytest.fixture(scope="module")
def catalogue(demo: Path) -> pd.DataFrame:
    with sqlite3.connect(demo / "media.sqlite") as con:
        return pd.read_sql_query(
            "SELECT clip_id, file_path, sha256, size_bytes, incident_no, deleted_at FROM clips", con
        ).set_index("clip_id")


@pytest.fixture(scope="module")
def warehouse(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> sa.Engine:
    from etl.pipeline import run

    url = f"sqlite:///{tmp_path_factory.mktemp('wh') / 'w.sqlite'}"
    run(demo / "sources.yaml", warehouse=url, rules=False)
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def _videos(demo: Path) -> list[Path]:
    return sorted((demo / "media").rglob("*.webm"))


def test_small_demo_has_playable_videos_with_the_recorded_hash(demo: Path, catalogue: pd.DataFrame) -> None:
    videos = _videos(demo)
    assert 3 <= len(videos) <= 8
    rel = {str(p.relative_to(demo / "media")): p for p in videos}
    rows = catalogue[catalogue["file_path"].isin(rel)]
    assert len(rows) == len(videos)
    assert rows["incident_no"].notna().all() and rows["deleted_at"].isna().all()
    assert rows["incident_no"].nunique() >= 2  # clips of a few on-site events
    for cid, r in rows.iterrows():
        body = rel[r["file_path"]].read_bytes()
        assert hashlib.sha256(body).hexdigest() == r["sha256"], cid
        assert len(body) == r["size_bytes"] < 200_000, cid
        assert playable(rel[r["file_path"]]) == (True, None), cid
        assert mime_type(rel[r["file_path"]]) == "video/webm"


def test_videos_are_short_small_vp8(demo: Path) -> None:
    import av

    for p in _videos(demo):
        with av.open(str(p)) as c:
            s = c.streams.video[0]
            assert s.codec_context.name == "vp8"
            assert (s.codec_context.width, s.codec_context.height) == (320, 240)
            assert 2.0 <= c.duration / 1e6 <= 4.0
            frames = sum(1 for _ in c.decode(video=0))
            assert frames >= 20


def test_integrity_stays_clean_for_the_videos(demo: Path, catalogue: pd.DataFrame, warehouse: sa.Engine) -> None:
    """The integrity check hashes the written videos: the same digest as catalogued."""
    with warehouse.connect() as conn:
        got = pd.read_sql(
            sa.text(
                "SELECT c.clip_id, c.sha256, m.present, m.sha256_actual FROM clips c "
                "JOIN media_files m ON m.clip_id = c.clip_id WHERE c.file_path LIKE '%.webm'"
            ),
            conn,
        )
    assert len(got) == len(_videos(demo))
    assert (got["present"] == 1).all()
    assert (got["sha256"] == got["sha256_actual"]).all()


def test_clip_file_finds_the_original_like_the_integrity_check(demo: Path, warehouse: sa.Engine) -> None:
    with warehouse.connect() as conn:
        cid = conn.exec_driver_sql("SELECT clip_id FROM clips WHERE file_path LIKE '%.webm' ORDER BY 1").scalar()
        path, reason = clip_file(conn, cid, demo / "media")
        assert reason is None and path is not None and playable(path) == (True, None)
        # no root named: the one declared by the latest run's sources.yaml
        path2, reason2 = clip_file(conn, cid)
        assert reason2 is None and path2.resolve() == path.resolve()
        # random-bytes originals are found but are not videos
        other = conn.exec_driver_sql(
            "SELECT c.clip_id FROM clips c JOIN media_files m ON m.clip_id = c.clip_id "
            "WHERE m.present = 1 AND c.file_path NOT LIKE '%.webm' ORDER BY 1"
        ).scalar()
        p3, r3 = clip_file(conn, other, demo / "media")
        assert r3 is None
        ok, why = playable(p3)
        assert not ok and why.startswith("不是可播放的视频")
        # missing, deleted, unknown
        gone = conn.exec_driver_sql(
            "SELECT c.clip_id FROM clips c JOIN media_files m ON m.clip_id = c.clip_id "
            "WHERE m.present = 0 AND c.deleted_at IS NULL ORDER BY 1"
        ).scalar()
        p4, r4 = clip_file(conn, gone, demo / "media")
        assert p4 is None and r4.startswith("文件不存在")
        deleted = conn.exec_driver_sql("SELECT clip_id FROM clips WHERE deleted_at IS NOT NULL ORDER BY 1").scalar()
        assert clip_file(conn, deleted, demo / "media")[0] is None
        p5, r5 = clip_file(conn, "NO-SUCH-CLIP", demo / "media")
        assert p5 is None and "未知" in r5


def test_clip_file_refuses_a_path_outside_the_media_root(tmp_path: Path) -> None:
    from etl.warehouse.schema import ensure_schema

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    root = tmp_path / "media"
    root.mkdir()
    (tmp_path / "secret.webm").write_bytes(b"x")
    with engine.begin() as conn:
        ensure_schema(conn)
        conn.exec_driver_sql(
            "INSERT INTO clips (clip_id, device_sn, started_at, ended_at, file_path) "
            "VALUES ('X1', 'D1', '2026-01-01 00:00:00', '2026-01-01 00:01:00', '../secret.webm')"
        )
        path, reason = clip_file(conn, "X1", root)
        assert path is None and "不在媒体根目录内" in reason
        assert clip_file(conn, "X1", tmp_path / "nowhere")[1].startswith("媒体根目录不存在")
    engine.dispose()


def test_broken_files_are_not_playable_with_a_reason(demo: Path, tmp_path: Path) -> None:
    good = _videos(demo)[0].read_bytes()
    truncated = tmp_path / "truncated.webm"
    truncated.write_bytes(good[:300])
    garbage = tmp_path / "garbage.MP4"
    garbage.write_bytes(hashlib.sha256(b"x").digest() * 200)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for p in (truncated, garbage, empty):
        ok, reason = playable(p)
        assert not ok and reason.startswith("不是可播放的视频"), p
    assert playable(tmp_path / "absent.webm") == (False, "文件不存在")
    assert playable(None) == (False, "文件不存在")
    unreadable = tmp_path / "locked.webm"
    unreadable.write_bytes(good)
    unreadable.chmod(0)
    try:
        ok, reason = playable(unreadable)
        import os

        if os.geteuid() != 0:  # root reads anything
            assert (ok, reason) == (False, "无法读取")
    finally:
        unreadable.chmod(0o600)


def test_same_seed_same_video_bytes(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, scale="small", seed=2026)
    first = {p.relative_to(demo): p.read_bytes() for p in _videos(demo)}
    second = {p.relative_to(again): p.read_bytes() for p in _videos(again)}
    assert first == second
    a = encode_clip("V000000001", 1_790_000_000, "123456", "ZFY040300010", 7)
    assert a == encode_clip("V000000001", 1_790_000_000, "123456", "ZFY040300010", 7)
    assert a != encode_clip("V000000002", 1_790_000_000, "123456", "ZFY040300010", 7)


def test_no_media_writes_no_video(tmp_path: Path) -> None:
    out = tmp_path / "nomedia"
    generate(out, scale="small", seed=2026, media=False)
    assert not (out / "media").exists()
    d = build("small", 2026)
    assert len(d["video_ids"]) == 6
