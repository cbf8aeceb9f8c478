"""The attack suite's fixtures: the dashboard fixture warehouse (tests/dashboard_fixtures.py) and AppTest helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import streamlit as st

TESTS = Path(__file__).resolve().parent.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import dashboard_fixtures as F  # noqa: E402

ROOT = TESTS.parent
APP = str(ROOT / "dashboard" / "app.py")


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    w = F.build(tmp_path_factory.mktemp("sec"))
    old = os.environ.get("WAREHOUSE_URL")
    os.environ["WAREHOUSE_URL"] = w.url
    yield w
    if old is None:
        os.environ.pop("WAREHOUSE_URL", None)
    else:
        os.environ["WAREHOUSE_URL"] = old


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    yield
