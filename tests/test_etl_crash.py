"""Crash test: SIGKILL ``python -m etl run`` at random points, rerun, and nothing is lost or duplicated.

The data set has ~50k clips so that kills land mid-load.  After every kill
the warehouse must be exactly the state before that run (or, if the kill came
after the commit, exactly the finished state); after the final rerun it must
equal a clean run of the same sources into a fresh warehouse.
"""

from __future__ import annotations

import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.etl_fixtures import ROOT_DIR, Form, dump_warehouse, synthetic, write_sources

N_CLIPS = 50_000
SEED = 20260701


def etl_run(sources: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "etl", "run", "--sources", str(sources), "--warehouse", f"sqlite:///{db}", "--no-rules"],
        cwd=ROOT_DIR,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(sources: Path, db: Path) -> float:
    t0 = time.perf_counter()
    proc = etl_run(sources, db)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()
    return time.perf_counter() - t0


def copy_db(src: Path, dst: Path) -> None:
    """Copy an SQLite database with its WAL file, if any."""
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copy(f"{src}{suffix}", f"{dst}{suffix}")


def state(db: Path) -> dict | None:
    """The warehouse content, or None when it holds no tables at all."""
    if not db.exists():
        return None
    with sqlite3.connect(db) as con:
        n = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
    con.close()
    return dump_warehouse(f"sqlite:///{db}") if n else None


def kill_at_random_points(
    sources: Path, db: Path, rng: random.Random, wanted: int, span: float, snapshot: Path | None, after: dict
) -> int:
    """Kill runs after random delays until ``wanted`` died mid-run; returns the number of kills.

    A run the kill came too late for (already committed) must have left exactly
    the finished state; the warehouse is then reset to ``snapshot`` (None: no
    warehouse at all) so that the next kill again hits a real load.
    """
    before = state(snapshot) if snapshot else None
    kills = mid_run = 0
    while mid_run < wanted:
        assert kills < 3 * wanted, f"only {mid_run} of {kills} kills landed mid-run"
        proc = etl_run(sources, db)
        time.sleep(rng.uniform(0.25, 1.0) * span)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        kills += 1
        now = state(db)
        if proc.returncode == -signal.SIGKILL and now == before:
            mid_run += 1
            continue
        assert now == after, "a killed run left a partial load behind"
        for f in db.parent.glob(db.name + "*"):
            f.unlink()
        if snapshot:
            copy_db(snapshot, db)
    return kills


def _change_sources(root: Path) -> None:
    """New and changed rows in the source (updated_at moves), plus a change to a full-compare table."""
    media = root / "media.sqlite"
    with sqlite3.connect(media) as con:
        con.execute(
            "UPDATE clips SET ended_at = datetime(ended_at, '+5 seconds'), "
            "updated_at = '2026-12-01 00:00:00' WHERE CAST(substr(clip_id, 2) AS INTEGER) % 10 = 3"
        )
        con.execute(
            "INSERT INTO clips SELECT 'N' || substr(clip_id, 2), device_sn, police_no, started_at, ended_at, "
            "size_bytes, sha256, imported_at, file_path, incident_no, case_no, is_evidence, deleted_at, "
            "'2026-12-02 00:00:00' FROM clips WHERE CAST(substr(clip_id, 2) AS INTEGER) % 50 = 7"
        )
        con.execute("DELETE FROM access_log WHERE CAST(substr(log_id, 2) AS INTEGER) % 9 = 0")
    con.close()
    with sqlite3.connect(root / "org.sqlite") as con:
        con.execute("UPDATE officers SET name = name || '（调）' WHERE police_no = '012346'")
    con.close()


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    src_root = tmp_path / "src"
    sources = write_sources(src_root, data=synthetic(N_CLIPS, seed=SEED), forms={"dispatch": Form("csv")})
    ref1 = tmp_path / "ref1.sqlite"
    span1 = finish(sources, ref1)
    after1 = state(ref1)
    assert after1 is not None and len(after1["clips"]) == N_CLIPS + 3

    db = tmp_path / "w.sqlite"
    kill_at_random_points(sources, db, rng, 12, span1, None, after1)
    finish(sources, db)
    assert state(db) == after1

    # second phase: incremental run over a loaded warehouse, killed again and again
    _change_sources(src_root)
    snapshot = tmp_path / "phase1.sqlite"
    probe = tmp_path / "probe.sqlite"
    copy_db(db, snapshot)
    copy_db(db, probe)
    span2 = finish(sources, probe)
    after2 = state(probe)
    kill_at_random_points(sources, db, rng, 8, span2, snapshot, after2)
    finish(sources, db)
    final = state(db)

    ref2 = tmp_path / "ref2.sqlite"
    finish(sources, ref2)
    assert final == state(ref2) == after2, "the crashed-and-resumed warehouse differs from a clean run"
    n = len(final["clips"])
    assert n == N_CLIPS + 3 + N_CLIPS // 50 and len({r[0] for r in final["clips"]}) == n
