"""The commands ``spotcheck draw|record`` and ``rectify notice|respond|close|print`` end to end: each prints the
id it created; a refusal exits 2 with ``错误：`` and the Chinese reason, and writes nothing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from etl.cli import main
from etl.warehouse.db import make_engine
from tests.supervision_fixtures import ROOT_DIR, finding_of, frame, scalar, snapshot


@pytest.fixture
def wh(fresh_sqlite: str, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.delenv("DASHBOARD_USERS_FILE", raising=False)
    monkeypatch.setenv("AVSUP_TODAY", "2026-12-01")
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


def test_the_loop_from_the_command_line(wh, capsys, tmp_path: Path) -> None:  # noqa: ANN001
    url, eng = wh
    w = ("--warehouse", url)
    code, out, err = cli(capsys, "spotcheck", "draw", "--period", "2026-07", "--kind", "events", "--per-unit", "500",
                         "--seed", "7", "--by", "legal", "--reason", "七月抽查", *w)  # fmt: skip
    assert (code, err) == (0, "")
    cid = created_id(out)
    assert "已抽取" in out and "已全部抽取" in out  # the sample is larger than every unit's population
    assert scalar(eng, "SELECT created_by FROM sup_campaigns WHERE campaign_id = :c", c=cid) == "legal"
    items = frame(eng, "SELECT object_key, unit_code FROM sup_spotcheck_items WHERE campaign_id = :c "
                  "AND unit_code = '140403510000' ORDER BY draw_order", c=cid)  # fmt: skip
    obj = items["object_key"].iloc[0]

    code, out, err = cli(capsys, "spotcheck", "record", "--campaign", str(cid), "--object", obj, "--fail", "16.2,16.6",
                         "--na", "16.3", "--note", "未拍摄现场环境", "--by", "legal", "--reason", "抽查不合格", *w)  # fmt: skip
    assert (code, err) == (0, "")
    hid = created_id(out)
    key = f"SPOT-CHECK:{obj}:{cid}"
    assert key in out and "16.2、16.6" in out
    assert scalar(eng, "SELECT verdict FROM sup_spotcheck_history WHERE id = :i", i=hid) == "fail"
    assert scalar(eng, "SELECT result FROM sup_spotcheck_points WHERE object_key = :k AND point_id = '16.3'",
                  k=obj) == "n/a"  # fmt: skip
    assert scalar(eng, "SELECT article FROM v_findings WHERE finding_key = :k", k=key) == "第十六条"

    code, out, err = cli(capsys, "rectify", "notice", "--unit", "140403510000", "--campaign", str(cid),
                         "--text", "请整改现场执法记录", "--officers", "", "--by", "legal", "--reason", "抽查不合格", *w)  # fmt: skip
    assert (code, err) == (0, "")
    nid = created_id(out)
    assert "2026-12-16" in out and "问题 1 个" in out
    assert scalar(eng, "SELECT text FROM sup_notices WHERE notice_id = :n", n=nid) == "请整改现场执法记录"
    assert scalar(eng, "SELECT notice_id FROM v_findings WHERE finding_key = :k", k=key) == nid

    code, out, err = cli(capsys, "rectify", "respond", "--notice", str(nid), "--by", "station",
                         "--reason", "已重新培训", *w)  # fmt: skip
    assert (code, err) == (0, "")
    assert scalar(eng, "SELECT kind FROM sup_notice_events WHERE id = :i", i=created_id(out)) == "respond"
    code, out, err = cli(capsys, "rectify", "close", "--notice", str(nid), "--verdict", "return", "--deadline",
                         "2026-12-30", "--by", "legal", "--reason", "措施不具体", *w)  # fmt: skip
    assert (code, err) == (0, "") and "退回" in out
    assert scalar(eng, "SELECT state FROM sup_notices WHERE notice_id = :n", n=nid) == "returned"
    assert cli(capsys, "rectify", "respond", "--notice", str(nid), "--text", "补充台账", "--by", "county",
               "--reason", "补充", *w)[0] == 0  # fmt: skip
    code, out, _ = cli(capsys, "rectify", "close", "--notice", str(nid), "--verdict", "accept", "--note", "整改到位",
                       "--by", "legal", "--reason", "验收", *w)  # fmt: skip
    assert code == 0 and "验收通过" in out
    assert scalar(eng, "SELECT state FROM v_rectifications WHERE notice_id = :n", n=nid) == "closed"

    docx = tmp_path / "notice.docx"
    code, out, err = cli(capsys, "rectify", "print", "--notice", str(nid), "--docx", str(docx), "--by", "legal",
                         "--reason", "打印盖章", *w)  # fmt: skip
    assert (code, err) == (0, ""), err
    assert docx.is_file() and zipfile.is_zipfile(docx)
    with zipfile.ZipFile(docx) as z:
        body = z.read("word/document.xml").decode("utf-8")
    assert "整改通知书" in body and key in body

    audit = frame(eng, "SELECT username, page, action FROM audit_log WHERE action LIKE 'spotcheck:%' "
                  "OR action LIKE 'rectify:%' ORDER BY id")  # fmt: skip
    assert audit["action"].tolist() == [
        "spotcheck:draw", "spotcheck:fail", "rectify:issue", "rectify:respond", "rectify:return", "rectify:respond",
        "rectify:accept", "rectify:print",
    ]  # fmt: skip
    assert set(audit["page"]) == {"cli"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["spotcheck", "draw", "--period", "2026-07", "--kind", "events", "--per-unit", "2", "--seed", "1",
          "--by", "county", "--reason", "x"], "无权"),
        (["spotcheck", "draw", "--period", "2026-07", "--kind", "events", "--per-unit", "0", "--seed", "1",
          "--by", "legal", "--reason", "x"], "至少为 1"),
        (["spotcheck", "draw", "--period", "2026-07", "--kind", "events", "--per-unit", "2", "--seed", "1",
          "--by", "legal", "--reason", " "], "理由"),
        (["spotcheck", "record", "--campaign", "CID", "--object", "NOT-DRAWN", "--fail", "16.2",
          "--by", "legal", "--reason", "x"], "不在抽查"),
        (["spotcheck", "record", "--campaign", "CID", "--object", "OBJ", "--fail", "99",
          "--by", "legal", "--reason", "x"], "未知的检查项"),
        (["rectify", "notice", "--unit", "140423510000", "--findings", "OWN", "--by", "legal", "--reason", "x"],
         "不属于单位"),
        (["rectify", "notice", "--unit", "140403510000", "--findings", "OWN", "--deadline", "2026-11-30",
          "--by", "legal", "--reason", "x"], "早于下发日期"),
        (["rectify", "notice", "--unit", "140403510000", "--findings", "OWN", "--rules", "AV-NONE",
          "--by", "legal", "--reason", "x"], "--rules"),
        (["rectify", "respond", "--notice", "CLOSED", "--by", "station", "--reason", "x"], "已办结"),
        (["rectify", "respond", "--notice", "OPEN", "--by", "station", "--reason", "x", "--text", " "], "整改措施"),
        (["rectify", "close", "--notice", "OPEN", "--verdict", "accept", "--by", "legal", "--reason", "x"], "尚未答复"),
        (["rectify", "print", "--notice", "999", "--docx", "OUT", "--by", "legal", "--reason", "x"], "未知的整改通知"),
    ],
)  # fmt: skip
def test_refusals_exit_2_and_write_nothing(wh, capsys, tmp_path: Path, args: list[str], message: str) -> None:  # noqa: ANN001
    url, eng = wh
    w = ("--warehouse", url)
    assert cli(capsys, "spotcheck", "draw", "--period", "2026-07", "--kind", "events", "--per-unit", "2", "--seed",
               "1", "--by", "legal", "--reason", "x", *w)[0] == 0  # fmt: skip
    obj = scalar(eng, "SELECT object_key FROM sup_spotcheck_items WHERE campaign_id = 1 ORDER BY draw_order LIMIT 1")
    own = finding_of(eng, unit_prefix="140403510000")["finding_key"]
    code, out, _ = cli(capsys, "rectify", "notice", "--unit", "140403510000", "--findings", own, "--by", "legal",
                       "--reason", "x", *w)  # fmt: skip
    closed = created_id(out)
    for step in (["respond", "--by", "station"], ["close", "--verdict", "accept", "--by", "legal"]):
        assert cli(capsys, "rectify", step[0], "--notice", str(closed), *step[1:], "--reason", "x", *w)[0] == 0
    code, out, _ = cli(capsys, "rectify", "notice", "--unit", "140403510000", "--findings", own, "--by", "legal",
                       "--reason", "x", *w)  # fmt: skip
    open_ = created_id(out)
    subst = {"CID": "1", "OBJ": obj, "OWN": own, "CLOSED": str(closed), "OPEN": str(open_),
             "OUT": str(tmp_path / "x.docx")}  # fmt: skip
    args = [subst.get(a, a) for a in args]
    before = snapshot(eng)
    code, out, err = cli(capsys, *args, *w)
    assert code == 2 and out == "" and err.startswith("错误：") and message in err, err
    assert snapshot(eng) == before
    assert not (tmp_path / "x.docx").exists()


def test_python_m_etl_spotcheck_draw(wh) -> None:  # noqa: ANN001
    url, eng = wh
    env = {k: v for k, v in os.environ.items() if k != "DASHBOARD_USERS_FILE"}
    cmd = [sys.executable, "-m", "etl", "spotcheck", "draw", "--period", "2026-Q3", "--kind", "cases", "--per-unit",
           "2", "--seed", "9", "--unit", "140423000000", "--by", "legal", "--reason", "县局案卷抽查", "--warehouse", url]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT_DIR, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    cid = created_id(proc.stdout)
    units = frame(eng, "SELECT DISTINCT unit_code FROM sup_spotcheck_items WHERE campaign_id = :c", c=cid)
    assert all(u.startswith("140423") for u in units["unit_code"])
    proc = subprocess.run([*cmd[:-4], "--reason", "", "--warehouse", url], capture_output=True, text=True,
                          cwd=ROOT_DIR, env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.startswith("错误：") and "理由" in proc.stderr
