"""The distribution key county_code (etl.warehouse.distribution): derived from the unit tree, written with every
row, following a parent that moves, filled in a warehouse of before the key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.pipeline import run
from etl.warehouse.distribution import DISTRIBUTED, KEY, UNOWNED, unit_counties
from etl.warehouse.schema import ensure_schema, metadata
from tests.etl_fixtures import CITY, COUNTY, COUNTY2, STATION, base_tables, query, write_sources


def test_a_unit_belongs_to_its_nearest_county_city_or_province() -> None:
    units = pd.DataFrame(
        [
            ("P", None, "province"),
            ("C", "P", "city"),
            ("K", "C", "county"),
            ("S", "K", "station"),
            ("S2", "C", "station"),  # a station of the city bureau itself
            ("X", "NOWHERE", "station"),  # a broken tree: its own partition
            ("L", "L2", "station"),  # a loop without a county: its own
            ("L2", "L", "station"),
        ],
        columns=["unit_code", "parent_code", "level"],
    )
    got = unit_counties(units).to_dict()
    assert got == {"P": "P", "C": "C", "K": "K", "S": "K", "S2": "C", "X": "X", "L": "L", "L2": "L2"}


def _counties(url: str, table: str, key: str) -> dict[str, str]:
    return {r[0]: r[1] for r in query(url, f"SELECT {key}, {KEY} FROM {table}")}


def _null_counties(url: str) -> dict[str, int]:
    out = {}
    for t in [*DISTRIBUTED, "org_units"]:
        n = query(url, f"SELECT COUNT(*) FROM {t} WHERE {KEY} IS NULL")[0][0]
        if n:
            out[t] = n
    return out


def test_every_row_carries_its_county_and_follows_a_moved_parent(tmp_path: Path, warehouse: str) -> None:
    data = base_tables()
    src = write_sources(tmp_path / "src", data=data)
    run(src, warehouse=warehouse, progress=False)
    assert _null_counties(warehouse) == {}
    assert _counties(warehouse, "org_units", "unit_code") == {
        CITY: CITY,
        COUNTY: COUNTY,
        STATION: COUNTY,
        COUNTY2: COUNTY2,
    }
    assert _counties(warehouse, "cases", "case_no") == {"C2026001": COUNTY, "C2026002": COUNTY2}
    assert set(_counties(warehouse, "case_actions", "action_id").items()) == {
        ("A0001", COUNTY),
        ("A0002", COUNTY),
        ("A0003", COUNTY2),
    }
    assert _counties(warehouse, "deliveries", "delivery_id") == {"V0001": COUNTY}
    assert _counties(warehouse, "clips", "clip_id") == {"K000001": COUNTY, "K000002": COUNTY, "K000003": COUNTY}
    assert set(_counties(warehouse, "access_log", "log_id").values()) == {COUNTY}
    findings = query(
        warehouse, f"SELECT f.{KEY}, o.{KEY} FROM findings f JOIN org_units o ON o.unit_code = f.unit_code"
    )
    assert findings and all(a == b for a, b in findings)
    assert all(
        r[0] == COUNTY for r in query(warehouse, f"SELECT {KEY} FROM event_coverage WHERE unit_code = '{STATION}'")
    )

    # the case moves to the other county's bureau and the device DSJ0001 with it: the rows below follow
    cases = data["cases"].copy()
    cases.loc[cases["case_no"] == "C2026001", ["unit_code", "updated_at"]] = [COUNTY2, "2026-04-01 08:00:00"]
    devices = data["devices"].copy()
    devices.loc[devices["device_sn"] == "DSJ0001", "unit_code"] = COUNTY2
    data = {**data, "cases": cases, "devices": devices}
    src = write_sources(tmp_path / "src2", data=data)
    run(src, warehouse=warehouse, progress=False)
    assert _null_counties(warehouse) == {}
    assert set(_counties(warehouse, "case_actions", "action_id").values()) == {COUNTY2}
    assert set(_counties(warehouse, "case_documents", "doc_id").values()) == {COUNTY2}
    assert _counties(warehouse, "deliveries", "delivery_id") == {"V0001": COUNTY2}
    assert {r[0]: r[1] for r in query(warehouse, f"SELECT police_no, {KEY} FROM case_officers")} == {
        "012345": COUNTY2,
        "012346": COUNTY2,
        "023001": COUNTY2,
    }
    assert _counties(warehouse, "clips", "clip_id") == {"K000001": COUNTY2, "K000002": COUNTY2, "K000003": COUNTY}
    assert set(_counties(warehouse, "access_log", "log_id").values()) == {COUNTY2}  # both log rows are K000001's

    # the station moves under the other county: its incidents and everything of its units follow
    units = data["org_units"].copy()
    units.loc[units["unit_code"] == STATION, "parent_code"] = COUNTY2
    src = write_sources(tmp_path / "src3", data={**data, "org_units": units})
    run(src, warehouse=warehouse, progress=False)
    assert _counties(warehouse, "org_units", "unit_code")[STATION] == COUNTY2
    assert set(_counties(warehouse, "incidents", "incident_no").values()) == {COUNTY2}
    assert set(_counties(warehouse, "incident_officers", "incident_no").values()) == {COUNTY2}
    assert _counties(warehouse, "clips", "clip_id")["K000003"] == COUNTY2  # DSJ0002 belongs to the station
    assert set(_counties(warehouse, "clip_runs", "police_no").values()) == {COUNTY2}
    assert set(_counties(warehouse, "event_coverage", "incident_no").values()) == {COUNTY2}
    assert _null_counties(warehouse) == {}


def test_a_warehouse_of_before_the_key_gets_it_filled(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    run(write_sources(tmp_path / "src"), warehouse=url, progress=False)
    tables = [*DISTRIBUTED, "org_units"]
    before = {t: sorted(query(url, f"SELECT * FROM {t}")) for t in tables}
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # as an older version left it: no county_code anywhere
        for t in tables:
            for ix in metadata.tables[t].indexes:
                if KEY in ix.columns:
                    conn.exec_driver_sql(f"DROP INDEX {ix.name}")
            conn.exec_driver_sql(f"ALTER TABLE {t} DROP COLUMN {KEY}")
    with engine.begin() as conn:
        ensure_schema(conn)
    engine.dispose()
    after = {t: sorted(query(url, f"SELECT * FROM {t}")) for t in tables}
    assert after == before  # the same rows, the same counties (the column is last in both)
    assert UNOWNED not in {v for rows in after.values() for r in rows for v in r}


@pytest.mark.parametrize("moved", ["cases", "devices"])
def test_a_moved_parent_moves_nothing_when_its_county_is_the_same(tmp_path: Path, moved: str) -> None:
    """A case or device that changes within its county leaves the rows below alone (no write)."""
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    data = base_tables()
    run(write_sources(tmp_path / "src", data=data), warehouse=url, progress=False)
    before = {t: sorted(query(url, f"SELECT * FROM {t}")) for t in ("case_actions", "clips", "access_log")}
    frame = data[moved].copy()
    if moved == "cases":
        frame.loc[frame["case_no"] == "C2026001", ["title", "updated_at"]] = ["殴打他人案（改）", "2026-04-01 08:00:00"]
    else:
        frame.loc[frame["device_sn"] == "DSJ0001", "model"] = "DSJ-V10"
    run(write_sources(tmp_path / "src2", data={**data, moved: frame}), warehouse=url, progress=False)
    after = {t: sorted(query(url, f"SELECT * FROM {t}")) for t in ("case_actions", "clips", "access_log")}
    assert after == before


@pytest.mark.postgres
def test_the_citus_keys_hold_on_postgresql(tmp_path: Path, pg_url: str) -> None:
    """The DDL of docs/SCALE.md without Citus itself (not installable here): the key NOT NULL and leading every
    primary key.  The ETL loads, moves and evaluates under those keys as before."""
    from etl.warehouse.distribution import citus_ddl

    data = base_tables()
    run(write_sources(tmp_path / "src", data=data), warehouse=pg_url, progress=False)
    plain = [
        s for s in citus_ddl(metadata).splitlines() if s.startswith("ALTER TABLE")
    ]  # create_*_table and the extension need Citus
    with_pk = [t for t in DISTRIBUTED if metadata.tables[t].primary_key.columns]
    assert len(plain) == len(DISTRIBUTED) + len(with_pk)
    engine = sa.create_engine(pg_url)
    with engine.begin() as conn:
        for statement in plain:
            conn.exec_driver_sql(statement)
        pk = sa.inspect(conn).get_pk_constraint("clips")["constrained_columns"]
    engine.dispose()
    assert pk == [KEY, "clip_id"]
    first = {t: sorted(query(pg_url, f"SELECT * FROM {t}")) for t in ("findings", "event_coverage")}
    cases = data["cases"].copy()
    cases.loc[cases["case_no"] == "C2026001", ["unit_code", "updated_at"]] = [COUNTY2, "2026-04-01 08:00:00"]
    run(write_sources(tmp_path / "src2", data={**data, "cases": cases}), warehouse=pg_url, progress=False)
    assert set(_counties(pg_url, "case_documents", "doc_id").values()) == {COUNTY2}
    assert _null_counties(pg_url) == {}
    cases.loc[cases["case_no"] == "C2026001", ["unit_code", "updated_at"]] = [STATION, "2026-04-02 08:00:00"]
    run(write_sources(tmp_path / "src3", data={**data, "cases": cases}), warehouse=pg_url, progress=False)  # back
    assert {t: sorted(query(pg_url, f"SELECT * FROM {t}")) for t in ("findings", "event_coverage")} == first


def test_the_scale_document_shows_the_ddl_the_code_generates() -> None:
    from etl.warehouse.distribution import citus_ddl

    doc = (Path(__file__).resolve().parent.parent / "docs" / "SCALE.md").read_text(encoding="utf-8")
    assert "```sql\n" + citus_ddl(metadata) + "```" in doc
