"""The same sources loaded into SQLite and into PostgreSQL give the same warehouse content."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from etl.pipeline import run
from etl.sources.contract import TABLES
from tests.etl_fixtures import Form, base_tables, dump_warehouse, query, write_media, write_sources

pytestmark = pytest.mark.postgres


def _mixed_sources(root: Path) -> Path:
    """Every form at once, some bad rows, and a media root."""
    data = base_tables()
    bad = data["clips"].iloc[[0]].assign(clip_id="K9", started_at="2026/13/45")
    data["clips"] = pd.concat([data["clips"], bad], ignore_index=True)
    data["officers"] = pd.concat(
        [data["officers"], data["officers"].iloc[[0]].assign(police_no="099999", unit_code="140499000000")],
        ignore_index=True,
    )
    write_media(root / "media", data["clips"])
    (root / "media" / data["clips"].loc[2, "file_path"]).unlink()
    forms = {
        "dispatch": Form("csv", encoding="gb18030", datetime_format="%Y/%m/%d %H:%M:%S"),
        "org": Form("xlsx"),
        "cases": Form("csv", encoding="utf-8-sig"),
    }
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
        k: (v.read, v.loaded, v.rejected) for k, v in r2.tables.items()
    }
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
        (1, "2026-06-01 00:00:00")
    ]
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
        con.execute(
            "INSERT INTO access_log (log_id, clip_id, action, user_no, at, reason, approver_no, approved_at) "
            "VALUES ('L0009', 'K000002', 'copy', '012346', '2026-04-01 10:00:00', '复核', '012345', "
            "'2026-04-01 09:00:00')"
        )
    con.close()
    res = run(src, warehouse=pg_url, rules=False, progress=False)
    assert res.tables["access_log"].loaded == 1
    assert query(pg_url, "SELECT COUNT(*) FROM access_log") == [(3,)]


def test_statistics_are_refreshed_for_tables_this_run_changed_much(pg_url: str) -> None:
    import sqlalchemy as sa

    from etl.warehouse.db import refresh_statistics

    # a new server session per transaction, as every `etl run` has: a session's counters may still hold
    # its earlier transactions' changes (flushed lazily), which would only ever add an ANALYZE
    engine = sa.create_engine(pg_url, poolclass=sa.pool.NullPool)

    def counted(conn) -> float:  # noqa: ANN001 - the row count the planner last saw
        return conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE relname = 'stat_probe'").scalar()

    try:
        with engine.begin() as conn:  # new in this transaction: never analysed
            conn.exec_driver_sql("CREATE TABLE stat_probe (i INTEGER)")
            conn.exec_driver_sql("INSERT INTO stat_probe SELECT generate_series(1, 10000)")
            refresh_statistics(conn, ["stat_probe", "no_such_table"])
            assert counted(conn) == 10000
        with engine.begin() as conn:  # a day's few rows: below autovacuum's threshold, statistics kept
            conn.exec_driver_sql("INSERT INTO stat_probe SELECT generate_series(1, 500)")
            refresh_statistics(conn, ["stat_probe"])
            assert counted(conn) == 10000
        with engine.begin() as conn:  # rewritten: analysed again
            conn.exec_driver_sql("DELETE FROM stat_probe")
            conn.exec_driver_sql("INSERT INTO stat_probe SELECT generate_series(1, 3000)")
            refresh_statistics(conn, ["stat_probe"])
            assert counted(conn) == 3000
    finally:
        engine.dispose()


def test_compressed_blobs_are_stored_as_they_are(pg_url: str) -> None:
    import sqlalchemy as sa

    from etl.warehouse.schema import UNCOMPRESSED_BLOBS, ensure_schema

    engine = sa.create_engine(pg_url)
    try:
        with engine.begin() as conn:
            ensure_schema(conn)
            conn.exec_driver_sql(
                "ALTER TABLE raw_fingerprint_parts ALTER COLUMN data SET STORAGE EXTENDED"
            )  # as before
        with engine.begin() as conn:
            ensure_schema(conn)
            kinds = [
                conn.exec_driver_sql(
                    "SELECT attstorage FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s", pair
                ).scalar()
                for pair in UNCOMPRESSED_BLOBS
            ]
    finally:
        engine.dispose()
    assert kinds == ["e"] * len(UNCOMPRESSED_BLOBS)
