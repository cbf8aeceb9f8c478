"""Threats: demo accounts outside the demo, plain or weak passwords, a weak cookie key, idle and disabled sessions."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
import yaml
from helpers import APP, ROOT, F, logged_in, login_form
from streamlit.testing.v1 import AppTest

from etl.errors import ConfigError
from etl.users import load_users, password_problem


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=60).run()


@pytest.fixture
def production(wh, tmp_path, monkeypatch):
    """The fixture's users as a production users file (no demo marker) with a strong cookie key."""
    data = yaml.safe_load(wh.users_file.read_text(encoding="utf-8"))
    data.pop("demo", None)
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("DASHBOARD_USERS_FILE", str(path))
    monkeypatch.setenv("DASHBOARD_COOKIE_KEY", secrets.token_urlsafe(32))
    return path


def test_login_page_says_demo(wh):
    at = _app()
    assert any("演示系统" in i.value for i in at.info)
    assert [t.label for t in at.text_input] == ["用户名", "密码"]


def test_demo_accounts_refused_on_a_non_demo_warehouse(tmp_path, monkeypatch):
    """A production warehouse whose sources.yaml has the demo's users.yaml copied beside it."""
    w = F.build(tmp_path)
    eng = sa.create_engine(w.url)
    with eng.begin() as c:
        c.exec_driver_sql("UPDATE etl_runs SET sources_hash = 'a-production-sources-file'")
    eng.dispose()
    monkeypatch.setenv("WAREHOUSE_URL", w.url)
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    at = _app()
    assert any("拒绝使用演示账号" in e.value for e in at.error)
    assert not at.text_input


def test_unmarked_users_file_beside_the_sources_is_not_used(tmp_path, monkeypatch):
    w = F.build(tmp_path)
    data = yaml.safe_load(w.users_file.read_text(encoding="utf-8"))
    data.pop("demo")
    w.users_file.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("WAREHOUSE_URL", w.url)
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    at = _app()
    assert any("没有演示标记" in e.value for e in at.error) and not at.text_input


@pytest.mark.parametrize("key", [None, "", "some_signature_key", "short-key", "a" * 64, "browser-test-key-8501"])
def test_weak_cookie_key_refuses_to_start(production, monkeypatch, key):
    if key is None:
        monkeypatch.delenv("DASHBOARD_COOKIE_KEY")
    else:
        monkeypatch.setenv("DASHBOARD_COOKIE_KEY", key)
    at = _app()
    assert any("拒绝启动" in e.value and "Cookie 密钥" in e.value for e in at.error), [e.value for e in at.error]
    assert not at.text_input


def test_strong_cookie_key_starts(production):
    at = login_form(_app(), "legal", F.PASSWORD)
    assert at.session_state["authentication_status"] is True
    assert not any("演示系统" in i.value for i in at.info)  # production: no demo banner


def test_plain_password_in_users_file_is_refused(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  wang: {name: 王, role: legal, password_hash: 'Secret#2026abc'}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="bcrypt"):
        load_users(path)


@pytest.mark.parametrize("weak", ["Demo#2026", "password1234", "aaaaaaaaaaaA1", "Wang#12345678wang", "abcdefghijkl"])
def test_weak_passwords_are_refused(weak):
    assert password_problem(weak, "wang") is not None


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dashboard", "users", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_users_cli_manages_a_bcrypt_only_file(tmp_path):
    f = str(tmp_path / "users.yaml")
    weak = _cli("add", "wang", "--role", "legal", "--name", "王某", "--file", f, "--password-stdin", stdin="abc\n")
    assert weak.returncode == 1 and "密码强度不足" in weak.stderr
    strong = "Zhi#Fa-2026-jd"
    added = _cli(
        "add", "wang", "--role", "legal", "--name", "王某", "--file", f, "--password-stdin", stdin=strong + "\n"
    )
    assert added.returncode == 0, added.stderr
    text = (tmp_path / "users.yaml").read_text(encoding="utf-8")
    assert strong not in text and "$2b$12$" in text
    assert (tmp_path / "users.yaml").stat().st_mode & 0o077 == 0  # owner only
    assert _cli("disable", "wang", "--file", f).returncode == 0
    assert load_users(tmp_path / "users.yaml")["wang"]["disabled"] is True
    assert "已停用" in _cli("list", "--file", f).stdout
    assert _cli("enable", "wang", "--file", f).returncode == 0
    assert load_users(tmp_path / "users.yaml")["wang"]["disabled"] is False
    again = _cli("reset-password", "wang", "--file", f, "--password-stdin", stdin="Neu#Passwort-77\n")
    assert again.returncode == 0 and "$2b$12$" in (tmp_path / "users.yaml").read_text(encoding="utf-8")
    assert (
        _cli("add", "x", "--role", "unit_admin", "--file", f, "--password-stdin", stdin=strong + "\n").returncode == 1
    )


def test_disabled_user_is_logged_out_at_the_next_interaction(production):
    at = logged_in("legal")
    assert at.session_state["authentication_status"]
    data = yaml.safe_load(production.read_text(encoding="utf-8"))
    data["users"]["legal"]["disabled"] = True
    production.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    at.run()
    assert not at.session_state["authentication_status"]
    assert any("停用" in e.value for e in at.error)
    assert not at.dataframe
    again = login_form(_app(), "legal", F.PASSWORD)  # and cannot log in again
    assert not again.session_state["authentication_status"]


def test_idle_session_is_logged_out(wh):
    at = logged_in("legal")
    assert at.dataframe or at.metric
    at.session_state["_last_active"] = time.time() - 31 * 60
    at.run()
    assert not at.session_state["authentication_status"]
    assert any("长时间未操作" in w.value for w in at.warning)
    assert [t.label for t in at.text_input] == ["用户名", "密码"] and not at.dataframe
