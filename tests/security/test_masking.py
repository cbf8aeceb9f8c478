"""Threat: the IT role ("no case content") reading case numbers, names, reasons or payload values."""

from __future__ import annotations

import json

import sqlalchemy as sa
from helpers import logged_in, open_page, texts

from dashboard import queries


def _seed(url: str) -> None:
    """A viewed case with its reason, and a quarantined row with values in its reason and payload."""
    from etl.warehouse import audit

    class Legal:
        username, role, scope_label = "legal", "legal", "city"

    eng = sa.create_engine(url)
    audit.record(eng, Legal(), "cases", "view_case", "CASE-A2-001", "张三殴打他人案复查")
    with eng.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO quarantine (run_id, source, table_name, row_key, reason, payload) VALUES (1, 'cases', 'cases', :k, :r, :p)"
            ),
            {
                "k": "CASE-Q-9",
                "r": "主键重复 CASE-Q-9",
                "p": json.dumps({"case_no": "CASE-Q-9", "title": "李四盗窃案", "suspect": "李四"}, ensure_ascii=False),
            },
        )
    eng.dispose()


def test_it_sees_no_case_content_in_the_system_log_and_data_pages(wh):
    _seed(wh.url)
    at = open_page(logged_in("it"), "syslog")
    shown = texts(at)
    assert "view_case" in shown  # the technical fields stay
    for secret in ("CASE-A2-001", "张三殴打他人案复查"):
        assert secret not in shown
    at = open_page(at, "data")
    shown = texts(at)
    assert "主键重复 ***" in shown and "CASE-Q-9" not in shown and "CLIP-B1-005" not in shown


def test_the_legal_department_still_sees_them(wh):
    _seed(wh.url)
    at = open_page(logged_in("legal"), "syslog")
    assert "CASE-A2-001" in texts(at) and "张三殴打他人案复查" in texts(at)


def test_payloads_keep_their_keys_and_lose_their_values():
    payload = json.dumps({"case_no": "CASE-1", "title": "王五案", "n": 3}, ensure_ascii=False)
    masked = json.loads(queries.mask_payload(payload))
    assert set(masked) == {"case_no", "title", "n"} and set(masked.values()) == {"***"}
    frame = queries.mask_frame(
        __import__("pandas").DataFrame({"payload": [payload], "row_key": ["CASE-1"], "count": [2]}),
        "it",
        ("payload", "row_key"),
    )
    assert "CASE-1" not in frame.to_csv() and "王五" not in frame.to_csv() and frame["count"].iloc[0] == 2


def test_it_sees_no_case_content_in_a_failed_run_message(wh):
    """A failed run's message may quote a source row (its case number): IT sees that the run failed, not it."""
    eng = sa.create_engine(wh.url)
    with eng.begin() as c:
        run_id = c.execute(sa.text("SELECT COALESCE(MAX(run_id), 0) + 1 FROM etl_runs")).scalar()
        c.execute(
            sa.text(
                "INSERT INTO etl_runs (run_id, started_at, status, message) "
                "VALUES (:i, '2026-12-01 01:00:00', 'failed', '案件 CASE-RUN-77 无法加载')"
            ),
            {"i": run_id},
        )
    eng.dispose()
    assert "CASE-RUN-77" not in texts(open_page(logged_in("it"), "data"))
    assert "CASE-RUN-77" in texts(open_page(logged_in("legal"), "data"))
