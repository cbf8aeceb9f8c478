"""Dashboard entrypoint: page config, login once, navigation over the pages the user's role may open.

Run from the repository root: ``streamlit run dashboard/app.py`` (warehouse from $WAREHOUSE_URL).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # streamlit puts dashboard/ on the path, the packages live in the root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
import streamlit_authenticator as stauth  # noqa: E402
from streamlit.runtime.scriptrunner_utils.exceptions import ScriptControlException  # noqa: E402

from dashboard import audit, auth, queries, security  # noqa: E402
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
    "officer": (ROOT / "pages" / "officer.py", "民警执法记录档案", ":material/badge:"),
    "unit": (ROOT / "pages" / "unit.py", "单位画像", ":material/monitoring:"),
    "data": (ROOT / "pages" / "data.py", "数据", ":material/database:"),
    "data_quality": (ROOT / "pages" / "data_quality.py", "数据质量", ":material/report:"),
    "syslog": (ROOT / "pages" / "syslog.py", "系统日志", ":material/history:"),
    "todo": (ROOT / "pages" / "todo.py", "待办", ":material/inbox:"),
    "review": (ROOT / "pages" / "review.py", "复核", ":material/rule:"),
    "appeals": (ROOT / "pages" / "appeals.py", "申诉", ":material/feedback:"),
    "excuses": (ROOT / "pages" / "excuses.py", "情况说明", ":material/description:"),
    "spotcheck": (ROOT / "pages" / "spotcheck.py", "随机抽查", ":material/fact_check:"),
    "rectification": (ROOT / "pages" / "rectification.py", "整改", ":material/assignment_late:"),
    "publication": (ROOT / "pages" / "publication.py", "发布", ":material/publish:"),
}

NAV_SECTIONS = auth.NAV_SECTIONS  # the sidebar: sections of page ids, in order

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


@st.cache_resource
def _activity() -> dict[str, float]:
    """username -> time of its last interaction in this server process: a re-login cookie is honoured only
    within the idle timeout of it (after a restart, everybody logs in again)."""
    return {}


def _record_logout(info: dict) -> None:
    if info.get("username"):
        _logouts()[str(info["username"]).lower()] = time.time()
        ctx_out = st.session_state.get("_ctx")
        if isinstance(ctx_out, auth.UserContext):
            try:
                audit.record(engine, ctx_out, "login", "logout")
            except EtlError:  # a logout is never refused
                security.log.warning("logout of %s not audited", ctx_out.username)


def _login_page() -> None:
    st.caption(t("长治市公安局"))


def _message_page(text: str):  # noqa: ANN202
    def page() -> None:
        st.error(text)

    return page


def _headers() -> dict:
    try:
        return {str(k).lower(): v for k, v in dict(st.context.headers or {}).items()}
    except Exception:  # noqa: BLE001 - no request (AppTest)
        return {}


def _client() -> str:
    return security.client_id(st.context.ip_address, _headers())


def _https() -> bool:
    url_now = st.context.url
    return _headers().get("x-forwarded-proto") == "https" or (isinstance(url_now, str) and url_now.startswith("https"))


def _set_cookie() -> None:
    """The re-login cookie, as strict as the library allows: SameSite=Strict, Secure over HTTPS.  It is set by
    a script of the cookie component, so it cannot be HttpOnly (docs/SECURITY.md)."""
    model = authenticator.cookie_controller.cookie_model
    model.exp_date = model._set_exp_date()
    model.cookie_manager.set(
        model.cookie_name,
        model._token_encode(),
        expires_at=datetime.now() + timedelta(days=auth.COOKIE_EXPIRY_DAYS),
        same_site="strict",
        secure=True if _https() else None,
    )


def _end_session(note: str | None = None) -> None:
    """Log this session out: its cookie revoked and deleted, its state cleared; ``note`` shown on the login."""
    username = st.session_state.get("username")
    if username:
        _logouts()[str(username).lower()] = time.time()
    with contextlib.suppress(Exception):  # noqa: BLE001 - no cookie to delete
        authenticator.cookie_controller.delete_cookie()
    for key in ("name", "username", "authentication_status", "email", "roles"):
        st.session_state[key] = None
    st.session_state["logout"] = True
    for key in ("_ctx", "_audited_login", "_reasons", "_last_active"):
        st.session_state.pop(key, None)
    if note:
        st.session_state["_login_note"] = note


url = warehouse_url()
engine = queries.engine(url)
queries.refresh_after_etl(url)  # a new ETL run since the last script run: no cached figure of the one before
users: dict[str, dict] = {}
problem = None
demo = False
cookie_key = None
try:
    configured = os.environ.get("DASHBOARD_USERS_FILE") or _secret("users_file")
    path = auth.users_file(url, configured)
    if path is None:
        problem = t("未找到用户文件：请设置 DASHBOARD_USERS_FILE，或先用 etl run 载入演示数据")
    else:
        users = auth.load_users(path)
        demo = auth.demo_info(path) is not None
        if demo and not auth.is_demo_warehouse(url, path):
            # demo accounts only on a warehouse loaded from the demo's own sources.yaml (etl.users)
            problem = t(
                "拒绝使用演示账号：当前数仓不是由 etl demo 生成的演示数据载入的。正式环境请设置 DASHBOARD_USERS_FILE"
            )
        elif not demo and not configured:
            problem = t(
                "数据源旁的用户文件没有演示标记，不能使用：正式环境请设置 DASHBOARD_USERS_FILE；"
                "演示请重新生成演示数据（make clean && make run）"
            )
        elif not demo:  # production: a strong cookie key, or no start at all
            cookie_key = os.environ.get("DASHBOARD_COOKIE_KEY") or _secret("cookie_key")
            weak = security.cookie_key_problem(cookie_key)
            if weak:
                problem = t("拒绝启动") + "：" + weak
except EtlError as exc:
    problem = str(exc)

if problem:
    st.navigation([st.Page(_message_page(problem), title=t("登录"), url_path="login")]).run()
    st.stop()
if demo:
    cookie_key = os.environ.get("DASHBOARD_COOKIE_KEY") or _secret("cookie_key") or security.demo_cookie_key()

header = st.empty()
authenticator = stauth.Authenticate(
    auth.credentials(users),
    cookie_name=auth.COOKIE_NAME,
    cookie_key=cookie_key,
    cookie_expiry_days=auth.COOKIE_EXPIRY_DAYS,
    auto_hash=False,
    login_sleep_time=0,
)

now = time.time()
if st.session_state.get("authentication_status"):
    if security.idle_expired(st.session_state.get("_last_active"), now):
        ctx_idle = st.session_state.get("_ctx")
        if isinstance(ctx_idle, auth.UserContext):
            with contextlib.suppress(EtlError):
                audit.record(engine, ctx_idle, "login", "session_timeout")
        _end_session(t("长时间未操作，已自动退出，请重新登录"))
    else:
        st.session_state["_last_active"] = now
        _activity()[str(st.session_state.get("username") or "").lower()] = now

if not st.session_state.get("authentication_status"):
    # A cookie issued before its user's last logout, or of a user idle longer than the timeout in this server
    # process, is refused: login() then ignores cookies in this session.
    token = authenticator.cookie_controller.get_cookie()
    if token and (
        auth.is_revoked(token, _logouts())
        or security.idle_expired(_activity().get(str(token.get("username", "")).lower(), 0.0), now)
    ):
        st.session_state["logout"] = True
    elif token:
        try:
            authenticator.login(location="unrendered")
        except Exception:  # noqa: BLE001 - the library raises plain errors (a user no longer in the file)
            st.session_state["authentication_status"] = None
        if st.session_state.get("authentication_status"):
            st.session_state["_last_active"] = now
            _activity()[str(st.session_state.get("username") or "").lower()] = now


def _login_form() -> None:
    """The login form (the demo says it is one); a submitted attempt goes through ``security.attempt_login``."""
    if demo:
        st.info(t("演示系统：演示数据与演示账号（密码见 README），仅供演示，不得用于真实数据"))
    note = st.session_state.pop("_login_note", None)
    if note:
        st.warning(note)
    slot = st.empty()
    with slot.form(key="Login"):
        st.subheader(t("登录"))
        typed_user = st.text_input(t("用户名"), autocomplete="off", max_chars=security.USERNAME_MAX)
        typed_password = st.text_input(t("密码"), type="password", autocomplete="off", max_chars=256)
        submitted = st.form_submit_button(t("登录"))
    if submitted:
        try:
            result = security.attempt_login(url, users, typed_user, typed_password, _client())
        except EtlError as exc:  # the attempt could not be audited: no login
            st.session_state["authentication_status"] = None
            st.error(str(exc))
        else:
            if result.ok:
                u = users[result.username]
                st.session_state.update(
                    authentication_status=True,
                    username=result.username,
                    name=u["name"],
                    email=f"{result.username}@localhost",
                    roles=[u["role"]],
                    logout=False,
                    _last_active=now,
                )
                _activity()[result.username] = now
                slot.empty()
                _set_cookie()
            else:
                st.session_state["authentication_status"] = False
                st.error(t(result.message or "用户名或密码错误"))


if not st.session_state.get("authentication_status"):
    _login_form()

ctx = None
if st.session_state.get("authentication_status"):
    # The role comes from the users file on every run, never from the cookie; a disabled user is logged out.
    ctx = auth.context_for(st.session_state.get("username") or "", users, queries.org_units(url))
    if ctx is None:
        _end_session(t("该用户已停用或不存在"))
        st.error(t("该用户已停用或不存在"))
    else:
        with st.sidebar:
            if demo:
                st.caption(t("演示系统"))
            st.caption(f"{t('当前用户')}：{ctx.name}（{t(auth.ROLES[ctx.role])}）")
            if ctx.role == "officer":  # an officer's scope is their own record (issue 18)
                st.caption(f"{t('范围')}：{t('本人记录')}（{t('警号')} {ctx.police_no}）")
            elif ctx.scope is not None:
                st.caption(f"{t('范围')}：{queries.unit_names(url).get(ctx.unit_code or '', ctx.unit_code)}")
        st.session_state["_ctx"] = ctx  # the logout callback audits with it
        authenticator.logout(t("退出登录"), location="sidebar", callback=_record_logout)
        if not st.session_state.get("authentication_status"):  # logged out just now (the library deleted the cookie)
            for key in ("_ctx", "_audited_login", "_reasons", "_last_active"):
                st.session_state.pop(key, None)
            ctx = None
            _login_form()

if ctx is not None and st.session_state.get("_audited_login") != ctx.username:
    try:
        audit.record(engine, ctx, "login", "login")
    except EtlError as exc:  # never an action whose audit row failed: no login
        _end_session()
        ctx = None
        st.error(str(exc))
    else:
        st.session_state["_audited_login"] = ctx.username

if ctx is None:
    header.title(t("行政执法全过程记录督察考评平台"))
    st.session_state.pop("_ctx", None)
    # Every page URL is answered with the login form (not Streamlit's "Page not found"); nothing else runs.
    login = [st.Page(_login_page, title=t("登录"), url_path="login", default=True)]
    login += [st.Page(_login_page, title=t("登录"), url_path=pid) for pid in PAGE_FILES]
    st.navigation(login, position="hidden").run()
else:
    st.session_state["_ctx"] = ctx
    sections: dict[str, list] = {}
    for section, ids in NAV_SECTIONS.items():
        shown = [pid for pid in ids if ctx.may_open(pid)]
        if shown:
            sections[t(section)] = [
                st.Page(PAGE_FILES[pid][0], title=t(PAGE_FILES[pid][1]), icon=PAGE_FILES[pid][2], url_path=pid)
                for pid in shown
            ]
    navigation = st.navigation(sections, expanded=True)
    try:
        navigation.run()
    except ScriptControlException:  # st.stop, st.rerun, st.switch_page: Streamlit's own control flow
        raise
    except Exception as exc:  # noqa: BLE001 - users get a short message and an id, the log the details
        error = security.log_error(exc, f"page {navigation.url_path} user {ctx.username}")
        st.error(f"{t('页面出错，请稍后再试或联系管理员')}（{t('错误编号')} {error}）")
