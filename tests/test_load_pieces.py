"""The load in pieces (etl.sources.pieces, etl.pipeline._load_pieces): a first load of a large table read,
staged and written a piece at a time leaves the warehouse exactly as the load of the whole table, quarantine
included, with the rows sharing a key spread over the file; and a second run goes on from it alike."""

from __future__ import annotations

import csv
import dataclasses
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
import sqlalchemy as sa

from etl import settings
from etl.demo import generate
from etl.pipeline import RunResult, run
from etl.sources import config as config_mod
from etl.sources.contract import TABLES
from etl.sources.extract import REJECT_COLUMN, StreamError, read_table, stream_table
from etl.sources.pieces import Survey, pieces, survey
from etl.sources.staging import DUPLICATE_KEY_REASON, isin
from etl.warehouse.load import WarehouseKeys
from etl.warehouse.schema import metadata
from tests.conftest import PG_ADMIN_URL, _new_database

PIECE = 250  # rows per piece in these tests (the small demo's large tables have 600 to 17,000 rows)
RUN_COLUMNS = {"run_id", "first_seen_run", "last_seen_run", "checked_at", "computed_at", "data", "mtime_ns"}
RUN_TABLES = {"etl_runs", "source_health", "evaluation", "audit_log", "run_lock"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("piecesdemo") / "small"
    generate(out, scale="small", seed=2026)
    return out


def _sources(folder: Path) -> config_mod.SourcesConfig:
    return config_mod.load(folder / "sources.yaml")


# --- the streaming readers give what the whole readers give ------------------------------------------------


@pytest.mark.parametrize("table", ["case_documents", "incidents", "clips"])  # UTF-8 with BOM, GB 18030, SQLite
def test_the_pieces_put_together_are_the_whole_read(demo_dir: Path, table: str) -> None:
    src = _sources(demo_dir).tables[table]
    whole = read_table(src)
    frames = list(stream_table(src, PIECE))
    assert [len(f) for f in frames[:-1]] == [PIECE] * (len(frames) - 1) and 0 < len(frames[-1]) <= PIECE
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), whole)


@pytest.mark.postgres
def test_a_postgresql_source_streams_through_the_driver(demo_dir: Path, pg_url: str) -> None:
    clips = pd.read_sql_query("SELECT * FROM clips", sqlite3.connect(demo_dir / "media.sqlite"))
    engine = sa.create_engine(pg_url)
    clips.to_sql("clips", engine, index=False)
    engine.dispose()
    src = _sources(demo_dir).tables["clips"]
    src = dataclasses.replace(src, system=dataclasses.replace(src.system, url=pg_url))
    frames = list(stream_table(src, 1000))
    assert len(frames) == -(-len(clips) // 1000)
    pd.testing.assert_frame_equal(pd.concat(frames, ignore_index=True), read_table(src))


def test_a_ragged_file_is_read_whole_by_the_tolerant_reader(demo_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    shutil.copytree(demo_dir, folder)
    with (folder / "cases" / "case_documents.csv").open("a", encoding="utf-8") as f:
        f.write("X-1,A1,only three fields\n")
    src = _sources(folder).tables["case_documents"]
    with pytest.raises(StreamError):
        list(stream_table(src, PIECE))
    got = survey(src, TABLES["case_documents"], PIECE)
    assert isinstance(got, pd.DataFrame) and got[REJECT_COLUMN].notna().sum() == 1


def test_a_table_within_one_piece_is_read_whole(demo_dir: Path) -> None:
    src = _sources(demo_dir).tables["cases"]
    assert isinstance(survey(src, TABLES["cases"], 10_000), pd.DataFrame)


# --- the warehouse after a load in pieces ------------------------------------------------------------------


def _plant(folder: Path) -> dict[str, str]:
    """Rows sharing a key far apart in the file, and other bad rows, in a CSV table and a SQLite table."""
    path = folder / "cases" / "case_documents.csv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    basis = header.index("legal_basis")
    changed = list(body[1])
    changed[basis] = "改动过的法律依据"
    padded = list(body[2])
    padded[0] = f"  {padded[0]} "
    unknown = list(body[3])
    unknown[0], unknown[header.index("case_no")] = "DOC-UNKNOWN-CASE", "NO-SUCH-CASE"
    late = list(body[4])
    late[0], late[header.index("created_at")] = "DOC-BAD-TIME", "2026-13-45 99:00:00"
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([body[0], changed, padded, unknown, late])
    media = sqlite3.connect(folder / "media.sqlite")
    first = media.execute("SELECT clip_id FROM clips ORDER BY rowid LIMIT 1").fetchone()[0]
    media.execute(
        "INSERT INTO clips SELECT clip_id, device_sn, police_no, started_at, ended_at, size_bytes + 1, sha256, "
        "imported_at, file_path, incident_no, case_no, is_evidence, deleted_at, updated_at FROM clips "
        "WHERE clip_id = ?",
        (first,),
    )
    # an access record of a clip that does not exist: in the load in pieces the clips are above the test's
    # HELD_MAX, so the reference is looked up in the warehouse (WarehouseKeys), not among keys held in memory,
    # and must be refused all the same
    media.execute(
        "INSERT INTO access_log SELECT 'LOG-NO-CLIP', 'NO-SUCH-CLIP', action, user_no, at, reason, approver_no, "
        "approved_at, recipient FROM access_log ORDER BY rowid LIMIT 1"
    )
    media.commit()
    media.close()
    return {"exact": body[0][0], "changed": body[1][0], "padded": body[2][0], "clip": first}


def _contents(url: str) -> dict[str, list[tuple]]:
    """Every warehouse table's rows (without what differs from run to run), sorted."""
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for name, table in metadata.tables.items():
            if name in RUN_TABLES:
                continue
            cols = [c for c in table.columns if c.name not in RUN_COLUMNS]
            rows = conn.execute(sa.select(*cols)).fetchall()
            out[name] = sorted((tuple(map(repr, r)) for r in rows), key=repr)
    engine.dispose()
    return out


def _twice(folder: Path, url: str) -> tuple[RunResult, RunResult, dict, dict]:
    """A first run, then a second one after a day's new rows (a new case document at the end of the file)."""
    first = run(folder / "sources.yaml", url, progress=False)
    after_first = _contents(url)
    path = folder / "cases" / "case_documents.csv"
    with path.open(encoding="utf-8-sig", newline="") as f:
        header, last = list(csv.reader(f))[:2]
    last[0] = last[0] + "-NEW"
    last[header.index("updated_at")] = "2026-12-01 08:00:00"  # after the demo's last change, before today
    with path.open("a", encoding="utf-8", newline="") as f:
        csv.writer(f).writerow(last)
    second = run(folder / "sources.yaml", url, progress=False)
    return first, second, after_first, _contents(url)


@pytest.fixture
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'whole.sqlite'}", f"sqlite:///{tmp_path / 'pieces.sqlite'}"
        return
    made = [_new_database(PG_ADMIN_URL, "avpieces") for _ in range(2)]
    try:
        yield made[0][2], made[1][2]
    finally:
        for admin, name, _url in made:
            with admin.connect() as c:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.dispose()


@pytest.mark.parametrize("two_urls", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True)
def test_a_load_in_pieces_leaves_the_warehouse_of_a_whole_load(
    demo_dir: Path, tmp_path: Path, two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    whole_src, pieces_src = tmp_path / "whole", tmp_path / "pieces"
    shutil.copytree(demo_dir, whole_src)
    shutil.copytree(demo_dir, pieces_src)
    planted = _plant(whole_src)
    _plant(pieces_src)
    whole_url, pieces_url = two_urls

    # a first load looks up in the warehouse the referenced tables of more than HELD_MAX keys (as a province's
    # clips), with the row count it loaded; the whole load holds every table's keys (later runs look keys up
    # without a count)
    real_init = WarehouseKeys.__init__
    first_load_look_ups: list[str] = []

    def spy(self: WarehouseKeys, conn: object, table: object, rows: int | None = None) -> None:
        if rows is not None:
            first_load_look_ups.append(table.name)
        real_init(self, conn, table, rows)

    monkeypatch.setattr(WarehouseKeys, "__init__", spy)
    whole = _twice(whole_src, whole_url)
    assert not first_load_look_ups
    (tmp_path / "pieces.yaml").write_text(f"etl:\n  load_piece_rows: {PIECE}\n", encoding="utf-8")
    monkeypatch.setenv(settings.ENV, str(tmp_path / "pieces.yaml"))
    settings.load.cache_clear()
    monkeypatch.setattr(WarehouseKeys, "HELD_MAX", 2 * PIECE)
    try:
        split = _twice(pieces_src, pieces_url)
    finally:
        monkeypatch.delenv(settings.ENV)
        settings.load.cache_clear()

    assert "clips" in first_load_look_ups and "org_units" not in first_load_look_ups
    w_first, w_second, w_after_first, w_after_second = whole
    p_first, p_second, p_after_first, p_after_second = split
    assert w_first.status == p_first.status == w_second.status == p_second.status == "ok"
    # the pieces were used: every large table of the first run, none in the second (its mirrors are not empty)
    assert all(st.pieces == 0 for st in w_first.tables.values())
    assert p_first.tables["clips"].pieces > 10 and p_first.tables["case_documents"].pieces > 10
    assert p_first.tables["incident_officers"].pieces > 1 and p_first.tables["org_units"].pieces == 0
    assert all(st.pieces == 0 for st in p_second.tables.values())
    assert "分段载入：" in p_first.summary() and "clips（" in p_first.summary()
    # what was planted took effect: copies collapsed or rejected together, bad rows rejected
    reasons = {k: v for k, v in p_first.reasons.items()}
    assert reasons == w_first.reasons and reasons
    quarantine = [" ".join(r) for r in p_after_first["quarantine"]]
    assert sum(DUPLICATE_KEY_REASON in r and planted["changed"] in r for r in quarantine) == 2
    assert sum(DUPLICATE_KEY_REASON in r and planted["clip"] in r for r in quarantine) == 2
    docs = {eval(r[0]) for r in p_after_first["case_documents"]}
    assert planted["exact"] in docs and planted["padded"] in docs and planted["changed"] not in docs
    assert "DOC-UNKNOWN-CASE" not in docs and "DOC-BAD-TIME" not in docs
    assert planted["clip"] not in {eval(r[0]) for r in p_after_first["clips"]}
    assert sum("LOG-NO-CLIP" in r and "NO-SUCH-CLIP" in r for r in quarantine) == 1
    assert "LOG-NO-CLIP" not in {eval(r[0]) for r in p_after_first["access_log"]}
    # and the warehouse is the one of the whole load, after the first run and after the second
    for name in w_after_first:
        assert p_after_first[name] == w_after_first[name], name
        assert p_after_second[name] == w_after_second[name], name
    assert {k: (st.read, st.loaded, st.rejected) for k, st in p_first.tables.items()} == {
        k: (st.read, st.loaded, st.rejected) for k, st in w_first.tables.items()
    }
    assert p_second.tables["case_documents"].loaded == w_second.tables["case_documents"].loaded == 1


def test_a_source_read_differently_the_second_time_stops_the_load(demo_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "src"
    shutil.copytree(demo_dir, folder)
    src = _sources(folder).tables["case_documents"]
    surveyed = survey(src, TABLES["case_documents"], PIECE)
    assert isinstance(surveyed, Survey) and len(surveyed.repeated) == 0
    with (folder / "cases" / "case_documents.csv").open("a", encoding="utf-8") as f:
        f.write("X-1,A1,only three fields\n")  # the file changed between the survey and the load
    from etl.errors import SourceError

    with pytest.raises(SourceError, match="变化"):
        list(pieces(src, TABLES["case_documents"], surveyed, PIECE))


def test_the_piece_size_must_be_a_positive_integer(tmp_path: Path) -> None:
    from etl.errors import ConfigError

    (tmp_path / "s.yaml").write_text("etl:\n  load_piece_rows: 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="etl.load_piece_rows"):
        settings.load(str(tmp_path / "s.yaml"))


@pytest.mark.parametrize("kind", ["str-index", "object-index", "str-series", "list", "arrow"])
def test_isin_takes_the_known_keys_in_any_form(kind: str) -> None:
    """The known keys reach staging as an Index of text (from the pieces), a list, or Arrow: the same answer,
    nulls on either side never matching."""
    keys = ["A1", "B2", "中文3", "D4"]
    values = {
        "str-index": pd.Index(keys, dtype="str"),
        "object-index": pd.Index(keys, dtype=object),
        "str-series": pd.Series([*keys, None], dtype="str"),
        "list": list(keys),
        "arrow": pa.array(keys, type=pa.large_string()),
    }[kind]
    s = pd.Series(["B2", None, "中文3", "X", "a1", "D4 "], dtype="str")
    assert isin(s, values).tolist() == [True, False, True, False, False, False]


def test_isin_against_a_large_set_looks_it_up_the_other_way_round(monkeypatch: pytest.MonkeyPatch) -> None:
    """A set far larger than the values tested (a province's clip ids against a piece of access records) is
    looked up among the values' distinct keys, a slice of the set at a time: the same answer as Arrow's is_in,
    nulls and repeats included."""
    import numpy as np

    from etl.sources import staging

    rng = np.random.default_rng(7)
    known = [f"V{i:05d}" for i in rng.choice(20_000, 5_000, replace=False)] + [None, "V00001"]
    tested = [f"V{i:05d}" for i in rng.integers(0, 20_000, 600)] + [None, "V00001", "", "v00001"]
    s = pd.Series(tested, dtype="str")
    expected = isin(s, pa.array(known, type=pa.large_string()))  # Arrow's is_in: the set is small by default
    assert 0 < expected.sum() < len(s)
    calls = []
    real = staging._in_large_set
    monkeypatch.setattr(staging, "_in_large_set", lambda a, v: calls.append(len(v)) or real(a, v))
    monkeypatch.setattr(staging, "LARGE_SET_ROWS", 1_000)
    monkeypatch.setattr(staging, "SET_SLICE_ROWS", 777)  # several slices, the last one short
    for values in (pd.Index(known, dtype="str"), pa.array(known, type=pa.large_string())):
        pd.testing.assert_series_equal(isin(s, values), expected)
    assert calls == [len(known), len(known)]
    monkeypatch.setattr(staging, "LARGE_SET_ROWS", 10_000)  # a set within the limit: Arrow's is_in as before
    pd.testing.assert_series_equal(isin(s, pa.array(known, type=pa.large_string())), expected)
    assert len(calls) == 2
