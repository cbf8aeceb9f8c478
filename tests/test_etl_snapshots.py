"""The large mirrors kept between runs as the rules read them (``etl.warehouse.snapshots``).

Whatever happens between two runs, every snapshot a run leaves must equal its
mirror read whole in rowid order (values and Python types), and the findings
the run stored must equal those of an evaluation that reads the mirrors
plainly.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from etl.pipeline import run
from etl.rules import base, config, findings
from etl.warehouse import snapshots
from etl.warehouse.db import make_engine
from tests.etl_fixtures import base_tables, write_sources


def _types(df: pd.DataFrame) -> pd.DataFrame:
    return df.map(lambda v: type(v).__name__)


def _check_warehouse(wh: str, run_id: int) -> set[str]:
    """Snapshots equal their mirrors; stored findings equal a plain evaluation.  Returns the snapshot tables."""
    engine = make_engine(wh)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f"SELECT name, run_id, data FROM {snapshots.TABLE}").fetchall()
        tables = set()
        for name, rid, data in rows:
            assert rid == run_id, name
            table, rest = name.split(":", 1)
            cols, _, where = rest.partition("|")
            columns = cols.split(",")
            sel, dt_cols = base.select_list(conn, table, columns)
            cond = f" WHERE {where}" if where else ""
            # read whole in a snapshot's order: by rowid (with it) on SQLite, by key on PostgreSQL
            plain = snapshots._fetch(conn, table, sel, cond, columns, dt_cols)
            tab = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
            kept = snapshots._frame(tab, list(plain.columns))
            pd.testing.assert_frame_equal(kept, plain, check_exact=True)
            pd.testing.assert_frame_equal(_types(kept), _types(plain))
            tables.add(table)
        as_of = conn.exec_driver_sql("SELECT MAX(as_of) FROM etl_runs WHERE status = 'ok'").scalar()
        stored = pd.read_sql("SELECT * FROM findings", conn).sort_values("finding_key", ignore_index=True)
        # an evaluation without the run's Snapshots: every mirror read plainly
        fresh = findings.evaluate(conn, pd.Timestamp(as_of).to_pydatetime(), config.load(None), integrity_checked=False)
    engine.dispose()
    fresh = fresh.sort_values("finding_key", ignore_index=True)
    cols = [
        "finding_key",
        "rule_id",
        "unit_code",
        "case_no",
        "action_id",
        "doc_id",
        "incident_no",
        "police_no",
        "doc_type",
        "detail",
    ]
    assert stored[cols].fillna("").astype(str).values.tolist() == fresh[cols].fillna("").astype(str).values.tolist()
    return tables


def _changed(data: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """A day of changes in every kept table: changed, removed and new rows."""
    d = {k: v.copy() for k, v in data.items()}
    c = d["cases"]
    c.loc[c["case_no"] == "C2026002", ["title", "updated_at"]] = ["违反治安管理（补正）", "2026-03-30 09:00:00"]
    d["case_actions"] = pd.concat(
        [
            d["case_actions"],
            pd.DataFrame(
                [
                    {
                        "action_id": "A0004",
                        "case_no": "C2026002",
                        "action_type": "inspection",
                        "started_at": "2026-03-29 09:00:00",
                        "ended_at": "2026-03-29 09:30:00",
                        "police_no": "023001",
                        "updated_at": "2026-03-29 09:30:00",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    docs = d["case_documents"]
    docs.loc[docs["doc_id"] == "D0001", ["party_signed", "updated_at"]] = ["0", "2026-03-30 10:00:00"]
    co = d["case_officers"]
    d["case_officers"] = co[co["police_no"] != "012346"].reset_index(drop=True)
    d["incident_officers"] = pd.concat(
        [d["incident_officers"], pd.DataFrame([{"incident_no": "J2026030500002", "police_no": "012345"}])],
        ignore_index=True,
    )
    inc = d["incidents"]  # one leaves the on-site filter of its snapshot, one new enters it
    inc.loc[inc["incident_no"] == "J2026030100001", ["on_site", "updated_at"]] = ["0", "2026-03-30 11:00:00"]
    d["incidents"] = pd.concat(
        [
            inc,
            pd.DataFrame(
                [
                    {
                        "incident_no": "J2026032900004",
                        "unit_code": inc["unit_code"].iloc[0],
                        "category": "纠纷",
                        "received_at": "2026-03-29 08:40:00",
                        "arrived_at": "2026-03-29 08:50:00",
                        "ended_at": "2026-03-29 09:20:00",
                        "on_site": "1",
                        "case_no": "C2026002",
                        "updated_at": "2026-03-29 09:30:00",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    clips = d["clips"]  # one clip gets a case tag, one new tagged clip covers the new action
    clips.loc[clips["clip_id"] == "K000002", ["case_no", "updated_at"]] = ["C2026001", "2026-03-30 12:00:00"]
    d["clips"] = pd.concat(
        [
            clips,
            pd.DataFrame(
                [
                    {
                        "clip_id": "K000004",
                        "device_sn": "DSJ0001",
                        "police_no": "012345",
                        "started_at": "2026-03-29 09:00:00",
                        "ended_at": "2026-03-29 09:25:00",
                        "size_bytes": "1024",
                        "sha256": "dd" * 32,
                        "imported_at": "2026-03-29 12:00:00",
                        "file_path": "2026/03/K000004.mp4",
                        "incident_no": "J2026032900004",
                        "case_no": "C2026002",
                        "is_evidence": "1",
                        "deleted_at": None,
                        "updated_at": "2026-03-29 12:00:00",
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    dl = d["deliveries"]
    dl.loc[dl["delivery_id"] == "V0001", "receipt_signed"] = "0"
    return d


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tables whose snapshot a run patched (the real function runs)."""
    seen: list[str] = []
    real = snapshots._patch

    def patch(conn, table, *args):  # noqa: ANN001, ANN202
        seen.append(table)
        return real(conn, table, *args)

    monkeypatch.setattr(snapshots, "_patch", patch)
    return seen


def test_snapshots_are_patched_with_the_day_and_give_the_plain_findings(
    tmp_path: Path, spy: list[str], warehouse: str
) -> None:
    src = write_sources(tmp_path / "src")
    wh = warehouse
    first = run(src, warehouse=wh, progress=False)
    # case officers and tagged clips are read for actions with audio-video only (none in the base data)
    assert _check_warehouse(wh, first.run_id) >= snapshots.KEPT - {"case_officers", "clips"}
    assert spy == []  # nothing to patch in a first run: every table read whole
    write_sources(tmp_path / "src", data=_changed(base_tables()))
    second = run(src, warehouse=wh, progress=False)
    assert {"cases", "case_actions", "case_documents", "incident_officers", "deliveries", "incidents"} <= set(spy)
    assert {"clips", "case_officers"} <= _check_warehouse(wh, second.run_id)  # read whole: first time
    data = _changed(base_tables())
    clips = data["clips"]  # the new clip loses its case tag: it leaves the filter of the tagged-clip snapshot
    clips.loc[clips["clip_id"] == "K000004", ["case_no", "updated_at"]] = [None, "2026-03-31 12:00:00"]
    write_sources(tmp_path / "src", data=data)
    spy.clear()
    third = run(src, warehouse=wh, progress=False)
    assert spy == ["clips", "clips"]  # its two reads: case-tagged clips, deleted or late clips
    _check_warehouse(wh, third.run_id)


def test_a_run_without_rules_in_between_makes_snapshots_stale(tmp_path: Path, spy: list[str]) -> None:
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(src, warehouse=wh, progress=False)
    write_sources(tmp_path / "src", data=_changed(base_tables()))
    run(src, warehouse=wh, rules=False, progress=False)  # loads the day, leaves the snapshots behind
    third = run(src, warehouse=wh, progress=False)
    assert spy == []  # not trusted: read whole again
    _check_warehouse(wh, third.run_id)


def test_a_row_deleted_around_the_loader_is_caught_by_the_row_count(tmp_path: Path, spy: list[str]) -> None:
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(src, warehouse=wh, progress=False)
    engine = sa.create_engine(wh)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM case_actions WHERE action_id = 'A0002'")
    engine.dispose()
    second = run(src, warehouse=wh, progress=False)  # case_actions has updated_at: the load does not restore it
    _check_warehouse(wh, second.run_id)


def test_a_failed_run_leaves_the_snapshots_as_they_were(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first = run(src, warehouse=wh, progress=False)
    write_sources(tmp_path / "src", data=_changed(base_tables()))
    from etl.scoring import scores as scoring

    def boom(*_a, **_k):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("scoring failed")

    monkeypatch.setattr(scoring, "compute", boom)
    with pytest.raises(RuntimeError):
        run(src, warehouse=wh, progress=False)
    monkeypatch.undo()
    _check_warehouse(wh, first.run_id)  # rolled back with the mirrors: still the first run's
    third = run(src, warehouse=wh, progress=False)
    _check_warehouse(wh, third.run_id)


def test_frames_go_through_arrow_value_for_value() -> None:
    df = pd.DataFrame(
        {
            "_rowid": pd.Series([1, 2, 3], dtype=object),
            "text": pd.Series(["a", None, "丙"], dtype=object),
            "flag": pd.Series([1, None, 0], dtype=object),
            "nothing": pd.Series([None, None, None], dtype=object),
            "blob": pd.Series([b"x", None, b"\x00"], dtype=object),
            "at": np.array([1.0, np.nan, 3.5]),
        }
    )
    tab = snapshots._arrow(df)
    back = snapshots._frame(tab, list(df.columns))
    pd.testing.assert_frame_equal(back, df, check_exact=True)
    pd.testing.assert_frame_equal(_types(back), _types(df))


@pytest.mark.parametrize("values", [["a", 1], [1, 2.5], [1.5, None], [True, False]])
def test_columns_arrow_would_change_are_not_kept(values: list) -> None:
    """SQLite lets a column mix kinds: such a table is read plainly instead."""
    assert snapshots._arrow(pd.DataFrame({"c": pd.Series(values, dtype=object)})) is None


def test_a_patch_of_a_column_of_another_kind_is_refused() -> None:
    schema = snapshots._arrow(pd.DataFrame({"c": pd.Series([1, 2], dtype=object)})).schema
    assert snapshots._arrow(pd.DataFrame({"c": pd.Series(["x"], dtype=object)}), schema) is None
    nulls = snapshots._arrow(pd.DataFrame({"c": pd.Series([None], dtype=object)}), schema)
    assert nulls.schema == schema


def test_no_snapshot_outside_a_run(tmp_path: Path) -> None:
    """Without a run's ``Snapshots`` the mirrors are read plainly and no snapshot is kept."""
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    run(src, warehouse=wh, rules=False, progress=False)
    engine = make_engine(wh)
    with engine.begin() as conn:
        plain = base.read_table(conn, "cases", ["case_no", "unit_code"])
        findings.evaluate(conn, datetime(2026, 4, 1), config.load(None), integrity_checked=False)
        kept = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {snapshots.TABLE}").scalar()
    engine.dispose()
    assert len(plain) and kept == 0


def test_a_second_read_in_the_same_run_takes_the_snapshot_as_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first = run(src, warehouse=wh, progress=False)
    writes: list[str] = []
    real = snapshots._write
    monkeypatch.setattr(snapshots, "_write", lambda conn, name, *a: (writes.append(name), real(conn, name, *a)))
    engine = make_engine(wh)
    with engine.connect() as conn, conn.begin() as tx:
        snaps = snapshots.Snapshots(conn, first.run_id + 1)
        frames = [base.read_table(conn, "cases", snapshots=snaps) for _ in range(2)]
        kept = conn.exec_driver_sql(f"SELECT run_id FROM {snapshots.TABLE} WHERE name LIKE 'cases:%'").scalar()
        tx.rollback()
    engine.dispose()
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)
    assert kept == first.run_id + 1 and writes == []  # taken as it was twice, never read whole


def test_no_snapshot_of_a_read_without_the_key(tmp_path: Path) -> None:
    """Such a snapshot could never be patched (clip_runs reads every clip's device and times, no clip_id)."""
    src = write_sources(tmp_path / "src")
    wh = f"sqlite:///{tmp_path / 'w.sqlite'}"
    first = run(src, warehouse=wh, progress=False)
    engine = make_engine(wh)
    with engine.connect() as conn, conn.begin() as tx:
        snaps = snapshots.Snapshots(conn, first.run_id + 1)
        cols = ["device_sn", "started_at"]
        sel, dt = base.select_list(conn, "clips", cols)
        assert snaps.read(conn, "clips", cols, sel, dt) is None
        tx.rollback()
    engine.dispose()
