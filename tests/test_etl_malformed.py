"""Malformed-input corpus: every bad row is quarantined with its reason, or the source is refused.

Bad rows are added to the valid tiny data set, so "0 valid rows lost" is
checked exactly: after the run every mirror table equals the clean baseline.
Refused sources must leave the warehouse exactly as it was before the run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from etl.errors import SourceError
from etl.pipeline import run
from etl.sources.contract import TABLES
from tests.etl_fixtures import ROOT_DIR, Form, base_tables, dump_warehouse, query, write_sources

FORMS = {"dispatch": Form("csv"), "media": Form("csv"), "windows": Form("xlsx")}


def add(data: dict[str, pd.DataFrame], table: str, **values) -> None:
    """Append a copy of the table's first row with some values replaced."""
    row = data[table].iloc[0].to_dict() | values
    data[table] = pd.concat([data[table], pd.DataFrame([row], dtype=object)], ignore_index=True)


@dataclass
class Case:
    name: str
    mutate: Callable[[dict], None] | None = None  # change the data before it is written
    after: Callable[[Path], None] | None = None  # change the written files
    quarantined: list[tuple[str, str, str]] = field(default_factory=list)  # (table, row_key, reason part)
    refused: str | None = None  # part of the SourceError message
    check: Callable[[str], None] | None = None  # more assertions on the warehouse
    same_as_baseline: bool = True  # mirrors equal the clean baseline
    emptied: tuple[str, ...] = ()  # tables the case empties on purpose


def _rewrite_csv(path: Path, encoding: str, transform: Callable[[str], str] | None = None) -> None:
    text = path.read_text(encoding="utf-8")
    path.write_bytes((transform(text) if transform else text).encode(encoding))


def _drop_column(rel: str, column: str) -> Callable[[Path], None]:
    def go(root: Path) -> None:
        df = pd.read_csv(root / rel, dtype=str, keep_default_na=False)
        df.drop(columns=[column]).to_csv(root / rel, index=False)

    return go


def _leading_zero(data: dict) -> None:
    add(data, "officers", police_no="000777", name="钱七")
    add(data, "incident_officers", incident_no="J2026030600003", police_no="000777")


def _check_leading_zero(url: str) -> None:
    assert query(url, "SELECT police_no FROM officers WHERE name = '钱七'") == [("000777",)]
    assert ("J2026030600003", "000777") in query(url, "SELECT incident_no, police_no FROM incident_officers")


def _whitespace(data: dict) -> None:
    add(data, "incident_officers", incident_no=" J2026030600003 ", police_no="  012345\t")


CASES = [
    Case("missing_key", lambda d: add(d, "clips", clip_id=None), quarantined=[("clips", "", "缺少主键 clip_id")]),
    Case(
        "missing_required_value",
        lambda d: add(d, "cases", case_no="C9", registered_at=""),
        quarantined=[("cases", "C9", "缺少必填字段 registered_at")],
    ),
    Case(
        "unknown_unit",
        lambda d: add(d, "officers", police_no="099001", unit_code="140499000000"),
        quarantined=[("officers", "099001", "未知单位 140499000000")],
    ),
    Case(
        "unparseable_time",
        lambda d: add(d, "clips", clip_id="K9", started_at="2026/13/45"),
        quarantined=[("clips", "K9", "时间无法解析 started_at=2026/13/45")],
    ),
    Case(
        "end_before_start",
        lambda d: add(
            d, "case_actions", action_id="A9", started_at="2026-03-02 11:00:00", ended_at="2026-03-02 10:00:00"
        ),
        quarantined=[("case_actions", "A9", "结束时间早于开始时间")],
    ),
    Case(
        "duplicate_key_different_content",
        lambda d: (add(d, "clips", clip_id="K9", size_bytes="1"), add(d, "clips", clip_id="K9", size_bytes="2")),
        quarantined=[("clips", "K9", "主键重复且内容不同"), ("clips", "K9", "主键重复且内容不同")],
    ),
    Case("exact_duplicate_collapses", lambda d: add(d, "officers")),
    Case(
        "oversized_field",
        lambda d: add(d, "cases", case_no="C9", title="案" * 2500),
        quarantined=[("cases", "C9", "字段超长 title（2500 字符，上限 2000）")],
    ),
    Case(
        "oversized_code",
        lambda d: add(d, "incidents", incident_no="J" * 65),
        quarantined=[("incidents", "J" * 65, "字段超长 incident_no")],
    ),
    Case(
        "bad_enum",
        lambda d: add(d, "cases", case_no="C9", procedure="fast"),
        quarantined=[("cases", "C9", "取值无效 procedure=fast")],
    ),
    Case(
        "bad_boolean",
        lambda d: add(d, "officers", police_no="099002", leader="yes"),
        quarantined=[("officers", "099002", "布尔值无效 leader=yes")],
    ),
    Case(
        "bad_integer",
        lambda d: add(d, "clips", clip_id="K9", size_bytes="12kb"),
        quarantined=[("clips", "K9", "整数无效 size_bytes=12kb")],
    ),
    Case(
        "bad_date",
        lambda d: add(d, "devices", device_sn="DSJ9", purchased_at="2025-02-30"),
        quarantined=[("devices", "DSJ9", "日期无法解析 purchased_at=2025-02-30")],
    ),
    Case(
        "unknown_officer",
        lambda d: add(d, "case_officers", police_no="X999"),
        quarantined=[("case_officers", "C2026001|X999", "未知人员 X999")],
    ),
    Case(
        "unknown_device",
        lambda d: add(d, "clips", clip_id="K9", device_sn="NOPE"),
        quarantined=[("clips", "K9", "未知设备 NOPE")],
    ),
    Case(
        "unknown_case_cascade",  # the case is rejected, so is the action that points at it
        lambda d: (
            add(d, "cases", case_no="C9", unit_code="140499000000"),
            add(d, "case_actions", action_id="A9", case_no="C9"),
        ),
        quarantined=[("cases", "C9", "未知单位"), ("case_actions", "A9", "未知案件 C9")],
    ),
    Case(
        "unknown_clip_in_access_log",
        lambda d: add(d, "access_log", log_id="L9", clip_id="K404"),
        quarantined=[("access_log", "L9", "未知视频 K404")],
    ),
    Case(
        "bad_ledger_status",
        lambda d: add(d, "ledger_entries", device_sn="DSJ0003", status="借出"),
        quarantined=[("ledger_entries", "140402510000|DSJ0003", "取值无效 status=借出")],
    ),
    Case("leading_zero_code_kept", _leading_zero, check=_check_leading_zero, same_as_baseline=False),
    Case(
        "whitespace_trimmed",
        _whitespace,
        same_as_baseline=False,
        check=lambda url: _check_count(url, "incident_officers", 4),
    ),
    Case("extra_column_ignored", lambda d: d.__setitem__("clips", d["clips"].assign(备注="x", extra2="y"))),
    Case(
        "missing_optional_column",
        after=_drop_column("media_csv/clips.csv", "case_no"),
        same_as_baseline=False,
        check=lambda url: _check_count(url, "clips WHERE case_no IS NULL", 3),
    ),
    Case("bom_with_plain_utf8_declared", after=lambda r: _rewrite_csv(r / "dispatch_csv/incidents.csv", "utf-8-sig")),
    Case(
        "header_only",
        after=lambda r: _rewrite_csv(
            r / "dispatch_csv/interruption_reports.csv", "utf-8", lambda t: t.splitlines()[0] + "\n"
        ),
        same_as_baseline=False,
        emptied=("interruption_reports",),
        check=lambda url: _check_count(url, "interruption_reports", 0),
    ),
    Case(
        "missing_required_column",
        after=_drop_column("media_csv/clips.csv", "started_at"),
        refused="缺少必需列 started_at",
    ),
    Case(
        "wrong_encoding",
        after=lambda r: _rewrite_csv(r / "dispatch_csv/incidents.csv", "gb18030"),
        refused="不是 utf-8 编码",
    ),
    Case("empty_file", after=lambda r: (r / "dispatch_csv/incidents.csv").write_bytes(b""), refused="为空"),
    Case("missing_file", after=lambda r: (r / "media_csv/access_log.csv").unlink(), refused="缺少文件 access_log.csv"),
    Case(  # one ragged line is one quarantined row (issue 16); the rest of the file loads
        "ragged_row",
        after=lambda r: _rewrite_csv(
            r / "dispatch_csv/incident_officers.csv", "utf-8", lambda t: t + "J1,012345,extra,more\n"
        ),
        quarantined=[
            ("incident_officers", "J1|012345", "CSV 行字段数不符（第 5 行：4 个字段，表头 2 个，多出：extra,more）")
        ],
    ),
    Case("missing_database_file", after=lambda r: (r / "cases.sqlite").unlink(), refused="数据库文件不存在"),
    Case(
        "missing_database_table", after=lambda r: _drop_table(r / "org.sqlite", "officers"), refused="没有表 officers"
    ),
    Case("empty_ledger_workbook", after=lambda r: _empty_workbook(r / "ledgers" / "140402510000.xlsx"), refused="为空"),
]


def _check_count(url: str, table_where: str, n: int) -> None:
    assert query(url, f"SELECT COUNT(*) FROM {table_where}") == [(n,)]


def _drop_table(path: Path, table: str) -> None:
    import sqlite3

    with sqlite3.connect(path) as con:
        con.execute(f"DROP TABLE {table}")
    con.close()


def _empty_workbook(path: Path) -> None:
    from openpyxl import Workbook

    Workbook().save(path)


def test_corpus_covers_at_least_twenty_kinds() -> None:
    assert len(CASES) >= 20 and len({c.name for c in CASES}) == len(CASES)
    assert sum(1 for c in CASES if c.refused) >= 6 and sum(1 for c in CASES if c.quarantined) >= 14


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("baseline")
    url = f"sqlite:///{root / 'w.sqlite'}"
    run(write_sources(root / "src", forms=FORMS), warehouse=url, rules=False, progress=False)
    return dump_warehouse(url)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_malformed_input(tmp_path: Path, baseline: dict, case: Case) -> None:
    data = base_tables()
    if case.mutate:
        case.mutate(data)
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    if case.refused:
        # the warehouse already holds a good load; the refused run must leave it exactly so
        run(write_sources(tmp_path / "good", forms=FORMS), warehouse=url, rules=False, progress=False)
        before = dump_warehouse(url)
        src = write_sources(tmp_path / "src", data=data, forms=FORMS)
        if case.after:
            case.after(tmp_path / "src")
        with pytest.raises(SourceError, match=case.refused) as err:
            run(src, warehouse=url, rules=False, progress=False)
        assert "\n" not in str(err.value)
        assert dump_warehouse(url) == before
        assert query(url, "SELECT status, message FROM etl_runs ORDER BY run_id") == [
            ("ok", None),
            ("failed", str(err.value)),
        ]
        return
    src = write_sources(tmp_path / "src", data=data, forms=FORMS)
    if case.after:
        case.after(tmp_path / "src")
    result = run(src, warehouse=url, rules=False, progress=False)
    got = dump_warehouse(url)
    if case.same_as_baseline:
        for name in TABLES:
            assert got[name] == baseline[name], f"{name}: valid rows lost or bad rows loaded"
    else:
        for name in set(TABLES) - set(case.emptied):  # nothing valid lost: every baseline key is still there
            assert _keys(name, baseline[name]) <= _keys(name, got[name]), name
    rows = query(url, "SELECT table_name, row_key, reason, payload FROM v_quarantine ORDER BY table_name, reason")
    assert len(rows) == len(case.quarantined), rows
    for table, key, reason in case.quarantined:
        assert any(r[0] == table and r[1] == key and reason in r[2] for r in rows), (table, key, reason, rows)
    assert sum(st.rejected for st in result.tables.values()) == len(case.quarantined)
    if case.quarantined:
        assert "隔离行共" in result.summary()
    if case.check:
        case.check(url)


def _keys(table: str, rows: list[tuple]) -> set[tuple]:
    cols = TABLES[table].column_names
    pos = [cols.index(k) for k in TABLES[table].key]
    return {tuple(r[i] for i in pos) for r in rows}


def test_refused_source_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    src = write_sources(tmp_path / "src", forms=FORMS)
    (tmp_path / "src" / "dispatch_csv" / "incidents.csv").unlink()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "etl",
            "run",
            "--sources",
            str(src),
            "--warehouse",
            f"sqlite:///{tmp_path / 'w.sqlite'}",
            "--no-rules",
        ],
        cwd=ROOT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "dispatch.incidents" in lines[0] and "缺少文件 incidents.csv" in lines[0]
    # the warehouse got nothing but the record of the failed run
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    assert query(url, "SELECT name FROM sqlite_master WHERE type = 'table'") == [("etl_runs",)]
    assert query(url, "SELECT status FROM etl_runs") == [("failed",)]
