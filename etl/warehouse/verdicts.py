"""What people decided about the findings: the ONE explicit input through which scoring, metrics, the
workbook and the dashboard learn it (shared/spec/supervision.md "Reviews and appeals", "Art. 17").

``read_verdicts(conn, cfg)`` reads the supervision tables into a ``Verdicts``; the steps that count findings
take it as an argument (``etl.scoring.scores.compute(verdicts=...)``, ``etl.scoring.metrics.compute``,
``etl.scoring.inputs.load_inputs``), nothing reads the supervision tables behind their backs.

* An **exempted** finding counts nowhere: its object is clean, it deducts nothing, it vetoes nothing.
* The AV findings of an excused event (table ``excused_findings``, ``etl.rules.av.excused_rules``) count
  when its excuse is not effective: with ``excuse_review: auto`` (default) an excuse is effective unless the
  legal department rejected it; with ``required`` only once it accepted it.
* A spot-check (随机抽查) that failed is a finding **SPOT-CHECK** on its event or case (written to ``findings``
  by ``etl.rules.spotcheck`` at every run and by ``etl.supervision.spotcheck.record`` at once).  The scoring
  reads them from here (``spot``), not with the rules' findings, so that a review recorded after the run counts
  at once on the fast rescore path too; the reviewed items (``spot_items``) give the metric 抽查合格率.
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
SPOT_RULE = "SPOT-CHECK"
# one SPOT-CHECK finding: its key, the object (events: incident_no, cases: case_no), the object's unit and month,
# and whether a case has an action (an object of ``cases_with_actions``)
SPOT_COLUMNS = ["finding_key", "object_kind", "object_key", "unit_code", "month", "has_actions"]
# one reviewed spot-check item: "campaign_id:object_key", the object's unit and month, pass | fail
SPOT_ITEM_COLUMNS = ["item_key", "unit_code", "month", "verdict"]
# the rules of excused_findings (etl.rules.av): the AV findings an interruption report excuses
EXCUSED_RULES = frozenset({"AV-NONE", "AV-GAP", "AV-OFFICER"})
_CHUNK = 5000  # keys per IN list (SQLite's variable limit, plain statements on PostgreSQL)


@dataclass(frozen=True)
class Verdicts:
    """The decisions that change what counts.

    exempted     finding keys whose state is ``exempted``
    excuses      incident_no -> ``accepted`` | ``rejected`` (the Art. 17 review of the event's report)
    excuse_mode  ``auto`` | ``required`` (config/rules.yaml ``excuse_review``)
    spot         SPOT-CHECK findings, tuples of ``SPOT_COLUMNS``
    spot_items   reviewed spot-check items, tuples of ``SPOT_ITEM_COLUMNS``
    """

    exempted: frozenset[str] = frozenset()
    excuses: Mapping[str, str] = field(default_factory=dict)
    excuse_mode: str = "auto"
    spot: tuple[tuple, ...] = ()
    spot_items: tuple[tuple, ...] = ()

    def __post_init__(self) -> None:
        if self.excuse_mode not in EXCUSE_MODES:
            raise ValueError(f"excuse_mode must be one of {EXCUSE_MODES}: {self.excuse_mode!r}")

    def spot_frame(self) -> pd.DataFrame:
        """``spot`` as a frame of ``SPOT_COLUMNS``."""
        return pd.DataFrame(list(self.spot), columns=SPOT_COLUMNS)

    def spot_item_frame(self) -> pd.DataFrame:
        """``spot_items`` as a frame of ``SPOT_ITEM_COLUMNS``."""
        return pd.DataFrame(list(self.spot_items), columns=SPOT_ITEM_COLUMNS)

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
    return Verdicts(
        frozenset(exempted),
        {str(i): str(v) for i, v in excuses},
        excuse_mode(cfg),
        spot=read_spot(conn),
        spot_items=read_spot_items(conn),
    )


def read_spot(conn: Connection) -> tuple[tuple, ...]:
    """The SPOT-CHECK findings of table ``findings`` as ``Verdicts.spot`` tuples, in key order."""
    rows = conn.execute(
        sa.text(
            """SELECT f.finding_key,
                      CASE WHEN f.incident_no IS NOT NULL THEN 'events' ELSE 'cases' END,
                      COALESCE(f.incident_no, f.case_no), f.unit_code, f.month,
                      CASE WHEN f.case_no IS NOT NULL
                           AND EXISTS (SELECT 1 FROM case_actions a
                                       WHERE a.case_no = f.case_no AND a.county_code = f.county_code)
                           THEN 1 ELSE 0 END
               FROM findings f WHERE f.rule_id = :r AND COALESCE(f.incident_no, f.case_no) IS NOT NULL
               ORDER BY f.finding_key"""
        ),
        {"r": SPOT_RULE},
    ).fetchall()
    return tuple((str(k), str(kind), str(o), _opt(u), _opt(m), int(a)) for k, kind, o, u, m, a in rows)


def read_spot_items(conn: Connection) -> tuple[tuple, ...]:
    """The reviewed spot-check items (``sup_spotcheck_items`` with a verdict) as ``Verdicts.spot_items``."""
    if not sa.inspect(conn).has_table("sup_spotcheck_items"):
        return ()
    rows = conn.execute(
        sa.text(
            """SELECT campaign_id, object_key, unit_code, month, verdict FROM sup_spotcheck_items
               WHERE verdict IS NOT NULL ORDER BY campaign_id, object_key"""
        )
    ).fetchall()
    return tuple((f"{c}:{o}", _opt(u), _opt(m), str(v)) for c, o, u, m, v in rows)


def _opt(v: object) -> str | None:
    return None if v is None else str(v)


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
