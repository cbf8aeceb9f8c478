"""One way to set up rule tests: tiny source tables -> warehouse -> rules.

``load_scenario`` creates the warehouse, fills the mirror tables (and
optionally ``media_files``) and evaluates the rules.  Every rule test goes
through it, so switching it to the full ETL pipeline later changes no test.
``world()`` is a small organisation (city, two counties, three stations) with
officers, devices, assignments and admins that tests extend.
"""

from __future__ import annotations

import copy
from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from etl.sources.contract import TABLES
from etl.warehouse.db import bulk_insert, make_engine, read_df
from etl.warehouse.distribution import backfill as fill_counties  # the load sets it; these rows skip the load
from etl.warehouse.schema import ensure_schema

AS_OF = "2026-03-31 23:59:59"
CITY, K1, K2 = "140400000000", "140403000000", "140404000000"
S1, S2, S3 = "140403510000", "140403520000", "140404510000"
P1, P2, P3, P4 = "010001", "010002", "010003", "010004"
LEADER_K1, LEADER_S1, LEADER_CITY = "000001", "000002", "000003"
D1, D2, D3, D4, D5 = "SN-D1", "SN-D2", "SN-PHONE3", "SN-D4", "SN-D5"
T0 = "2026-01-01 00:00:00"
UPD = "2026-01-01 00:00:00"

_BASE: dict[str, list[dict]] = {
    "org_units": [
        {"unit_code": CITY, "name": "长治市公安局", "parent_code": None, "level": "city"},
        {"unit_code": K1, "name": "潞州分局", "parent_code": CITY, "level": "county"},
        {"unit_code": K2, "name": "上党分局", "parent_code": CITY, "level": "county"},
        {"unit_code": S1, "name": "东街派出所", "parent_code": K1, "level": "station"},
        {"unit_code": S2, "name": "西街派出所", "parent_code": K1, "level": "station"},
        {"unit_code": S3, "name": "韩店派出所", "parent_code": K2, "level": "station"},
    ],
    "officers": [
        {"police_no": P1, "name": "张三", "unit_code": S1, "kind": "police", "leader": 0, "active": 1},
        {"police_no": P2, "name": "李四", "unit_code": S1, "kind": "auxiliary", "leader": 0, "active": 1},
        {"police_no": P3, "name": "王五", "unit_code": S2, "kind": "police", "leader": 0, "active": 1},
        {"police_no": P4, "name": "赵六", "unit_code": S3, "kind": "police", "leader": 0, "active": 1},
        {"police_no": LEADER_K1, "name": "钱局长", "unit_code": K1, "kind": "police", "leader": 1, "active": 1},
        {"police_no": LEADER_S1, "name": "孙所长", "unit_code": S1, "kind": "police", "leader": 1, "active": 1},
        {"police_no": LEADER_CITY, "name": "周局长", "unit_code": CITY, "kind": "police", "leader": 1, "active": 1},
    ],
    "devices": [
        {"device_sn": D1, "kind": "bodycam", "model": "DSJ-1", "unit_code": S1, "status": "in_use", "status_since": T0},
        {"device_sn": D2, "kind": "bodycam", "model": "DSJ-1", "unit_code": S1, "status": "in_use", "status_since": T0},
        {"device_sn": D3, "kind": "phone", "model": "执法手机", "unit_code": S1, "status": "spare", "status_since": T0},
        {"device_sn": D4, "kind": "bodycam", "model": "DSJ-1", "unit_code": S2, "status": "in_use", "status_since": T0},
        {"device_sn": D5, "kind": "bodycam", "model": "DSJ-1", "unit_code": S3, "status": "spare", "status_since": T0},
    ],
    "device_assignments": [
        {"device_sn": D1, "police_no": P1, "from_at": T0, "to_at": None},
        {"device_sn": D2, "police_no": P2, "from_at": T0, "to_at": None},
        {"device_sn": D4, "police_no": P3, "from_at": T0, "to_at": None},
    ],
    "unit_admins": [
        {"unit_code": S1, "police_no": LEADER_S1, "from_at": T0, "to_at": None},
        {"unit_code": S2, "police_no": P3, "from_at": T0, "to_at": None},
        {"unit_code": S3, "police_no": P4, "from_at": T0, "to_at": None},
    ],
}

# Defaults filled into rows that leave these columns out.
_DEFAULTS = {
    "cases": {
        "procedure": "general",
        "source": "other",
        "is_major": 0,
        "emergency_start": 0,
        "filed": 1,
        "enforcement_power": 0,
        "updated_at": UPD,
        "unit_code": S1,
        "registered_at": "2026-02-01 09:00:00",
    },
    "case_actions": {"updated_at": UPD, "police_no": P1},
    "case_documents": {"updated_at": UPD},
    "incidents": {"on_site": 1, "updated_at": UPD, "unit_code": S1, "category": "纠纷"},
    "clips": {"updated_at": UPD, "is_evidence": 0, "size_bytes": 1000, "sha256": "ab" * 32, "imported_at": None},
}


def world(**extra: list[dict]) -> dict[str, list[dict]]:
    """The base organisation plus ``extra`` tables (rows appended; ``drop_<table>=True`` not needed)."""
    w = copy.deepcopy(_BASE)
    for name, rows in extra.items():
        w.setdefault(name, []).extend(copy.deepcopy(rows))
    return w


def _frame(table: str, rows: list[dict]) -> pd.DataFrame:
    cols = TABLES[table].column_names if table in TABLES else list(rows[0])
    defaults = _DEFAULTS.get(table, {})
    unknown = {k for r in rows for k in r} - set(cols)
    if unknown:
        raise KeyError(f"{table}: unknown columns {sorted(unknown)}")
    full = [{c: r.get(c, defaults.get(c)) for c in cols} for r in rows]
    if table == "clips":
        for r in full:
            if r["imported_at"] is None:
                r["imported_at"] = r["ended_at"]
    return pd.DataFrame(full, columns=cols).astype(object)


def load_scenario(
    url: str,
    tables: dict[str, list[dict]],
    as_of: str = AS_OF,
    *,
    media_files: list[dict] | None = None,
    integrity_checked: bool | None = None,
    evaluate: bool = True,
) -> Engine:
    """Create the warehouse at ``url``, load ``tables`` into the mirrors and evaluate the rules."""
    engine = make_engine(url)
    with engine.begin() as conn:
        ensure_schema(conn)
        for table, rows in tables.items():
            if rows:
                bulk_insert(conn, table, _frame(table, rows))
        if media_files:
            bulk_insert(conn, "media_files", pd.DataFrame(media_files))
        fill_counties(conn)
    if evaluate:
        run_rules(
            engine, as_of, integrity_checked=media_files is not None if integrity_checked is None else integrity_checked
        )
    return engine


def run_rules(engine: Engine, as_of: str = AS_OF, *, integrity_checked: bool = False) -> dict:
    from etl.rules import config, coverage, findings

    cfg = config.load()
    when = datetime.strptime(as_of, "%Y-%m-%d %H:%M:%S")
    with engine.begin() as conn:
        cov = coverage.compute(conn, when, cfg)
        return findings.compute(conn, when, cfg, integrity_checked=integrity_checked, coverage=cov).counts


def findings(engine: Engine, rule_id: str | None = None) -> pd.DataFrame:
    sql = "SELECT * FROM findings" + (" WHERE rule_id = :r" if rule_id else "") + " ORDER BY finding_key"
    return read_df(engine, sql, {"r": rule_id} if rule_id else None)


def keys(engine: Engine, rule_id: str, *cols: str) -> set[tuple]:
    """The object keys of a rule's findings (default: keys.RULES key columns)."""
    from etl.rules.keys import RULES

    cols = cols or RULES[rule_id]["key"]
    df = findings(engine, rule_id)
    return {tuple(None if pd.isna(v) else str(v) for v in row) for row in df[list(cols)].itertuples(index=False)}


def coverage_rows(engine: Engine) -> dict[str, dict]:
    df = read_df(engine, "SELECT * FROM v_event_coverage ORDER BY incident_no")
    return {r["incident_no"]: r for r in df.to_dict("records")}


def table(engine: Engine, name: str) -> pd.DataFrame:
    return read_df(engine, sa.text(f"SELECT * FROM {name}"))
