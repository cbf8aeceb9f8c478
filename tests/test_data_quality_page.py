"""The 数据质量 page under AppTest: who sees it, unit scope, and IT's counts without object keys."""

from __future__ import annotations

from pathlib import Path

import dashboard_fixtures as F
import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.auth import ROLE_PAGES
from tests.page_helpers import warehouse_env

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")
PAGE = str(ROOT / "pages" / "data_quality.py")


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    w = F.build(tmp_path_factory.mktemp("dq"))
    engine = sa.create_engine(w.url)
    with engine.begin() as conn:  # one queue row per data unit, its object key naming the unit's tag
        conn.execute(
            sa.text(
                "INSERT INTO data_quality (kind, source, table_name, object_key, unit_code, detail, first_seen_run,"
                " last_seen_run, current) VALUES ('unknown_officer', 'case_system', 'case_officers', :k, :u,"
                " '人员名册中无此警号', 1, 1, 1)"
            ),
            [{"k": f"OBJ-{tag}-KEY", "u": F.code(tag)} for tag in F.DATA_UNITS],
        )
    engine.dispose()
    with warehouse_env(w.url):
        yield w


def _page(username: str) -> AppTest:
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = F.USERS[username][0]
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _text(at: AppTest) -> str:
    return "\n".join(df.value.to_csv() for df in at.dataframe) + "\n".join(m.value for m in at.metric)


@pytest.mark.parametrize("username", ["leader", "legal", "it", "county", "station"])
def test_who_sees_what(wh, username: str) -> None:
    assert "data_quality" in ROLE_PAGES[F.USERS[username][1]]
    text = _text(_page(username))
    tag = F.USER_TAG[username]
    mine = [t for t in F.DATA_UNITS if t in F.SCOPES[tag]]
    others = [t for t in F.DATA_UNITS if t not in F.SCOPES[tag]]
    if username == "it":  # counts per unit and kind, never an object key
        assert "OBJ-" not in text and F.code("A1") in text
    else:
        assert all(f"OBJ-{t}-KEY" in text for t in mine), (username, mine)
    assert not [t for t in others if f"OBJ-{t}-KEY" in text or F.code(t) in text], username


def test_equipment_role_cannot_open_it(wh) -> None:
    assert "data_quality" not in ROLE_PAGES["equipment"]
