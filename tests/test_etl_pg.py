"""The same sources loaded into SQLite and into PostgreSQL give the same warehouse content."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from etl.contract import TABLES
from etl.pipeline import run
from tests.etl_fixtures import Form, base_tables, dump_warehouse, query, write_media, write_sources

pytestmark = pytest.mark.postgres


def _mixed_sources(root: Path) -> Path:
    """Every form at once, some bad rows, and a media root."""
    data = base_tables()
    bad = data["clips"].iloc[[0]].assign(clip_id="K9", started_at="2026/13/45")
    data["clips"] = pd.concat([data["clips"], bad], ignore_index=True)
    data["officers"] = pd.concat([data["officers"], data["officers"].iloc[[0]].assign(
        police_no="099999", unit_code="140499000000")], ignore_index=True)
    write_media(root / "media", data["clips"])
    (root / "media" / data["clips"].loc[2, "file_path"]).unlink()
    forms = {"dispatch": Form("csv", encoding="gb18030", datetime_format="%Y/%m/%d %H:%M:%S"),
             "org": Form("xlsx"), "cases": Form("csv", encoding="utf-8-sig")}
    return write_sources(root, data=data, forms=forms, media_root="media")


def test_sqlite_and_postgres_warehouses_hold_the_same_content(tmp_path: Path, pg_url: str) -> None:
    src = _mixed_sources(tmp_path / "src")
    lite = f"sqlite:///{tmp_path / 'w.sqlite'}"
    r1 = run(src, warehouse=lite, rules=False, progress=False)
    r2 = run(src, warehouse=pg_url, rules=False, progress=False)
    a, b = dump_warehouse(lite), dump_warehouse(pg_url)
    for name in a:
        assert a[name] == b[name], name
    assert len(a["quarantine"]) == 2 and len(a["clips"]) == 3
    assert r1.integrity == r2.integrity and r2.integrity["missing"] == 1
    assert {k: (v.read, v.loaded, v.rejected) for k, v in r1.tables.items()} == {
        k: (v.read, v.loaded, v.rejected) for k, v in r2.tables.items()}
    # views exist on both
    assert query(pg_url, "SELECT COUNT(*) FROM v_quarantine") == [(2,)]


def test_incremental_and_idempotent_on_postgres(tmp_path: Path, pg_url: str) -> None:
    src = write_sources(tmp_path / "src")
    run(src, warehouse=pg_url, rules=False, progress=False)
    before = dump_warehouse(pg_url)
    again = run(src, warehouse=pg_url, rules=False, progress=False)
    assert dump_warehouse(pg_url) == before and all(st.loaded == 0 for st in again.tables.values())
    with sqlite3.connect(tmp_path / "src" / "media.sqlite") as con:
        con.execute("UPDATE clips SET is_evidence = '1', updated_at = '2026-06-01 00:00:00' WHERE clip_id = 'K000003'")
    con.close()
    res = run(src, warehouse=pg_url, rules=False, progress=False)
    assert res.tables["clips"].loaded == 1
    assert query(pg_url, "SELECT is_evidence, updated_at FROM clips WHERE clip_id = 'K000003'") == [
        (1, "2026-06-01 00:00:00")]
    assert query(pg_url, "SELECT COUNT(*) FROM clips") == [(3,)]
    assert [r[0] for r in query(pg_url, "SELECT status FROM etl_runs ORDER BY run_id")] == ["ok", "ok", "ok"]


@pytest.mark.slow
def test_demo_loads_identically_into_sqlite_and_postgres(tmp_path: Path, pg_url: str) -> None:
    from etl.demo import generate

    generate(tmp_path / "demo", scale="small", seed=2026, media=False)
    src = tmp_path / "demo" / "sources.yaml"
    lite = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(src, warehouse=lite, rules=False, progress=False)
    run(src, warehouse=pg_url, rules=False, progress=False)
    a, b = dump_warehouse(lite), dump_warehouse(pg_url)
    for name in a:
        assert a[name] == b[name], name
    assert len(a["clips"]) > 10_000 and all(len(a[t]) for t in TABLES)


def test_full_compare_tables_rewrite_only_changed_rows_on_postgres(tmp_path: Path, pg_url: str) -> None:
    """Datetime columns read back from PostgreSQL compare equal to the staged text: one new row, one loaded."""
    src = write_sources(tmp_path / "src")
    run(src, warehouse=pg_url, rules=False, progress=False)
    with sqlite3.connect(tmp_path / "src" / "media.sqlite") as con:
        con.execute("INSERT INTO access_log (log_id, clip_id, action, user_no, at, reason, approver_no, approved_at) "
                    "VALUES ('L0009', 'K000002', 'copy', '012346', '2026-04-01 10:00:00', '复核', '012345', "
                    "'2026-04-01 09:00:00')")
    con.close()
    res = run(src, warehouse=pg_url, rules=False, progress=False)
    assert res.tables["access_log"].loaded == 1
    assert query(pg_url, "SELECT COUNT(*) FROM access_log") == [(3,)]


def test_copy_text_block_stores_what_the_drivers_rows_store(pg_url: str) -> None:
    """``db.bulk_insert`` on PostgreSQL writes one COPY text block built column by column; it must store
    exactly what psycopg's own ``write_row`` stores, tricky text, floats and nulls included."""
    import math

    import sqlalchemy as sa

    from etl.db import _copy_text, bulk_insert

    text = ["a\tb", "line\nbreak\r", "back\\slash \\N", "", None, "张三 \x01 end", "\\", "x" * 5000]
    floats = [0.1, 1e-300, -0.0, 2.0**60, math.inf, None, 1 / 3, 123456789.125]
    ints = [0, -1, 2**62, None, 7, 8, 9, 10]
    bools = [True, False, None, True, True, False, False, True]
    mixed = [1, 2.5, None, 3, 4.0, 5, 6, 7]
    rows = list(zip(text, floats, ints, bools, mixed, strict=True))
    cols = "t TEXT, f DOUBLE PRECISION, n BIGINT, b BOOLEAN, m DOUBLE PRECISION"
    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            for name in ("via_block", "via_rows"):
                conn.exec_driver_sql(f"CREATE TABLE {name} (i SERIAL, {cols})")
            assert _copy_text(rows, 5) is not None  # the block path is the one taken below
            bulk_insert(conn, "via_block", pd.DataFrame(rows, columns=list("tfnbm"), dtype=object), plain=True)
            raw = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy("COPY via_rows (t, f, n, b, m) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row(r)
            got = {name: conn.exec_driver_sql(f"SELECT t, f, n, b, m FROM {name} ORDER BY i").fetchall()
                   for name in ("via_block", "via_rows")}
    finally:
        engine.dispose()
    assert got["via_block"] == got["via_rows"]
    assert [r[0] for r in got["via_block"]] == text
    assert [repr(r[1]) for r in got["via_block"]] == [repr(f) for f in floats]
    assert _copy_text([(b"\x00",)], 1) is None  # bytes: left to the driver
