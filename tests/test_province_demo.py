"""`etl demo --scale province` (issue 18, part 4): cities pooled under one province root, keys unique across
cities, files appended city by city, and `etl run` on SQLite and PostgreSQL finds the manifest and ranks the
units of the same level across cities together.  Two cities of the small scale (``base="small"``)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import bcrypt
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from etl.demo import DEMO_PASSWORD, DISPATCH_TABLES, build, generate
from etl.demo.province import CITIES, PROVINCE, build_city, cities_of
from etl.rules.keys import object_key

CITY_CODES = [f"{CITIES[0][0]}00000000", f"{CITIES[1][0]}00000000"]  # 长治, 太原
CSV = {
    **{
        f"cases/{t}.csv": "utf-8-sig"
        for t in ("cases", "case_officers", "case_actions", "case_documents", "deliveries")
    },
    **{f"dispatch/{name}.csv": "gb18030" for name, _cols in DISPATCH_TABLES.values()},
}


def _province(out: Path) -> str:
    return generate(out, scale="province", cities=2, base="small", seed=2026, media=False)


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("province") / "demo"
    summary = _province(out)
    assert "长治市、太原市" in summary
    return out


@pytest.fixture(scope="module")
def cities() -> list[dict]:
    """The two cities as the province builds them (in order: the police numbers depend on it)."""
    return [build_city("small", c) for c in cities_of(2, 2026)]


def _sql(path: Path, sql: str) -> pd.DataFrame:
    with sqlite3.connect(path) as con:
        return pd.read_sql_query(sql, con, dtype=str)


def _csv(path: Path, encoding: str) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)


def test_same_seed_gives_same_bytes(province: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    _province(again)

    def files(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    first, second = files(province), files(again)
    assert sorted(first) == sorted(second)
    assert [name for name in first if first[name] != second[name]] == []


def test_one_province_root_with_every_city_below_it(province: Path) -> None:
    units = _sql(province / "org.sqlite", "SELECT * FROM org_units")
    assert not units["unit_code"].duplicated().any()
    root = units[units["parent_code"].isna()]
    assert root[["unit_code", "name", "level"]].values.tolist() == [[PROVINCE[0], PROVINCE[1], "province"]]
    city = units[units["level"] == "city"]
    assert sorted(city["unit_code"]) == sorted(CITY_CODES) and (city["parent_code"] == PROVINCE[0]).all()
    assert set(city["name"]) == {"长治市公安局", "太原市公安局"}
    parent = dict(zip(units["unit_code"], units["parent_code"], strict=True))
    level = dict(zip(units["unit_code"], units["level"], strict=True))
    for code in units["unit_code"]:  # every unit reaches the root through a unit of its own city
        chain = [code]
        while isinstance(parent[chain[-1]], str):
            chain.append(parent[chain[-1]])
        assert chain[-1] == PROVINCE[0]
        if code != PROVINCE[0]:
            assert chain[-2] == code[:4] + "00000000" and level[chain[-2]] == "city"
    counts = units[units["level"] != "province"].groupby(units["unit_code"].str[:4])["level"].value_counts()
    assert counts.unstack().to_dict("index") == {
        "1401": {"city": 1, "county": 2, "station": 6},
        "1404": {"city": 1, "county": 2, "station": 6},
    }
    taiyuan = units[units["unit_code"].str.startswith("1401") & (units["level"] != "city")]
    assert taiyuan["name"].str.startswith(("太原市公安局", "清徐县", "阳曲县", "娄烦县", "古交市")).all()
    # the province's own staff
    offs = _sql(province / "org.sqlite", "SELECT * FROM officers")
    assert (offs["unit_code"] == PROVINCE[0]).sum() >= 5
    assert set(offs["unit_code"]) <= set(units["unit_code"])


def test_keys_do_not_collide_across_cities(province: Path, cities: list[dict]) -> None:
    keys = {
        ("org.sqlite", "officers"): "police_no",
        ("media.sqlite", "devices"): "device_sn",
        ("media.sqlite", "clips"): "clip_id",
        ("media.sqlite", "access_log"): "log_id",
    }
    for (db, table), key in keys.items():
        values = _sql(province / db, f'SELECT "{key}" FROM "{table}"')[key]
        assert not values.duplicated().any(), (table, key)
        per_city = [set(c[table][key]) for c in cities]
        assert per_city[0] and per_city[1] and set(values) >= per_city[0] | per_city[1]
    for path, key in {
        "cases/cases.csv": "case_no",
        "cases/case_actions.csv": "action_id",
        "cases/case_documents.csv": "doc_id",
        "cases/deliveries.csv": "delivery_id",
        "dispatch/警情.csv": "警情编号",
        "dispatch/记录中断说明.csv": "说明编号",
    }.items():
        values = _csv(province / path, CSV[path])[key]
        assert len(values) and not values.duplicated().any(), path
    # the ids that would collide without a block per city, and the police numbers one city could draw again
    for table, key in (("clips", "clip_id"), ("access_log", "log_id"), ("reports", "report_id")):
        a, b = set(cities[0][table][key]), set(cities[1][table][key])
        assert a and b and not a & b, table
    assert not set(cities[0]["officers"]["police_no"]) & set(cities[1]["officers"]["police_no"])
    # every object lives in its city: codes carry the city's division prefix
    clips = _sql(
        province / "media.sqlite", "SELECT c.clip_id, d.unit_code FROM clips c JOIN devices d USING (device_sn)"
    )
    first = set(cities[0]["clips"]["clip_id"])
    assert (clips.loc[clips["clip_id"].isin(first), "unit_code"].str[:4] == "1404").all()
    assert (clips.loc[~clips["clip_id"].isin(first), "unit_code"].str[:4] == "1401").all()


def test_appended_files_have_one_header_and_every_city(province: Path, cities: list[dict]) -> None:
    tables = {
        "cases/cases.csv": "cases",
        "cases/case_officers.csv": "case_officers",
        "cases/case_actions.csv": "case_actions",
        "cases/case_documents.csv": "case_documents",
        "cases/deliveries.csv": "deliveries",
        **{f"dispatch/{name}.csv": t for t, (name, _cols) in DISPATCH_TABLES.items()},
    }
    for path, encoding in CSV.items():
        raw = (province / path).read_bytes()
        header = raw.split(b"\r\n", 1)[0]
        assert raw.count(header) == 1, path  # one header line
        assert raw.count(b"\xef\xbb\xbf") == (1 if encoding == "utf-8-sig" else 0), path  # one BOM, at the start
        raw.decode(encoding)
        df = _csv(province / path, encoding)
        assert len(df) == sum(len(c[tables[path]]) for c in cities), path
    for db, table in (("org.sqlite", "org_units"), ("media.sqlite", "clips"), ("media.sqlite", "access_log")):
        n = len(_sql(province / db, f'SELECT 1 FROM "{table}"'))
        assert n == sum(len(c[table]) for c in cities) + (1 if table == "org_units" else 0), table
    manifest = (province / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert manifest.count(manifest[0]) == 1 and manifest[0].startswith("rule_id")
    books = {p.stem[:4] for p in (province / "ledgers").glob("*.xlsx")}
    assert books == {"1401", "1404"}


def test_the_first_city_is_the_city_demo(province: Path) -> None:
    """Changzhi is built with the demo's seed and keeps its numbers: its data are those of ``--scale small``."""
    small = build("small", 2026)
    clips = _sql(province / "media.sqlite", "SELECT clip_id, device_sn, started_at FROM clips")
    own = clips[clips["clip_id"].isin(set(small["clips"]["clip_id"]))]
    assert len(own) == len(small["clips"])
    assert set(own["device_sn"]) == set(small["clips"]["device_sn"])
    cases = _csv(province / "cases/cases.csv", "utf-8-sig")
    assert set(cases.loc[cases["unit_code"].str[:4] == "1404", "case_no"]) == set(small["cases"]["case_no"])


def test_users(province: Path) -> None:
    raw = yaml.safe_load((province / "users.yaml").read_text(encoding="utf-8"))
    assert raw["demo"]["sources_sha256"] == hashlib.sha256((province / "sources.yaml").read_bytes()).hexdigest()
    users = raw["users"]
    assert set(users) == {
        "leader", "legal", "equipment", "it", "city_leader", "city_legal", "county", "station", "officer"
    }  # fmt: skip
    for name in ("leader", "legal", "equipment", "it"):
        assert users[name]["unit_code"] == PROVINCE[0] and users[name]["role"] == name
    assert users["city_legal"]["unit_code"] == CITY_CODES[0] and users["city_legal"]["role"] == "legal"
    assert users["city_leader"]["unit_code"] == CITY_CODES[0] and users["city_leader"]["role"] == "leader"
    assert users["county"]["unit_code"].startswith("1404") and users["county"]["role"] == "unit_admin"
    assert users["officer"]["unit_code"] == users["station"]["unit_code"]
    offs = _sql(province / "org.sqlite", "SELECT police_no, name, unit_code FROM officers").set_index("police_no")
    for u in users.values():
        assert offs.loc[u["police_no"], "unit_code"] == u["unit_code"] and offs.loc[u["police_no"], "name"] == u["name"]
        assert bcrypt.checkpw(DEMO_PASSWORD.encode(), u["password_hash"].encode())


def _check_run(province: Path, url: str) -> None:
    """`etl run` finds exactly the manifest; scores rank the units of a level across both cities together."""
    from etl.pipeline import run

    result = run(province / "sources.yaml", warehouse=url, progress=False)
    assert sum(t.rejected for t in result.tables.values()) == 0
    engine = sa.create_engine(url)
    try:
        found = pd.read_sql("SELECT * FROM v_findings", engine)
        scores = pd.read_sql("SELECT period, unit_code, unit_level, total, rank FROM v_unit_scores", engine)
        units = pd.read_sql("SELECT unit_code, level FROM org_units", engine)
    finally:
        engine.dispose()
    found = found.astype(object).where(found.notna(), None)
    found["month"] = np.where(found["rule_id"] == "EQUIP-IDLE", found["occurred_at"].astype(str).str[:7], None)
    if "doc_type" not in found:
        found["doc_type"] = None
    manifest = pd.read_csv(province / "manifest.csv", dtype=str, keep_default_na=False)
    expected = {object_key(r["rule_id"], r) for r in manifest.to_dict("records")}
    got = {object_key(r["rule_id"], r) for r in found.to_dict("records")}
    assert sorted(expected - got, key=str)[:10] == []
    assert sorted(got - expected, key=str)[:10] == []
    assert set(found["unit_code"].str[:4]) == {"1401", "1404"}

    year = scores[scores["period"] == "2026"]
    assert set(year["unit_code"]) == set(units["unit_code"])  # every unit scored, the province and both cities
    assert year.loc[year["unit_code"] == PROVINCE[0], ["unit_level", "rank"]].values.tolist() == [["province", 1]]
    for level, n in (("city", 2), ("county", 4), ("station", 12)):
        lv = year[year["unit_level"] == level]
        assert sorted(lv["rank"].astype(int)) == list(range(1, n + 1)), level  # one ranking across the cities
        assert set(lv["unit_code"].str[:4]) == {"1401", "1404"}
        best = lv.sort_values(["rank"]).iloc[0]
        assert float(best["total"]) == lv["total"].astype(float).max()
    for period, grp in scores.groupby("period"):  # every period: one ranking per level, not one per city
        for level, lv in grp.groupby("unit_level"):
            assert sorted(lv["rank"].astype(int)) == list(range(1, len(lv) + 1)), (period, level)


@pytest.mark.slow
def test_etl_run_on_sqlite(province: Path, tmp_path: Path) -> None:
    _check_run(province, f"sqlite:///{tmp_path / 'w.sqlite'}")


@pytest.mark.slow
@pytest.mark.postgres
def test_etl_run_on_postgres(province: Path, pg_url: str) -> None:
    _check_run(province, pg_url)


@pytest.mark.parametrize("n", [0, 12])
def test_city_count_is_checked(n: int, tmp_path: Path) -> None:
    from etl.errors import ConfigError

    with pytest.raises(ConfigError, match="城市数"):
        generate(tmp_path / "p", scale="province", cities=n, base="small", media=False)
    assert not (tmp_path / "p").exists()


def test_city_roles_below_the_province_see_their_city_only():
    """In a province warehouse a city's leader, legal office, equipment manager or IT see that city's subtree;
    at the root (or with no unit) the whole tree."""
    from etl.users import user_scope_of

    units = pd.DataFrame(
        {
            "unit_code": ["140000000000", "140400000000", "140403000000", "140100000000"],
            "parent_code": [None, "140000000000", "140400000000", "140000000000"],
        }
    )
    for role in ("leader", "legal", "equipment", "it"):
        assert user_scope_of(role, "140400000000", units) == ("140400000000", "140403000000")
        assert user_scope_of(role, "140000000000", units) is None
        assert user_scope_of(role, None, units) is None
    assert user_scope_of("unit_admin", "140100000000", units) == ("140100000000",)
