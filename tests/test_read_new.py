"""A later run's read of a file table with ``updated_at`` (etl.sources.pieces.read_new): streamed, each frame
cut to its rows above the watermark while reading.  The warehouse, the quarantine and every table's figures
must be what reading the whole file and letting staging drop the old rows gives."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from etl import pipeline
from etl.pipeline import run
from tests.etl_fixtures import Form, base_tables, dump_warehouse, query, write_sources

FILES = {"cases": Form("csv"), "dispatch": Form("csv", encoding="gb18030")}
QUARANTINE = "SELECT source, table_name, row_key, reason, payload FROM quarantine ORDER BY 1, 2, 3, 4, 5"


def _later(data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The next day's sources: new rows (one of them bad), a changed row, a row edited below the watermark."""
    data = {k: v.copy() for k, v in data.items()}
    inc = data["incidents"]
    new = inc.iloc[[0, 1, 0]].reset_index(drop=True)
    new["incident_no"] = ["J2026040100004", "J2026040100005", "J2026040100006"]
    new["updated_at"] = ["2026-04-01 09:00:00", "2026-04-01 10:00:00", "2026-04-01 11:00:00"]
    new.loc[2, "unit_code"] = "999999999999"  # unknown unit: quarantined
    inc.loc[inc.index[1], ["ended_at", "updated_at"]] = ["2026-03-05 14:10:00", "2026-04-02 08:00:00"]  # changed
    inc.loc[inc.index[2], "category"] = "纠纷"  # edited without a new updated_at: below the watermark, not read
    data["incidents"] = pd.concat([inc, new], ignore_index=True)
    act = data["case_actions"]
    more = act.iloc[[2]].assign(action_id="A0009", updated_at="2026-04-03 09:00:00")
    data["case_actions"] = pd.concat([act, more], ignore_index=True)
    return data


def _two_runs(tmp_path: Path, name: str, stream: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[dict, str]:
    with monkeypatch.context() as mp:
        mp.setenv("AVSUP_SETTINGS", str(tmp_path / "pieces.yaml"))
        if not stream:
            mp.setattr(pipeline, "_streams_new_rows", lambda src, wm: False)
        src = write_sources(tmp_path / name, forms=FILES)
        wh = f"sqlite:///{tmp_path / f'{name}.sqlite'}"
        assert run(src, warehouse=wh, rules=False, progress=False).status == "ok"
        write_sources(tmp_path / name, data=_later(base_tables()), forms=FILES)
        second = run(src, warehouse=wh, rules=False, progress=False)
    assert second.status == "ok"
    return second.tables, wh


def test_streamed_new_rows_give_what_the_whole_read_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pieces.yaml").write_text("etl:\n  load_piece_rows: 2\n", encoding="utf-8")  # frames of 2 rows
    calls: list[str] = []
    real = pipeline.read_new

    def counted(src, table, wm, rows):  # noqa: ANN001, ANN202
        calls.append(table.name)
        return real(src, table, wm, rows)

    monkeypatch.setattr(pipeline, "read_new", counted)
    streamed, a = _two_runs(tmp_path, "streamed", True, monkeypatch)
    assert {"incidents", "case_actions", "cases"} <= set(calls)  # the file tables with updated_at were streamed
    whole, b = _two_runs(tmp_path, "whole", False, monkeypatch)
    assert dump_warehouse(a, with_bookkeeping=False) == dump_warehouse(b, with_bookkeeping=False)
    assert query(a, QUARANTINE) == query(b, QUARANTINE)
    for name, st in whole.items():
        got = streamed[name]
        assert (got.read, got.unchanged, got.loaded, got.rejected) == (st.read, st.unchanged, st.loaded, st.rejected)
    inc = streamed["incidents"]
    assert (inc.read, inc.unchanged, inc.loaded, inc.rejected) == (6, 2, 3, 1)
    assert streamed["case_actions"].unchanged == 3 and streamed["case_actions"].loaded == 1
    (category,) = query(a, "SELECT category FROM incidents WHERE incident_no = 'J2026030600003'")[0]
    assert category == "求助"  # the edit below the watermark was not read, as with the whole read
