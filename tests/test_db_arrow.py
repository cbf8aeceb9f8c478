"""``etl.warehouse.db.insert_arrow``: large frames into SQLite through ADBC and an attached scratch file.

What it stores must be exactly what the driver path (``executemany`` of plain
tuples) stores: same values, same SQLite storage classes, same order, inside
the caller's transaction (a rollback takes it back), no scratch file left.
"""

from __future__ import annotations

import glob
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from etl.warehouse import db

COLUMNS = "k TEXT, n INTEGER, f REAL, b INTEGER, t TEXT, o TEXT"


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    k = pd.Series([f"K{i:06d}" for i in range(n)], dtype="str")
    k.iloc[3] = "张三"
    f = rng.normal(size=n)
    f[::5] = np.nan
    ints = pd.Series(rng.integers(-5, 10**12, size=n), dtype="Int64")
    ints.iloc[::7] = pd.NA
    stamps = pd.Series(pd.to_datetime("2026-03-01") + pd.to_timedelta(rng.integers(0, 10**7, n), unit="s"))
    stamps.iloc[::4] = pd.NaT
    obj = pd.Series(np.where(np.arange(n) % 3 == 0, None, "值"), dtype=object)
    return pd.DataFrame({"k": k, "n": ints, "f": f, "b": np.arange(n) % 2 == 0, "t": stamps, "o": obj})


def _dump(con, table: str) -> list[tuple]:  # noqa: ANN001
    return con.exec_driver_sql(
        f"SELECT rowid, k, n, typeof(n), f, typeof(f), b, typeof(b), t, o FROM {table} ORDER BY rowid"
    ).fetchall()


def _scratch_files() -> set[str]:
    return set(glob.glob(str(Path(tempfile.gettempdir()) / f"{db.STAGE_PREFIX}*")))


def test_arrow_insert_stores_what_executemany_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "ARROW_MIN_ROWS", 10)
    before = _scratch_files()
    df = _frame(1000)
    order = np.argsort(df["k"].to_numpy(dtype=object), kind="stable")[::-1].copy()
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.begin() as con:
        for t in ("a", "b"):
            con.exec_driver_sql(f"CREATE TABLE {t} ({COLUMNS})")
        assert db.insert_arrow(con, "a", df, order)
        monkeypatch.setattr(db, "ARROW_MIN_ROWS", 10**9)  # the driver path for the reference
        db.bulk_insert(con, "b", df.iloc[order].reset_index(drop=True))
        got, ref = _dump(con, "a"), _dump(con, "b")
        assert got == ref
        assert {r[3] for r in got} == {"integer", "null"} and {r[5] for r in got} == {"real", "null"}
        assert got[0][1] == "张三" if order[0] == 3 else True
        attached = [r[1] for r in con.exec_driver_sql("PRAGMA database_list").fetchall()]
        assert any(a.startswith(db.STAGE_PREFIX) for a in attached)
    assert _scratch_files() == before  # unlinked as soon as attached
    with engine.connect() as con:  # detached when the connection went back to the pool
        assert [r[1] for r in con.exec_driver_sql("PRAGMA database_list").fetchall()] == ["main"]
    engine.dispose()


def test_arrow_insert_is_part_of_the_transaction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "ARROW_MIN_ROWS", 10)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.begin() as con:
        con.exec_driver_sql(f"CREATE TABLE a ({COLUMNS})")
    with pytest.raises(RuntimeError), engine.begin() as con:
        assert db.insert_arrow(con, "a", _frame(50))
        assert con.exec_driver_sql("SELECT count(*) FROM a").scalar() == 50
        raise RuntimeError("a later step fails")
    with engine.connect() as con:
        assert con.exec_driver_sql("SELECT count(*) FROM a").scalar() == 0
    engine.dispose()


def test_arrow_insert_declines_where_the_driver_path_must_decide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small frames, mixed Python types, no attach slot left: False and nothing written."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.begin() as con:
        con.exec_driver_sql("CREATE TABLE a (k TEXT, v TEXT)")
        assert not db.insert_arrow(con, "a", pd.DataFrame({"k": ["x"], "v": ["y"]}))  # below ARROW_MIN_ROWS
        monkeypatch.setattr(db, "ARROW_MIN_ROWS", 1)
        assert not db.insert_arrow(con, "a", pd.DataFrame({"k": ["x", "y"], "v": pd.Series([1, "z"], dtype=object)}))
        raw = con.connection.driver_connection
        limit = raw.getlimit(__import__("sqlite3").SQLITE_LIMIT_ATTACHED)
        n = 0
        while db.insert_arrow(con, "a", pd.DataFrame({"k": ["x"], "v": ["y"]})):
            n += 1
        assert n == limit  # every attach slot, then the driver path
        assert con.exec_driver_sql("SELECT count(*) FROM a").scalar() == n
    engine.dispose()


def test_without_the_adbc_driver_the_driver_paths_do_the_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ADBC driver is an accelerator, not a requirement: without it inserts and SQLite reads still work."""
    import sqlite3
    import sys

    from etl.sources import extract
    from etl.sources.config import SystemSource, TableSource

    monkeypatch.setitem(sys.modules, "adbc_driver_sqlite.dbapi", None)  # import fails with ImportError
    monkeypatch.setattr(db, "ARROW_MIN_ROWS", 1)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'w.sqlite'}")
    with engine.begin() as con:
        con.exec_driver_sql(f"CREATE TABLE a ({COLUMNS})")
        df = _frame(30)
        assert not db.insert_arrow(con, "a", df)
        assert db.bulk_insert(con, "a", df) == 30
        assert con.exec_driver_sql("SELECT count(*) FROM a").scalar() == 30
    engine.dispose()
    src_db = tmp_path / "src.sqlite"
    c = sqlite3.connect(src_db)
    c.execute("CREATE TABLE t (k TEXT, n INTEGER)")
    c.execute("INSERT INTO t VALUES ('a', 1)")
    c.commit()
    c.close()
    src = TableSource(table="cases", system=SystemSource(name="s", url=f"sqlite:///{src_db}"), name="t")
    assert (
        extract._read_sqlite_arrow(extract._engine(src), None, "t", {"k": "TEXT", "n": "INTEGER"}, None, None) is None
    )
    assert extract.read_sql(src).values.tolist() == [["a", "1"]]
