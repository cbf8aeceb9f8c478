"""The supervision commands (``python -m etl review|excuse|appeal|supervision``): thin over the actions.

Each prints the id it created; a refusal exits 2 with ``错误：`` and the reason on stderr, and writes nothing.
``--by`` resolves through the demo users file beside the sources of the warehouse's latest run, or
``$DASHBOARD_USERS_FILE``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import bcrypt
import pytest
import yaml

from etl.cli import main
from etl.warehouse.db import make_engine
from tests.supervision_fixtures import ROOT_DIR, excused_incident, finding_of, frame, scalar, snapshot


@pytest.fixture
def wh(fresh_sqlite: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    eng = make_engine(fresh_sqlite)
    yield fresh_sqlite, eng
    eng.dispose()


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def created_id(out: str) -> int:
    m = re.search(r"编号 (\d+)", out)
    assert m, out
    return int(m.group(1))


def test_review_exempt_prints_the_review_id_and_is_audited_as_cli(wh, capsys) -> None:  # noqa: ANN001
    url, eng = wh
    key = finding_of(eng, rule="AV-NONE")["finding_key"]
    code, out, err = cli(
        capsys, "review", "--finding", key, "--verdict", "exempt", "--category", "不可抗力",
        "--by", "legal", "--reason", "暴雨断电", "--warehouse", url,
    )  # fmt: skip
    assert (code, err) == (0, "")
    rid = created_id(out)
    row = frame(eng, "SELECT finding_key, verdict, by_user FROM sup_reviews WHERE review_id = :i", i=rid).iloc[0]
    assert tuple(row) == (key, "exempt", "legal")
    audit = frame(eng, "SELECT username, page, action, object, reason FROM audit_log WHERE action = 'review:exempt'")
    assert audit.to_dict("records") == [
        {"username": "legal", "page": "cli", "action": "review:exempt", "object": key, "reason": "[不可抗力] 暴雨断电"}
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["review", "--verdict", "confirm", "--by", "legal", "--reason", ""], "理由"),
        (["review", "--verdict", "confirm", "--by", "leader", "--reason", "x"], "无权"),
        (["review", "--verdict", "exempt", "--by", "legal", "--reason", "x"], "理由类别"),
        (["review", "--verdict", "confirm", "--by", "ghost", "--reason", "x"], "没有用户"),
        (["appeal", "--by", "county", "--reason", "x", "FOREIGN"], "管辖范围"),
        (["appeal", "--by", "legal", "--reason", "x"], "无权"),
        (["appeal", "--decide", "999", "--verdict", "uphold", "--by", "legal", "--reason", "x"], "未知的申诉编号"),
        (["appeal", "--decide", "1", "--by", "legal", "--reason", "x"], "--verdict"),
        (["excuse", "--incident", "NO-SUCH", "--verdict", "reject", "--by", "legal", "--reason", "x"], "没有中断"),
    ],
)
def test_refusals_exit_2_with_the_reason_and_write_nothing(wh, capsys, args: list[str], message: str) -> None:  # noqa: ANN001
    url, eng = wh
    own = finding_of(eng, rule="AV-NONE", unit_prefix="1404035")["finding_key"]
    foreign = finding_of(eng, rule="AV-NONE", unit_prefix="1404235")["finding_key"]
    if args[0] == "appeal" and "--decide" not in args:
        args = [*args[:-1], "--finding", foreign] if args[-1] == "FOREIGN" else [*args, "--finding", own]
    elif args[0] == "review":
        args = [*args, "--finding", own]
    before = snapshot(eng)
    code, out, err = cli(capsys, *args, "--warehouse", url)
    assert code == 2 and out == ""
    assert err.startswith("错误：") and message in err
    assert snapshot(eng) == before


def test_unknown_key_and_a_missing_warehouse_are_refused(wh, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    url, eng = wh
    code, _, err = cli(capsys, "review", "--finding", "AV-NONE:NOPE", "--verdict", "confirm", "--by", "legal",
                       "--reason", "x", "--warehouse", url)  # fmt: skip
    assert code == 2 and "未知的问题编号：AV-NONE:NOPE" in err
    missing = tmp_path / "none.sqlite"
    code, _, err = cli(capsys, "review", "--finding", "K", "--verdict", "confirm", "--by", "legal", "--reason", "x",
                       "--warehouse", f"sqlite:///{missing}")  # fmt: skip
    assert code == 2 and "数据仓库不存在" in err and not missing.exists()


def test_appeal_filed_and_decided_excuse_judged(wh, capsys) -> None:  # noqa: ANN001
    url, eng = wh
    key = finding_of(eng, rule="AV-GAP", unit_prefix="1404035")["finding_key"]
    code, out, _ = cli(
        capsys, "appeal", "--finding", key, "--by", "county", "--reason", "有送修记录", "--warehouse", url
    )
    assert code == 0
    aid = created_id(out)
    assert scalar(eng, "SELECT filed_by FROM sup_appeals WHERE appeal_id = :i", i=aid) == "county"
    code, out, _ = cli(capsys, "appeal", "--decide", str(aid), "--verdict", "reject", "--by", "legal",
                       "--reason", "证据不足", "--warehouse", url)  # fmt: skip
    assert code == 0
    rid = created_id(out)
    assert scalar(eng, "SELECT source FROM sup_reviews WHERE review_id = :i", i=rid) == "appeal"
    assert scalar(eng, "SELECT state FROM sup_finding_state WHERE finding_key = :k", k=key) == "confirmed"
    code, _, err = cli(capsys, "appeal", "--decide", str(aid), "--verdict", "uphold", "--by", "legal",
                       "--reason", "再处理", "--warehouse", url)  # fmt: skip
    assert code == 2 and "已处理" in err

    incident = excused_incident(eng)
    code, out, _ = cli(capsys, "excuse", "--incident", incident, "--verdict", "reject", "--by", "legal",
                       "--reason", "说明不实", "--warehouse", url)  # fmt: skip
    assert code == 0
    hid = created_id(out)
    assert scalar(eng, "SELECT verdict FROM sup_excuse_history WHERE id = :i", i=hid) == "rejected"


def test_users_file_from_the_environment(wh, capsys, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    url, eng = wh
    hashed = bcrypt.hashpw(b"a long production password", bcrypt.gensalt(rounds=4)).decode()  # files hold hashes only
    users = {"users": {"fz": {"name": "县法制", "role": "legal", "unit_code": "140423000000", "password_hash": hashed}}}
    path = tmp_path / "prod-users.yaml"
    path.write_text(yaml.safe_dump(users, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("DASHBOARD_USERS_FILE", str(path))
    foreign = finding_of(eng, unit_prefix="1404035")["finding_key"]
    own = finding_of(eng, unit_prefix="1404235")["finding_key"]
    code, _, err = cli(capsys, "review", "--finding", foreign, "--verdict", "confirm", "--by", "fz", "--reason", "x",
                       "--warehouse", url)  # fmt: skip
    assert code == 2 and "管辖范围" in err
    code, _, err = cli(capsys, "review", "--finding", own, "--verdict", "confirm", "--by", "legal", "--reason", "x",
                       "--warehouse", url)  # fmt: skip
    assert code == 2 and "没有用户" in err  # the demo's users do not count once a production file is set
    code, out, _ = cli(capsys, "review", "--finding", own, "--verdict", "confirm", "--by", "FZ", "--reason", "本县",
                       "--warehouse", url)  # fmt: skip
    assert code == 0 and created_id(out) > 0


def test_export_then_import_into_a_second_copy(wh, capsys, tmp_path: Path, demo_sqlite_template) -> None:  # noqa: ANN001
    url, eng = wh
    key = finding_of(eng, rule="AV-NONE")["finding_key"]
    assert cli(capsys, "review", "--finding", key, "--verdict", "confirm", "--by", "legal", "--reason", "确认",
               "--warehouse", url)[0] == 0  # fmt: skip
    out_file = tmp_path / "sup.jsonl"
    code, out, _ = cli(capsys, "supervision", "export", "--out", str(out_file), "--by", "legal", "--reason", "迁移",
                       "--warehouse", url)  # fmt: skip
    assert code == 0 and out_file.is_file() and "导出" in out
    code, _, err = cli(capsys, "supervision", "export", "--out", str(tmp_path / "x.jsonl"), "--by", "county",
                       "--reason", "x", "--warehouse", url)  # fmt: skip
    assert code == 2 and "无权" in err and not (tmp_path / "x.jsonl").exists()

    import shutil

    target = tmp_path / "target.sqlite"
    shutil.copy(demo_sqlite_template, target)
    turl = f"sqlite:///{target}"
    code, out, _ = cli(capsys, "supervision", "import", str(out_file), "--by", "legal", "--reason", "迁移",
                       "--warehouse", turl)  # fmt: skip
    assert code == 0 and "已导入督察记录 2 行" in out  # the state row and the review
    teng = make_engine(turl)
    assert scalar(teng, "SELECT state FROM sup_finding_state WHERE finding_key = :k", k=key) == "confirmed"
    code, out, _ = cli(capsys, "supervision", "import", str(out_file), "--by", "legal", "--reason", "再导入",
                       "--warehouse", turl)  # fmt: skip
    assert code == 0 and "已导入督察记录 0 行（已存在且相同 2 行）" in out
    teng.dispose()


def test_python_m_etl_exits_2_on_a_refusal(wh) -> None:  # noqa: ANN001
    url, eng = wh
    key = finding_of(eng, rule="AV-NONE")["finding_key"]
    env = {k: v for k, v in os.environ.items() if k != "DASHBOARD_USERS_FILE"}
    proc = subprocess.run(
        [sys.executable, "-m", "etl", "review", "--finding", key, "--verdict", "confirm", "--by", "legal",
         "--reason", " ", "--warehouse", url],
        capture_output=True, text=True, cwd=ROOT_DIR, env=env, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("错误：") and "理由" in proc.stderr


def test_demo_accounts_act_only_on_their_demo_warehouse(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """``--by`` resolves a users.yaml found beside the sources only when it is that warehouse's demo file."""
    import sqlalchemy as sa

    from etl.errors import ConfigError
    from etl.users import resolve
    from etl.warehouse.schema import ensure_schema

    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    hashed = bcrypt.hashpw(b"demo", bcrypt.gensalt(rounds=4)).decode()
    users = {"users": {"legal": {"name": "法制", "role": "legal", "unit_code": None, "password_hash": hashed}}}
    (tmp_path / "sources.yaml").write_text("# sources\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'w.sqlite'}"
    eng = sa.create_engine(url)
    with eng.begin() as conn:
        ensure_schema(conn)
        conn.execute(
            sa.text(
                "INSERT INTO etl_runs (run_id, started_at, status, sources_file, sources_hash)"
                " VALUES (1, '2026-12-01 01:00:00', 'ok', :f, 'abc')"
            ),
            {"f": str(tmp_path / "sources.yaml")},
        )
    eng.dispose()
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(users, allow_unicode=True), encoding="utf-8")  # no demo marker
    with pytest.raises(ConfigError, match="不是本数据仓库的演示账号"):
        resolve("legal", url)
    path.write_text(yaml.safe_dump({**users, "demo": {"sources_sha256": "other"}}), encoding="utf-8")
    with pytest.raises(ConfigError, match="不是本数据仓库的演示账号"):
        resolve("legal", url)  # another demo's accounts
    path.write_text(yaml.safe_dump({**users, "demo": {"sources_sha256": "abc"}}), encoding="utf-8")
    assert resolve("legal", url).role == "legal"
