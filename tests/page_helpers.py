"""What the AppTest page tests of the supervision record share: a logged-in app on a demo warehouse (``wh``: a
dict with the warehouse ``url``, the demo's ``users`` and its ``users_file``), opening a page, the acting user,
reading rows back, and the page's buttons and success messages."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from dashboard import queries
from dashboard.auth import context_for, load_users

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "dashboard" / "app.py")


@contextlib.contextmanager
def warehouse_env(url: str) -> Iterator[None]:
    """``WAREHOUSE_URL`` set to ``url`` for the app under test, restored after (for fixtures wider than a test,
    where pytest's monkeypatch is not available)."""
    old = os.environ.get("WAREHOUSE_URL")
    os.environ["WAREHOUSE_URL"] = url
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("WAREHOUSE_URL", None)
        else:
            os.environ["WAREHOUSE_URL"] = old


def logged_in(wh: dict, username: str) -> AppTest:
    """The app with a session already authenticated as ``username`` (the login form is tested elsewhere)."""
    at = AppTest.from_file(APP, default_timeout=90)
    at.session_state["authentication_status"] = True
    at.session_state["username"] = username
    at.session_state["name"] = wh["users"][username]["name"]
    at.run()
    assert not at.exception, at.exception
    return at


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(str(ROOT / "pages" / f"{page}.py")).run()
    assert not at.exception, (page, at.exception)
    return at


def user(wh: dict, username: str):  # noqa: ANN201 - dashboard.auth.UserContext
    return context_for(username, load_users(wh["users_file"]), queries.org_units(wh["url"]))


def rows(url: str, sql: str, **params) -> list[tuple]:  # noqa: ANN003
    with sa.create_engine(url).connect() as c:
        return c.execute(sa.text(sql), params).fetchall()


def button(at: AppTest, label: str):  # noqa: ANN201 - a Streamlit testing Button
    return next(b for b in at.button if b.label == label)


def successes(at: AppTest, prefix: str) -> list[str]:
    return [s.value for s in at.success if s.value.startswith(prefix)]
