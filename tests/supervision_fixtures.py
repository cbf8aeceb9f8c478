"""Warehouses for the supervision tests: the small demo (no media) loaded on SQLite or PostgreSQL.

``demo_sources`` generates the demo once per session; ``fresh_sqlite`` copies a warehouse loaded from it
(one ETL run per session), ``load_pg`` loads it into a PostgreSQL database of its own.  ``snapshot`` reads every
supervision table and the audit log, so a test can prove that a refused write left them unchanged.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import generate
from etl.pipeline import run
from etl.users import User, resolve
from etl.warehouse.db import make_engine
from etl.warehouse.schema import SUPERVISION_TABLES

ROOT_DIR = Path(__file__).resolve().parent.parent
CITY, COUNTY_A, COUNTY_B = "140400000000", "140403000000", "140423000000"  # the demo's units (county: COUNTY_A)


@pytest.fixture(scope="session")
def demo_sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sources.yaml of the small demo (users.yaml beside it)."""
    out = tmp_path_factory.mktemp("supdemo") / "src"
    generate(out, scale="small", seed=2026, media=False)
    return out / "sources.yaml"


@pytest.fixture(scope="session")
def demo_sqlite_template(demo_sources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("supwh") / "template.sqlite"
    assert run(demo_sources, warehouse=f"sqlite:///{path}", progress=False).status == "ok"
    return path


@pytest.fixture
def fresh_sqlite(demo_sqlite_template: Path, tmp_path: Path) -> str:
    """URL of a private copy of the demo warehouse (SQLite)."""
    dst = tmp_path / "w.sqlite"
    src = sqlite3.connect(demo_sqlite_template)
    try:
        with sqlite3.connect(dst) as out:
            src.backup(out)
    finally:
        src.close()
    return f"sqlite:///{dst}"


def load_pg(demo_sources: Path, url: str) -> str:
    assert run(demo_sources, warehouse=url, progress=False).status == "ok"
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def demo_wh(request: pytest.FixtureRequest, demo_sources: Path) -> str:
    """The demo warehouse, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("fresh_sqlite")
    return load_pg(demo_sources, request.getfixturevalue("pg_url"))


@pytest.fixture
def engine(demo_wh: str):
    eng = make_engine(demo_wh)
    yield eng
    eng.dispose()


def user(engine: sa.Engine, name: str) -> User:
    return resolve(name, engine)


def snapshot(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every supervision table and the audit log, rows sorted (a refusal must leave this unchanged)."""
    out = {}
    with engine.connect() as conn:
        for name in (*SUPERVISION_TABLES, "audit_log"):
            rows = [tuple(map(str, r)) for r in conn.exec_driver_sql(f"SELECT * FROM {name}")]
            out[name] = sorted(rows)
    return out


def frame(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql_query(sa.text(sql), conn, params=params)


def scalar(engine: sa.Engine, sql: str, **params):  # noqa: ANN201
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def finding_of(engine: sa.Engine, *, rule: str | None = None, unit_prefix: str = "", offset: int = 0) -> dict:
    """One finding of the demo (ordered by key) of ``rule`` whose unit starts with ``unit_prefix``."""
    where = "unit_code LIKE :u" + (" AND rule_id = :r" if rule else "")
    df = frame(
        engine,
        f"SELECT finding_key, rule_id, unit_code, month FROM findings WHERE {where} ORDER BY finding_key "
        f"LIMIT 1 OFFSET {int(offset)}",
        u=unit_prefix + "%",
        r=rule,
    )
    assert not df.empty, (rule, unit_prefix)
    return df.iloc[0].to_dict()


def excused_incident(engine: sa.Engine, unit_prefix: str = "") -> str:
    """An excused event of the demo that has excused findings (its report can be rejected)."""
    return scalar(
        engine,
        "SELECT x.incident_no FROM excused_findings x JOIN event_coverage e ON e.incident_no = x.incident_no "
        "WHERE e.report_id IS NOT NULL AND x.unit_code LIKE :u ORDER BY x.incident_no LIMIT 1",
        u=unit_prefix + "%",
    )


def copy_sources(demo_sources: Path, dest: Path) -> Path:
    shutil.copytree(demo_sources.parent, dest)
    return dest / "sources.yaml"
