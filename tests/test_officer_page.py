"""The officer page (民警执法记录档案, issue 18) and the ``officer`` role, on a real ETL run of the small demo.

AppTest under every role: the officer sees their own record and nothing else (no picker, no other page, another
number by query parameter refused); a unit administrator ranks the officers of its scope and opens one with a
reason; leader and legal see every unit; equipment and IT cannot reach the page.  A number outside the scope shows
nothing and says so; an unknown number shows the data-quality notice.  Every view is audited (the officer's own
without a reason).  The query layer's scoping and its figures (own share per event against ``v_officer_records``)
run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
import yaml

from dashboard import logic, queries
from dashboard.auth import PAGES, ROLE_PAGES
from etl import periods
from etl.demo import generate
from etl.errors import ConfigError
from etl.pipeline import run as etl_run
from etl.rules.officers import FAMILY
from etl.times import ts_param
from etl.users import load_users, resolve, user_for
from etl.warehouse.scope import ScopeError
from tests.page_helpers import button, logged_in, open_page, rows, user, warehouse_env

ROOT = Path(__file__).resolve().parent.parent
UNKNOWN = "X99999"  # attends one demo event in the source, unknown to the roster: quarantined (未知人员)
COUNTY_B = "140423000000"


def _add_unknown_attendance(demo: Path, unit: str) -> str:
    """One attendance row naming UNKNOWN for an on-site event of ``unit`` (the dispatch CSV, GB18030)."""
    events = pd.read_csv(demo / "dispatch" / "警情.csv", encoding="gb18030", dtype=str)
    inc = sorted(events.loc[(events["管辖单位代码"] == unit) & (events["现场执法"] == "1"), "警情编号"])[0]
    with open(demo / "dispatch" / "出警人员.csv", "ab") as f:
        f.write(f"{inc},{UNKNOWN}\r\n".encode("gb18030"))
    return inc


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    d = tmp_path_factory.mktemp("officer_page")
    generate(d / "demo", scale="small", seed=2026, media=False)
    users = yaml.safe_load((d / "demo" / "users.yaml").read_text(encoding="utf-8"))["users"]
    _add_unknown_attendance(d / "demo", users["officer"]["unit_code"])
    url = f"sqlite:///{d / 'w.sqlite'}"
    assert etl_run(d / "demo" / "sources.yaml", url).status == "ok"
    with warehouse_env(url):
        yield {"url": url, "users": users, "users_file": d / "demo" / "users.yaml"}


@pytest.fixture(autouse=True)
def _fresh_caches():
    st.cache_data.clear()
    yield


def text_of(at) -> str:  # noqa: ANN001 - an AppTest
    """Everything a user could read: tables, metrics, texts, messages, options, charts."""
    parts = [df.value.to_csv() for df in at.dataframe]
    for kind in ("metric", "text", "markdown", "caption", "title", "subheader", "error", "warning", "info"):
        parts += [str(getattr(el, "value", "")) + str(getattr(el, "label", "")) for el in at.get(kind)]
    for sb in at.selectbox:
        parts += [str(o) for o in sb.options]
    parts += [el.proto.spec for el in at.get("plotly_chart")]
    return "\n".join(parts)


def officer_audits(url: str, username: str) -> list[tuple]:
    return rows(
        url,
        "SELECT role, page, action, object, reason FROM audit_log WHERE username = :u AND action <> 'login' "
        "ORDER BY id",
        u=username,
    )


def colleague(wh: dict) -> tuple[str, str]:
    """Another officer of the officer's station with a record: (police_no, name)."""
    me = wh["users"]["officer"]
    return rows(
        wh["url"],
        "SELECT o.police_no, o.name FROM officers o JOIN v_officer_records r ON r.police_no = o.police_no "
        "WHERE o.unit_code = :u AND o.police_no <> :p AND r.period = '2026' ORDER BY o.police_no",
        u=me["unit_code"],
        p=str(me["police_no"]),
    )[0]


def outsider(url: str) -> tuple[str, str]:
    """An officer of the other county with a record: (police_no, name)."""
    return rows(
        url,
        "SELECT o.police_no, o.name FROM officers o JOIN v_officer_records r ON r.police_no = o.police_no "
        "WHERE o.unit_code LIKE '140423%' AND r.period = '2026' ORDER BY o.police_no",
    )[0]


def pick_year(at):  # noqa: ANN001, ANN201
    at.radio(key="period_kind").set_value("year").run()
    return at


def give_reason(at, text: str = "执法档案核查"):  # noqa: ANN001, ANN201
    at.text_input(key="reason_text_officer").input(text)
    button(at, "确认").click().run()
    assert not at.exception, at.exception
    return at


# --- the role -------------------------------------------------------------------------------------------------


def test_officer_role_in_the_users_file(tmp_path: Path) -> None:
    h = "$2b$12$" + "a" * 53
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"users:\n  o: {{name: 民警, role: officer, unit_code: '1', password_hash: '{h}'}}\n", "utf-8")
    with pytest.raises(ConfigError, match="police_no"):
        load_users(bad)
    good = tmp_path / "good.yaml"
    good.write_text(
        f"users:\n  o: {{name: 民警, role: officer, unit_code: '140400000000', police_no: '012345', "
        f"password_hash: '{h}'}}\n",
        "utf-8",
    )
    units = pd.DataFrame({"unit_code": ["140400000000"], "parent_code": [None]})
    u = user_for("o", load_users(good), units)
    assert (u.role, u.police_no, u.scope) == ("officer", "012345", ())  # no unit at all: its own record only
    assert ROLE_PAGES["officer"] == ("officer",)
    assert all("officer" in ROLE_PAGES[r] for r in ("leader", "legal", "unit_admin"))
    assert not {"equipment", "it"} & {r for r, pages in ROLE_PAGES.items() if "officer" in pages}


def test_users_cli_adds_an_officer_only_with_a_police_number(tmp_path: Path) -> None:
    import subprocess
    import sys

    f = str(tmp_path / "users.yaml")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "dashboard", "users", "add", *args, "--file", f, "--password-stdin"],
            cwd=ROOT,
            input="Stark#Passwort-2026\n",
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = cli("o1", "--role", "officer")
    assert refused.returncode == 1 and "--police-no" in refused.stderr and not Path(f).exists()
    assert cli("o1", "--role", "officer", "--police-no", "012345", "--unit", "140403510000").returncode == 0
    assert load_users(Path(f))["o1"]["police_no"] == "012345"


def test_demo_officer_account_has_events_and_findings(wh):
    me = wh["users"]["officer"]
    assert me["role"] == "officer" and me["unit_code"] and me["police_no"]
    ((events, findings),) = rows(
        wh["url"],
        "SELECT events_attended, findings_av + findings_text + findings_access + findings_integrity "
        "FROM v_officer_records WHERE police_no = :p AND period = '2026'",
        p=str(me["police_no"]),
    )
    assert events > 0 and findings > 0


# --- the officer: own record only -------------------------------------------------------------------------------


def test_officer_sees_own_record_audited_without_a_reason(wh):
    me = wh["users"]["officer"]
    p = str(me["police_no"])
    at = pick_year(logged_in(wh, "officer"))  # the officer's only page is the default one
    assert not at.exception and not at.error
    assert at.title[0].value == "民警执法记录档案"
    assert not [s for s in at.selectbox if s.key in ("police_no", "unit")]  # nothing to pick: own record
    assert not at.text_input  # no reason asked
    assert f"范围：本人记录（警号 {p}）" in [c.value for c in at.caption]  # not a unit: their own record
    assert p in at.text[0].value and me["name"] in at.text[0].value
    metrics = {m.label: m.value for m in at.metric}
    (attended,) = rows(
        wh["url"], "SELECT events_attended FROM v_officer_records WHERE police_no = :p AND period = '2026'", p=p
    )[0]
    assert metrics["出警事件"] == f"{attended:,}"
    shown = set(at.dataframe[0].value["警情编号"])
    attended_events = {
        r[0] for r in rows(wh["url"], "SELECT incident_no FROM incident_officers WHERE police_no = :p", p=p)
    }
    assert shown and shown <= attended_events
    assert ("officer", "officer", "view_officer", p, None) in officer_audits(wh["url"], "officer")
    # one of their events: its timeline, audited (no reason either)
    inc = sorted(shown)[0]
    at.selectbox(key="incident").set_value(inc).run()
    assert not at.exception and at.get("plotly_chart")
    assert ("officer", "officer", "view_event", inc, None) in officer_audits(wh["url"], "officer")


def test_officer_cannot_open_any_other_page(wh):
    at = logged_in(wh, "officer")
    for page in set(PAGES) - {"officer"}:
        with pytest.raises(ValueError, match="navigation page"):
            open_page(at, page)


@pytest.mark.parametrize("which", ["colleague", "unknown", "malformed"])
def test_officer_cannot_see_another_number(wh, which):
    other, name = colleague(wh) if which == "colleague" else ((UNKNOWN if which == "unknown" else "<b>x"), "")
    at = logged_in(wh, "officer")
    at.query_params["police_no"] = other
    open_page(at, "officer")
    assert [w.value for w in at.warning] == ["无权查看该民警的记录"]
    assert not at.metric and not at.dataframe and not at.get("plotly_chart") and not at.text_input
    assert not at.info  # an officer is not told whether a number exists
    if name:
        assert name not in text_of(at)
    assert not [a for a in officer_audits(wh["url"], "officer") if a[3] == other]


def test_officer_user_gets_nothing_unit_wide(wh):
    ctx = user(wh, "officer")
    assert ctx.role == "officer" and ctx.scope == ()
    url = wh["url"]
    assert queries.officer_ranking(url, ctx.scope, None, "2026").empty
    assert queries.events(url, ctx.scope, None, "2026").empty
    assert queries.findings_list(url, ctx.scope, None, "2026").empty
    assert queries.access_records(url, ctx.scope, None, "2026").empty
    assert queries.units(url, ctx.scope).empty
    with pytest.raises(ScopeError):
        queries.officer_ranking(url, ctx.scope, ctx.unit_code, "2026")
    with pytest.raises(ScopeError):
        queries.metrics(url, ctx.scope, ctx.unit_code, "2026")


# --- unit administrators, leader, legal ---------------------------------------------------------------------


def test_unit_admin_ranks_its_officers_and_opens_one_with_a_reason(wh):
    at = pick_year(open_page(logged_in(wh, "county"), "officer"))
    assert not at.exception and not at.error
    ranking = at.dataframe[0].value
    in_scope = {r[0] for r in rows(wh["url"], "SELECT name FROM org_units WHERE unit_code LIKE '140403%'")}
    assert len(ranking) > 10 and len(set(ranking["单位"])) > 1 and set(ranking["单位"]) <= in_scope
    assert list(ranking["名次"]) == list(range(1, len(ranking) + 1))
    cov = ranking["本人记录覆盖率"].str.rstrip("%").replace("—", None).astype(float).dropna()
    assert cov.is_monotonic_decreasing
    p = str(wh["users"]["officer"]["police_no"])
    at.selectbox(key="police_no").set_value(p).run()
    assert not at.metric and len(at.dataframe) == 1  # nothing of the officer before the reason
    button(at, "确认").click().run()
    assert "请填写事由" in [w.value for w in at.warning] and not at.metric
    give_reason(at)
    assert {m.label for m in at.metric} >= {"出警事件", "全程记录", "本人记录覆盖率", "问题"}
    assert len(at.dataframe) == 4  # ranking, events, findings, access actions
    findings = at.dataframe[2].value
    assert len(findings) and set(findings["依据"]) <= {"出警人员", "当事民警", "办案人员"}
    assert ("unit_admin", "officer", "view_officer", p, "执法档案核查") in officer_audits(wh["url"], "county")
    inc = at.dataframe[1].value["警情编号"].iloc[0]
    at.selectbox(key="incident").set_value(inc).run()
    assert at.get("plotly_chart")
    assert ("unit_admin", "officer", "view_event", inc, "执法档案核查") in officer_audits(wh["url"], "county")


def test_out_of_scope_number_shows_nothing_and_says_so(wh):
    other, name = outsider(wh["url"])
    at = logged_in(wh, "county")
    at.query_params["police_no"] = other
    open_page(at, "officer")
    assert [w.value for w in at.warning] == ["无权查看该民警的记录"]
    assert not at.metric and not at.text_input and not at.get("plotly_chart")
    assert len(at.dataframe) == 1  # the county's own ranking only
    assert other not in set(at.dataframe[0].value["警号"]) and name not in text_of(at)
    assert not [a for a in officer_audits(wh["url"], "county") if a[3] == other]


def test_unknown_number_shows_the_data_quality_notice(wh):
    for username in ("county", "leader"):
        at = logged_in(wh, username)
        at.query_params["police_no"] = UNKNOWN
        open_page(at, "officer")
        assert not at.exception and not at.error and not at.warning
        (info,) = [i.value for i in at.info if UNKNOWN in i.value]
        assert "不在人员名册中" in info and "1 条" in info and "数据质量" in info
        assert not at.metric and not at.text_input
    (dq,) = rows(wh["url"], "SELECT unit_code FROM v_data_quality WHERE kind = 'unknown_officer'")
    assert dq[0] == wh["users"]["officer"]["unit_code"]
    at = logged_in(wh, "county")
    at.query_params["police_no"] = "<b>x</b>"  # not a police number: said so, never echoed
    open_page(at, "officer")
    assert [i.value for i in at.info if "不在人员名册中" in i.value] and "<b>" not in text_of(at)


@pytest.mark.parametrize("username", ["leader", "legal"])
def test_leader_and_legal_rank_every_unit(wh, username):
    at = pick_year(open_page(logged_in(wh, username), "officer"))
    assert not at.exception and not at.error
    shown = set(at.dataframe[0].value["单位"])
    for county in ("140403%", "140423%"):
        assert shown & {r[0] for r in rows(wh["url"], "SELECT name FROM org_units WHERE unit_code LIKE :u", u=county)}
    other, _ = outsider(wh["url"])
    at.selectbox(key="police_no").set_value(other).run()
    give_reason(at, "年度考评")
    assert at.metric
    assert (username, "officer", "view_officer", other, "年度考评") in officer_audits(wh["url"], username)


@pytest.mark.parametrize("username", ["equipment", "it"])
def test_equipment_and_it_cannot_reach_the_page(wh, username):
    at = logged_in(wh, username)
    with pytest.raises(ValueError, match="navigation page"):
        open_page(at, "officer")


# --- the query layer on SQLite and PostgreSQL ---------------------------------------------------------------


def test_query_layer_scopes_and_figures(demo_wh):
    url = demo_wh
    st.cache_data.clear()
    officer, county, leader = (resolve(n, url) for n in ("officer", "county", "leader"))
    p = officer.police_no
    other, _ = outsider(url)
    mate = rows(
        url,
        "SELECT police_no FROM officers WHERE unit_code = :u AND police_no <> :p ORDER BY police_no",
        u=officer.unit_code,
        p=p,
    )[0][0]

    def status(u, number):  # noqa: ANN001, ANN202
        return queries.officer_lookup(url, u.scope, u.police_no, number)["status"]

    assert [status(officer, n) for n in (p, mate, other, "ZZ0000")] == ["ok", "forbidden", "forbidden", "forbidden"]
    assert [status(county, n) for n in (p, mate, other, "ZZ0000")] == ["ok", "ok", "forbidden", "unknown"]
    assert [status(leader, n) for n in (p, other, "ZZ0000", "'; DROP")] == ["ok", "ok", "unknown", "unknown"]
    # refused: every function of the section returns nothing
    assert queries.officer_record(url, county.scope, county.police_no, other, "2026").empty
    assert queries.officer_events(url, county.scope, county.police_no, other, "2026").empty
    assert queries.officer_findings(url, county.scope, county.police_no, other, "2026").empty
    assert queries.officer_access(url, officer.scope, officer.police_no, mate, "2026").empty
    assert queries.officer_trend(url, officer.scope, officer.police_no, mate, "2026").empty
    inc = rows(url, "SELECT incident_no FROM incident_officers WHERE police_no = :p ORDER BY incident_no", p=mate)[0][0]
    assert queries.officer_event_detail(url, officer.scope, officer.police_no, mate, inc)["event"].empty
    # the ranking: the units of the scope, every officer with a record there
    rank = queries.officer_ranking(url, county.scope, None, "2026")
    (n_county,) = rows(
        url, "SELECT COUNT(*) FROM v_officer_records WHERE period = '2026' AND unit_code LIKE '140403%'"
    )[0]
    assert len(rank) == n_county and all(str(u).startswith("140403") for u in rank["unit_code"])
    assert queries.officer_ranking(url, officer.scope, None, "2026").empty
    # an officer's empty scope: nothing unit-wide on either database (never an error)
    for frame in (
        queries.events(url, officer.scope, None, "2026"),
        queries.findings_list(url, officer.scope, None, "2026"),
        queries.access_records(url, officer.scope, None, "2026"),
        queries.coverage_by_unit_month(url, officer.scope, None, "2026"),
        queries.scores(url, officer.scope, None, "2026"),
        queries.units(url, officer.scope),
        queries.data_quality_counts(url, officer.scope, None),
    ):
        assert frame.empty
    assert queries.unknown_officer_refs(url, officer.scope, "ZZ0000") == 0
    # the figures agree with v_officer_records (per month and year): events, own share, findings by family
    for period in ("2026", "2026-07", "2026-Q3"):
        rec = queries.officer_record(url, officer.scope, p, p, period)
        assert len(rec) == 1, period
        r = rec.iloc[0]
        ev = queries.officer_events(url, officer.scope, p, p, period, limit=100000)
        assert len(ev) == r["events_attended"]
        assert (ev["status"] == "full").sum() == r["events_fully_recorded"]
        assert ev["own_share"].mean() == pytest.approx(float(r["own_coverage"]), abs=1e-9)
        named = queries.officer_findings(url, officer.scope, p, p, period, limit=100000)
        if period == "2026":  # the keys bound a few at a time give the same rows, and the limit holds across
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(queries, "KEYS_PER_QUERY", 3)
                st.cache_data.clear()
                assert len(named) > 3
                again = queries.officer_findings(url, officer.scope, p, p, period, 100000)
                pd.testing.assert_frame_equal(again, named)
                top = queries.officer_findings(url, officer.scope, p, p, period, limit=4)
                pd.testing.assert_frame_equal(top, named.head(4))
                st.cache_data.clear()
        fam = named.loc[named["review_state"] != "exempted", "rule_id"].map(FAMILY).value_counts()
        for f in ("av", "text", "access", "integrity"):
            assert int(fam.get(f, 0)) == r[f"findings_{f}"], (period, f)
        acc = queries.officer_access(url, officer.scope, p, p, period, limit=100000)
        dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        a, b = (ts_param(dialect, x) for x in periods.bounds(period))
        (n_acc,) = rows(
            url, "SELECT COUNT(*) FROM access_log WHERE user_no = :p AND at >= :a AND at < :b", p=p, a=a, b=b
        )[0]
        assert len(acc) == n_acc
    trend = queries.officer_trend(url, officer.scope, p, p, "2026")
    assert len(trend) and trend["month"].is_monotonic_increasing and trend["month"].max() <= "2026-12"
    detail = queries.officer_event_detail(url, officer.scope, p, p, str(ev["incident_no"].iloc[0]))
    assert len(detail["event"]) == 1 and p in set(detail["officers"]["police_no"])


# --- pure helpers ---------------------------------------------------------------------------------------------


def test_own_shares_against_a_second_by_second_count() -> None:
    import numpy as np

    from etl.warehouse.intervals import own_shares

    rng = np.random.default_rng(18)
    for _ in range(200):
        edges = np.sort(rng.choice(400, size=2 * int(rng.integers(0, 8)), replace=False))
        rs, re_ = edges[0::2], edges[1::2]  # sorted, disjoint (touching never: distinct edges)
        ws = rng.integers(0, 390, 20)
        we = ws + rng.integers(0, 60, 20)
        covered = np.zeros(460, dtype=bool)
        for a, b in zip(rs, re_, strict=True):
            covered[a:b] = True
        want = [covered[a:b].mean() if b > a else np.nan for a, b in zip(ws, we, strict=True)]
        np.testing.assert_allclose(own_shares(ws, we, rs, re_), want, equal_nan=True)


def test_ranking_options_and_police_numbers() -> None:
    from dashboard import logic

    recs = pd.DataFrame(
        {
            "police_no": ["A1", "B2", "C3", "D4"],
            "name": ["甲", "乙", "丙", "丁"],
            "unit_code": ["u"] * 4,
            "events_attended": [10, 10, 0, 10],
            "events_fully_recorded": [9, 9, 0, 5],
            "own_coverage": [0.9, 0.9, None, 0.95],
            "findings_av": [1, 0, 0, 4],
            "findings_text": [0, 0, 2, 0],
            "findings_access": [0, 0, 0, 0],
            "findings_integrity": [1, 0, 0, 0],
        }
    )
    r = logic.officer_ranking(recs)
    assert list(r["police_no"]) == ["D4", "B2", "A1", "C3"]  # coverage, then fewer findings; no event: last
    assert list(r["rank"]) == [1, 2, 3, 4] and list(r["findings_total"]) == [4, 0, 2, 2]
    assert logic.officer_options(["A1", "B2"], "Z9") == (["Z9", "A1", "B2"], 0)
    assert logic.officer_options(["A1", "B2"], "B2") == (["A1", "B2"], 1)
    assert logic.officer_options(["A1"], "<b>") == (["A1"], None)
    assert logic.officer_options(["A1"], None) == (["A1"], None)
    assert [logic.valid_police_no(x) for x in ("093443", "F47107", "", " 1", "a_b", "x" * 33, None)] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    assert logic.officer_headline(recs.iloc[0:0])[0] == ("出警事件", "—")
    assert dict(logic.officer_headline(recs.iloc[3:4]))["全程记录占比"] == "50.0%"


def test_officer_charts_escape_text() -> None:
    from dashboard import charts

    fig = charts.stacked_bars(
        pd.DataFrame({"month": ["2026-01", "2026-02"], "action": ["view", "<b>"], "actions": [1, 2]}),
        "month",
        "action",
        "actions",
        "调阅",
        {"view": "查看"},
    )
    assert {t.name for t in fig.data} == {"查看", "&lt;b&gt;"}
    trend = charts.officer_trend(
        pd.DataFrame(
            {"month": ["2026-01"], "events_attended": [4], "events_fully_recorded": [3], "own_coverage": [0.5]}
        )
    )
    assert list(trend.data[1].y) == [50.0] and list(trend.data[2].y) == [75.0]
    assert charts.officer_trend(pd.DataFrame()).layout.annotations[0].text == "无数据"


def test_officer_labels_are_built_once_for_the_picker():
    ranking = pd.DataFrame({"police_no": ["001", "002", "003"], "name": ["张三", None, ""]})
    assert logic.officer_labels(ranking) == {"001": "001 张三", "002": "002", "003": "003"}
    assert logic.officer_labels(pd.DataFrame()) == {}
