"""AppTest helpers of the attack suite."""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
import dashboard_fixtures as F  # noqa: E402

ROOT = TESTS.parent
APP = str(ROOT / "dashboard" / "app.py")


def logged_in(username: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = F.USERS[username][0]
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
    return at


def login_form(at: AppTest, username: str, password: str) -> AppTest:
    at.text_input[0].input(username)
    at.text_input[1].input(password)
    at.button[0].click().run()
    return at


def rows(url: str, sql: str, **params) -> list[tuple]:
    eng = sa.create_engine(url)
    try:
        with eng.connect() as c:
            return [tuple(r) for r in c.execute(sa.text(sql), params)]
    finally:
        eng.dispose()


def texts(at: AppTest) -> str:
    parts = [df.value.to_csv() for df in at.dataframe]
    for kind in ("text", "markdown", "caption", "title", "subheader", "error", "warning", "info", "success"):
        parts += [str(getattr(el, "value", "")) for el in at.get(kind)]
    return "\n".join(parts)
