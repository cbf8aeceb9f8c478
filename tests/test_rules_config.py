"""config/rules.yaml: the shipped file is complete; bad files fail with a Chinese message."""

from __future__ import annotations

import pytest

from etl.errors import ConfigError
from etl.rules import config
from etl.rules.keys import RULES

ACTION_CODES = {
    "inquiry",
    "evidence_collection",
    "evidence_preservation",
    "sampling",
    "inspection",
    "survey",
    "hearing",
    "appraisal",
    "seal",
    "seize",
    "freeze",
    "restrict_liberty",
    "obstruction",
    "mass_incident",
    "refusal",
    "rights_notification",
    "statement_defence",
    "urge",
    "compulsory_execution",
    "remove_obstruction",
    "restore",
    "court_application",
    "performance_check",
}
AV = {
    "sampling",
    "inspection",
    "survey",
    "hearing",
    "seal",
    "seize",
    "restrict_liberty",
    "obstruction",
    "mass_incident",
    "refusal",
    "remove_obstruction",
    "restore",
}


def test_shipped_config_matches_rules_md():
    cfg = config.load()
    assert cfg["params"] == {
        "gap_tolerance_s": 30,
        "report_deadline_h": 24,
        "emergency_backfill_h": 24,
        "performance_check_days": 30,
        "repair_days": 30,
        "retention_days": 180,
        "upload_deadline_h": 24,
        "appeal_days": 10,  # shared/spec/supervision.md
        "rectify_days": 15,
        "clock_drift_s": 120,  # issue 16: the data-quality queue's clock drift
        "clock_drift_min_events": 3,
        "clock_drift_days": 30,
        "future_tolerance_h": 24,  # issue 16: rows dated after the run + this are quarantined
        "shrink_guard": 0.5,  # issue 16: the truncation guard
    }
    assert cfg["excuse_review"] == "auto"
    assert set(cfg["actions"]) == ACTION_CODES
    assert {k for k, v in cfg["actions"].items() if v["av"]} == AV
    assert cfg["actions"]["hearing"]["documents"] == ["hearing_notice", "hearing_record"]
    assert cfg["actions"]["obstruction"]["documents"] == []
    assert all(a["article"].startswith("第") for a in cfg["actions"].values())
    for docs in (a["documents"] for a in cfg["actions"].values()):
        assert all(d in cfg["documents"] for d in docs)
    assert len(cfg["signature_required"]) == 10 and len(cfg["served_documents"]) == 6
    assert cfg["delivery_requirements"]["entrusted"] == ["receipt_signed", "reason", "entrustee"]
    assert cfg["av_replaces_document"] == {"inspection": ["inspection_record"]}
    assert cfg["active_scheme"] == "measures-2026" and cfg["dir"].name == "config"
    assert cfg["version"]
    assert len(RULES) == 27  # v1.1: DELETE-UNLOGGED


@pytest.mark.parametrize(
    "text, words",
    [
        ("version: 1\nparams: {gap_tolerance_s: -1}\nactions: {inquiry: {documents: []}}\n", "gap_tolerance_s"),
        ("version: 1\nparams: {nonsense: 3}\nactions: {inquiry: {documents: []}}\n", "nonsense"),
        ("version: 1\n", "actions"),
        ("version: [1\n", "格式错误"),
        ("version: 1\nexcuse_review: sometimes\nactions: {inquiry: {documents: []}}\n", "excuse_review"),
    ],
)
def test_bad_config_fails_in_chinese(tmp_path, text, words):
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path)
    assert words in str(err.value)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in str(err.value))


def test_excuse_review_required(tmp_path):
    (tmp_path / "rules.yaml").write_text(
        "version: 1\nexcuse_review: required\nactions: {inquiry: {documents: []}}\n", encoding="utf-8"
    )
    assert config.load(tmp_path)["excuse_review"] == "required"


def test_missing_config_dir(tmp_path):
    with pytest.raises(ConfigError, match="找不到规则配置文件"):
        config.load(tmp_path / "nope")


def test_changed_parameter_changes_findings(tmp_path, sqlite_url):
    """A bureau changes the tolerance in the config file, not in code."""
    from datetime import datetime

    import sqlalchemy as sa
    from scenario import D1, P1, load_scenario, world

    from etl.rules import coverage

    text = (
        (config.DEFAULT_DIR / "rules.yaml")
        .read_text(encoding="utf-8")
        .replace("gap_tolerance_s: 30", "gap_tolerance_s: 120")
    )
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    eng = load_scenario(
        sqlite_url,
        world(
            incidents=[
                {
                    "incident_no": "J1",
                    "received_at": "2026-03-01 09:00:00",
                    "arrived_at": "2026-03-01 10:00:00",
                    "ended_at": "2026-03-01 10:40:00",
                }
            ],
            incident_officers=[{"incident_no": "J1", "police_no": P1}],
            clips=[
                {
                    "clip_id": "C1",
                    "device_sn": D1,
                    "police_no": P1,
                    "started_at": "2026-03-01 10:01:00",
                    "ended_at": "2026-03-01 10:40:00",
                }
            ],
        ),
        evaluate=False,
    )
    for cfg_dir, expected in ((None, "partial"), (tmp_path, "full")):
        with eng.begin() as conn:
            coverage.compute(conn, datetime(2026, 3, 31, 23, 59, 59), config.load(cfg_dir))
            assert conn.execute(sa.text("SELECT status FROM event_coverage")).scalar_one() == expected


def test_an_edited_file_is_read_again_and_callers_get_their_own_copy(tmp_path) -> None:  # noqa: ANN001
    import shutil
    import time

    from etl.rules import config as rules_config

    shutil.copy(rules_config.DEFAULT_DIR / "rules.yaml", tmp_path / "rules.yaml")
    first = rules_config.load(tmp_path)
    first["params"]["appeal_days"] = -1  # a caller's change stays its own
    assert rules_config.load(tmp_path)["params"]["appeal_days"] != -1
    text = (tmp_path / "rules.yaml").read_text(encoding="utf-8")
    time.sleep(0.01)
    (tmp_path / "rules.yaml").write_text(text.replace("appeal_days: 10 ", "appeal_days: 3  ", 1), encoding="utf-8")
    assert rules_config.load(tmp_path)["params"]["appeal_days"] == 3
