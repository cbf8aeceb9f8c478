"""The load's reads ahead (etl.pipeline.reads_ahead): in contract order, within the byte budget of files
waiting in memory, never holding back the next table."""

from __future__ import annotations

import pytest

from etl import settings
from etl.errors import ConfigError
from etl.pipeline import READ_AHEAD, reads_ahead

PLAN = ["a", "b", "c", "d", "e"]


def test_everything_ahead_when_it_fits() -> None:
    held = dict.fromkeys(PLAN, 10)
    assert reads_ahead(PLAN, 0, set(), held, 1000) == PLAN[: 1 + READ_AHEAD]


def test_the_budget_stops_the_reads_in_order() -> None:
    held = {"a": 60, "b": 30, "c": 50, "d": 1, "e": 1}
    # a and b fit in 100; c does not, and d (small) does not jump ahead of it
    assert reads_ahead(PLAN, 0, set(), held, 100) == ["a", "b"]
    # once a is loaded, a's bytes are free again: c fits beside b
    assert reads_ahead(PLAN, 1, {"a", "b"}, held, 100) == ["c", "d", "e"]


def test_the_next_table_is_read_whatever_its_size() -> None:
    held = {"a": 500, "b": 400, "c": 0, "d": 0, "e": 0}
    assert reads_ahead(PLAN, 0, set(), held, 100) == ["a"]
    assert reads_ahead(PLAN, 1, {"a"}, held, 100) == ["b"]
    # tables that hold nothing (database tables, surveys) still wait while the files in front exceed the budget
    assert reads_ahead(PLAN, 1, {"a", "b"}, held, 100) == []
    assert reads_ahead(PLAN, 2, {"a", "b"}, held, 100) == ["c", "d", "e"]


def test_the_setting_must_be_a_positive_whole_number(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "s.yaml"
    path.write_text("etl:\n  read_ahead_mb: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="etl.read_ahead_mb"):
        settings.load(str(path))
    path.write_text("etl:\n  read_ahead_mb: 64\n", encoding="utf-8")
    assert settings.load(str(path))["etl"]["read_ahead_mb"] == 64
