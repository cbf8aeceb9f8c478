"""Dashboard entrypoint: page config, login once, navigation over the pages the user's role may open.

Run from the repository root: ``streamlit run dashboard/app.py`` (warehouse from $WAREHOUSE_URL).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts dashboard/ on the path, the packages live in the root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
import streamlit_authenticator as stauth  # noqa: E402

from dashboard import audit, auth, queries  # noqa: E402
from dashboard.i18n import t  # noqa: E402
from etl.errors import EtlError  # noqa: E402
from etl.warehouse.db import warehouse_url  # noqa: E402

# Page files live in the top-level pages/, registered by absolute path: Streamlit's legacy multipage mode
# looks for a pages/ folder beside the entrypoint (dashboard/pages/, which must not exist).  Every page file
# checks the login again itself (dashboard.ui.page_context): run or reached without a session context, it
# shows 无权访问本页面 and nothing else (tests/test_browser.py opens every page URL first on a fresh server).
PAGE_FILES = {
    "overview": (ROOT / "pages" / "overview.py", "总览", ":material/dashboard:"),
    "coverage": (ROOT / "pages" / "coverage.py", "现场记录", ":material/videocam:"),
    "cases": (ROOT / "pages" / "cases.py", "案件检查", ":material/gavel:"),
    "equipment": (ROOT / "pages" / "equipment.py", "设备台账", ":material/inventory_2:"),
    "access": (ROOT / "pages" / "access.py", "调阅审计", ":material/visibility:"),
    "integrity": (ROOT / "pages" / "integrity.py", "完整性", ":material/verified_user:"),
    "assessment": (ROOT / "pages" / "assessment.py", "考评", ":material/leaderboard:"),
    "data": (ROOT / "pages" / "data.py", "数据", ":material/database:"),
    "syslog": (ROOT / "pages" / "syslog.py", "系统日志", ":material/history:"),
    "todo": (ROOT / "pages" / "todo.py", "待办", ":material/inbox:"),
    "review": (ROOT / "pages" / "review.py", "复核", ":material/rule:"),
    "appeals": (ROOT / "pages" / "appeals.py", "申诉", ":material/feedback:"),
    "excuses": (ROOT / "pages" / "excuses.py", "情况说明", ":material/description:"),
    "spotcheck": (ROOT / "pages" / "spotcheck.py", "随机抽查", ":material/fact_check:"),
    "rectification": (ROOT / "pages" / "rectification.py", "整改", ":material/assignment_late:"),
    "publication": (ROOT / "pages" / "publication.py", "发布", ":material/publish:"),
}

# Sidebar sections, in order: every page id of PAGE_FILES in exactly one (tests/test_dashboard_app.py).
NAV_SECTIONS = {
    "考评与检查": ("overview", "coverage", "cases", "equipment", "access", "integrity", "assessment"),
    "督察记录": ("todo", "review", "appeals", "excuses", "spotcheck", "rectification", "publication"),
    "系统": ("data", "syslog"),
}

st.set_page_config(page_title="行政执法全过程记录督察考评平台", page_icon="📹", layout="wide")
st.sidebar.toggle("English", key="lang_en")


def _secret(name: str) -> str | None:
    try:
        return st.secrets.get(name)
    except (FileNotFoundError, KeyError, st.errors.StreamlitSecretNotFoundError):
        return None


@st.cache_resource
def _logouts() -> dict[str, float]:
    """username -> time of the last logout in this server process (revokes older re-login cookies)."""
    return {}


def _record_logout(info: dict) -> None:
    if info.get("username"):
        _logouts()[str(info["username"]).lower()] = time.time()


def _login_page() -> None:
    st.caption(t("长治市公安局"))


def _message_page(text: str):  # noqa: ANN202
    def page() -> None:
        st.error(text)

    return page


url = warehouse_url()
engine = queries.engine(url)
queries.refresh_after_etl(url)  # a new ETL run since the last script run: no cached figure of the one before
users: dict[str, dict] = {}
problem = None
try:
    path = auth.users_file(url, os.environ.get("DASHBOARD_USERS_FILE") or _secret("users_file"))
    if path is None:
        problem = t("未找到用户文件：请设置 DASHBOARD_USERS_FILE，或先用 etl run 载入演示数据")
    else:
        users = auth.load_users(path)
except EtlError as exc:
    problem = str(exc)

if problem:
    st.navigation([st.Page(_message_page(problem), title=t("登录"), url_path="login")]).run()
    st.stop()

header = st.empty()
authenticator = stauth.Authenticate(
    auth.credentials(users),
    cookie_name=auth.COOKIE_NAME,
    cookie_key=auth.cookie_key(_secret("cookie_key")),
    cookie_expiry_days=auth.COOKIE_EXPIRY_DAYS,
    auto_hash=False,
    login_sleep_time=0,
)
login_fields = {"Form name": t("登录"), "Username": t("用户名"), "Password": t("密码"), "Login": t("登录")}
# A cookie issued before its user's last logout is refused: login() then ignores cookies in this session.
if not st.session_state.get("authentication_status") and auth.is_revoked(
    authenticator.cookie_controller.get_cookie(), _logouts()
):
    st.session_state["logout"] = True
try:
    authenticator.login(location="main", fields=login_fields)
except Exception as exc:  # noqa: BLE001 - the library raises plain errors for bad input
    st.error(str(exc))

ctx = None
if st.session_state.get("authentication_status"):
    # The role comes from the users file on every run, never from the cookie.
    ctx = auth.context_for(st.session_state.get("username") or "", users, queries.org_units(url))
    if ctx is None:
        st.error(t("该用户已停用或不存在"))
        authenticator.logout(location="unrendered")
    else:
        with st.sidebar:
            st.caption(f"{t('当前用户')}：{ctx.name}（{t(auth.ROLES[ctx.role])}）")
            if ctx.scope is not None:
                st.caption(f"{t('范围')}：{queries.unit_names(url).get(ctx.unit_code or '', ctx.unit_code)}")
        authenticator.logout(t("退出登录"), location="sidebar", callback=_record_logout)
        if not st.session_state.get("authentication_status"):  # logged out just now
            st.session_state.pop("_ctx", None)
            st.session_state.pop("_audited_login", None)
            st.session_state.pop("_reasons", None)
            ctx = None
            authenticator.login(location="main", fields=login_fields)
elif st.session_state.get("authentication_status") is False:
    st.error(t("用户名或密码错误"))

if ctx is None:
    header.title(t("行政执法全过程记录督察考评平台"))
    st.session_state.pop("_ctx", None)
    # Every page URL is answered with the login form (not Streamlit's "Page not found"); nothing else runs.
    login = [st.Page(_login_page, title=t("登录"), url_path="login", default=True)]
    login += [st.Page(_login_page, title=t("登录"), url_path=pid) for pid in PAGE_FILES]
    st.navigation(login, position="hidden").run()
else:
    st.session_state["_ctx"] = ctx
    if st.session_state.get("_audited_login") != ctx.username:
        audit.record(engine, ctx, "login", "login")
        st.session_state["_audited_login"] = ctx.username
    sections: dict[str, list] = {}
    for section, ids in NAV_SECTIONS.items():
        shown = [pid for pid in ids if ctx.may_open(pid)]
        if shown:
            sections[t(section)] = [
                st.Page(PAGE_FILES[pid][0], title=t(PAGE_FILES[pid][1]), icon=PAGE_FILES[pid][2], url_path=pid)
                for pid in shown
            ]
    st.navigation(sections, expanded=True).run()
