"""etl.times.to_local: source times with an explicit offset in the bureau's zone; each input form."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest

from etl.times import local_zone, to_local

LOCAL = "2026-07-01 08:30:00"


@pytest.mark.parametrize(
    "value",
    [
        "2026-07-01T00:30:00Z",  # UTC, "Z"
        "2026-07-01T00:30:00z",
        "2026-07-01 00:30:00+00:00",  # UTC, "+00:00"
        "2026-07-01T08:30:00+08:00",  # already the bureau's offset
        "2026-07-01 08:30:00 +0800",  # no colon, a space before it
        "2026-07-01T00:30+00",  # hours only, no seconds
        "2026-06-30T19:30:00-05:00",  # another offset, across midnight
        "2026-07-01T00:30:00.250Z",  # fractions of a second
    ],
)
def test_offsets_are_converted(value):
    assert to_local(value) == LOCAL


@pytest.mark.parametrize("value", ["2026-07-01 08:30:00", "2026/07/01 08:30", "20260701083000", "不是时间", ""])
def test_times_without_an_offset_are_local_already(value):
    assert to_local(value) == value  # unchanged: staging parses them with the source's format


def test_datetimes_and_nulls():
    assert to_local(datetime(2026, 7, 1, 0, 30, tzinfo=UTC)) == datetime(2026, 7, 1, 8, 30)
    assert to_local(datetime(2026, 7, 1, 8, 30)) == datetime(2026, 7, 1, 8, 30)  # naive: local
    assert to_local(pd.Timestamp("2026-07-01T00:30:00Z")) == pd.Timestamp(LOCAL)
    assert to_local(None) is None


def test_series_mixed_forms():
    s = pd.Series(
        ["2026-07-01 08:30:00", "2026-07-01T00:30:00Z", None, "bad", "2026-07-01 01:30:00+01:00"], dtype="str"
    )
    out = to_local(s)
    assert out.tolist()[:2] == [LOCAL, LOCAL] and out.iloc[3] == "bad" and out.iloc[4] == LOCAL
    assert pd.isna(out.iloc[2]) and out.dtype == s.dtype
    aware = pd.Series(pd.to_datetime(["2026-07-01T00:30:00Z"]))
    assert to_local(aware).tolist() == [pd.Timestamp(LOCAL)]


def test_zone_is_configurable(tmp_path, monkeypatch):
    assert local_zone() == "Asia/Shanghai"
    assert to_local("2026-07-01T00:30:00Z", tz="Asia/Urumqi") == "2026-07-01 06:30:00"
    from etl import settings

    (tmp_path / "s.yaml").write_text("timezone: Europe/Berlin\n", encoding="utf-8")
    monkeypatch.setenv(settings.ENV, str(tmp_path / "s.yaml"))
    settings.load.cache_clear()
    try:
        assert to_local("2026-07-01T00:30:00Z") == "2026-07-01 02:30:00"
    finally:
        monkeypatch.delenv(settings.ENV)
        settings.load.cache_clear()
    assert to_local(datetime(2026, 7, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5)))) == datetime(2026, 7, 1, 13, 30)


def test_staging_converts_source_times_with_an_offset() -> None:
    """Staging (every source time column goes through ``parse_dt``) converts an explicit offset to local time
    and keeps local text as it is."""
    from etl.sources.staging import parse_dt

    got = parse_dt(pd.Series(["2026-07-01T00:30:00Z", "2026-07-01 08:00:00", "2026-07-01 09:00:00+08:00", None]))
    assert got.tolist()[:3] == ["2026-07-01 08:30:00", "2026-07-01 08:00:00", "2026-07-01 09:00:00"]
    assert pd.isna(got.iloc[3])
