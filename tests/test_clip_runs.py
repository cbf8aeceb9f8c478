"""The officers' clip runs kept by the load (etl.warehouse.clip_runs) equal a rebuild from scratch after any change."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl import settings
from etl.demo import generate
from etl.pipeline import run
from etl.warehouse import clip_days, clip_runs
from etl.warehouse.db import make_engine


def _runs(url: str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT police_no, starts, ends FROM clip_runs").fetchall()
    engine.dispose()
    return {r[0]: (tuple(clip_runs.decode(r[1]).tolist()), tuple(clip_runs.decode(r[2]).tolist())) for r in rows}


def _days(url: str, rebuild: bool = False) -> list[tuple]:
    """clip_days as stored, or (rebuild=True) as a full recount from the clip mirror gives it."""
    engine = make_engine(url)
    with engine.connect() as conn:
        tx = conn.begin()
        if rebuild:
            clip_days.rebuild(conn)
        rows = conn.exec_driver_sql(
            "SELECT device_sn, day, clips, last_start FROM clip_days ORDER BY device_sn, day"
        ).fetchall()
        tx.rollback()
    engine.dispose()
    return [tuple(r) for r in rows]


def _rebuilt(url: str) -> dict[str, tuple[tuple[int, ...], tuple[int, ...]]]:
    """What a full rebuild from the clip mirror gives (in a transaction rolled back afterwards)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        tx = conn.begin()
        clip_runs.rebuild(conn)
        rows = conn.exec_driver_sql("SELECT police_no, starts, ends FROM clip_runs").fetchall()
        tx.rollback()
    engine.dispose()
    return {r[0]: (tuple(clip_runs.decode(r[1]).tolist()), tuple(clip_runs.decode(r[2]).tolist())) for r in rows}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate(out, scale="small", seed=11, media=False)
    return out


@pytest.mark.parametrize(
    ("bucket_rows", "shuffled_pieces"),
    [(None, False), (3000, False), (3000, True)],
    ids=["one-bucket", "buckets-of-3000", "shuffled-pieces"],
)
def test_runs_are_sorted_disjoint_and_cover_every_owned_clip(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bucket_rows: int | None, shuffled_pieces: bool
) -> None:
    if bucket_rows is not None:  # the first load's merge and writes in parts (as at province scale)
        monkeypatch.setattr(clip_runs, "FIRST_LOAD_BUCKET_ROWS", bucket_rows)
        monkeypatch.setattr(clip_days, "WRITE_ROWS", 1000)
    if shuffled_pieces:  # clips out of time order, in pieces of 300: device-days recur across pieces and the
        # pieces' day counts are combined on the way (over WRITE_ROWS held), not only at the end
        shutil.copytree(demo, tmp_path / "src")
        demo = tmp_path / "src"
        with sqlite3.connect(demo / "media.sqlite") as con:
            con.execute("CREATE TABLE c2 AS SELECT * FROM clips ORDER BY sha256")
            con.execute("DROP TABLE clips")
            con.execute("ALTER TABLE c2 RENAME TO clips")
        con.close()
        (tmp_path / "s.yaml").write_text("etl:\n  load_piece_rows: 300\n", encoding="utf-8")
        monkeypatch.setenv(settings.ENV, str(tmp_path / "s.yaml"))
        settings.load.cache_clear()
        combined = []
        real = clip_days.combine
        monkeypatch.setattr(clip_days, "combine", lambda parts: combined.append(len(parts)) or real(parts))
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    try:
        result = run(demo / "sources.yaml", warehouse=url, rules=False, progress=False)
    finally:
        monkeypatch.delenv(settings.ENV, raising=False)
        settings.load.cache_clear()
    if shuffled_pieces:
        assert result.tables["clips"].pieces > 10 and len(combined) > 1  # combined on the way and at the end
    runs = _runs(url)
    assert runs == _rebuilt(url)  # the first load's in-memory path equals the SQL path
    assert len(_days(url)) > 100 and _days(url) == _days(url, rebuild=True)
    with sqlite3.connect(tmp_path / "w.sqlite") as con:
        owned = pd.read_sql(
            "SELECT police_no, unixepoch(started_at) s, unixepoch(ended_at) e FROM clips "
            "WHERE police_no IS NOT NULL AND ended_at > started_at",
            con,
        )
    con.close()
    assert len(runs) > 10
    for officer, (starts, ends) in runs.items():
        s, e = np.array(starts), np.array(ends)
        assert (e > s).all() and (s[1:] > e[:-1]).all()  # positive, sorted, disjoint (touching ones merged)
        mine = owned[owned["police_no"] == officer]
        idx = np.searchsorted(s, mine["s"].to_numpy(), side="right") - 1
        assert (idx >= 0).all() and (e[idx] >= mine["e"].to_numpy()).all()  # each clip inside one run


def test_incremental_changes_keep_the_runs_equal_to_a_rebuild(demo: Path, tmp_path: Path, warehouse: str) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for item in demo.iterdir():
        target = src / item.name
        if item.is_dir():
            target.symlink_to(item, target_is_directory=True)
        elif item.suffix == ".sqlite":
            target.write_bytes(item.read_bytes())
        else:
            target.symlink_to(item)
    url = warehouse
    run(src / "sources.yaml", warehouse=url, rules=False, progress=False)
    before = _runs(url)
    days_before = _days(url)

    with sqlite3.connect(src / "media.sqlite") as con:
        # one clip each of six different officers (each change must be picked up on its own)
        picked = con.execute(
            "SELECT police_no, MIN(clip_id) FROM clips WHERE police_no IS NOT NULL "
            "GROUP BY police_no ORDER BY police_no LIMIT 6"
        ).fetchall()
        other = picked[5][0]
        ids = [c for _p, c in picked[:5]]
        stamp = "2026-12-01 08:00:00"
        # an officer's clip handed to another officer, one made unowned (resolved through the assignment),
        # one moved a day earlier and cut short, one turned into zero length, and a new clip
        con.execute("UPDATE clips SET police_no = ?, updated_at = ? WHERE clip_id = ?", (other, stamp, ids[0]))
        con.execute("UPDATE clips SET police_no = NULL, updated_at = ? WHERE clip_id = ?", (stamp, ids[1]))
        con.execute(
            "UPDATE clips SET started_at = datetime(started_at, '-1 day'), "
            "ended_at = datetime(started_at, '-1 day', '+5 seconds'), updated_at = ? "
            "WHERE clip_id = ?",
            (stamp, ids[2]),
        )
        con.execute("UPDATE clips SET ended_at = started_at, updated_at = ? WHERE clip_id = ?", (stamp, ids[3]))
        con.execute(
            "INSERT INTO clips SELECT 'NEW' || clip_id, device_sn, police_no, datetime(started_at, '+3 days'),"
            " datetime(ended_at, '+3 days'), size_bytes, sha256, imported_at, NULL, NULL, NULL, is_evidence,"
            " NULL, ? FROM clips WHERE clip_id = ?",
            (stamp, ids[4]),
        )
        # a device handed over earlier than recorded: its unowned clips change owner
        # (to an officer none of the changes above touches, so only this change can move its runs)
        touched = [p for p, _c in picked]
        marks = ",".join("?" * len(touched))
        dev, old_holder = con.execute(
            f"SELECT c.device_sn, a.police_no FROM clips c JOIN device_assignments a ON a.device_sn = c.device_sn "
            f"WHERE c.police_no IS NULL AND a.police_no NOT IN ({marks}) GROUP BY c.device_sn, a.police_no "
            f"ORDER BY COUNT(*) DESC LIMIT 1",
            touched,
        ).fetchone()
        new_holder = con.execute(
            f"SELECT police_no FROM clips WHERE police_no NOT IN ({marks}, ?) ORDER BY police_no DESC LIMIT 1",
            (*touched, old_holder),
        ).fetchone()[0]
        con.execute("UPDATE device_assignments SET police_no = ? WHERE device_sn = ?", (new_holder, dev))
    con.close()

    second = run(src / "sources.yaml", warehouse=url, rules=False, progress=False)
    assert second.tables["clips"].loaded == 5
    after = _runs(url)
    assert after == _rebuilt(url)
    assert after != before
    days_after = _days(url)
    assert days_after == _days(url, rebuild=True) and days_after != days_before
    changed = {o for o in set(before) | set(after) if before.get(o) != after.get(o)}
    # every change moved someone's runs (the unowned clip may resolve back to the same officer) ...
    assert {*touched[:1], *touched[2:], old_holder, new_holder} <= changed
    assert len(changed) < len(after)  # ... and only the affected officers' runs


def test_rules_rebuild_runs_missing_from_an_older_warehouse(demo: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(demo / "sources.yaml", warehouse=url, rules=False, progress=False)
    expected = _runs(url)
    with sqlite3.connect(tmp_path / "w.sqlite") as con:
        con.execute("DELETE FROM clip_runs")
    con.close()
    engine = make_engine(url)
    with engine.begin() as conn:
        got = clip_runs.read(conn)
    engine.dispose()
    assert list(got.officers) == sorted(expected)
    assert len(got.start) == sum(len(v[0]) for v in expected.values())


def test_buckets_cut_consecutive_groups_near_the_target() -> None:
    sizes = np.array([5, 1, 1, 7, 0, 2, 2, 2])
    got = clip_runs._buckets(sizes, 4)
    assert got[0][0] == 0 and got[-1][1] == len(sizes)
    assert all(a[1] == b[0] for a, b in zip(got, got[1:], strict=False))  # consecutive, nothing skipped
    assert [int(sizes[lo:hi].sum()) for lo, hi in got] == [5, 2, 7, 4, 2]
    assert clip_runs._buckets(sizes, 100) == [(0, len(sizes))]
    assert clip_runs._buckets(np.array([], dtype=np.int64), 4) == []
