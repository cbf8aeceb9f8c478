"""Processing by partition (issue 18, part 4): the county groups an evaluation walks one at a time.

A partition is a county bureau (``etl.warehouse.distribution``: every fact and finding row carries its
``county_code``).  ``plan`` groups the counties, in code order, into groups whose fact rows stay within a
budget (``settings.yaml``: ``etl.partition_rows``), so that the rules hold one group's rows at a time and the
evaluation's peak memory follows the largest group, not the warehouse.  A county larger than the budget is a
group of its own.  When every county fits in one group there is one group, ``WHOLE``: the evaluation reads the
warehouse whole, as it always did (with the snapshots of the last run, ``etl.warehouse.snapshots``).

``Partition.restrict`` adds to a read of a distributed table the filter of the group's rows (``where``): the group's county codes as literals when
they are plain codes (checked; a planner estimates a literal list well), else from a temporary table (a code is
data: anything else is never spliced into SQL).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from etl.warehouse.db import temp_keys
from etl.warehouse.distribution import DISTRIBUTED, KEY

# the fact tables whose rows a group's evaluation holds (the rest are smaller or derived from these)
SIZED = ("incidents", "incident_officers", "cases", "case_actions", "case_documents", "clips", "access_log")
DEFAULT_ROWS = 5_000_000  # about one city (2.4M clips, 0.7M documents ...): a city is evaluated whole
_TEMP = "etl_partition"
_PLAIN = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class Partition:
    """A group of counties (``counties``), or the whole warehouse (``counties`` None)."""

    counties: tuple[str, ...] | None = None

    @property
    def whole(self) -> bool:
        return self.counties is None

    def where(self, conn: Connection, table: str, alias: str | None = None) -> str:
        """The filter of ``table``'s rows in this group ('' for the whole warehouse or a table without the key)."""
        if self.counties is None or table not in DISTRIBUTED:
            return ""
        col = f"{alias}.{KEY}" if alias else KEY
        return f"{col} IN {self.keys(conn)}"

    def restrict(self, conn: Connection, table: str, where: str = "", by: tuple[str, str] | None = None) -> str:
        """``where`` and the filter of this group's rows of ``table`` (``where`` itself for the whole warehouse):
        by the table's own key, or with ``by`` = (column, parent) by the county of the parent row the column names
        (a clip tagged with a case: the case's county, which may not be the clip's)."""
        if self.counties is None:
            return where
        if by is None:
            part = self.where(conn, table)
        else:
            column, parent = by
            part = f"{column} IN (SELECT {column} FROM {parent} WHERE {self.where(conn, parent)})"
        if not part:
            return where
        return f"({where}) AND {part}" if where else part

    def keys(self, conn: Connection) -> str:
        """The group's county codes for ``IN``: a list of literals when every code is plain (letters, digits,
        '-', '_': what the planner estimates best), else ``(SELECT k FROM <temporary table>)``."""
        assert self.counties is not None
        if all(_PLAIN.fullmatch(c) for c in self.counties):
            return "(" + ", ".join(f"'{c}'" for c in self.counties) + ")"
        return temp_keys(conn, _TEMP, self.counties)


WHOLE = Partition()


def sizes(conn: Connection) -> dict[str, int]:
    """Fact rows (SIZED) per county code; rows without a key count under ''."""
    out: dict[str, int] = {}
    for table in SIZED:
        rows = conn.exec_driver_sql(f"SELECT {KEY}, COUNT(*) FROM {table} GROUP BY {KEY}").fetchall()
        for county, n in rows:
            out[county or ""] = out.get(county or "", 0) + int(n)
    return out


def _at_most(conn: Connection) -> float:
    """A cheap bound of the SIZED rows: on SQLite the largest rowid of each table (never below its row count),
    on PostgreSQL the planner's row estimate with a 25 % margin (the exact count where a table has none)."""
    total = 0.0
    for table in SIZED:
        if conn.dialect.name == "sqlite":
            total += conn.exec_driver_sql(f"SELECT COALESCE(MAX(rowid), 0) FROM {table}").scalar_one()
            continue
        est = conn.exec_driver_sql("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", (table,)).scalar()
        if est is None or est < 0:  # never analysed
            est = conn.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar_one()
        total += float(est) * 1.25
    return total


def group(counts: dict[str, int], budget: int) -> list[tuple[tuple[str, ...], int]]:
    """Counties in code order, packed into consecutive groups of at most ``budget`` rows (a larger county
    alone).  Pure."""
    groups: list[tuple[tuple[str, ...], int]] = []
    current: list[str] = []
    total = 0
    for county in sorted(counts):
        n = counts[county]
        if current and total + n > budget:
            groups.append((tuple(current), total))
            current, total = [], 0
        current.append(county)
        total += n
    if current:
        groups.append((tuple(current), total))
    return groups


def plan(conn: Connection, budget: int) -> list[Partition]:
    """The partitions of an evaluation: ``[WHOLE]`` when the warehouse fits the budget, else the county groups.

    Rows without a key (written by hand; ``distribution.backfill`` gives them one before the rules read) are
    the group of ''; the filter then cannot select them, so the evaluation is whole in that case."""
    if _at_most(conn) <= budget:  # a city: no count per county needed
        return [WHOLE]
    counts = sizes(conn)
    groups = group(counts, budget)
    if len(groups) <= 1 or "" in counts:
        return [WHOLE]
    return [Partition(counties) for counties, _rows in groups]
