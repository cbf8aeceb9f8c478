"""Every reader form of sources.md "Declaring sources" loads the same content.

The baseline is the tiny data set written as SQLite databases; every other form
(CSV in three encodings with Chinese headers renamed through ``tables:``,
datetime formats, XLSX folders, typed tables on PostgreSQL and MariaDB,
relative paths) must give exactly the same warehouse.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from etl.errors import ConfigError
from etl.pipeline import run
from etl.sources import config
from etl.sources.contract import TABLES
from tests.etl_fixtures import Form, base_tables, dump_warehouse, query, write_sources

INCIDENTS_CN = {
    "name": "警情",
    "columns": {
        "警情编号": "incident_no",
        "管辖单位": "unit_code",
        "警情类别": "category",
        "接警时间": "received_at",
        "到达时间": "arrived_at",
        "结束时间": "ended_at",
        "现场执法": "on_site",
        "案件编号": "case_no",
        "更新时间": "updated_at",
    },
    "datetime_format": "%Y年%m月%d日 %H:%M:%S",
}
OFFICERS_CN = {"name": "人员", "columns": {"警号": "police_no", "姓名": "name", "单位": "unit_code"}}


def load(sources: Path, url: str) -> dict:
    result = run(sources, warehouse=url, rules=False, progress=False)
    assert result.status == "ok"
    return dump_warehouse(url)


@pytest.fixture
def baseline(tmp_path: Path) -> dict:
    return load(write_sources(tmp_path / "base"), f"sqlite:///{tmp_path / 'base.sqlite'}")


def test_sqlite_sources_load_every_table_with_codes_as_text(baseline: dict) -> None:
    data = base_tables()
    for name in TABLES:
        assert len(baseline[name]) == len(data[name]), name
    officers = {r[0]: r for r in baseline["officers"]}
    assert "012345" in officers and officers["012345"][4] == 1  # leading zero kept, leader flag 0/1 -> int
    assert baseline["org_units"][0][0] == "140400000000"
    clip = next(r for r in baseline["clips"] if r[0] == "K000001")
    assert clip[3] == "2026-03-01 08:54:00" and clip[5] == 1024
    # ledger: unit from the file name, Chinese status word mapped
    assert ("140402510000", "DSJ0002", None, None, "spare") in baseline["ledger_entries"]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_in_each_encoding_with_chinese_headers_and_formats(tmp_path: Path, baseline: dict, encoding: str) -> None:
    forms = {
        "dispatch": Form("csv", encoding=encoding, datetime_format="%Y/%m/%d %H:%M:%S"),
        "org": Form("csv", encoding=encoding),
        "media": Form("csv", encoding=encoding, datetime_format="%d.%m.%Y %H:%M:%S"),
    }
    src = write_sources(tmp_path / "src", forms=forms, tables_cfg={"incidents": INCIDENTS_CN, "officers": OFFICERS_CN})
    raw = (tmp_path / "src" / "dispatch_csv" / "警情.csv").read_bytes()
    assert "警情编号".encode(encoding) in raw
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            raw.decode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    got = load(src, f"sqlite:///{tmp_path / 'w.sqlite'}")
    for name in TABLES:
        assert got[name] == baseline[name], name


def test_xlsx_folders(tmp_path: Path, baseline: dict) -> None:
    forms = {"org": Form("xlsx"), "cases": Form("xlsx"), "windows": Form("xlsx")}
    src = write_sources(tmp_path / "src", forms=forms, tables_cfg={"officers": OFFICERS_CN})
    got = load(src, f"sqlite:///{tmp_path / 'w.sqlite'}")
    for name in TABLES:
        assert got[name] == baseline[name], name


def test_xlsx_typed_cells_become_canonical_text(tmp_path: Path) -> None:
    """Numbers and datetimes stored as real Excel cells are read back as contract text."""
    from datetime import datetime

    from openpyxl import Workbook

    src = write_sources(
        tmp_path / "src",
        forms={"windows": Form("xlsx")},
        systems=("org", "cases", "dispatch", "media", "windows", "ledgers"),
    )
    wb = Workbook()
    ws = wb.active
    ws.append(["设备编号", "使用人警号", "领用时间", "状态"])
    ws.append(["DSJ0001", "012345", datetime(2025, 12, 1, 9, 0), "在用"])
    ws.append(["DSJ0003", None, None, "维修"])
    ledger = tmp_path / "src" / "ledgers" / "140403000000.xlsx"
    wb.save(ledger)
    wb = Workbook()
    ws = wb.active
    ws.append(["unit_code", "window_id", "cctv_installed", "cctv_recording"])
    ws.append([140402510000, 1, 1, 0])  # numeric cells: no ".0", no float text
    wb.save(tmp_path / "src" / "windows_xlsx" / "service_windows.xlsx")
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    load(src, url)
    assert query(url, "SELECT * FROM service_windows") == [("140402510000", "1", 1, 0)]
    rows = query(url, "SELECT * FROM ledger_entries WHERE unit_code = '140403000000' ORDER BY device_sn")
    assert rows == [
        ("140403000000", "DSJ0001", "012345", "2025-12-01 09:00:00", "in_use"),
        ("140403000000", "DSJ0003", None, None, "repair"),
    ]


def typed(data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The data set with real column types (timestamps, integers, dates), as a database would hold it."""
    out = {}
    for name, df in data.items():
        df = df.copy()
        for c in TABLES[name].columns:
            if c.kind == "dt":
                df[c.name] = pd.to_datetime(df[c.name], format="%Y-%m-%d %H:%M:%S")
            elif c.kind in ("bool", "int"):
                df[c.name] = pd.to_numeric(df[c.name]).astype("Int64")
            elif c.kind == "date":
                df[c.name] = pd.to_datetime(df[c.name]).dt.date
        out[name] = df
    return out


def _server_sources(tmp_path: Path, url: str) -> Path:
    data = typed(base_tables())
    renamed = {"cases": {"name": "ajxx", "columns": {"ajbh": "case_no", "djsj": "registered_at"}}}
    return write_sources(
        tmp_path / "src",
        data=data,
        forms={"cases": Form("url", url=url), "media": Form("url", url=url)},
        tables_cfg=renamed,
    )


@pytest.mark.postgres
def test_postgres_source_with_typed_columns(tmp_path: Path, pg_url: str, baseline: dict) -> None:
    src = _server_sources(tmp_path, pg_url)
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    got = load(src, url)
    for name in TABLES:
        assert got[name] == baseline[name], name
    # the watermark is pushed down into SQL: an unchanged rerun reads only the rows at the watermark
    again = run(src, warehouse=url, rules=False, progress=False)
    assert again.tables["clips"].read == 1 and again.tables["clips"].loaded == 0
    assert dump_warehouse(url) == got


@pytest.mark.mariadb
def test_mariadb_source_with_typed_columns(tmp_path: Path, mariadb_url: str, baseline: dict) -> None:
    src = _server_sources(tmp_path, mariadb_url)
    got = load(src, f"sqlite:///{tmp_path / 'w.sqlite'}")
    for name in TABLES:
        assert got[name] == baseline[name], name


def test_relative_paths_resolve_against_the_yaml_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, baseline: dict
) -> None:
    src = write_sources(tmp_path / "deploy" / "conf", forms={"dispatch": Form("csv")}, media_root="../media")
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    cfg = config.load(Path("deploy/conf/sources.yaml"))
    assert cfg.media_root == (tmp_path / "deploy" / "media").resolve()
    assert cfg.systems["org"].url == f"sqlite:///{(tmp_path / 'deploy' / 'conf' / 'org.sqlite').resolve()}"
    assert cfg.systems["dispatch"].folder == (tmp_path / "deploy" / "conf" / "dispatch_csv").resolve()
    got = load(Path("deploy/conf/sources.yaml"), "sqlite:///w.sqlite")
    for name in TABLES:
        assert got[name] == baseline[name], name
    assert src.exists()


def test_optional_systems_may_be_left_out(tmp_path: Path) -> None:
    src = write_sources(tmp_path / "src", systems=("org", "cases", "dispatch", "media"))
    got = load(src, f"sqlite:///{tmp_path / 'w.sqlite'}")
    assert got["service_windows"] == [] and got["ledger_entries"] == []
    assert len(got["clips"]) == 3


def _four(**org) -> dict:
    """The four required systems, org declared as given."""
    return {"org": org, **{s: {"url": "sqlite:///a.sqlite"} for s in ("cases", "dispatch", "media")}}


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"version": 1, "systems": {"org": {"url": "sqlite:///a.sqlite"}}}, "缺少必需的源系统"),
        ({"version": 2, "systems": {}}, "version"),
        ({"version": 1, "systems": _four(url="sqlite:///a", folder="x")}, "url 或 folder"),
        ({"version": 1, "systems": {**_four(url="sqlite:///a"), "radio": {"url": "sqlite:///a"}}}, "未知的源系统"),
        ({"version": 1, "systems": _four(folder="x", format="json")}, "format"),
        ({"version": 1, "systems": _four(folder="x", encoding="klingon")}, "编码"),
        (
            {"version": 1, "systems": _four(url="sqlite:///a"), "tables": {"clips": {"columns": {"x": "nope"}}}},
            "未知的标准列",
        ),
        ({"version": 1, "systems": _four(url="sqlite:///a"), "tables": {"clipz": {}}}, "未知的表"),
        ({"version": 1, "systems": _four(url="sqlite:///a"), "extra": 1}, "未知的顶层字段"),
    ],
)
def test_invalid_config_is_refused_with_a_clear_message(tmp_path: Path, doc: dict, needle: str) -> None:
    import yaml

    path = tmp_path / "sources.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError, match=needle):
        config.load(path)


def test_sources_hash_is_stable_and_tracks_the_file(tmp_path: Path) -> None:
    src = write_sources(tmp_path / "src")
    h1 = config.load(src).sources_hash
    assert h1 == config.load(src).sources_hash and len(h1) == 64
    src.write_text(src.read_text(encoding="utf-8") + "# comment\n", encoding="utf-8")
    assert config.load(src).sources_hash != h1


def test_fast_csv_path_reads_exactly_what_the_reference_parser_reads(tmp_path: Path) -> None:
    """UTF-8 files go through Arrow's parser; its frame must equal pandas' C parser's on awkward content."""
    import pandas as pd

    from etl.sources.config import SystemSource, TableSource
    from etl.sources.extract import read_csv

    text = (
        "\ufeff编号,名称,说明,数量\n"
        'A1,"张三, 李四","第一行\n第二行",007\n'
        'A2,,"",  12\n'
        'A3,"引号""内""",=1+1,\n'
        "A4, 前后空格 ,\t制表,0.50\n"
    )
    (tmp_path / "t.csv").write_bytes(text.encode("utf-8"))
    system = SystemSource(name="s", folder=tmp_path, format="csv", encoding="utf-8-sig")
    got = read_csv(TableSource(table="cases", system=system, name="t"))
    ref = pd.read_csv(tmp_path / "t.csv", dtype="str", encoding="utf-8-sig", keep_default_na=False, na_values=[""])
    assert list(got.columns) == list(ref.columns)
    assert (
        got.astype(object).where(got.notna(), None).values.tolist()
        == ref.astype(object).where(ref.notna(), None).values.tolist()
    )
    assert got.iloc[0].tolist()[:3] == ["A1", "张三, 李四", "第一行\n第二行"] and got.iloc[2]["说明"] == "=1+1"


def _read_both(monkeypatch: pytest.MonkeyPatch, src, since: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:  # noqa: ANN001
    """(Arrow path, driver path) reads of one SQLite source table."""
    from etl.sources import extract

    fast = extract.read_sql(src, since)
    with monkeypatch.context() as m:
        m.setattr(extract, "_read_sqlite_arrow", lambda *a, **k: None)
        slow = extract.read_sql(src, since)
    return fast, slow


def test_sqlite_arrow_path_reads_exactly_what_the_driver_path_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite sources go through ADBC in C; the text of every value, null and row must be the driver path's."""
    import sqlite3

    from etl.sources import extract
    from etl.sources.config import SystemSource, TableSource

    db = tmp_path / "src.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (k TEXT, n INTEGER, r REAL, x, d TEXT, updated_at TEXT)")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)",
        [
            ("012345", 7, 3.0, b"\xe5\xbc\xa0", "2026-03-01 08:00:00", "2026-03-01 09:00:00"),
            ("张三", None, -12.0, 5, None, "2026-03-02 09:00:00"),
            ("", 2**62, None, "文本", "2026-03-03", "2026-03-03 09:00:00"),
            (None, 0, 1e18, 4.0, "x", "2026-03-04 09:00:00"),
        ],
    )
    con.commit()
    con.close()
    src = TableSource(table="cases", system=SystemSource(name="s", url=f"sqlite:///{db}"), name="t")
    calls = []
    real = extract._read_sqlite_arrow
    monkeypatch.setattr(extract, "_read_sqlite_arrow", lambda *a, **k: calls.append(r := real(*a, **k)) or r)
    fast, slow = _read_both(monkeypatch, src)
    assert calls[0] is not None  # the Arrow path did read it
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["n"].iloc[0] == "7" and fast["n"].isna().iloc[1] and fast["r"].tolist()[:2] == ["3", "-12"]
    assert fast["x"].tolist() == ["张", "5", "文本", "4"]
    fast, slow = _read_both(monkeypatch, src, since="2026-03-03 09:00:00")
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["updated_at"].tolist() == ["2026-03-03 09:00:00", "2026-03-04 09:00:00"]


@pytest.mark.parametrize("value", [2.5, b"\xff\xfe"])
def test_sqlite_arrow_path_leaves_what_it_cannot_render_exactly_to_the_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: object
) -> None:
    """A non-integral real (Python's repr decides its text) or a blob that is not UTF-8: driver path."""
    import sqlite3

    from etl.sources import extract
    from etl.sources.config import SystemSource, TableSource

    db = tmp_path / "src.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (k TEXT, v)")
    con.executemany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("b", value)])
    con.commit()
    con.close()
    src = TableSource(table="cases", system=SystemSource(name="s", url=f"sqlite:///{db}"), name="t")
    engine = extract._engine(src)
    assert extract._read_sqlite_arrow(engine, None, "t", {"k": "TEXT", "v": ""}, None, None) is None
    fast, slow = _read_both(monkeypatch, src)
    pd.testing.assert_frame_equal(fast, slow)
    assert fast["v"].tolist()[1] == ("2.5" if value == 2.5 else "\ufffd\ufffd")


def test_load_through_the_arrow_paths_gives_the_same_warehouse(
    tmp_path: Path, baseline: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every insert large enough for ``insert_arrow`` (here: all, while attach slots last) changes nothing."""
    from etl.warehouse import db

    monkeypatch.setattr(db, "ARROW_MIN_ROWS", 1)
    used = []
    real = db.insert_arrow
    monkeypatch.setattr(db, "insert_arrow", lambda *a, **k: used.append(r := real(*a, **k)) or r)
    import etl.warehouse.load

    monkeypatch.setattr(etl.warehouse.load, "insert_arrow", db.insert_arrow)
    got = load(write_sources(tmp_path / "src"), f"sqlite:///{tmp_path / 'arrow.sqlite'}")
    assert sum(used) >= 5
    assert got == baseline
