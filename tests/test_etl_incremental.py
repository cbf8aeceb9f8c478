"""Idempotence, incremental updates, transactional failure, media integrity, the run record."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from etl.errors import SourceError
from etl.pipeline import run
from etl.warehouse import load as load_mod
from tests.etl_fixtures import Form, base_tables, dump_warehouse, query, write_media, write_sources


def _sql(path: Path, sql: str, params: tuple = ()) -> None:
    with sqlite3.connect(path) as con:
        con.execute(sql, params)
    con.close()


@pytest.fixture
def wh(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'w.sqlite'}"


@pytest.mark.parametrize(
    "forms", [{}, {"dispatch": Form("csv"), "media": Form("csv", encoding="gb18030")}], ids=["sql", "csv"]
)
def test_second_run_with_unchanged_sources_changes_nothing(tmp_path: Path, wh: str, forms: dict) -> None:
    data = base_tables()
    bad = data["officers"].iloc[[0]].assign(police_no="099999", unit_code="140499000000")
    data["officers"] = pd.concat([data["officers"], bad], ignore_index=True)  # one quarantined row, recorded once
    src = write_sources(tmp_path / "src", data=data, forms=forms)
    first = run(src, warehouse=wh, rules=False, progress=False)
    before = dump_warehouse(wh)
    second = run(src, warehouse=wh, rules=False, progress=False)
    assert dump_warehouse(wh) == before
    assert all(st.loaded == 0 for st in second.tables.values())
    assert sum(st.quarantined for st in second.tables.values()) == 0
    assert first.tables["officers"].quarantined == 1 and len(before["quarantine"]) == 1
    runs = query(wh, "SELECT run_id, status, sources_hash, stats FROM etl_runs ORDER BY run_id")
    assert [r[1] for r in runs] == ["ok", "ok"] and runs[0][2] == runs[1][2]
    stats = json.loads(runs[0][3])
    assert stats["tables"]["clips"]["loaded"] == 3 and stats["tables"]["officers"]["rejected"] == 1
    assert stats["tables"]["officers"]["loaded"] == 4


def test_changed_updated_at_replaces_the_row_and_leaves_the_rest(tmp_path: Path, wh: str) -> None:
    src = write_sources(tmp_path / "src")
    run(src, warehouse=wh, rules=False, progress=False)
    before = {r[0]: r for r in query(wh, "SELECT * FROM clips")}
    rowids = dict(query(wh, "SELECT clip_id, rowid FROM clips"))
    media = tmp_path / "src" / "media.sqlite"
    _sql(
        media,
        "UPDATE clips SET ended_at = '2026-03-01 09:12:00', updated_at = '2026-04-01 08:00:00' "
        "WHERE clip_id = 'K000001'",
    )
    # a changed row WITHOUT a newer updated_at is not picked up (that is the source's contract)
    _sql(media, "UPDATE clips SET size_bytes = '1' WHERE clip_id = 'K000003'")
    _sql(
        media,
        "INSERT INTO clips SELECT 'K000009', device_sn, police_no, started_at, ended_at, size_bytes, sha256, "
        "imported_at, file_path, incident_no, case_no, is_evidence, deleted_at, '2026-04-02 00:00:00' "
        "FROM clips WHERE clip_id = 'K000002'",
    )
    res = run(src, warehouse=wh, rules=False, progress=False)
    assert res.tables["clips"].loaded == 2
    after = {r[0]: r for r in query(wh, "SELECT * FROM clips")}
    assert after["K000001"][4] == "2026-03-01 09:12:00" and after["K000001"][13] == "2026-04-01 08:00:00"
    assert after["K000002"] == before["K000002"] and after["K000003"] == before["K000003"]
    assert "K000009" in after and len(after) == 4
    new_rowids = dict(query(wh, "SELECT clip_id, rowid FROM clips"))
    assert new_rowids["K000002"] == rowids["K000002"] and new_rowids["K000003"] == rowids["K000003"]
    assert query(wh, "SELECT updated_at, row_key FROM watermarks WHERE table_name = 'clips'") == [
        ("2026-04-02 00:00:00", "K000009")
    ]


def test_same_updated_at_with_larger_key_is_not_lost(tmp_path: Path, wh: str) -> None:
    """The watermark is (updated_at, key): a late row sharing the watermark's time still loads."""
    src = write_sources(tmp_path / "src")
    run(src, warehouse=wh, rules=False, progress=False)
    wm = query(wh, "SELECT updated_at, row_key FROM watermarks WHERE table_name = 'clips'")[0]
    _sql(
        tmp_path / "src" / "media.sqlite",
        "INSERT INTO clips SELECT 'K999999', device_sn, police_no, started_at, ended_at, size_bytes, sha256, "
        "imported_at, file_path, incident_no, case_no, is_evidence, deleted_at, ? FROM clips WHERE clip_id = 'K000001'",
        (wm[0],),
    )
    res = run(src, warehouse=wh, rules=False, progress=False)
    assert res.tables["clips"].loaded == 1
    assert query(wh, "SELECT COUNT(*) FROM clips") == [(4,)]


def test_table_without_updated_at_is_compared_in_full(tmp_path: Path, wh: str) -> None:
    src = write_sources(tmp_path / "src")
    run(src, warehouse=wh, rules=False, progress=False)
    rowids = dict(query(wh, "SELECT police_no, rowid FROM officers"))
    _sql(tmp_path / "src" / "org.sqlite", "UPDATE officers SET name = '王建军' WHERE police_no = '012345'")
    _sql(tmp_path / "src" / "media.sqlite", "DELETE FROM access_log WHERE log_id = 'L0001'")
    _sql(
        tmp_path / "src" / "media.sqlite",
        "INSERT INTO access_log (log_id, clip_id, action, user_no, at, reason) "
        "VALUES ('L0009', 'K000002', 'view', '012346', '2026-04-01 10:00:00', '复核')",
    )
    res = run(src, warehouse=wh, rules=False, progress=False)
    # only the changed row is rewritten; the rest of the table stays as it was
    assert res.tables["officers"].loaded == 1 and res.tables["org_units"].loaded == 0
    assert query(wh, "SELECT name FROM officers WHERE police_no = '012345'") == [("王建军",)]
    after = dict(query(wh, "SELECT police_no, rowid FROM officers"))
    assert {k: v for k, v in after.items() if k != "012345"} == {k: v for k, v in rowids.items() if k != "012345"}
    assert res.tables["access_log"].loaded == 1
    assert query(wh, "SELECT log_id FROM access_log ORDER BY log_id") == [("L0002",), ("L0009",)]


def test_changed_config_reloads_everything_to_the_same_content(tmp_path: Path, wh: str) -> None:
    src = write_sources(tmp_path / "src")
    run(src, warehouse=wh, rules=False, progress=False)
    before = dump_warehouse(wh)
    src.write_text(src.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    res = run(src, warehouse=wh, rules=False, progress=False)
    assert res.tables["clips"].unchanged == 0 and res.tables["clips"].loaded == 3
    assert dump_warehouse(wh) == before


def test_failed_run_leaves_the_warehouse_as_it_was_and_the_next_run_completes(tmp_path: Path, wh: str) -> None:
    src = write_sources(tmp_path / "src", forms={"media": Form("csv")})
    run(src, warehouse=wh, rules=False, progress=False)
    before = dump_warehouse(wh)
    # new data arrives in every system, but one file of the last system is broken
    _sql(
        tmp_path / "src" / "cases.sqlite",
        "UPDATE cases SET title = '新案由', updated_at = '2026-05-01 00:00:00' WHERE case_no = 'C2026002'",
    )
    access = tmp_path / "src" / "media_csv" / "access_log.csv"
    good = access.read_bytes()
    access.write_bytes(b"")
    with pytest.raises(SourceError):
        run(src, warehouse=wh, rules=False, progress=False)
    assert dump_warehouse(wh) == before
    access.write_bytes(good)
    res = run(src, warehouse=wh, rules=False, progress=False)
    assert res.tables["cases"].loaded == 1
    assert query(wh, "SELECT title FROM cases WHERE case_no = 'C2026002'") == [("新案由",)]
    assert [r[0] for r in query(wh, "SELECT status FROM etl_runs ORDER BY run_id")] == ["ok", "failed", "ok"]


def test_media_integrity_hashes_once_and_notices_changes(tmp_path: Path, wh: str) -> None:
    data = base_tables()
    media = tmp_path / "src" / "media"
    write_media(media, data["clips"])
    src = write_sources(tmp_path / "src", data=data, media_root="media")
    first = run(src, warehouse=wh, rules=False, progress=False)
    assert first.integrity["checked"] and first.integrity["hashed"] == 3 and first.integrity["missing"] == 0
    rows = {r[0]: r for r in query(wh, "SELECT clip_id, present, size_bytes, sha256_actual FROM media_files")}
    expected = dict(query(wh, "SELECT clip_id, sha256 FROM clips"))
    assert {k: r[3] for k, r in rows.items()} == expected and all(r[1] == 1 for r in rows.values())

    second = run(src, warehouse=wh, rules=False, progress=False)
    assert second.integrity["hashed"] == 0 and second.integrity["updated"] == 0

    altered = media / "2026/03/K000002.mp4"
    altered.write_bytes(b"tampered")
    os.utime(altered, ns=(1, 1))
    (media / "2026/03/K000003.mp4").unlink()
    third = run(src, warehouse=wh, rules=False, progress=False)
    assert third.integrity["hashed"] == 1 and third.integrity["missing"] == 1
    rows = {r[0]: r for r in query(wh, "SELECT clip_id, present, size_bytes, sha256_actual FROM media_files")}
    assert rows["K000002"][3] != expected["K000002"] and rows["K000002"][2] == len(b"tampered")
    assert rows["K000003"][1:] == (0, None, None)
    assert "缺失 1 个" in third.summary()


def test_integrity_skipped_without_media_root(tmp_path: Path, wh: str) -> None:
    res = run(write_sources(tmp_path / "src"), warehouse=wh, rules=False, progress=False)
    assert res.integrity["checked"] is False
    assert "完整性检查：未进行" in res.summary()
    res = run(write_sources(tmp_path / "src2", media_root="no_such_dir"), warehouse=wh, rules=False, progress=False)
    assert res.integrity["checked"] is False and "不存在" in res.integrity["reason"]


def test_default_and_explicit_as_of(tmp_path: Path, wh: str) -> None:
    src = write_sources(tmp_path / "src")
    res = run(src, warehouse=wh, rules=False, progress=False)
    assert res.as_of == datetime(2026, 3, 11, 23, 59, 59)  # latest access_log.at is 2026-03-11 10:00
    res = run(src, warehouse=wh, as_of=datetime(2026, 3, 5, 12, 0), rules=False, progress=False)
    assert query(wh, "SELECT as_of FROM etl_runs ORDER BY run_id DESC LIMIT 1") == [("2026-03-05 12:00:00",)]


class _Tty:
    def __init__(self) -> None:
        self.text = ""

    def isatty(self) -> bool:
        return True

    def write(self, s: str) -> None:
        self.text += s

    def flush(self) -> None:
        pass


def test_progress_shows_rows_per_second_on_a_terminal_only() -> None:
    import io

    from etl.progress import Progress

    quiet = io.StringIO()
    p = Progress(stream=quiet)
    p.start("载入 clips", 10)
    p.advance(10)
    p.finish("完成")
    assert quiet.getvalue() == ""
    tty = _Tty()
    p = Progress(stream=tty)
    p.start("载入 clips", 200_000)
    p.advance(200_000)
    p.finish("clips：完成")
    assert "载入 clips：200,000/200,000 行（" in tty.text and "行/秒）" in tty.text and tty.text.endswith("\n")


@pytest.mark.parametrize("held_max", [None, 0], ids=["keys-read-or-probed", "always-probed"])
def test_incremental_references_are_checked_against_the_warehouse(
    tmp_path: Path, warehouse: str, held_max: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later run's rows may point at keys loaded earlier (valid) or nowhere (quarantined with the reason), on
    SQLite and PostgreSQL.
    ``always-probed``: a mirror too large to read whole (``WarehouseKeys.HELD_MAX``, a province's clips) is probed value
    by value through its key's index, with the same result."""
    probes: list[str] = []
    if held_max is not None:
        monkeypatch.setattr(load_mod.WarehouseKeys, "HELD_MAX", held_max)
        real = load_mod.temp_keys
        monkeypatch.setattr(
            load_mod, "temp_keys", lambda conn, name, values: probes.append(name) or real(conn, name, values)
        )
    src = write_sources(tmp_path / "src")
    run(src, warehouse=warehouse, rules=False, progress=False)
    media = tmp_path / "src" / "media.sqlite"
    _sql(
        media,
        "INSERT INTO access_log (log_id, clip_id, action, user_no, at, reason) VALUES "
        "('L0003', 'K000002', 'view', '012346', '2026-04-01 10:00:00', '复核'), "
        "('L0004', 'K404', 'view', '012346', '2026-04-01 11:00:00', '复核')",
    )
    res = run(src, warehouse=warehouse, rules=False, progress=False)
    assert res.tables["clips"].loaded == 0  # clips unchanged: their keys come from the warehouse
    assert res.tables["access_log"].rejected == 1
    assert [r[0] for r in query(warehouse, "SELECT log_id FROM access_log ORDER BY log_id")] == [
        "L0001",
        "L0002",
        "L0003",
    ]
    assert query(warehouse, "SELECT row_key, reason FROM quarantine WHERE table_name = 'access_log'") == [
        ("L0004", "未知视频 K404")
    ]
    assert ("etl_probe" in probes) == (held_max is not None)


def test_row_rejected_for_an_unknown_reference_loads_once_the_reference_arrives(tmp_path: Path, wh: str) -> None:
    """A clip of a device not yet in the ledger is quarantined; when the device appears later, the clip
    (unchanged at the source, below the watermark) is loaded without being re-recorded in the quarantine."""
    src = write_sources(tmp_path / "src")
    media = tmp_path / "src" / "media.sqlite"
    _sql(
        media,
        "INSERT INTO clips SELECT 'K000010', 'DSJ0099', police_no, started_at, ended_at, size_bytes, sha256, "
        "imported_at, file_path, incident_no, case_no, is_evidence, deleted_at, updated_at "
        "FROM clips WHERE clip_id = 'K000001'",
    )
    first = run(src, warehouse=wh, rules=False, progress=False)
    assert first.tables["clips"].rejected == 1
    assert query(wh, "SELECT row_key, reason FROM quarantine WHERE table_name = 'clips'") == [
        ("K000010", "未知设备 DSJ0099")
    ]
    assert query(wh, "SELECT COUNT(*) FROM clips WHERE clip_id = 'K000010'") == [(0,)]

    second = run(src, warehouse=wh, rules=False, progress=False)  # still unknown: nothing changes
    assert second.tables["clips"].loaded == 0 and second.tables["clips"].quarantined == 0

    _sql(
        media,
        "INSERT INTO devices SELECT 'DSJ0099', kind, model, unit_code, status, status_since, purchased_at "
        "FROM devices WHERE device_sn = 'DSJ0001'",
    )
    third = run(src, warehouse=wh, rules=False, progress=False)
    assert third.tables["clips"].loaded == 1 and third.tables["clips"].quarantined == 0
    assert query(wh, "SELECT device_sn FROM clips WHERE clip_id = 'K000010'") == [("DSJ0099",)]
    fourth = run(src, warehouse=wh, rules=False, progress=False)
    assert fourth.tables["clips"].loaded == 0
    assert query(wh, "SELECT COUNT(*) FROM quarantine") == [(1,)]  # the record of the first rejection stays


def test_a_warehouse_of_an_earlier_version_gets_the_new_indexes_and_loses_the_retired_ones(
    tmp_path: Path, wh: str
) -> None:
    src = write_sources(tmp_path / "src")
    run(src, warehouse=wh, rules=False, progress=False)
    path = tmp_path / "w.sqlite"
    # as an earlier version left it: the case-tag index without clip_id
    _sql(path, "DROP INDEX ix_clips_case_no_tagged_cover")
    _sql(
        path, "CREATE INDEX ix_clips_case_no_tagged ON clips (case_no, started_at, ended_at) WHERE case_no IS NOT NULL"
    )
    run(src, warehouse=wh, progress=False)
    names = {r[0] for r in query(wh, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'clips'")}
    assert "ix_clips_case_no_tagged_cover" in names and "ix_clips_case_no_tagged" not in names
    plan = query(
        wh, "EXPLAIN QUERY PLAN SELECT clip_id, case_no, started_at, ended_at FROM clips WHERE case_no IS NOT NULL"
    )
    assert "COVERING INDEX ix_clips_case_no_tagged_cover" in " ".join(str(r[-1]) for r in plan)
