"""What people decided about the findings: the ONE explicit input through which scoring, metrics, the
workbook and the dashboard learn it (shared/spec/supervision.md "Reviews and appeals", "Art. 17").

``read_verdicts(conn, cfg)`` reads the supervision tables into a ``Verdicts``; the steps that count findings
take it as an argument (``etl.scoring.scores.compute(verdicts=...)``, ``etl.scoring.metrics.compute``,
``etl.scoring.inputs.load_inputs``), nothing reads the supervision tables behind their backs.

* An **exempted** finding counts nowhere: its object is clean, it deducts nothing, it vetoes nothing.
* The AV findings of an excused event (table ``excused_findings``, ``etl.rules.av.excused_rules``) count
  when its excuse is not effective: with ``excuse_review: auto`` (default) an excuse is effective unless the
  legal department rejected it; with ``required`` only once it accepted it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.warehouse.db import read_df

EXCUSE_MODES = ("auto", "required")
# the rules of excused_findings (etl.rules.av): the AV findings an interruption report excuses
EXCUSED_RULES = frozenset({"AV-NONE", "AV-GAP", "AV-OFFICER"})
_CHUNK = 5000  # keys per IN list (SQLite's variable limit, plain statements on PostgreSQL)


@dataclass(frozen=True)
class Verdicts:
    """The decisions that change what counts.

    exempted     finding keys whose state is ``exempted``
    excuses      incident_no -> ``accepted`` | ``rejected`` (the Art. 17 review of the event's report)
    excuse_mode  ``auto`` | ``required`` (config/rules.yaml ``excuse_review``)
    """

    exempted: frozenset[str] = frozenset()
    excuses: Mapping[str, str] = field(default_factory=dict)
    excuse_mode: str = "auto"

    def __post_init__(self) -> None:
        if self.excuse_mode not in EXCUSE_MODES:
            raise ValueError(f"excuse_mode must be one of {EXCUSE_MODES}: {self.excuse_mode!r}")

    @property
    def excused_may_count(self) -> bool:
        """False when no finding of ``excused_findings`` can count (auto mode and no excuse rejected)."""
        return self.excuse_mode == "required" or any(v == "rejected" for v in self.excuses.values())

    def excuse_effective(self, incidents: Iterable) -> np.ndarray:
        """Per incident_no: its excuse holds (auto: not rejected; required: accepted)."""
        verdict = np.array([self.excuses.get(i) for i in incidents], dtype=object)
        if self.excuse_mode == "required":
            return verdict == "accepted"
        return verdict != "rejected"

    def is_exempted(self, keys: pd.Series | Iterable) -> np.ndarray:
        """Per finding key: exempted."""
        values = keys.to_numpy(dtype=object) if isinstance(keys, pd.Series) else np.asarray(list(keys), dtype=object)
        if not self.exempted or not len(values):
            return np.zeros(len(values), dtype=bool)
        return pd.Series(values, dtype=object).isin(list(self.exempted)).to_numpy()

    def drop_exempted(self, frame: pd.DataFrame, key: str = "finding_key") -> pd.DataFrame:
        """``frame`` without its exempted findings (by the column ``key``)."""
        if not self.exempted or frame.empty:
            return frame
        return frame.loc[~self.is_exempted(frame[key])]

    def counted_excused(self, frame: pd.DataFrame, incident: str = "incident_no") -> pd.DataFrame:
        """The rows of an ``excused_findings`` frame that count: excuse not effective and not exempted."""
        if frame.empty:
            return frame
        keep = ~self.excuse_effective(frame[incident].tolist())
        if "finding_key" in frame.columns:
            keep &= ~self.is_exempted(frame["finding_key"])
        return frame.loc[keep]

    def counting(self, findings: pd.DataFrame, excused: pd.DataFrame | None = None) -> pd.DataFrame:
        """The findings that count: ``findings`` without the exempted ones, plus the findings of
        ``excused`` (``excused_findings`` rows) whose excuse is not effective (and not exempted)."""
        out = self.drop_exempted(findings)
        if excused is None or excused.empty or not self.excused_may_count:
            return out.reset_index(drop=True)
        extra = self.counted_excused(excused)
        if extra.empty:
            return out.reset_index(drop=True)
        extra = extra[[c for c in out.columns if c in extra.columns]]
        return pd.concat([out, extra], ignore_index=True)


def excuse_mode(cfg: Mapping | None) -> str:
    """``excuse_review`` of a loaded rule configuration (``etl.rules.config.load``), ``auto`` without one."""
    return str((cfg or {}).get("excuse_review") or "auto")


def read_verdicts(conn: Connection, cfg: Mapping | None = None) -> Verdicts:
    """The current verdicts of the warehouse (``sup_finding_state``, ``sup_excuse_reviews``) under the rule
    configuration ``cfg`` (its ``excuse_review``)."""
    exempted = conn.execute(sa.text("SELECT finding_key FROM sup_finding_state WHERE state = 'exempted'")).scalars()
    excuses = conn.execute(sa.text("SELECT incident_no, verdict FROM sup_excuse_reviews")).fetchall()
    return Verdicts(frozenset(exempted), {str(i): str(v) for i, v in excuses}, excuse_mode(cfg))


def read_in(
    conn: Connection, sql: str, name: str, values: Iterable, params: Mapping | None = None, **kw
) -> pd.DataFrame:
    """``read_df`` of ``sql`` whose expanding parameter ``:name`` takes ``values``, in chunks (the rows of every
    chunk concatenated; no rows when ``values`` is empty)."""
    values = sorted({str(v) for v in values})
    stmt = sa.text(sql).bindparams(sa.bindparam(name, expanding=True, type_=sa.Text()))
    frames = [
        read_df(conn, stmt, {**(params or {}), name: values[i : i + _CHUNK]}, **kw)
        for i in range(0, max(len(values), 1), _CHUNK)
    ]
    if not values:
        return frames[0].iloc[0:0]
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
