"""Full-compare tables whose unchanged rows skip staging (``etl.warehouse.fingerprints``).

Whatever the sources do between two runs, the incremental warehouse must equal
a fresh full load of the same sources (mirrors and quarantine), whether the
fingerprints were used or the full compare ran instead.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from etl.pipeline import run
from tests.etl_fixtures import base_tables, dump_warehouse, query, write_sources

QUARANTINE = "SELECT source, table_name, row_key, reason, payload FROM quarantine ORDER BY 1, 2, 3, 4, 5"


def _rows(table: str, rows: list[tuple]) -> pd.DataFrame:
    cols = list(base_tables()[table].columns)
    return pd.DataFrame(rows, columns=cols, dtype=object)


def _second_run_equals_fresh_load(tmp_path: Path, data: dict[str, pd.DataFrame]) -> dict:
    """Run 1 on the base data, run 2 on ``data`` into the same warehouse; compare with a fresh load of ``data``."""
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    assert run(src, warehouse=wh, rules=False, progress=False).status == "ok"
    write_sources(tmp_path / "src", data=data)
    second = run(src, warehouse=wh, rules=False, progress=False)
    fresh_wh = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    run(write_sources(tmp_path / "fresh", data=data), warehouse=fresh_wh, rules=False, progress=False)
    assert dump_warehouse(wh, with_bookkeeping=False) == dump_warehouse(fresh_wh, with_bookkeeping=False)
    assert query(wh, QUARANTINE) == query(fresh_wh, QUARANTINE)
    return second.tables


def test_changed_removed_and_new_rows_of_a_full_compare_table(tmp_path: Path) -> None:
    data = base_tables()
    co = data["case_officers"]
    co.loc[co["police_no"] == "012346", "role"] = "handler"  # changed
    co = co[co["police_no"] != "023001"]  # removed
    data["case_officers"] = pd.concat(
        [co, _rows("case_officers", [("C2026002", "012345", "assistant")])], ignore_index=True
    )  # new
    data["incident_officers"] = pd.concat(
        [data["incident_officers"], _rows("incident_officers", [("J2026030500002", "UNKNOWN1")])], ignore_index=True
    )  # new and rejected: unknown officer
    tables = _second_run_equals_fresh_load(tmp_path, data)
    st = tables["case_officers"]
    assert (st.unchanged, st.loaded, st.replaced) == (1, 2, True)  # one kept row, two staged and loaded
    io = tables["incident_officers"]
    assert (io.unchanged, io.loaded, io.rejected) == (3, 0, 1)


def test_unchanged_sources_stage_nothing_again(tmp_path: Path) -> None:
    tables = _second_run_equals_fresh_load(tmp_path, base_tables())
    for name in ("case_officers", "incident_officers", "deliveries", "access_log"):
        st = tables[name]
        assert st.unchanged == st.read and st.loaded == 0 and not st.replaced, name


def test_a_new_row_sharing_the_key_of_a_kept_row_takes_the_full_compare(tmp_path: Path) -> None:
    """Same key, different content: the full compare rejects every copy, the kept one included."""
    data = base_tables()
    data["case_officers"] = pd.concat(
        [data["case_officers"], _rows("case_officers", [("C2026001", "012345", "assistant")])], ignore_index=True
    )
    tables = _second_run_equals_fresh_load(tmp_path, data)
    assert tables["case_officers"].unchanged == 0 and tables["case_officers"].rejected == 2


def test_a_changed_referenced_table_takes_the_full_compare(tmp_path: Path) -> None:
    """An officer gone from the directory: rows pointing at them are rejected now, though unchanged."""
    data = base_tables()
    data["officers"] = data["officers"][data["officers"]["police_no"] != "F00101"]
    tables = _second_run_equals_fresh_load(tmp_path, data)
    assert tables["incident_officers"].unchanged == 0 and tables["incident_officers"].rejected == 1
    assert tables["case_officers"].unchanged == 0  # officers changed: no fingerprint trusted


@pytest.mark.parametrize(
    "edit",
    [
        # a row deleted around the loader (with the table's content hash, which would stop the full compare too)
        "DELETE FROM case_officers WHERE police_no = '012346'; DELETE FROM table_hashes",
        "DELETE FROM raw_fingerprint_parts",
        "UPDATE raw_fingerprint_parts SET version = 'old'",
    ],
)
def test_fingerprints_that_do_not_match_the_mirror_are_not_trusted(tmp_path: Path, edit: str) -> None:
    import sqlite3

    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(src, warehouse=wh, rules=False, progress=False)
    before = dump_warehouse(wh, with_bookkeeping=False)
    con = sqlite3.connect(tmp_path / "w.sqlite")
    con.executescript(edit)  # a row written around the loader, or fingerprints missing or of another version
    con.commit()
    con.close()
    second = run(src, warehouse=wh, rules=False, progress=False)
    assert dump_warehouse(wh, with_bookkeeping=False) == before
    assert second.tables["case_officers"].unchanged == 0
    third = run(src, warehouse=wh, rules=False, progress=False)  # stored anew: trusted again
    assert third.tables["case_officers"].unchanged == third.tables["case_officers"].read


def test_fingerprints_are_stored_in_parts_and_a_missing_part_is_not_trusted(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    import sqlite3

    from etl.warehouse import fingerprints

    monkeypatch.setattr(fingerprints, "PART_ROWS", 2)
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first = run(src, warehouse=wh, rules=False, progress=False)
    rows = first.tables["case_officers"].loaded
    parts = query(wh, "SELECT part FROM raw_fingerprint_parts WHERE table_name = 'case_officers' ORDER BY part")
    assert rows > 2 and [p for (p,) in parts] == list(range((rows + 1) // 2))
    before = dump_warehouse(wh, with_bookkeeping=False)
    second = run(src, warehouse=wh, rules=False, progress=False)  # every part read back: every row kept
    assert second.tables["case_officers"].unchanged == rows
    con = sqlite3.connect(tmp_path / "w.sqlite")
    con.execute("DELETE FROM raw_fingerprint_parts WHERE table_name = 'case_officers' AND part = 1")
    con.commit()
    con.close()
    third = run(src, warehouse=wh, rules=False, progress=False)  # a part missing: the full compare
    assert third.tables["case_officers"].unchanged == 0
    assert dump_warehouse(wh, with_bookkeeping=False) == before


def test_the_single_blob_fingerprints_of_before_are_dropped(tmp_path: Path) -> None:
    import sqlalchemy as sa

    from etl.warehouse.schema import ensure_schema

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE raw_fingerprints (table_name TEXT PRIMARY KEY, data BLOB)")
        ensure_schema(conn)
        assert not sa.inspect(conn).has_table("raw_fingerprints")
        assert sa.inspect(conn).has_table("raw_fingerprint_parts")
    engine.dispose()
