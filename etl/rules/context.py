"""Evaluation context handed to every rule family: tables read once, helpers for details.

A rule asks its ``Ctx`` for a table (``t`` for a whole mirror read once, ``read`` for a filtered read);
whether the frame came from the mirror or from its snapshot (``snapshots``, the run's) is decided by the
warehouse's reader.  The frames other steps computed before the rules (clip runs, coverage, clips per
device and month) are handed in as fields; a rule evaluated alone gets them from the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sqlalchemy.engine import Connection

from etl.rules import base
from etl.warehouse.partitions import WHOLE, Partition

if TYPE_CHECKING:
    from etl.rules.coverage import Coverage
    from etl.warehouse.clip_runs import Runs
    from etl.warehouse.snapshots import Snapshots

KIND_CN = {"police": "民警", "auxiliary": "辅警"}


@dataclass
class Ctx:
    conn: Connection
    as_of: datetime
    cfg: dict
    integrity_checked: bool = False
    _tables: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)  # frames shared by several rules of one family
    snapshots: Snapshots | None = None  # the run's snapshots (etl.warehouse.snapshots), None outside a run
    runs: Runs | None = None  # every officer's clips as merged runs (etl.warehouse.clip_runs)
    coverage: Coverage | None = None  # coverage of every on-site event (etl.rules.coverage)
    clip_months: pd.DataFrame | None = None  # clips per device and month (etl.warehouse.clip_days.per_month)
    # the county group evaluated (etl.warehouse.partitions): every read of a distributed table keeps its rows
    partition: Partition = WHOLE

    @property
    def as_of_s(self) -> float:
        return base.to_epoch(self.as_of)

    @property
    def params(self) -> dict:
        return self.cfg["params"]

    def read(
        self,
        table: str,
        columns: list[str] | None = None,
        where: str = "",
        kept: bool | None = None,
        *,
        by: tuple[str, str] | None = None,
    ) -> pd.DataFrame:
        """A mirror table's rows (datetimes as epoch seconds): ``etl.warehouse.reads.read_table``.  In a
        partition, the rows of its counties (``Partition.restrict``, ``by`` included)."""
        where = self.partition.restrict(self.conn, table, where, by)
        return base.read_table(self.conn, table, columns, where, kept, snapshots=self.snapshots)

    def and_partition(self, table: str, alias: str) -> str:
        """' AND <alias>.county_code IN (...)' for a hand-written query in a partition ('' when whole)."""
        part = self.partition.where(self.conn, table, alias)
        return f" AND {part}" if part else ""

    def clips_per_month(self) -> pd.DataFrame:
        """Clips per device and month up to the evaluation date (read here when not handed in)."""
        if self.clip_months is None:
            from etl.warehouse import clip_days

            self.clip_months = clip_days.per_month(self.conn, self.as_of)
        return self.clip_months

    def t(self, name: str) -> pd.DataFrame:
        """A mirror table (datetimes as epoch seconds), read once per evaluation."""
        if name not in self._tables:
            if name in ("service_windows", "ledger_entries") and not base.has_table(self.conn, name):
                from etl.sources.contract import TABLES

                self._tables[name] = pd.DataFrame(columns=TABLES[name].column_names)
            elif name == "case_documents":  # the columns every case rule needs; others query their few rows
                self._tables[name] = self.read(name, ["doc_id", "case_no", "action_id", "doc_type", "created_at"])
            elif name == "media_files":
                self._tables[name] = self.read("media_files", ["clip_id", "file_path", "present", "sha256_actual"])
            else:
                self._tables[name] = self.read(name)
        return self._tables[name]

    # --- lookups for details -------------------------------------------------------

    def officer_label(self, police_no: pd.Series, with_kind: bool = False) -> pd.Series:
        """'张三(012345)' (or '民警 张三(012345)'); the bare number for unknown officers."""
        off = self.t("officers").drop_duplicates("police_no").set_index("police_no")
        pn = police_no.astype(object)
        names = pd.Series(off["name"].reindex(pn.to_numpy()).to_numpy(), index=pn.index)
        label = np.where(names.notna(), names.astype(str) + "(" + pn.astype(str) + ")", pn.astype(str))
        label = pd.Series(label, index=pn.index)
        if with_kind:
            kinds = pd.Series(off["kind"].reindex(pn.to_numpy()).to_numpy(), index=pn.index).map(KIND_CN)
            label = kinds.fillna("人员") + " " + label
        return label.where(pn.notna(), "（未知）")

    def unit_label(self, unit_code: pd.Series) -> pd.Series:
        units = self.t("org_units").drop_duplicates("unit_code").set_index("unit_code")
        names = pd.Series(units["name"].reindex(unit_code.to_numpy()).to_numpy(), index=unit_code.index)
        return pd.Series(
            np.where(names.notna(), names.astype(str) + "(" + unit_code.astype(str) + ")", unit_code.astype(str)),
            index=unit_code.index,
        )

    def doc_name(self, doc_type: pd.Series) -> pd.Series:
        return doc_type.map(self.cfg["documents"]).fillna(doc_type.astype(str))

    def action_name(self, action_type: pd.Series) -> pd.Series:
        names = {k: v["name"] for k, v in self.cfg["actions"].items()}
        return action_type.map(names).fillna(action_type.astype(str))


def txt(s: pd.Series) -> pd.Series:
    """Text of a column for details: '' for null."""
    return s.astype(object).where(s.notna(), "").astype(str)
