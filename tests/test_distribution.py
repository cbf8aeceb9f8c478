"""The distribution key (issue 18): every fact and finding table carries ``county_code``, and every join of
two distributed tables in the SQL a run sends joins on it (etl.warehouse.distribution).

1. the schema: every table classified once (distributed, reference, local); the key on every distributed
   table and on org_units (in the metadata and on a fresh warehouse).  The column is nullable: rows written
   without it (by hand, an older version) are filled before the rules read (``backfill``), found through a
   partial index; the Citus DDL sets it NOT NULL (tests/test_county_key.py applies that on PostgreSQL);
2. the checker of tests/sqljoins.py, on small SQL strings;
3. the SQL of two runs of the small demo (the second one incremental, after a station, a device and a case
   moved to the other county), captured on SQLite and on PostgreSQL: no join of two distributed tables
   without the key (but those declared in ``CROSS_COUNTY_JOINS``), no row without its county, every row in
   its parent's county.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from etl.demo import generate
from etl.pipeline import run
from etl.warehouse import distribution
from etl.warehouse.distribution import DISTRIBUTED, KEY, LOCAL, REFERENCE, UNOWNED, is_local
from etl.warehouse.schema import metadata
from tests.sqljoins import Stats, find_violations, join_violations

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
KEYED = [*DISTRIBUTED, "org_units"]  # the tables with the column


# ---- 1. the schema ----------------------------------------------------------------------------------
def test_every_table_is_classified_exactly_once() -> None:
    kinds = {
        name: [
            kind
            for kind, member in [
                ("distributed", name in DISTRIBUTED),
                ("reference", name in REFERENCE),
                ("local", is_local(name)),
            ]
            if member
        ]
        for name in metadata.tables
    }
    assert {name: k for name, k in kinds.items() if len(k) != 1} == {}
    declared = [*DISTRIBUTED, *REFERENCE, *LOCAL]
    assert sorted(set(declared) - set(metadata.tables)) == []  # no stale name
    assert len(declared) == len(set(declared))


def test_every_distributed_table_names_its_parent() -> None:
    for table, (column, parent) in DISTRIBUTED.items():
        assert column in metadata.tables[table].c, (table, column)
        assert parent in DISTRIBUTED or parent in REFERENCE, (table, parent)


def test_the_key_is_on_every_distributed_table_and_on_org_units() -> None:
    assert [t for t in KEYED if KEY not in metadata.tables[t].c] == []


def test_rows_without_the_key_are_found_through_an_index() -> None:
    missing = {t: [ix.name for ix in metadata.tables[t].indexes if list(ix.columns.keys()) == [KEY]] for t in KEYED}
    assert {t: names for t, names in missing.items() if names != [f"ix_{t}_{KEY}_missing"]} == {}


# ---- 2. the checker -----------------------------------------------------------------------------------
OK = {
    "join on the key": "SELECT * FROM cases c JOIN case_actions a ON a.case_no = c.case_no AND a.county_code = c.county_code",
    "key first, reversed": "SELECT * FROM cases c JOIN case_actions a ON c.county_code = a.county_code AND a.case_no = c.case_no",
    "left join on the key": "SELECT * FROM findings f LEFT JOIN case_actions fa ON fa.action_id = f.action_id "
    "AND fa.county_code = f.county_code",
    "inner join, key in WHERE": "SELECT * FROM cases c JOIN case_actions a ON a.case_no = c.case_no "
    "WHERE a.county_code = c.county_code AND c.unit_code = 'x'",
    "using": "SELECT * FROM cases JOIN case_actions USING (case_no, county_code)",
    "no alias": "SELECT * FROM cases JOIN case_actions ON case_actions.case_no = cases.case_no "
    "AND case_actions.county_code = cases.county_code",
    "chain": "SELECT * FROM findings f JOIN access_log o ON o.log_id = f.log_id AND o.county_code = f.county_code "
    "JOIN clips c ON c.clip_id = o.clip_id AND c.county_code = o.county_code JOIN devices d ON d.device_sn = c.device_sn",
    "reference table": "SELECT * FROM findings f JOIN devices d ON d.device_sn = f.device_sn",
    "two reference tables": "SELECT * FROM devices d JOIN org_units o ON o.unit_code = d.unit_code",
    "local table": "SELECT * FROM sup_findings s JOIN findings f ON f.finding_key = s.finding_key",
    "temporary table": "SELECT * FROM clips c JOIN etl_keys k ON k.k = c.clip_id",
    "unknown table": "SELECT * FROM clips c JOIN dq_now_4 q ON q.k0 = c.clip_id",
    "uncorrelated IN": "SELECT 1 FROM event_coverage e WHERE e.incident_no IN (SELECT incident_no FROM clips)",
    "correlated EXISTS on the key": "SELECT 1 FROM cases c WHERE EXISTS (SELECT 1 FROM case_actions a "
    "WHERE a.case_no = c.case_no AND a.county_code = c.county_code)",
    "correlated, unqualified inner": "SELECT 1 FROM cases c WHERE NOT EXISTS (SELECT 1 FROM case_officers "
    "WHERE case_no = c.case_no AND county_code = c.county_code)",
    "correlated with a temporary table": "UPDATE clips SET county_code = (SELECT r.c FROM etl_rehome r "
    "WHERE r.k = clips.device_sn) WHERE device_sn IN (SELECT k FROM etl_rehome)",
    "correlated on a reference table": "SELECT 1 FROM clips c WHERE EXISTS (SELECT 1 FROM devices d "
    "WHERE d.device_sn = c.device_sn)",
    "derived table with the key": "SELECT * FROM findings f JOIN (SELECT incident_no AS k, county_code AS c "
    "FROM event_coverage) s ON s.k = f.incident_no AND s.c = f.county_code",
    "cte with the key": "WITH x AS (SELECT * FROM clips) SELECT * FROM x JOIN access_log l "
    "ON l.clip_id = x.clip_id AND l.county_code = x.county_code",
    "derived table of a reference table": "SELECT * FROM clips c JOIN (SELECT device_sn FROM devices) d "
    "ON d.device_sn = c.device_sn",
    "delete using, on the key": "DELETE FROM clips USING access_log l WHERE l.clip_id = clips.clip_id "
    "AND l.county_code = clips.county_code",
    "insert select on the key": "INSERT INTO findings (a) SELECT c.x FROM cases c JOIN case_actions a "
    "ON a.case_no = c.case_no AND a.county_code = c.county_code",
    "union of distributed tables": "SELECT finding_key FROM findings UNION ALL SELECT finding_key FROM excused_findings",
    "ddl": "CREATE INDEX ix_cases_x ON cases (unit_code) WHERE county_code IS NULL",
    "pragma": 'PRAGMA main.index_list("cases")',
    "trigger (unparsed ddl)": "CREATE TRIGGER IF NOT EXISTS t BEFORE UPDATE ON clips BEGIN SELECT RAISE(ABORT, 'x'); END",
    "savepoint": "SAVEPOINT sa_savepoint_1",
}

BAD = {
    "missing key": (
        "SELECT * FROM cases c JOIN case_actions a ON a.case_no = c.case_no",
        "JOIN of case_actions with cases without county_code",
    ),
    "left join missing key": (
        "SELECT * FROM cases c LEFT JOIN case_actions a ON a.case_no = c.case_no",
        "LEFT JOIN of case_actions with cases",
    ),
    "left join, key only in WHERE": (
        "SELECT * FROM cases c LEFT JOIN case_actions a ON a.case_no = c.case_no WHERE a.county_code = c.county_code",
        "LEFT JOIN of case_actions with cases",
    ),
    "key equated with another column": (
        "SELECT * FROM cases c JOIN case_actions a ON a.case_no = c.case_no AND a.county_code = c.unit_code",
        "JOIN of case_actions with cases",
    ),
    "key under OR": (
        "SELECT * FROM cases c JOIN case_actions a ON a.case_no = c.case_no OR a.county_code = c.county_code",
        "JOIN of case_actions with cases",
    ),
    "aliases resolved": (
        "SELECT * FROM findings AS x JOIN case_documents AS y ON y.doc_id = x.doc_id AND y.county_code = y.county_code",
        "JOIN of case_documents with findings",
    ),
    "using without the key": (
        "SELECT * FROM cases JOIN case_actions USING (case_no)",
        "JOIN of case_actions with cases",
    ),
    "comma join": (
        "SELECT * FROM cases c, case_actions a WHERE a.case_no = c.case_no",
        "comma join of case_actions with cases",
    ),
    "through a reference table": (
        "SELECT * FROM findings f JOIN devices d ON d.device_sn = f.device_sn JOIN clips c ON c.device_sn = d.device_sn",
        "JOIN of clips with findings (joined through devices)",
    ),
    "through a local table": (
        "SELECT * FROM sup_spotcheck_items i LEFT JOIN event_coverage e ON e.incident_no = i.object_key "
        "LEFT JOIN cases c ON c.case_no = i.object_key",
        "LEFT JOIN of cases with event_coverage (joined through sup_spotcheck_items)",
    ),
    "correlated EXISTS": (
        "SELECT 1 FROM cases c WHERE EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = c.case_no)",
        "correlated subquery on case_actions with outer cases",
    ),
    "correlated NOT EXISTS, no alias": (
        "SELECT 1 FROM cases WHERE NOT EXISTS (SELECT 1 FROM case_officers o WHERE o.case_no = cases.case_no)",
        "correlated subquery on case_officers with outer cases",
    ),
    "correlated IN": (
        "SELECT 1 FROM cases c WHERE c.case_no IN (SELECT a.case_no FROM case_actions a WHERE a.police_no = c.unit_code)",
        "correlated subquery on case_actions with outer cases",
    ),
    "correlated scalar subquery": (
        "SELECT c.case_no, (SELECT COUNT(*) FROM case_actions a WHERE a.case_no = c.case_no) FROM cases c",
        "correlated subquery on case_actions with outer cases",
    ),
    "correlated in a CASE": (
        "SELECT CASE WHEN EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = f.case_no) THEN 1 END FROM findings f",
        "correlated subquery on case_actions with outer findings",
    ),
    "correlated two levels down": (
        "SELECT 1 FROM cases c WHERE EXISTS (SELECT 1 FROM devices d WHERE EXISTS "
        "(SELECT 1 FROM clips t WHERE t.device_sn = d.device_sn AND t.case_no = c.case_no))",
        "correlated subquery on clips with outer cases",
    ),
    "correlated update": (
        "UPDATE finding_officers SET county_code = (SELECT s.c FROM (SELECT finding_key AS k, county_code AS c "
        "FROM findings) s WHERE s.k = finding_officers.finding_key)",
        "correlated subquery on (subquery s) with outer finding_officers",
    ),
    "derived table without the key": (
        "SELECT * FROM event_coverage e LEFT JOIN (SELECT DISTINCT incident_no AS k FROM clips) t ON t.k = e.incident_no",
        "LEFT JOIN of (subquery t) with event_coverage",
    ),
    "derived table reading a distributed table deep down": (
        "SELECT * FROM cases c JOIN (SELECT case_no FROM (SELECT case_no FROM case_actions) x) l ON l.case_no = c.case_no",
        "JOIN of (subquery l) with cases",
    ),
    "cte without the key": (
        "WITH x AS (SELECT clip_id FROM clips) SELECT * FROM access_log l JOIN x ON l.clip_id = x.clip_id",
        "JOIN of x with access_log",
    ),
    "inside an uncorrelated IN": (
        "SELECT 1 FROM cases c WHERE c.case_no IN (SELECT a.case_no FROM case_actions a JOIN clips t "
        "ON t.case_no = a.case_no)",
        "JOIN of clips with case_actions",
    ),
    "inside a union": (
        "SELECT 1 UNION ALL SELECT 1 FROM incidents i JOIN incident_officers o ON o.incident_no = i.incident_no",
        "JOIN of incident_officers with incidents",
    ),
    "update from": (
        "UPDATE clips SET size_bytes = 1 FROM access_log l WHERE l.clip_id = clips.clip_id",
        "comma join of access_log with clips",
    ),
    "delete using": (
        "DELETE FROM clips USING access_log l WHERE l.clip_id = clips.clip_id",
        "comma join of access_log with clips",
    ),
    "insert select": (
        "INSERT INTO findings (finding_key) SELECT c.case_no FROM cases c JOIN case_actions a ON a.case_no = c.case_no",
        "JOIN of case_actions with cases",
    ),
    "view": (
        "CREATE VIEW v AS SELECT * FROM cases c JOIN case_actions a ON a.case_no = c.case_no",
        "JOIN of case_actions with cases",
    ),
    "unparsed select": ("SELECT FROM WHERE cases ((", "unparsed: SELECT FROM WHERE cases (("),
}


@pytest.mark.parametrize("sql", OK.values(), ids=OK.keys())
def test_checker_accepts(sql: str) -> None:
    assert join_violations(sql, "sqlite") == []


@pytest.mark.parametrize(("sql", "expected"), BAD.values(), ids=BAD.keys())
def test_checker_reports(sql: str, expected: str) -> None:
    found = join_violations(sql, "sqlite")
    assert len(found) == 1 and expected in found[0], found


def test_checker_reads_postgresql_statements() -> None:
    good = (
        "SELECT o.case_no, f.finding_key FROM findings f JOIN cases o ON o.case_no = f.case_no::text "
        "AND o.county_code = f.county_code WHERE f.rule_id = ANY(%(rules)s) AND o.registered_at <= %s"
    )
    bad = "SELECT 1 FROM cases c WHERE c.registered_at <= %(as_of)s AND EXISTS (SELECT 1 FROM case_actions a WHERE a.case_no = c.case_no)"
    assert join_violations(good, "postgresql") == []
    assert len(join_violations(bad, "postgresql")) == 1
    assert join_violations("ALTER TABLE clips ALTER COLUMN x SET STORAGE EXTERNAL", "postgresql") == []


def test_checker_skips_what_it_cannot_parse_unless_it_reads_a_distributed_table() -> None:
    assert join_violations("SELEC * FROM clips ((", "sqlite") == []  # not a query: skipped
    assert join_violations("SELECT FROM WHERE etl_keys ((", "sqlite") == []  # a query of no distributed table
    assert join_violations("UPDATE clips SET = = WHERE", "sqlite")[0].startswith("unparsed: UPDATE clips")
    assert join_violations("INSERT INTO x SELECT (( FROM clips", "sqlite")[0].startswith("unparsed:")
    assert join_violations("INSERT INTO clips VALUES (1, 2", "sqlite") == []  # not INSERT … SELECT


def test_checker_counts_what_it_checked_and_the_pairs() -> None:
    stats = Stats()
    found = find_violations(
        "SELECT 1 FROM cases c JOIN case_actions a ON a.case_no = c.case_no AND a.county_code = c.county_code "
        "WHERE EXISTS (SELECT 1 FROM clips t WHERE t.case_no = a.case_no)",
        "sqlite",
        stats=stats,
    )
    assert (stats.statements, stats.distributed_joins, stats.correlated) == (1, 1, 1)
    assert [v.pairs for v in found] == [frozenset({frozenset({"clips", "case_actions"})})]


# ---- 3. the SQL of a run ------------------------------------------------------------------------------
COUNTY_A, COUNTY_B = "140403000000", "140423000000"  # the small demo's two county bureaus
MOVED_STATION = "140423530000"  # B's station that moves under A before the second run
MOVED_DEVICE, DEVICE_TO = "ZFY040300003", "140423510000"  # an A device handed to a B station
MIN_JOINS, MIN_CORRELATED = 20, 5  # the run sends at least these (so that the test cannot pass vacuously)


@dataclass
class Captured:
    url: str
    statements: list[tuple[str, str]]  # (dialect, SQL) of every statement of both runs
    seconds: float
    moved_case: str


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("distdemo") / "small"
    generate(out, scale="small", seed=2026)
    return out


def _move_sources(src: Path) -> str:
    """The sources' changes before the second run: a station and a device to the other county, one case to
    a unit of the other county, a clip edited.  Returns the moved case's number."""
    with sqlite3.connect(src / "org.sqlite") as con:
        con.execute("UPDATE org_units SET parent_code = ? WHERE unit_code = ?", (COUNTY_A, MOVED_STATION))
    con.close()
    with sqlite3.connect(src / "media.sqlite") as con:
        con.execute("UPDATE devices SET unit_code = ? WHERE device_sn = ?", (DEVICE_TO, MOVED_DEVICE))
        con.execute(
            "UPDATE clips SET is_evidence = 1, updated_at = '2026-12-01 00:00:00' "
            "WHERE clip_id = (SELECT MIN(clip_id) FROM clips WHERE device_sn = ?)",
            (MOVED_DEVICE,),
        )
    con.close()
    path = src / "cases" / "cases.csv"
    cases = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    row = cases.index[cases["unit_code"].str.startswith("140403")][0]
    cases.loc[row, ["unit_code", "updated_at"]] = ["140423510000", "2026-12-01 00:00:00"]
    cases.to_csv(path, index=False, encoding="utf-8-sig")
    return str(cases.loc[row, "case_no"])


@pytest.fixture(scope="module")
def pg_module_url() -> Iterator[str]:
    name = f"avtest_dist_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError as exc:  # pragma: no cover - the machine always has it
        pytest.fail(f"local PostgreSQL not reachable: {exc}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def captured(request: pytest.FixtureRequest, demo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Captured:
    """Two runs of the demo (a full one, an incremental one after ``_move_sources``), every statement kept."""
    work = tmp_path_factory.mktemp(f"dist_{request.param}")
    src = work / "src"
    shutil.copytree(demo_dir, src)
    sqlite = f"sqlite:///{work / 'w.sqlite'}"
    url = sqlite if request.param == "sqlite" else request.getfixturevalue("pg_module_url")
    seen: list[tuple[str, str]] = []

    def keep(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        seen.append((conn.dialect.name, statement))

    started = time.monotonic()
    sa.event.listen(sa.engine.Engine, "before_cursor_execute", keep)
    try:
        assert run(src / "sources.yaml", url, progress=False).status == "ok"
        moved_case = _move_sources(src)
        assert run(src / "sources.yaml", url, progress=False).status == "ok"
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", keep)
    return Captured(url, seen, time.monotonic() - started, moved_case)


def _rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql, params).fetchall()]
    finally:
        engine.dispose()


def test_a_run_sends_no_join_of_distributed_tables_without_the_key(captured: Captured) -> None:
    declared: dict = getattr(distribution, "CROSS_COUNTY_JOINS", {})
    assert all(len(pair) == 2 and pair <= set(DISTRIBUTED) for pair in declared), declared
    stats = Stats()
    found: dict[str, list] = {}  # message -> [times, a statement]
    exempted = 0
    for dialect, sql in captured.statements:
        for v in find_violations(sql, dialect, stats=stats):
            if v.pairs and v.pairs <= set(declared):
                exempted += 1
                continue
            found.setdefault(v.message, [0, sql])[0] += 1
    assert stats.distributed_joins >= MIN_JOINS and stats.correlated >= MIN_CORRELATED, stats
    report = "\n\n".join(
        f"[{n}x] {message}\n    statement: {' '.join(sql.split())[:240]}" for message, (n, sql) in found.items()
    )
    assert not found, f"{len(found)} join(s) of distributed tables without {KEY} ({stats}):\n\n{report}"


def _columns(url: str) -> dict[str, dict[str, dict]]:
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {t: {c["name"]: c for c in inspector.get_columns(t)} for t in KEYED}
    finally:
        engine.dispose()


def test_a_fresh_warehouse_has_the_key(captured: Captured) -> None:
    columns = _columns(captured.url)
    assert [t for t in KEYED if KEY not in columns[t]] == []


def test_no_row_lacks_its_county(captured: Captured) -> None:
    empty = {t: _rows(captured.url, f"SELECT COUNT(*) FROM {t} WHERE {KEY} IS NULL")[0][0] for t in KEYED}
    assert {t: n for t, n in empty.items() if n} == {}
    counts = {t: _rows(captured.url, f"SELECT COUNT(*) FROM {t}")[0][0] for t in DISTRIBUTED}
    # the demo fills the facts: the check above read rows
    assert all(counts[t] for t in ("cases", "case_actions", "clips", "access_log", "media_files", "findings")), counts


# the county of each parent's keys, written here independently of etl.warehouse.distribution
PARENT_COUNTY = {
    "org_units": "SELECT unit_code AS k, county_code AS c FROM org_units",
    "devices": "SELECT d.device_sn AS k, o.county_code AS c FROM devices d JOIN org_units o ON o.unit_code = d.unit_code",
    "officers": "SELECT p.police_no AS k, o.county_code AS c FROM officers p JOIN org_units o ON o.unit_code = p.unit_code",
    "cases": "SELECT case_no AS k, county_code AS c FROM cases",
    "case_documents": "SELECT doc_id AS k, county_code AS c FROM case_documents",
    "incidents": "SELECT incident_no AS k, county_code AS c FROM incidents",
    "clips": "SELECT clip_id AS k, county_code AS c FROM clips",
    "event_coverage": "SELECT incident_no AS k, county_code AS c FROM event_coverage",
    "findings": "SELECT finding_key AS k, county_code AS c FROM findings "
    "UNION ALL SELECT finding_key AS k, county_code AS c FROM excused_findings",
}


def test_every_row_is_in_its_parents_county(captured: Captured) -> None:
    wrong: dict[str, tuple[int, int, list]] = {}
    for table, (column, parent) in DISTRIBUTED.items():
        assert parent in PARENT_COUNTY, f"no check for {table}'s parent {parent}"
        join = f"FROM {table} t LEFT JOIN ({PARENT_COUNTY[parent]}) s ON s.k = t.{column}"
        bad = f"t.{KEY} <> COALESCE(s.c, '{UNOWNED}')"
        n_all, n_bad = _rows(captured.url, f"SELECT COUNT(*), SUM(CASE WHEN {bad} THEN 1 ELSE 0 END) {join}")[0]
        if n_bad:
            sample = _rows(captured.url, f"SELECT t.{column}, t.{KEY}, s.c {join} WHERE {bad} LIMIT 3")
            wrong[table] = (n_bad, n_all, sample)
    assert wrong == {}


def test_units_are_in_their_county_and_the_moves_were_followed(captured: Captured) -> None:
    units = _rows(captured.url, f"SELECT unit_code, parent_code, level, {KEY} FROM org_units")
    parent = {u: p for u, p, _l, _c in units}
    level = {u: lv for u, _p, lv, _c in units}
    wrong = []
    for code, _p, _l, county in units:
        cur, seen = code, set()
        while cur in level and level[cur] not in ("county", "city", "province") and cur not in seen:
            seen.add(cur)
            cur = parent.get(cur)
        expected = cur if cur in level and level[cur] in ("county", "city", "province") else code
        if county != expected:
            wrong.append((code, county, expected))
    assert wrong == []
    county = {u: c for u, _p, _l, c in units}
    assert county[MOVED_STATION] == COUNTY_A
    # the rows below the moves followed them (and the check above did read some)
    assert {
        r[0] for r in _rows(captured.url, f"SELECT DISTINCT {KEY} FROM cases WHERE unit_code = '{MOVED_STATION}'")
    } == {COUNTY_A}
    assert {
        r[0] for r in _rows(captured.url, f"SELECT DISTINCT {KEY} FROM clips WHERE device_sn = '{MOVED_DEVICE}'")
    } == {COUNTY_B}
    assert _rows(captured.url, f"SELECT {KEY} FROM cases WHERE case_no = '{captured.moved_case}'") == [(COUNTY_B,)]
    moved_actions = _rows(
        captured.url, f"SELECT DISTINCT {KEY} FROM case_actions WHERE case_no = '{captured.moved_case}'"
    )
    assert moved_actions in ([], [(COUNTY_B,)])
