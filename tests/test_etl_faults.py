"""Source faults (issue 16, items 3-6), each on SQLite and PostgreSQL warehouses.

One bad row is one quarantined row (undecodable bytes, ragged CSV line, bad XLSX cell, a date after the run's
wall-clock time + future_tolerance_h, a media path outside the media root) and the rest loads; a source that
cannot be read at all fails the run with the warehouse unchanged; a full-compare table that shrinks past
shrink_guard stops the run unless accepted; a second run on the same warehouse exits at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from etl.errors import SourceError
from etl.pipeline import ShrinkError, run
from etl.sources.extract import BAD_CELL_REASON, RAGGED_REASON, UNDECODABLE_REASON
from etl.sources.staging import FUTURE_REASON, MEDIA_PATH_REASON
from etl.warehouse import integrity, runlock
from tests.etl_fixtures import ROOT_DIR, Form, base_tables, dump_warehouse, query, write_media, write_sources

CSV_FORMS = {"dispatch": Form("csv"), "media": Form("csv"), "windows": Form("xlsx")}


def _quarantine(url: str, table: str) -> list[tuple[str, str]]:
    return query(url, f"SELECT row_key, reason FROM v_quarantine WHERE table_name = '{table}' ORDER BY row_key")


def _keys(url: str, table: str, col: str) -> list[str]:
    return [r[0] for r in query(url, f"SELECT {col} FROM {table} ORDER BY {col}")]


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as fh:
        fh.write(data)


# --- one bad row is one quarantined row ------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030"])
def test_undecodable_bytes_quarantine_one_row(tmp_path: Path, warehouse: str, encoding: str) -> None:
    forms = {"dispatch": Form("csv", encoding=encoding), "media": Form("csv")}
    src = write_sources(tmp_path / "src", forms=forms)
    line = "J2026030700009,140402510000,纠纷,2026-03-07 08:00:00,,,0,,2026-03-07 08:00:00\n".encode(encoding)
    _append(tmp_path / "src/dispatch_csv/incidents.csv", line.replace("纠纷".encode(encoding), b"\xff\xfe\xff"))
    res = run(src, warehouse=warehouse, rules=False, progress=False)
    assert res.status == "ok"
    rows = _quarantine(warehouse, "incidents")
    assert len(rows) == 1 and rows[0][0] == "J2026030700009" and rows[0][1].startswith(UNDECODABLE_REASON)
    assert f"不是 {encoding} 编码" in rows[0][1] and "第 5 行" in rows[0][1]
    payload = query(warehouse, "SELECT payload FROM v_quarantine WHERE table_name = 'incidents'")[0][0]
    assert "\\\\xff" in payload  # the bad bytes shown, never stored as broken text
    assert _keys(warehouse, "incidents", "incident_no") == sorted(base_tables()["incidents"]["incident_no"])
    assert res.tables["incidents"].rejected == 1 and "无法解码的字节" in res.summary()


def test_ragged_lines_quarantine_one_row_each(tmp_path: Path, warehouse: str) -> None:
    src = write_sources(tmp_path / "src", forms=CSV_FORMS)
    _append(tmp_path / "src/dispatch_csv/incident_officers.csv", b"J2026030500002,012345,extra\nJ2026030600003\n")
    run(src, warehouse=warehouse, rules=False, progress=False)
    rows = _quarantine(warehouse, "incident_officers")
    assert [r[0] for r in rows] == ["J2026030500002|012345", "J2026030600003|"]
    assert all(r[1].startswith(RAGGED_REASON) for r in rows)
    assert "3 个字段，表头 2 个，多出：extra" in rows[0][1] and "1 个字段" in rows[1][1]
    assert query(warehouse, "SELECT COUNT(*) FROM incident_officers") == [(3,)]


@pytest.mark.filterwarnings("ignore:Cell .* is marked as a date")
def test_bad_xlsx_cells_quarantine_one_row_each(tmp_path: Path, warehouse: str) -> None:
    from openpyxl import load_workbook

    src = write_sources(tmp_path / "src", forms={"windows": Form("xlsx")})
    book = tmp_path / "src/windows_xlsx/service_windows.xlsx"
    wb = load_workbook(book)
    ws = wb.active
    ws.append(["140402000000", "W02", "#REF!", "1"])  # an error value
    ws.append(["140402000000", "W03", "1", 10**12])  # a date serial no calendar holds
    ws.cell(row=ws.max_row, column=4).number_format = "yyyy-mm-dd"
    wb.save(book)
    assert load_workbook(book).active.cell(row=4, column=3).data_type == "e"
    ledger = tmp_path / "src/ledgers/140402510000.xlsx"
    wb = load_workbook(ledger)
    wb.active.append(["DSJ0003", "#N/A", None, "在用"])
    wb.save(ledger)
    res = run(src, warehouse=warehouse, rules=False, progress=False)
    rows = _quarantine(warehouse, "service_windows")
    assert [r[0] for r in rows] == ["140402000000|W02", "140402000000|W03"]
    assert all(r[1].startswith(BAD_CELL_REASON) for r in rows)
    assert "第 4 行 cctv_installed=#REF!" in rows[0][1] and "第 5 行 cctv_recording=" in rows[1][1]
    assert query(warehouse, "SELECT COUNT(*) FROM service_windows") == [(2,)]
    led = _quarantine(warehouse, "ledger_entries")
    assert len(led) == 1 and "140402510000.xlsx" in led[0][1] and "使用人警号=#N/A" in led[0][1]
    assert query(warehouse, "SELECT COUNT(*) FROM ledger_entries") == [(2,)]
    assert res.reasons == {"service_windows：单元格错误": 2, "ledger_entries：单元格错误": 1}


@pytest.mark.parametrize("fault", ["corrupt_workbook", "wrong_encoding", "missing_file"])
def test_unreadable_source_fails_the_run_and_leaves_the_warehouse(tmp_path: Path, warehouse: str, fault: str) -> None:
    run(write_sources(tmp_path / "good", forms=CSV_FORMS), warehouse=warehouse, rules=False, progress=False)
    before = dump_warehouse(warehouse)
    health = query(warehouse, "SELECT COUNT(*) FROM v_source_health")
    src = write_sources(tmp_path / "src", forms=CSV_FORMS)
    if fault == "corrupt_workbook":
        (tmp_path / "src/windows_xlsx/service_windows.xlsx").write_bytes(b"PK\x03\x04 not a workbook")
    elif fault == "wrong_encoding":  # every non-ASCII row undecodable: the file is in another encoding
        path = tmp_path / "src/dispatch_csv/incidents.csv"
        path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))
    else:
        (tmp_path / "src/media_csv/clips.csv").unlink()
    with pytest.raises(SourceError) as err:
        run(src, warehouse=warehouse, rules=False, progress=False)
    assert "\n" not in str(err.value)
    assert dump_warehouse(warehouse) == before
    assert query(warehouse, "SELECT COUNT(*) FROM v_source_health") == health
    assert [r[0] for r in query(warehouse, "SELECT status FROM etl_runs ORDER BY run_id")] == ["ok", "failed"]


# --- future-dated rows -------------------------------------------------------------------------------------


def test_future_dated_rows_are_quarantined_and_never_move_the_evaluation_date(tmp_path: Path, warehouse: str) -> None:
    data = base_tables()
    now = datetime(2026, 3, 20, 12, 0, 0)
    row = data["incidents"].iloc[1].to_dict()
    late = dict(row, incident_no="J2000", received_at="2026-03-22 08:00:00", updated_at="2026-03-12 08:00:00")
    near = dict(row, incident_no="J2026A", received_at="2026-03-21 11:00:00", updated_at="2026-03-12 08:00:00")
    log = data["access_log"].iloc[0].to_dict() | {"log_id": "L2099", "at": "2099-01-01 10:00:00"}
    data["incidents"] = pd.concat([data["incidents"], pd.DataFrame([late, near], dtype=object)], ignore_index=True)
    data["access_log"] = pd.concat([data["access_log"], pd.DataFrame([log], dtype=object)], ignore_index=True)
    src = write_sources(tmp_path / "src", data=data)
    res = run(src, warehouse=warehouse, rules=False, progress=False, now=now)
    rows = _quarantine(warehouse, "incidents")
    assert rows == [("J2000", f"{FUTURE_REASON} received_at=2026-03-22 08:00:00")]
    cut = query(warehouse, """SELECT detail FROM v_source_health WHERE "check" = 'future_rows'""")[0][0]
    assert "不晚于 2026-03-21 12:00:00" in cut and "隔离 3 行" in cut  # J2000, L2099 and C2026001 (closed 2026-03-25)
    assert _quarantine(warehouse, "access_log")[0][0] == "L2099"
    assert "J2026A" in _keys(warehouse, "incidents", "incident_no")  # within future_tolerance_h (24 h)
    assert res.as_of == datetime(2026, 3, 21, 23, 59, 59)  # the tolerated row's day, not 2026-03-22 or 2099
    # the next day the row is no longer in the future: it loads although it sits below the watermark
    later = run(src, warehouse=warehouse, rules=False, progress=False, now=datetime(2026, 3, 22, 9, 0, 0))
    assert "J2000" in _keys(warehouse, "incidents", "incident_no") and later.tables["incidents"].loaded == 1
    assert "L2099" not in _keys(warehouse, "access_log", "log_id")


# --- media paths outside the media root --------------------------------------------------------------------


def test_media_paths_outside_the_root_are_quarantined_and_never_opened(
    tmp_path: Path, warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = base_tables()
    media = tmp_path / "src" / "media"
    write_media(media, data["clips"])
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not for the platform")
    (media / "2026/03/K000003.mp4").unlink()
    (media / "2026/03/K000003.mp4").symlink_to(secret)  # a link inside the root that leads out of it
    clip = data["clips"].iloc[1].to_dict()
    bad = [dict(clip, clip_id="KX1", file_path="../../secret.mp4"), dict(clip, clip_id="KX2", file_path=str(secret))]
    data["clips"] = pd.concat([data["clips"], pd.DataFrame(bad, dtype=object)], ignore_index=True)
    src = write_sources(tmp_path / "src", data=data, media_root="media")
    opened: list[str] = []
    real = integrity.sha256_file
    monkeypatch.setattr(integrity, "sha256_file", lambda p: opened.append(os.path.realpath(p)) or real(p))
    res = run(src, warehouse=warehouse, rules=True, progress=False)
    rows = _quarantine(warehouse, "clips")
    assert [r[0] for r in rows] == ["K000003", "KX1", "KX2"]
    assert all(r[1].startswith(MEDIA_PATH_REASON) for r in rows)
    assert "KX1" not in _keys(warehouse, "clips", "clip_id")  # a path that is not relative: the row is not loaded
    assert str(secret) not in opened and len(opened) == 2
    assert res.integrity["checked"] and res.integrity["outside"] == 1 and res.integrity["present"] == 2
    assert query(warehouse, "SELECT present, sha256_actual FROM media_files WHERE clip_id = 'K000003'") == [(0, None)]
    detail = query(warehouse, """SELECT detail FROM v_source_health WHERE "check" = 'media_paths'""")[0][0]
    assert "2 条不在媒体根目录内" in detail and "另发现 1 条" in detail
    # the next run records nothing new
    run(src, warehouse=warehouse, rules=False, progress=False)
    assert len(_quarantine(warehouse, "clips")) == 3


# --- media root missing or empty ---------------------------------------------------------------------------


@pytest.mark.parametrize("root", ["missing", "empty", "wrong_mount"])
def test_missing_or_empty_media_root_leaves_integrity_not_checked(tmp_path: Path, warehouse: str, root: str) -> None:
    data = base_tables()
    write_media(tmp_path / "src" / "media", data["clips"])
    src = write_sources(tmp_path / "src", data=data, media_root="media")
    first = run(src, warehouse=warehouse, rules=True, progress=False)
    assert first.integrity["checked"] and first.integrity["missing"] == 0
    kept = query(warehouse, "SELECT clip_id, present, sha256_actual FROM media_files ORDER BY clip_id")
    media = tmp_path / "src" / "media"
    import shutil

    shutil.rmtree(media)
    if root != "missing":
        media.mkdir()
        (media / "2026").mkdir()  # an empty mount may still hold empty folders
    if root == "wrong_mount":
        (media / "2026" / "other.mp4").write_bytes(b"someone else's file")
    res = run(src, warehouse=warehouse, rules=True, progress=False)
    assert res.integrity["checked"] is False
    words = {"missing": "不存在", "empty": "为空", "wrong_mount": "找不到任何登记的原始文件"}[root]
    assert words in res.integrity["reason"] and "完整性检查：未进行" in res.summary()
    # neither "all fine" nor "all lost": no integrity finding, the last check's results kept, shown as not checked
    assert query(
        warehouse, "SELECT COUNT(*) FROM findings WHERE rule_id IN ('INTEGRITY-HASH', 'INTEGRITY-MISSING')"
    ) == [(0,)]
    assert query(warehouse, "SELECT clip_id, present, sha256_actual FROM media_files ORDER BY clip_id") == kept
    assert query(warehouse, "SELECT DISTINCT integrity_checked FROM evaluation") == [(0,)]
    health = query(
        warehouse,
        f"""SELECT performed, objects, detail FROM v_source_health WHERE "check" = 'integrity'
            AND run_id = {res.run_id}""",
    )
    assert health[0][0] == 0 and words in health[0][2]
    assert health[0][1] == (None if root == "missing" else 3)


# --- truncation guard --------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", ["incident_officers", "device_assignments"])  # fingerprinted / compared in full
def test_shrinking_table_stops_the_run_unless_accepted(tmp_path: Path, warehouse: str, table: str) -> None:
    run(write_sources(tmp_path / "good"), warehouse=warehouse, rules=False, progress=False)
    before = dump_warehouse(warehouse)
    data = base_tables()
    data[table] = data[table].iloc[:1]  # 3 rows -> 1: two thirds gone
    src = write_sources(tmp_path / "src", data=data)
    with pytest.raises(ShrinkError) as err:
        run(src, warehouse=warehouse, rules=False, progress=False)
    msg = str(err.value)
    assert f"表 {table} 的行数将从上次加载的 3 行降至 1 行" in msg and f"--accept-shrink {table}" in msg
    assert dump_warehouse(warehouse) == before
    assert query(warehouse, "SELECT status FROM etl_runs ORDER BY run_id DESC")[0] == ("failed",)
    res = run(src, warehouse=warehouse, rules=False, progress=False, accept_shrink=[table])
    assert query(warehouse, f"SELECT COUNT(*) FROM {table}") == [(1,)]
    detail = query(
        warehouse,
        f"""SELECT detail FROM v_source_health WHERE "check" = 'shrink_guard'
                                  AND run_id = {res.run_id}""",
    )[0][0]
    assert f"按 --accept-shrink 接受：{table}（3 → 1 行）" in detail


def test_table_emptied_stops_the_run(tmp_path: Path, warehouse: str) -> None:
    src = write_sources(tmp_path / "src", forms=CSV_FORMS)
    run(src, warehouse=warehouse, rules=False, progress=False)
    path = tmp_path / "src/dispatch_csv/interruption_reports.csv"
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")  # header only
    with pytest.raises(ShrinkError, match="表 interruption_reports 的行数将从上次加载的 1 行降至 0 行"):
        run(src, warehouse=warehouse, rules=False, progress=False)
    assert query(warehouse, "SELECT COUNT(*) FROM interruption_reports") == [(1,)]


def test_small_shrink_passes_and_cli_takes_accept_shrink(tmp_path: Path, warehouse: str) -> None:
    data = base_tables()
    run(write_sources(tmp_path / "good", data=data), warehouse=warehouse, rules=False, progress=False)
    data["case_officers"] = data["case_officers"].iloc[:2]  # 3 -> 2: a third, within shrink_guard 0.5
    run(write_sources(tmp_path / "less", data=data), warehouse=warehouse, rules=False, progress=False)
    assert query(warehouse, "SELECT COUNT(*) FROM case_officers") == [(2,)]
    data["case_officers"] = data["case_officers"].iloc[:0]
    src = write_sources(tmp_path / "none", data=data)
    cmd = [sys.executable, "-m", "etl", "run", "--sources", str(src), "--warehouse", warehouse, "--no-rules"]
    proc = subprocess.run(cmd, cwd=ROOT_DIR, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "--accept-shrink case_officers" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run(
        [*cmd, "--accept-shrink", "case_officers", "--accept-shrink", "clips"],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0 and "只适用于全量对比的表" in proc.stderr and "clips" in proc.stderr
    proc = subprocess.run(
        [*cmd, "--accept-shrink", "case_officers"], cwd=ROOT_DIR, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert query(warehouse, "SELECT COUNT(*) FROM case_officers") == [(0,)]


# --- one run at a time -------------------------------------------------------------------------------------


def test_second_run_exits_at_once_while_one_runs(tmp_path: Path, warehouse: str) -> None:
    src = write_sources(tmp_path / "src")
    run(src, warehouse=warehouse, rules=False, progress=False)
    before = dump_warehouse(warehouse)
    runs = query(warehouse, "SELECT COUNT(*) FROM etl_runs")
    with runlock.hold(warehouse):  # a run in progress (this process holds the warehouse's run lock)
        t0 = time.perf_counter()
        with pytest.raises(runlock.RunLockedError, match="正在由另一个 etl run 加载"):
            run(src, warehouse=warehouse, rules=False, progress=False)
        cmd = [sys.executable, "-m", "etl", "run", "--sources", str(src), "--warehouse", warehouse, "--no-rules"]
        proc = subprocess.run(cmd, cwd=ROOT_DIR, capture_output=True, text=True, timeout=120)
        elapsed = time.perf_counter() - t0
    assert proc.returncode != 0 and "本次运行未开始" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert elapsed < 30  # no waiting for the lock (the child's start-up is most of it)
    assert dump_warehouse(warehouse) == before and query(warehouse, "SELECT COUNT(*) FROM etl_runs") == runs
    assert run(src, warehouse=warehouse, rules=False, progress=False).status == "ok"  # released


def _child_holds_lock(url: str) -> bool:
    """Does another process hold the warehouse's run lock?  Looked at without taking it (a probe that took it
    could make the child's own attempt fail): the SQLite file exists only once the run holds the lock; on
    PostgreSQL the advisory lock shows in pg_locks."""
    if url.startswith("sqlite"):
        return Path(url.removeprefix("sqlite:///")).exists()
    rows = query(  # this database's: another run on the same server (a benchmark) holds its own
        url,
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    return rows[0][0] > 0


def test_a_real_run_holds_the_lock_until_it_ends(tmp_path: Path, warehouse: str) -> None:
    """A second run started while an ``etl run`` process is loading gets the message; the first completes."""
    from tests.etl_fixtures import synthetic

    src = write_sources(tmp_path / "src", data=synthetic(30_000))
    cmd = [sys.executable, "-m", "etl", "run", "--sources", str(src), "--warehouse", warehouse, "--no-rules"]
    first = subprocess.Popen(cmd, cwd=ROOT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and first.poll() is None and not _child_holds_lock(warehouse):
            time.sleep(0.02)
        assert first.poll() is None, "the first run ended before the second could start"
        with pytest.raises(runlock.RunLockedError, match="本次运行未开始"):
            run(src, warehouse=warehouse, rules=False, progress=False)
        _out, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err
    assert query(warehouse, "SELECT status FROM etl_runs") == [("ok",)]
