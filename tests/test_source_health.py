"""v_source_health: every check of a run says whether it ran and over what (issue 16, item 3), on SQLite and
PostgreSQL; the workbook's cover says whether the originals were checked."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import openpyxl

from etl.pipeline import run
from etl.reports.workbook import build_workbook
from etl.sources.contract import LOAD_ORDER
from etl.warehouse.db import make_engine
from tests.etl_fixtures import base_tables, query, write_media, write_sources

CHECKS = {f"load:{t}" for t in LOAD_ORDER} | {"future_rows", "media_paths", "integrity", "shrink_guard", "rules"}


def _health(url: str, run_id: int) -> dict[str, tuple]:
    rows = query(url, f'SELECT "check", performed, objects, detail FROM v_source_health WHERE run_id = {run_id}')
    return {r[0]: r[1:] for r in rows}


def test_every_check_of_a_run_is_recorded(tmp_path: Path, warehouse: str) -> None:
    data = base_tables()
    write_media(tmp_path / "src" / "media", data["clips"])
    src = write_sources(tmp_path / "src", data=data, media_root="media")
    first = run(src, warehouse=warehouse, rules=True, progress=False)
    h = _health(warehouse, first.run_id)
    assert set(h) == CHECKS
    assert h["load:incidents"][:2] == (1, 3) and "读取 3 行" in h["load:incidents"][2]
    assert h["integrity"][:2] == (1, 3) and "缺失 0 个" in h["integrity"][2]
    assert h["media_paths"][:2] == (1, 3)
    total = sum(len(df) for df in data.values())
    assert h["future_rows"][:2] == (1, total) and "隔离 0 行" in h["future_rows"][2]
    assert h["shrink_guard"][0] == 0 and "首次加载" in h["shrink_guard"][2]  # nothing to compare with yet
    assert h["rules"][0] == 1 and h["rules"][1] == sum(first.rules["findings"].values())
    assert "含完整性检查结果" in h["rules"][2]
    assert first.health == [
        (k, *v) for k, v in sorted(h.items(), key=lambda kv: [r[0] for r in first.health].index(kv[0]))
    ]

    second = run(src, warehouse=warehouse, rules=False, progress=False)
    h2 = _health(warehouse, second.run_id)
    assert h2["load:incidents"][0] == 1 and "载入 0 行" in h2["load:incidents"][2]  # SQL: from the watermark on
    assert h2["future_rows"][1] < total  # rows below the watermarks and fingerprinted rows are not staged again
    assert h2["shrink_guard"][0] == 1 and h2["shrink_guard"][1] >= 5 and "均未超过" in h2["shrink_guard"][2]
    assert h2["rules"][:2] == (0, None) and "--no-rules" in h2["rules"][2]
    assert query(warehouse, "SELECT COUNT(DISTINCT run_id) FROM v_source_health") == [(2,)]


def test_not_declared_and_not_checked_are_said(tmp_path: Path, warehouse: str) -> None:
    src = write_sources(tmp_path / "src", systems=("org", "cases", "dispatch", "media"))
    res = run(src, warehouse=warehouse, rules=False, progress=False)
    h = _health(warehouse, res.run_id)
    assert h["load:service_windows"] == (0, None, "未声明该数据源（可选系统），未加载")
    assert h["load:ledger_entries"][0] == 0
    assert h["integrity"][0] == 0 and h["integrity"][1] is None and "未声明媒体根目录" in h["integrity"][2]


def test_workbook_cover_says_whether_integrity_was_checked(tmp_path: Path, warehouse: str) -> None:
    data = base_tables()
    write_media(tmp_path / "src" / "media", data["clips"])
    src = write_sources(tmp_path / "src", data=data, media_root="media")

    def cover() -> dict[str, str]:
        engine = make_engine(warehouse)
        try:
            content = build_workbook(engine, period="2026-Q1", generated_at=datetime(2026, 4, 1, 9, 0, 0))
        finally:
            engine.dispose()
        ws = openpyxl.load_workbook(io.BytesIO(content))["封面"]
        return {r[0]: r[1] for r in ws.iter_rows(min_row=3, values_only=True) if r[0] and r[1]}

    run(src, warehouse=warehouse, rules=True, progress=False)
    assert cover()["完整性检查"].startswith("已检查")
    (tmp_path / "src" / "media").rename(tmp_path / "src" / "unmounted")
    run(src, warehouse=warehouse, rules=True, progress=False)
    line = cover()["完整性检查"]
    assert line.startswith("未检查（媒体根目录不存在") and "不表示原始文件完好或丢失" in line
