"""Threat: error details (stack traces with paths and SQL) shown to users."""

from __future__ import annotations

import logging
import tomllib

from helpers import ROOT, logged_in, open_page, texts

from dashboard import queries


def test_show_error_details_is_off():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] in ("none", False, "false")


def test_a_failing_page_shows_a_short_message_with_an_id_and_logs_the_details(wh, monkeypatch, caplog):
    def broken(*_a, **_k):
        raise RuntimeError("SELECT secret FROM /srv/avsup/warehouse.sqlite")

    at = logged_in("it")
    monkeypatch.setattr(queries, "table_rows", broken)
    with caplog.at_level(logging.ERROR, logger="avsup.dashboard"):
        at = open_page(at, "data")
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("页面出错") and "错误编号" in errors[0]
    assert not at.exception
    shown = texts(at)
    assert "SELECT secret" not in shown and "/srv/avsup" not in shown and "Traceback" not in shown
    error_id = errors[0].rsplit("错误编号", 1)[1].strip(" ）)")
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and "SELECT secret" in str(logged[0].exc_info[1])
