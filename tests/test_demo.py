"""`python -m etl demo`: determinism, readable sources with the contract columns, media, manifest."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import bcrypt
import numpy as np
import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook

from etl.demo import DEMO_PASSWORD, build, faults, generate
from etl.demo.common import ACTIONS, NULL_T
from etl.demo.manifest import build_manifest, clip_owners, coverage, equip_idle
from etl.rules.keys import MANIFEST_COLUMNS, RULES, object_key
from etl.sources.contract import LEDGER_COLUMNS, LEDGER_STATUS, SYSTEMS, TABLES


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "small"
    summary = generate(out, scale="small", seed=2026)
    assert "演示数据已生成" in summary
    return out


@pytest.fixture(scope="module")
def manifest(demo: Path) -> pd.DataFrame:
    return pd.read_csv(demo / "manifest.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def sources(demo: Path) -> dict:
    return yaml.safe_load((demo / "sources.yaml").read_text(encoding="utf-8"))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_same_bytes(demo: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate(again, scale="small", seed=2026)
    first, second = _files(demo), _files(again)
    assert sorted(first) == sorted(second)
    different = [name for name in first if first[name] != second[name]]
    assert different == []


def test_other_seed_gives_other_data() -> None:
    a, b = build("small", 1), build("small", 2)
    assert not a["officers"]["police_no"].equals(b["officers"]["police_no"])


def _read_table(demo: Path, sources: dict, table: str) -> pd.DataFrame:
    """Read one contract table the way sources.yaml declares it, renamed to contract names."""
    system = TABLES[table].system
    decl = sources["systems"][system]
    spec = sources.get("tables", {}).get(table, {})
    name = spec.get("name", table)
    if "url" in decl:
        path = demo / decl["url"].removeprefix("sqlite:///")
        with sqlite3.connect(path) as con:
            df = pd.read_sql_query(f'SELECT * FROM "{name}"', con, dtype=str)
    elif decl["format"] == "csv":
        df = pd.read_csv(
            demo / decl["folder"] / f"{name}.csv",
            dtype=str,
            keep_default_na=False,
            encoding=decl.get("encoding", "utf-8"),
        )
    else:
        wb = load_workbook(demo / decl["folder"] / f"{name}.xlsx", read_only=True)
        rows = list(wb.worksheets[0].iter_rows(values_only=True))
        df = pd.DataFrame(rows[1:], columns=rows[0]).astype(str)
    return df.rename(columns=spec.get("columns", {}))


@pytest.mark.parametrize("table", [t for t in TABLES if t != "ledger_entries"])
def test_every_table_has_the_contract_columns(demo: Path, sources: dict, table: str) -> None:
    df = _read_table(demo, sources, table)
    assert list(df.columns) == TABLES[table].column_names
    assert len(df) > 0
    for col in TABLES[table].columns:
        if col.required:
            assert (df[col.name].fillna("") != "").all(), f"{table}.{col.name} has empty required values"


def test_sources_yaml_mixes_every_reader(sources: dict, demo: Path) -> None:
    from etl.sources.config import load

    systems = sources["systems"]
    assert set(systems) == set(SYSTEMS)
    assert systems["org"]["url"].startswith("sqlite:///") and systems["media"]["url"].startswith("sqlite:///")
    assert systems["cases"] == {"folder": "cases", "format": "csv", "encoding": "utf-8-sig"}
    assert (
        systems["dispatch"]["encoding"] == "gb18030" and systems["dispatch"]["datetime_format"] == "%Y/%m/%d %H:%M:%S"
    )
    assert systems["windows"]["format"] == "xlsx"
    assert sources["media_root"] == "media"
    raw = (demo / "dispatch" / "警情.csv").read_bytes()
    assert raw.decode("gb18030").splitlines()[0].startswith("警情编号,")
    assert (demo / "cases" / "cases.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    cfg = load(demo / "sources.yaml")  # the ETL's own parser accepts it
    assert cfg.media_root == (demo / "media").resolve() or cfg.media_root == demo / "media"


def test_dispatch_times_use_the_declared_format(demo: Path, sources: dict) -> None:
    inc = _read_table(demo, sources, "incidents")
    arrived = inc["arrived_at"][inc["arrived_at"] != ""]
    assert arrived.str.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}").all()


def test_codes_are_text_with_leading_zeros(demo: Path, sources: dict) -> None:
    off = _read_table(demo, sources, "officers")
    assert off["police_no"].str.fullmatch(r"\d{6}|F\d{5}").all()
    assert off["police_no"].str.startswith("0").any()
    assert off["police_no"].str.startswith("F").any()
    units = _read_table(demo, sources, "org_units")
    assert units["unit_code"].str.fullmatch(r"\d{12}").all()
    assert "140400000000" in set(units["unit_code"]) and "140403000000" in set(units["unit_code"])
    assert set(units.loc[units["level"] == "county", "name"]) == {"长治市公安局潞州分局", "襄垣县公安局"}
    co = _read_table(demo, sources, "case_officers")
    assert co["police_no"].str.startswith("0").any()  # survived the CSV round trip


def test_ledger_workbooks(demo: Path) -> None:
    books = sorted((demo / "ledgers").glob("*.xlsx"))
    assert books
    for path in books:
        assert len(path.stem) == 12 and path.stem.isdigit()
        rows = list(load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
        assert set(LEDGER_COLUMNS) <= set(rows[0])
        status = rows[0].index("状态")
        assert {r[status] for r in rows[1:]} <= set(LEDGER_STATUS)


def test_small_scale_counts() -> None:
    d = build("small", 2026)
    units = d["org_units"]
    assert units["level"].value_counts().to_dict() == {"city": 1, "county": 2, "station": 6}
    assert 50 <= len(d["officers"]) <= 80
    assert 55 <= len(d["devices"]) <= 90
    inc = d["incidents"]
    onsite = inc[(inc["on_site"] == 1) & (inc["arrived_at"] != NULL_T)]
    assert 1700 <= len(onsite) <= 2300
    assert 500 <= len(d["cases"]) <= 700
    assert 14_000 <= len(d["clips"]) <= 26_000
    assert set(d["devices"]["kind"]) == {"bodycam", "camera", "phone"}
    assert set(d["devices"]["status"]) == {"in_use", "spare", "repair", "scrapped", "lost"}
    # every configured action type, plus the one unknown code of the data-quality demo (etl.demo.faults)
    assert set(d["case_actions"]["action_type"]) == set(ACTIONS) | {faults.UNKNOWN_ACTION}
    assert set(d["deliveries"]["method"]) == {"direct", "left", "mail", "entrusted", "public_notice"}
    assert set(d["cases"]["procedure"]) == {"simple", "general"}
    # realistic clips: 10-30 minute segments, imports within hours, about 10 % without police_no
    clips = d["clips"]
    length = clips["ended_at"] - clips["started_at"]
    assert length.median() > 300 and length.max() <= 1800 + 60
    assert 0.05 < clips["police_no"].isna().mean() < 0.15
    assert clips["started_at"].min() >= pd.Timestamp("2025-12-01").timestamp() - 3600
    for table, cols in {
        "clips": ["imported_at", "updated_at", "ended_at"],
        "access_log": ["at"],
        "cases": ["updated_at"],
        "incidents": ["updated_at"],
    }.items():
        for col in cols:
            assert d[table][col].max() <= pd.Timestamp("2026-11-28 23:59:59").timestamp(), (table, col)


def test_manifest_covers_every_rule(manifest: pd.DataFrame) -> None:
    assert list(manifest.columns) == MANIFEST_COLUMNS
    assert set(manifest["rule_id"]) == set(RULES)
    for rule, spec in RULES.items():
        rows = manifest[manifest["rule_id"] == rule]
        for col in spec["key"]:
            assert (rows[col] != "").all(), (rule, col)
        keys = [object_key(rule, r) for r in rows.to_dict("records")]
        assert len(keys) == len(set(keys)), f"duplicate keys for {rule}"


def test_breaches_are_a_minority() -> None:
    d = build("small", 2026)
    m = build_manifest(d, {"hash": d["hash_ids"], "missing": d["missing_ids"]})
    counts = m["rule_id"].value_counts()
    n_events = len(d["coverage"])
    assert counts[["AV-NONE", "AV-GAP"]].sum() / n_events < 0.10
    assert counts["UPLOAD-LATE"] / len(d["clips"]) < 0.06
    assert counts["DOC-MISSING"] / len(d["case_actions"]) < 0.08
    assert counts["DOC-SIGNATURE"] / len(d["case_documents"]) < 0.05
    assert counts["ACCESS-SCOPE"] / len(d["access_log"]) < 0.05
    excused = (d["coverage"]["status"] == "excused").sum()
    assert excused > 0  # excused events exist and are not in the manifest
    excused_ids = set(d["coverage"].loc[d["coverage"]["status"] == "excused", "incident_no"])
    assert not excused_ids & set(m.loc[m["rule_id"].isin(["AV-NONE", "AV-GAP", "AV-OFFICER"]), "incident_no"])


def test_coverage_agrees_with_a_per_second_count() -> None:
    """The manifest's coverage (sort and sweep) against brute force on a sample of events."""
    d = build("small", 2026)
    d["owner"] = clip_owners(d["clips"], d["device_assignments"])
    cov = coverage(d).set_index("incident_no")
    clips = d["clips"].assign(owner=d["owner"])
    att = d["incident_officers"]
    rng = np.random.default_rng(0)
    sample = list(rng.choice(cov.index.to_numpy(), 150, replace=False))
    sample += list(cov.index[cov["status"].isin(["partial", "none", "excused"])][:100])
    for inc in sample:
        a, e = int(cov.at[inc, "arrived_at"]), int(cov.at[inc, "ended_at"])
        who = set(att.loc[att["incident_no"] == inc, "police_no"])
        mine = clips[clips["owner"].isin(who) & (clips["started_at"] < e) & (clips["ended_at"] > a)]
        sec = np.zeros(e - a, dtype=bool)
        for s, t in zip(mine["started_at"], mine["ended_at"], strict=True):
            sec[max(s, a) - a : min(t, e) - a] = True
        assert sec.sum() == cov.at[inc, "covered"], inc
        # maximal uncovered runs longer than 30 s
        edges = np.diff(np.r_[0, (~sec).astype(int), 0])
        runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
        assert (runs > 30).sum() == cov.at[inc, "gaps"], inc


def test_equip_idle_is_the_same_under_both_readings() -> None:
    d = build("small", 2026)
    m = build_manifest(d, None)
    loose = equip_idle(d, d["coverage"]).sort_values(["device_sn", "month"]).reset_index(drop=True)
    strict = equip_idle(d, d["coverage"], at_event=True).sort_values(["device_sn", "month"]).reset_index(drop=True)
    assert len(loose) > 0
    assert loose.equals(strict)
    assert len(m[m["rule_id"] == "EQUIP-IDLE"]) == len(loose)


def test_media_files_and_hashes(demo: Path, manifest: pd.DataFrame) -> None:
    with sqlite3.connect(demo / "media.sqlite") as con:
        clips = pd.read_sql_query("SELECT clip_id, file_path, sha256, size_bytes, deleted_at FROM clips", con)
    altered = set(manifest.loc[manifest["rule_id"] == "INTEGRITY-HASH", "clip_id"])
    missing = set(manifest.loc[manifest["rule_id"] == "INTEGRITY-MISSING", "clip_id"])
    assert altered and missing
    root = demo / "media"
    for cid, rel, sha, size, deleted in clips.itertuples(index=False, name=None):
        path = root / rel
        if pd.notna(deleted) or cid in missing:
            assert not path.exists(), cid
            continue
        body = path.read_bytes()
        if cid in altered:
            assert hashlib.sha256(body).hexdigest() != sha
        else:
            assert hashlib.sha256(body).hexdigest() == sha and len(body) == size
    assert not missing & set(clips.loc[clips["deleted_at"].notna(), "clip_id"])


def test_users_yaml(demo: Path) -> None:
    users = yaml.safe_load((demo / "users.yaml").read_text(encoding="utf-8"))["users"]
    assert set(users) == {"leader", "legal", "equipment", "it", "county", "station", "officer"}
    assert users["county"]["unit_code"] == "140403000000" and users["county"]["role"] == "unit_admin"
    assert users["station"]["unit_code"].startswith("140403") and users["station"]["unit_code"] != "140403000000"
    assert {u["role"] for u in users.values()} == {"leader", "legal", "equipment", "it", "unit_admin", "officer"}
    # the officer (issue 18): a police officer of the station account's unit, by police number
    assert users["officer"]["unit_code"] == users["station"]["unit_code"] and users["officer"]["police_no"]
    for u in users.values():
        assert bcrypt.checkpw(DEMO_PASSWORD.encode(), u["password_hash"].encode())
        assert not bcrypt.checkpw(b"wrong", u["password_hash"].encode())


def test_rules_find_exactly_the_manifest(demo: Path, manifest: pd.DataFrame, tmp_path: Path) -> None:
    """End to end: `etl run` on the demo; recall and precision of the rules against the manifest are 100 %."""
    import sqlalchemy as sa

    from etl.pipeline import run

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(demo / "sources.yaml", warehouse=url)
    found = pd.read_sql("SELECT * FROM v_findings", sa.create_engine(url))
    found = found.astype(object).where(found.notna(), None)
    idle = found["rule_id"] == "EQUIP-IDLE"
    found["month"] = np.where(idle, found["occurred_at"].astype(str).str[:7], None)
    if "doc_type" not in found:
        found["doc_type"] = None
    expected = {object_key(r["rule_id"], r) for r in manifest.to_dict("records")}
    got = {object_key(r["rule_id"], r) for r in found.to_dict("records")}
    assert sorted(expected - got, key=str)[:10] == []  # recall
    assert sorted(got - expected, key=str)[:10] == []  # precision
    # rules v1.1: INTEGRITY-DELETED names the user of the clip's latest delete row (null when unregistered)
    with sqlite3.connect(demo / "media.sqlite") as con:
        dels = pd.read_sql_query("SELECT clip_id, user_no, at, log_id FROM access_log WHERE action = 'delete'", con)
    latest = dels.sort_values(["clip_id", "at", "log_id"]).drop_duplicates("clip_id", keep="last")
    latest = latest.set_index("clip_id")["user_no"]
    deleted = found[found["rule_id"] == "INTEGRITY-DELETED"]
    assert len(deleted) > 0
    named = deleted["clip_id"].map(latest)
    assert (deleted["police_no"].fillna("-") == named.fillna("-")).all()
    assert dels["clip_id"].duplicated().any()  # some clips carry two delete rows: the latest is the one named
    unlogged = set(found.loc[found["rule_id"] == "DELETE-UNLOGGED", "clip_id"])
    assert unlogged and not unlogged & set(dels["clip_id"])
    assert deleted.loc[deleted["clip_id"].isin(unlogged), "police_no"].isna().all()
    assert found.loc[found["rule_id"] == "DELETE-UNLOGGED", "police_no"].isna().all()
    # the data-quality queue holds exactly the demo's unjudgeable objects (etl.demo.faults), none of them a finding
    queue = pd.read_sql("SELECT kind, object_key FROM v_data_quality", sa.create_engine(url))
    planted = build("small", 2026)["unjudgeable"]
    assert {(k, o) for k, objs in planted.items() for o in objs} == set(queue.itertuples(index=False, name=None))
    assert not {o for objs in planted.values() for o in objs} & set(
        found[["incident_no", "clip_id", "action_id", "doc_id"]].stack()
    )
    # per officer (issue 18): every AV-NONE / AV-GAP finding names exactly the event's attending officers, and
    # the officers' records add up to the attendance of the on-site events
    eng = sa.create_engine(url)
    named = pd.read_sql("SELECT finding_key, police_no, cause FROM v_finding_officers", eng)
    attended = pd.read_sql(
        "SELECT o.incident_no, o.police_no FROM v_event_officers o JOIN v_event_coverage e USING (incident_no)", eng
    )
    av = found[found["rule_id"].isin(["AV-NONE", "AV-GAP"])][["finding_key", "incident_no"]]
    expect = av.merge(attended, on="incident_no")[["finding_key", "police_no"]]
    got_av = named[named["finding_key"].isin(av["finding_key"])]
    assert set(map(tuple, got_av[["finding_key", "police_no"]].to_numpy())) == set(map(tuple, expect.to_numpy()))
    assert got_av["cause"].isin(["no_device", "device_repair", "not_recorded"]).all()
    rec = pd.read_sql("SELECT * FROM v_officer_records", eng)
    years = rec[rec["period"].str.len() == 4]
    assert years["events_attended"].sum() == len(attended.drop_duplicates())
    assert ((rec["own_coverage"].dropna() >= 0) & (rec["own_coverage"].dropna() <= 1)).all()
    assert (rec["events_fully_recorded"] <= rec["events_attended"]).all()
    eng.dispose()


def test_demo_has_the_cases_of_rules_v11() -> None:
    """Approved cross-scope accesses (no finding), cross-scope ones approved by someone without a say (finding),
    deletions without a register row (DELETE-UNLOGGED)."""
    d = build("small", 2026)
    m = build_manifest(d, None)
    log = d["access_log"]
    offs = d["officers"].set_index("police_no")
    parent = dict(zip(d["org_units"]["unit_code"], d["org_units"]["parent_code"], strict=True))

    def scope(unit: str) -> set[str]:  # the units that have ``unit`` in scope
        out = set()
        while isinstance(unit, str):
            out.add(unit)
            unit = parent.get(unit)
        return out

    dev_unit = d["devices"].set_index("device_sn")["unit_code"]
    clip_unit = dev_unit.reindex(d["clips"].set_index("clip_id")["device_sn"].reindex(log["clip_id"])).to_numpy()
    user_unit = offs["unit_code"].reindex(log["user_no"]).to_numpy()
    appr_unit = offs["unit_code"].reindex(log["approver_no"]).to_numpy()
    outside = np.array([u not in scope(c) for u, c in zip(user_unit, clip_unit, strict=True)])
    appr_ok = np.array([a in scope(c) for a, c in zip(appr_unit, clip_unit, strict=True)])
    flagged = set(m.loc[m["rule_id"] == "ACCESS-SCOPE", "log_id"])
    views = (log["action"] == "view").to_numpy()
    approved = outside & views & appr_ok & (log["approved_at"] <= log["at"]).to_numpy()
    assert approved.sum() >= 3 and not set(log.loc[approved, "log_id"]) & flagged
    wrong = outside & views & log["approver_no"].notna().to_numpy() & ~appr_ok
    assert wrong.sum() >= 1 and set(log.loc[wrong, "log_id"]) <= flagged
    unlogged = m[m["rule_id"] == "DELETE-UNLOGGED"]
    assert len(unlogged) >= 1
    assert not set(unlogged["clip_id"]) & set(log.loc[log["action"] == "delete", "clip_id"])
