"""Helpers and fixtures of the spot-check, rectification and inbox tests (on the demo warehouses of
``tests.supervision_fixtures``).

``sqlite_engine``: an engine on a private copy of the demo warehouse (SQLite).  ``county_legal``: a legal user
whose scope is the first county only (a county's legal office).  ``drawn``: a campaign of on-site events of
2026-07 drawn on an engine.  ``unvetoed_item``: a sampled event of a unit whose score for the event's month is
not capped by a veto, so that a failed review visibly moves it.
"""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.supervision import spotcheck
from etl.users import User
from etl.warehouse.db import make_engine
from tests.supervision_fixtures import COUNTY_A, frame, user

PERIOD = "2026-07"


@pytest.fixture
def sqlite_engine(fresh_sqlite: str):  # noqa: ANN201
    eng = make_engine(fresh_sqlite)
    yield eng
    eng.dispose()


def county_legal(engine: sa.Engine) -> User:
    """A county legal office: role legal, scope the first county and its stations."""
    units = frame(engine, "SELECT unit_code FROM org_units WHERE unit_code LIKE :p", p=COUNTY_A[:6] + "%")
    return User("county_legal", "县局法制", "legal", COUNTY_A, tuple(sorted(units["unit_code"])))


def drawn(engine: sa.Engine, *, per_unit: int = 3, seed: int = 11, kind: str = "events", **kw: object) -> dict:
    return spotcheck.draw(
        engine, user(engine, "legal"), period=PERIOD, kind=kind, per_unit=per_unit, seed=seed, reason="月度抽查", **kw
    )


def sample_of(engine: sa.Engine, campaign_id: int) -> list[tuple[str, str]]:
    df = frame(
        engine,
        "SELECT unit_code, object_key FROM sup_spotcheck_items WHERE campaign_id = :c ORDER BY draw_order",
        c=campaign_id,
    )
    return list(df.itertuples(index=False, name=None))


def unvetoed_item(engine: sa.Engine, campaign_id: int) -> dict:
    """A sampled object of the campaign whose unit is not vetoed (and has a total) in the object's month."""
    items = spotcheck.items(engine, campaign_id)
    scores = frame(engine, "SELECT period, unit_code, total, veto FROM v_unit_scores")
    ok = scores[(scores["veto"] == 0) & scores["total"].notna()]
    merged = items.merge(ok, left_on=["month", "unit_code"], right_on=["period", "unit_code"])
    assert not merged.empty, "the demo has a unit without a veto in 2026-07"
    row = merged.sort_values(["unit_code", "draw_order"]).iloc[0]
    return {"object_key": row["object_key"], "unit_code": row["unit_code"], "month": row["month"]}


def total(engine: sa.Engine, unit_code: str, period: str) -> float:
    df = frame(engine, "SELECT total FROM v_unit_scores WHERE unit_code = :u AND period = :p", u=unit_code, p=period)
    return float(df["total"].iloc[0])


def counts(engine: sa.Engine, table: str) -> int:
    return int(frame(engine, f"SELECT COUNT(*) AS n FROM {table}")["n"].iloc[0])


def as_records(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict("records")
