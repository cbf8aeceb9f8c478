"""Assessment (rules.md "Assessment"): scoring schemes -> unit_scores, unit_item_scores, evaluation.

``compute`` is the one entry of the scoring step.  The work is split by job:
``schemes`` (parse and validate config/schemes/*.yaml), ``inputs`` (what the
scoring reads from the warehouse), ``items`` (item scores), ``totals`` (veto,
grade, total, rank, the table rows) and ``lost_points`` (where lost points
went: the workbook's 扣分明细 and the dashboard's drill-down).  Every scheme
found is computed for every unit and every period that has data; the one named
by ``cfg["active_scheme"]`` gets ``active = 1``, which is what the public views
``v_unit_scores`` / ``v_unit_item_scores`` show.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from etl.scoring import metrics as M
from etl.scoring.inputs import apply_verdicts, concat, read_base, read_metrics
from etl.scoring.items import item_tallies
from etl.scoring.schemes import load_schemes
from etl.scoring.totals import ITEM_COLUMNS, SCORE_COLUMNS, score_scheme
from etl.warehouse.db import bulk_insert, read_df
from etl.warehouse.verdicts import Verdicts, read_verdicts


def _data_as_of(conn: Connection, clip_months: pd.DataFrame) -> pd.Timestamp | None:
    """Latest time in the loaded data (clips up to the evaluation date; changes of cases and incidents)."""
    parts = [
        f"SELECT MAX({c}) AS t FROM {t}"
        for t, c in (
            ("cases", "updated_at"),
            ("case_actions", "updated_at"),
            ("case_documents", "updated_at"),
            ("incidents", "updated_at"),
        )
    ]
    times = read_df(conn, " UNION ALL ".join(parts), parse_dates=["t"])["t"]
    clips = pd.to_datetime(clip_months["last_start"], errors="coerce")
    t = pd.concat([times, clips]).dropna()
    return None if t.empty else t.max()


def compute(
    conn: Connection,
    as_of: datetime,
    cfg: dict,
    *,
    run_id: int | None = None,
    integrity_checked: bool = True,
    access: pd.DataFrame | None = None,
    clip_months: pd.DataFrame | None = None,
    months: list[str] | None = None,
    verdicts: Verdicts | None = None,
) -> dict:
    """Rebuild unit_scores, unit_item_scores and evaluation inside the caller's transaction.

    ``access``: ``inputs.access_counts`` of the access rules' record frame of this evaluation, else the access
    records are counted in SQL; ``clip_months``: ``metrics.clip_months(conn, as_of)`` when the caller holds
    it, else it is read here; ``months``: ``metrics.data_months`` as the metrics step computed it, else
    computed here; ``verdicts``: what people decided (``etl.warehouse.verdicts.read_verdicts``), read here when
    None: exempted findings count nowhere, the findings of excuses not effective count.  Returns the rows
    written, the scheme ids, and what ``etl.scoring.kept`` keeps for rescoring: ``base`` (the inputs before
    the verdicts, ``inputs.read_base``) and ``tallies`` (scheme id -> ``items.item_tallies`` under them)."""
    schemes = load_schemes(cfg)
    if verdicts is None:
        verdicts = read_verdicts(conn, cfg)
    if clip_months is None:
        clip_months = M.clip_months(conn, as_of)
    base = read_base(conn, as_of, cfg, schemes, access=access, clip_months=clip_months, months=months)
    inp = apply_verdicts(base, verdicts, read_metrics(conn))
    scores, items, tallies = [], [], {}
    if inp.months and len(inp.units):
        for scheme in schemes:
            tallies[scheme["id"]] = item_tallies(scheme, inp)
            s, i = score_scheme(scheme, inp, tallies=tallies[scheme["id"]])
            scores.append(s)
            items.append(i)
    conn.execute(sa.text("DELETE FROM unit_scores"))
    conn.execute(sa.text("DELETE FROM unit_item_scores"))
    conn.execute(sa.text("DELETE FROM evaluation"))
    n_scores = bulk_insert(conn, "unit_scores", concat(scores, SCORE_COLUMNS), SCORE_COLUMNS)
    n_items = bulk_insert(conn, "unit_item_scores", concat(items, ITEM_COLUMNS), ITEM_COLUMNS)
    active = next(s for s in schemes if s["active"])
    bulk_insert(
        conn,
        "evaluation",
        [
            (
                run_id,
                pd.Timestamp(as_of),
                _data_as_of(conn, clip_months),
                active["id"],
                active["version"],
                int(bool(integrity_checked)),
                pd.Timestamp.now().floor("s"),
                cfg.get("excuse_review", "auto"),
            )
        ],
        [
            "run_id",
            "as_of",
            "data_as_of",
            "scheme_id",
            "scheme_version",
            "integrity_checked",
            "computed_at",
            "excuse_review",
        ],
    )
    return {
        "unit_scores": n_scores,
        "unit_item_scores": n_items,
        "schemes": [s["id"] for s in schemes],
        "base": base,
        "tallies": tallies,
    }
