"""The query layer: unit scope on every query, re-checked ids, caches keyed by scope; users and roles."""

from __future__ import annotations

import dashboard_fixtures as F
import pytest
import streamlit as st

from dashboard import auth, demo_logins, queries
from etl.errors import ConfigError

P = "2026-07"


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    return F.build(tmp_path_factory.mktemp("q"))


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()


def scope_of(wh, username):
    users = auth.load_users(wh.users_file)
    return auth.context_for(username, users, queries.org_units(wh.url)).scope


def all_lists(url, scope, unit=None):
    """Every list/aggregate query a page runs, for one scope and unit selection."""
    return {
        "status": queries.event_status_counts(url, scope, unit, P),
        "articles": queries.findings_by_article(url, scope, unit, P),
        "scores": queries.scores(url, scope, unit, P),
        "heat": queries.coverage_by_unit_month(url, scope, unit, "2026"),
        "events": queries.events(url, scope, unit, P),
        "cases": queries.search_cases(url, scope, unit, ""),
        "device_counts": queries.device_counts(url, scope, unit),
        "devices": queries.devices(url, scope, unit, P),
        "access": queries.access_records(url, scope, unit, P),
        "findings": queries.findings_list(url, scope, unit, "2026"),
        "units": queries.units(url, scope),
    }


def test_scopes_from_users_file(wh):
    assert scope_of(wh, "leader") is None
    assert set(scope_of(wh, "county")) == {F.code(t) for t in ("A0", "A1", "A2")}
    assert scope_of(wh, "station") == (F.code("A1"),)


@pytest.mark.parametrize("username", ["station", "county"])
def test_lists_hold_only_units_in_scope(wh, username):
    scope = scope_of(wh, username)
    for name, df in all_lists(wh.url, scope).items():
        assert not df.empty, name  # the user does see their own rows
        text = df.to_csv()
        assert not [m for m in F.foreign_markers(F.USER_TAG[username]) if m in text], name


@pytest.mark.parametrize("username", ["station", "county"])
def test_foreign_unit_selection_is_refused(wh, username):
    scope = scope_of(wh, username)
    for other in ("B1", "B0", "C0"):
        with pytest.raises(queries.ScopeError):
            all_lists(wh.url, scope, F.code(other))
        with pytest.raises(queries.ScopeError):
            queries.metrics(wh.url, scope, F.code(other), P)
        with pytest.raises(queries.ScopeError):
            queries.item_scores(wh.url, scope, F.code(other), P)


def test_station_cannot_select_its_county(wh):
    with pytest.raises(queries.ScopeError):
        queries.events(wh.url, scope_of(wh, "station"), F.code("A0"), P)


@pytest.mark.parametrize("username", ["station", "county"])
def test_detail_lookups_of_foreign_ids_are_empty(wh, username):
    scope = scope_of(wh, username)
    other = "B1"
    assert queries.event_detail(wh.url, scope, f"INC-{other}-002")["event"].empty
    d = queries.case_detail(wh.url, scope, f"CASE-{other}-001")
    assert all(v.empty for v in d.values())
    assert queries.device_history(wh.url, scope, f"DEV-{other}-01").empty
    assert queries.access_detail(wh.url, scope, f"LOG-{other}-001").empty
    own = "A1"
    assert len(queries.event_detail(wh.url, scope, f"INC-{own}-002")["event"]) == 1
    assert len(queries.case_detail(wh.url, scope, f"CASE-{own}-001")["case"]) == 1


def test_county_sees_its_stations_and_city_sees_all(wh):
    county = set(queries.events(wh.url, scope_of(wh, "county"), None, P)["unit_code"])
    assert county == {F.code(t) for t in ("A0", "A1", "A2")}
    city = set(queries.events(wh.url, None, None, P)["unit_code"])
    assert city == {F.code(t) for t in F.DATA_UNITS}


def test_cached_results_do_not_cross_scopes(wh):
    county, station = scope_of(wh, "county"), scope_of(wh, "station")
    first = queries.events(wh.url, county, None, P)
    second = queries.events(wh.url, station, None, P)  # same other arguments, warm cache
    assert len(first) == 12 and len(second) == 4
    assert set(second["unit_code"]) == {F.code("A1")}


def test_event_detail_parts(wh):
    d = queries.event_detail(wh.url, None, "INC-A2-002")
    assert d["event"]["status"].iloc[0] == "partial"
    assert list(d["clips"]["police_no"]) == ["P-A2-01"]  # holder filled from the device assignment
    assert len(d["gaps"]) == 1 and len(d["officers"]) == 2
    assert len(queries.event_detail(wh.url, None, "INC-A2-004")["report"]) == 1


def test_metrics_and_item_rules(wh):
    m = queries.metrics(wh.url, scope_of(wh, "station"), None, P)
    assert set(m["metric_id"]) == {"whole_process_rate", "issue_rate"}
    rules = queries.item_rules("measures-2026")
    assert "AV-GAP" in rules["onsite_recording"] and "INTEGRITY-MISSING" in rules["access_integrity"]
    assert queries.item_rules("no-such-scheme") == {}


def test_metric_item_drilldown_shows_the_metric_not_every_finding(wh):
    """A metric item (platform-style) loses its points to the metric's value: the drill-down shows the metric
    against its target and no findings (it used to list every finding of the unit); a rate item lists the
    findings of its rules only."""
    unit = F.code("A1")
    assert queries.item_rules("platform-style")["whole_process_rate"] == []
    got = queries.item_lost_points(wh.url, None, unit, P, "platform-style", "whole_process_rate")
    assert got["findings"].empty and not queries.findings_list(wh.url, None, unit, P).empty
    m = got["metric"].iloc[0]
    assert (m["metric_id"], m["value"], m["target"]) == ("whole_process_rate", 0.5, 1.0)
    assert m["points_lost"] == pytest.approx(15.0)  # 30 points x (1 - 50 %)
    av = queries.item_lost_points(wh.url, None, unit, P, "measures-2026", "onsite_recording")
    assert av["metric"].empty and not av["findings"].empty
    assert set(av["findings"]["rule_id"]) <= set(queries.item_rules("measures-2026")["onsite_recording"])
    unknown = queries.item_lost_points(wh.url, None, unit, P, "platform-style", "onsite_recording")
    assert unknown["metric"].empty and unknown["findings"].empty
    with pytest.raises(queries.ScopeError):
        queries.item_lost_points(wh.url, (unit,), F.code("B1"), P, "platform-style", "whole_process_rate")


def test_users_file_validation(tmp_path):
    bad = tmp_path / "users.yaml"
    bad.write_text("users:\n  x: {name: a, role: superuser, password_hash: h}\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        auth.load_users(bad)
    bad.write_text("users:\n  x: {name: a, role: unit_admin, password_hash: h}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unit_code"):
        auth.load_users(bad)
    with pytest.raises(ConfigError):
        auth.load_users(tmp_path / "missing.yaml")


def test_credentials_are_a_fresh_copy(wh):
    users = auth.load_users(wh.users_file)
    c1 = auth.credentials(users)
    c1["usernames"]["leader"]["roles"].append("legal")
    assert auth.credentials(users)["usernames"]["leader"]["roles"] == ["leader"]


def test_role_comes_from_users_file_not_session(wh):
    users = auth.load_users(wh.users_file)
    assert auth.context_for("ghost", users, queries.org_units(wh.url)) is None
    assert auth.context_for("STATION", users, queries.org_units(wh.url)).role == "unit_admin"


def test_demo_users_file_found_from_latest_run(wh, monkeypatch):
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    assert auth.users_file(wh.url) == wh.users_file
    assert queries.latest_sources_file(wh.url) == str(wh.users_file.parent / "sources.yaml")
    monkeypatch.setenv("DASHBOARD_USERS_FILE", "/etc/prod-users.yaml")
    assert str(auth.users_file(wh.url)) == "/etc/prod-users.yaml"


def test_cookie_key_is_random_unless_configured(monkeypatch):
    monkeypatch.delenv("DASHBOARD_COOKIE_KEY", raising=False)
    key = auth.cookie_key()
    assert len(key) == 64 and key == auth.cookie_key()
    monkeypatch.setenv("DASHBOARD_COOKIE_KEY", "from-env")
    assert auth.cookie_key() == "from-env"


def test_demo_logins_lists_every_user(wh, capsys):
    assert demo_logins.main([str(wh.demo_dir)]) == 0
    out = capsys.readouterr().out
    assert "Demo#2026" in out and all(u in out for u in F.USERS)
    assert demo_logins.main(["/nonexistent"]) == 1


def test_audit_log_is_append_only_in_code():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    code = "\n".join(
        p.read_text(encoding="utf-8")
        for p in [root / "dashboard" / "app.py", *(root / "dashboard").glob("*.py"), *(root / "pages").glob("*.py")]
    )
    lowered = code.lower()
    assert "update audit_log" not in lowered and "delete from audit_log" not in lowered
    assert "unsafe_allow_html" not in code


def test_warehouse_sql_runs_only_in_the_query_layer():
    """auth, audit, ui, the pages...: no SQL and no direct warehouse calls outside dashboard/queries.py."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    files = [p for p in [*(root / "dashboard").glob("*.py"), *(root / "pages").glob("*.py")] if p.name != "queries.py"]
    for p in files:
        code = p.read_text(encoding="utf-8")
        for marker in ("read_df", "sa.insert", "sa.text", "exec_driver_sql", "SELECT ", "INSERT "):
            assert marker not in code, (p.name, marker)


def test_workbook_download_bytes_respect_scope(wh):
    from dashboard import exports

    scope = scope_of(wh, "station")
    data = exports.assessment_workbook(wh.url, P, F.code("A1"), "station", scope)
    assert data[:2] == b"PK"
    with pytest.raises(queries.ScopeError):
        exports.assessment_workbook(wh.url, P, F.code("B1"), "station", scope)


def test_cookie_issued_before_logout_is_revoked():
    day = 86400 * auth.COOKIE_EXPIRY_DAYS
    token = {"username": "legal", "exp_date": 1000.0 + day}  # issued at t=1000
    assert not auth.is_revoked(token, {})
    assert auth.is_revoked(token, {"legal": 1500.0})
    assert not auth.is_revoked({"username": "legal", "exp_date": 2000.0 + day}, {"legal": 1500.0})
    assert not auth.is_revoked(None, {"legal": 1.0}) and not auth.is_revoked(False, {"legal": 1.0})


@pytest.mark.postgres
def test_query_layer_on_postgresql(tmp_path, pg_url):
    """The same queries and scope rules on PostgreSQL (timestamps, to_char months, expanding IN)."""
    w = F.build(tmp_path, pg_url)
    try:
        station = (F.code("A1"),)
        lists = all_lists(w.url, station)
        assert all(not df.empty for df in lists.values())
        assert set(lists["events"]["unit_code"]) == {F.code("A1")}
        assert queries.available_periods(w.url)["month"] == ["2026-07", "2026-06"]
        assert len(queries.event_detail(w.url, station, "INC-A1-002")["clips"]) == 1
        assert queries.event_detail(w.url, station, "INC-B1-002")["event"].empty
        assert len(queries.case_detail(w.url, station, "CASE-A1-001")["clips"]) == 1
        assert not queries.table_rows(w.url).empty and not queries.etl_runs(w.url, "legal").empty
    finally:
        queries.engine(w.url).dispose()


def test_a_run_without_a_message_shows_a_blank(tmp_path) -> None:  # noqa: ANN001
    """The 数据 page's run list: a run that left no message (every successful run) reads blank, not None."""
    import sqlalchemy as sa

    from etl.warehouse.schema import ensure_schema

    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        ensure_schema(conn)
        conn.exec_driver_sql("INSERT INTO etl_runs (status, message) VALUES ('ok', NULL), ('failed', '源文件缺失')")
    eng.dispose()
    runs = queries.etl_runs(url, "legal")
    assert runs["message"].tolist() == ["源文件缺失", ""]
