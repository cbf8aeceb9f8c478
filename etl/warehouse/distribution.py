"""The distribution key: every fact and finding table carries its county bureau's code (issue 18, part 4).

A province pools its cities on one PostgreSQL warehouse first, and on a
distributed one (Citus) when one machine is not enough.  The warehouse is
laid out for that already (docs/SCALE.md):

- **distributed** tables (``DISTRIBUTED``): the facts and the findings, each
  with ``county_code``, the code of the county-level bureau its owning unit
  belongs to (rules.md, Ownership).  The column is derived from one parent
  (``DISTRIBUTED[table] = (column, parent)``): a case from its unit, an action
  from its case, a clip from its device's unit, a finding from its unit …;
- **reference** tables (``REFERENCE``): small, replicated to every node;
  ``org_units`` holds each unit's ``county_code`` (``unit_counties``);
- **local** tables (``LOCAL``): bookkeeping, per-unit marts and the
  supervision record, on the coordinator.

Every writer of a distributed table adds the column with ``with_county``
before its insert (the load's ``insert_sorted`` for the mirrors; the rules,
coverage, clip-run and integrity writers for the rest); rows written without
it (by hand, an older version) get it before the rules read (``backfill``).
When a parent row is rewritten with another county (a case moves to
another unit, a device to another bureau, a station to another county), its
rows below follow (``rehome``).  Rows whose owner is unknown go to the
``UNOWNED`` partition.  Every SQL join of two distributed tables in the ETL
joins on the key as well (tests/test_distribution.py checks the schema and
the SQL a run sends).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.warehouse.db import fetch_rows, param_mark, temp_keys

KEY = "county_code"
UNOWNED = "unowned"  # the partition of rows whose owning unit is unknown (e.g. a queue row without a unit)
PARTITION_LEVELS = ("county", "city", "province")  # a unit's partition: its nearest ancestor-or-self of these levels

# table -> (column, parent): the county of a row is its parent's county for that column's value
DISTRIBUTED: dict[str, tuple[str, str]] = {
    "cases": ("unit_code", "org_units"),
    "case_officers": ("case_no", "cases"),
    "case_actions": ("case_no", "cases"),
    "case_documents": ("case_no", "cases"),
    "deliveries": ("doc_id", "case_documents"),
    "incidents": ("unit_code", "org_units"),
    "incident_officers": ("incident_no", "incidents"),
    "interruption_reports": ("incident_no", "incidents"),
    "clips": ("device_sn", "devices"),
    "access_log": ("clip_id", "clips"),
    "media_files": ("clip_id", "clips"),
    "clip_days": ("device_sn", "devices"),
    "clip_runs": ("police_no", "officers"),
    "event_coverage": ("unit_code", "org_units"),
    "event_gaps": ("incident_no", "event_coverage"),
    "findings": ("unit_code", "org_units"),
    "excused_findings": ("unit_code", "org_units"),
    "finding_officers": ("finding_key", "findings"),
    "officer_records": ("unit_code", "org_units"),
    "data_quality": ("unit_code", "org_units"),
}

# Joins of two distributed tables not on the key, and why.  A clip belongs to its device's county, the case or
# incident it is tagged with to its own: an officer of one county may record another county's case (a joint
# operation), and that tag still links them.  On Citus these run as repartition joins
# (citus.enable_repartition_joins); every other join of distributed tables is on the key (tests/test_distribution.py).
CROSS_COUNTY_JOINS: dict[frozenset[str], str] = {
    frozenset({"case_actions", "clips"}): "案件关联率: a clip tagged with a case, during one of its actions",
    frozenset({"event_coverage", "clips"}): "警情关联率: a clip tagged with an incident",
}

# small tables every rule may join: replicated to every node
REFERENCE = (
    "org_units",
    "officers",
    "devices",
    "device_assignments",
    "unit_admins",
    "service_windows",
    "ledger_entries",
)

# on the coordinator: bookkeeping, the per-unit marts (rows of city and province scopes belong to no county) and
# the supervision record (people's judgements, keyed by stable keys)
LOCAL = (
    "etl_runs",
    "watermarks",
    "table_hashes",
    "raw_fingerprint_parts",
    "rule_snapshots",
    "rescore_inputs",
    "quarantine",
    "source_health",
    "coverage_months",
    "metrics",
    "unit_scores",
    "unit_item_scores",
    "evaluation",
    "audit_log",
)
LOCAL_PREFIXES = ("sup_",)  # every supervision table

# parent -> (its key column, SQL giving each key ``k`` with its county ``c``)
_PARENTS: dict[str, tuple[str, str]] = {
    "org_units": ("unit_code", "SELECT unit_code AS k, county_code AS c FROM org_units"),
    "devices": (
        "device_sn",
        "SELECT d.device_sn AS k, o.county_code AS c FROM devices d JOIN org_units o ON o.unit_code = d.unit_code",
    ),
    "officers": (
        "police_no",
        "SELECT p.police_no AS k, o.county_code AS c FROM officers p JOIN org_units o ON o.unit_code = p.unit_code",
    ),
    "cases": ("case_no", "SELECT case_no AS k, county_code AS c FROM cases"),
    "case_documents": ("doc_id", "SELECT doc_id AS k, county_code AS c FROM case_documents"),
    "incidents": ("incident_no", "SELECT incident_no AS k, county_code AS c FROM incidents"),
    "clips": ("clip_id", "SELECT clip_id AS k, county_code AS c FROM clips"),
    "event_coverage": ("incident_no", "SELECT incident_no AS k, county_code AS c FROM event_coverage"),
    "findings": (
        "finding_key",
        "SELECT finding_key AS k, county_code AS c FROM findings "
        "UNION ALL SELECT finding_key AS k, county_code AS c FROM excused_findings",
    ),
}
# keys looked up: probed through a temporary key table, or, when they are over a third of the parent's rows, read
# whole (a first load: a city's 290k incidents for the attendance rows: 1.6 s probed, 1.1 s read whole; but the
# access log's 100k clips of 2.4M: 0.9 s probed, 7 s read whole)
_PROBE_MIN = 20_000
_SMALL_PARENTS = frozenset({"org_units", "devices", "officers"})  # read whole (a few thousand rows per city)
# reference tables whose county follows their unit: parents of distributed rows, without a column of their own
_VIRTUAL: dict[str, tuple[str, str]] = {"devices": ("unit_code", "org_units"), "officers": ("unit_code", "org_units")}


PARENTS = frozenset(_PARENTS)  # tables whose rewritten rows may move rows below them (``rehome``)


def is_local(table: str) -> bool:
    return table in LOCAL or table.startswith(LOCAL_PREFIXES)


def _children(parent: str) -> list[tuple[str, str]]:
    """(table, column) of the tables whose county follows ``parent``, distributed ones and virtual ones."""
    return [(t, col) for t, (col, p) in {**DISTRIBUTED, **_VIRTUAL}.items() if p == parent]


def unit_counties(units: pd.DataFrame) -> pd.Series:
    """Each unit's partition (index unit_code): its nearest ancestor-or-self whose level is county, city or
    province; a unit with none of them above it (a broken tree, a loop) is its own partition.  ``units``: unit_code,
    parent_code, level."""
    parent = dict(zip(units["unit_code"], units["parent_code"], strict=True))
    level = dict(zip(units["unit_code"], units["level"], strict=True))
    out: dict[str, str] = {}
    for code in units["unit_code"]:
        path, cur, seen = [], code, set()
        while cur is not None and cur in level and cur not in out and cur not in seen:
            if level[cur] in PARTITION_LEVELS:
                out[cur] = cur
                break
            seen.add(cur)
            path.append(cur)
            cur = parent.get(cur)
        found = out.get(cur) if cur is not None else None  # None: no partition level above (a broken tree)
        for c in path:
            out[c] = found if found is not None else c
    return pd.Series(out, dtype=object).reindex(units["unit_code"].to_numpy())


def counties(conn: Connection, parent: str, values: Iterable | None = None) -> pd.Series:
    """The county of ``parent``'s keys (index key -> county): those among ``values``, or all."""
    _key, sql = _PARENTS[parent]
    if values is not None and parent not in _SMALL_PARENTS:
        values = pd.unique(pd.Series(values if isinstance(values, pd.Series) else list(values), dtype=object).dropna())
        if not len(values):
            return pd.Series(dtype=object)
    if (
        values is None
        or parent in _SMALL_PARENTS
        or (len(values) > _PROBE_MIN and len(values) * 3 > _rows(conn, parent))
    ):
        rows = fetch_rows(conn, sql)
    else:
        rows = fetch_rows(conn, f"SELECT s.k, s.c FROM ({sql}) s WHERE s.k IN {temp_keys(conn, 'etl_county', values)}")
    if not rows:
        return pd.Series(dtype=object)
    keys, vals = zip(*rows, strict=True)
    return pd.Series(vals, index=pd.Index(keys, dtype=object), dtype=object)


def _rows(conn: Connection, table: str) -> int:
    return int(fetch_rows(conn, f"SELECT COUNT(*) FROM {table}")[0][0])


def with_county(conn: Connection, table: str, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (rows about to be inserted into ``table``) with its ``county_code`` column."""
    if table == "org_units":
        return df.assign(**{KEY: _org_units_counties(conn, df)})
    if table not in DISTRIBUTED:
        return df
    column, parent = DISTRIBUTED[table]
    fk = df[column]
    if parent == "org_units" or parent in _SMALL_PARENTS:
        mapping = counties(conn, parent)
    else:
        mapping = counties(conn, parent, fk)
    county = fk.map(mapping) if len(mapping) else pd.Series(np.nan, index=df.index, dtype=object)
    values = county.astype(object).where(county.notna(), UNOWNED).to_numpy()
    return df.assign(**{KEY: pd.Series(values, index=df.index, dtype=object)})


def _org_units_counties(conn: Connection, df: pd.DataFrame) -> pd.Series:
    """Counties of org_units rows about to be inserted: the tree is the table's other rows and these."""
    kept = pd.DataFrame(
        fetch_rows(conn, "SELECT unit_code, parent_code, level FROM org_units"),
        columns=["unit_code", "parent_code", "level"],
        dtype=object,
    )
    new = df[["unit_code", "parent_code", "level"]].astype(object)
    tree = pd.concat([kept[~kept["unit_code"].isin(new["unit_code"])], new], ignore_index=True)
    return pd.Series(unit_counties(tree).reindex(df["unit_code"].to_numpy()).to_numpy(), index=df.index, dtype=object)


def refresh_units(conn: Connection) -> list[str]:
    """Recompute every unit's county (a moved unit moves its subtree); update the rows that changed and
    return their codes (their rows below follow with ``rehome``)."""
    rows = fetch_rows(conn, "SELECT unit_code, parent_code, level, county_code FROM org_units")
    if not rows:
        return []
    units = pd.DataFrame(rows, columns=["unit_code", "parent_code", "level", KEY], dtype=object)
    now = unit_counties(units).to_numpy()
    moved = units.loc[now != units[KEY].to_numpy(), "unit_code"].tolist()
    p = param_mark(conn)
    new = dict(zip(units["unit_code"], now, strict=True))
    for code in moved:
        conn.exec_driver_sql(f"UPDATE org_units SET {KEY} = {p} WHERE unit_code = {p}", (new[code], code))
    return moved


def rehome(conn: Connection, parent: str, keys: Iterable) -> int:
    """Rows below ``parent``'s ``keys`` (rewritten this run) follow their parent's county, down the tree of
    parents (a case's documents, their deliveries …).  Returns the rows moved."""
    keys = pd.unique(pd.Series(list(keys), dtype=object).dropna())
    if not len(keys):
        return 0
    moved, p = 0, param_mark(conn)
    new = counties(conn, parent, keys)
    new = new[new.index.isin(keys)]
    for child, column in _children(parent):
        if child in _VIRTUAL:  # devices or officers of moved units: their clips, clip days and runs follow
            below = fetch_rows(
                conn, f"SELECT {_PARENTS[child][0]} FROM {child} WHERE {column} IN {temp_keys(conn, 'etl_moved', keys)}"
            )
            moved += rehome(conn, child, [r[0] for r in below])
            continue
        if not len(new):
            continue
        changed = 0
        for county, keys_there in new.groupby(new.to_numpy(), sort=True):  # one statement per county (a few)
            cur = conn.exec_driver_sql(
                f"UPDATE {child} SET {KEY} = {p} WHERE {column} IN {temp_keys(conn, 'etl_rehome', keys_there.index)} "
                f"AND ({KEY} IS NULL OR {KEY} <> {p})",
                (county, county),
            )
            changed += max(cur.rowcount or 0, 0)
        moved += changed
        if changed and child in _PARENTS:
            below = fetch_rows(
                conn,
                f"SELECT {_PARENTS[child][0]} FROM {child} WHERE {column} IN {temp_keys(conn, 'etl_moved', new.index)}",
            )
            moved += rehome(conn, child, [r[0] for r in below])
    return moved


def backfill(conn: Connection) -> None:
    """Fill ``county_code`` where it is missing (a warehouse of before the key: the column was just added),
    parents before children."""
    if fetch_rows(conn, f"SELECT 1 FROM org_units WHERE {KEY} IS NULL LIMIT 1"):
        refresh_units(conn)
    for table in _ordered():
        column, parent = DISTRIBUTED[table]
        sql = _PARENTS[parent][1]
        if not fetch_rows(conn, f"SELECT 1 FROM {table} WHERE {KEY} IS NULL LIMIT 1"):
            continue
        conn.exec_driver_sql(
            f"UPDATE {table} SET {KEY} = COALESCE((SELECT s.c FROM ({sql}) s WHERE s.k = {table}.{column}), "
            f"'{UNOWNED}') WHERE {KEY} IS NULL"
        )


def _ordered() -> list[str]:
    """The distributed tables, each after its parent."""
    done: list[str] = []
    pending = list(DISTRIBUTED)
    while pending:
        for t in list(pending):
            parent = DISTRIBUTED[t][1]
            if parent not in DISTRIBUTED or parent in done:
                done.append(t)
                pending.remove(t)
    return done


def citus_ddl(metadata) -> str:  # noqa: ANN001 - etl.warehouse.schema.metadata (not imported here: schema imports us)
    """The statements that distribute a warehouse made by ``ensure_schema`` on Citus (docs/SCALE.md): the
    reference tables replicated, every distributed table with its key NOT NULL, leading its primary key, and
    colocated with ``cases``.  The local tables stay on the coordinator as they are."""
    lines = [
        "-- on the coordinator, after `etl run` made the schema and before the first load (tables empty)",
        "CREATE EXTENSION IF NOT EXISTS citus;",
        "SET citus.shard_count = 32;",
        "",
        "-- small tables every rule may join: replicated to every node",
    ]
    lines += [f"SELECT create_reference_table('{t}');" for t in REFERENCE]
    lines += ["", "-- facts and findings: the county bureau code in the table and leading its primary key"]
    first = None
    for name in DISTRIBUTED:
        table = metadata.tables[name]
        pk = [c.name for c in table.primary_key.columns]
        lines.append(f"ALTER TABLE {name} ALTER COLUMN {KEY} SET NOT NULL;")
        if pk:
            lines.append(f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey, ADD PRIMARY KEY ({', '.join([KEY, *pk])});")
        colocate = f", colocate_with => '{first}'" if first else ""
        lines.append(f"SELECT create_distributed_table('{name}', '{KEY}'{colocate});")
        first = first or name
    return "\n".join(lines) + "\n"
